// SPDX-License-Identifier: MIT
// DPF filters: a conjunction of atoms over packet fields (the DPF paper, Figure 1).
//
// An atom compares an expression over packet fields with a constant, or moves the base of the
// packet with SHIFT. Fields are `offset:bits` (8, 16 or 32 bits, network byte order) relative to
// the current base; expressions combine fields and constants with & | ^ + - * << >> and are
// evaluated in unsigned 64-bit arithmetic. Text form (comments run from '#' to the line's end):
//
//   (12:16 == 0x800) &&                  # IP datagram
//   (23:8 == 6) &&                       # TCP (the IP header starts at 14)
//   (SHIFT(14)) && (SHIFT((0:8 & 0xf) << 2)) &&  # skip the Ethernet and the IP header
//   (0:16 == 1234) && (2:16 == 4321)     # ports
//
// The same filter with the C++ API:
//
//   Filter f;
//   f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).shift(14)
//    .shift((field(0, 8) & 0xf) << 2).eq(field(0, 16), 1234).eq(field(2, 16), 4321);
//
// `LEN` is the number of bytes from the current base to the end of the packet (before any
// SHIFT: the packet's length), e.g. `(LEN >= 1000)` for tcpdump's `greater 1000`.
//
// Stateful atoms for IP fragments ([EXOTOOLS02], 2.1.6): `RECORD(e)` is an action atom that, when
// every atom of its filter holds, remembers the value of `e` (e.g. the IP ID and source address
// of a first fragment); `RECORDED(e)` holds when `e`'s value was remembered by a RECORD atom of
// a filter with the same id. See engine.h for the bounds on that state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace exojit::dpf {

enum class ExprOp : uint8_t { Const, Load, And, Or, Xor, Add, Sub, Mul, Lsh, Rsh, Len };

struct ExprNode;
using ExprPtr = std::shared_ptr<const ExprNode>;

// An expression tree node. Immutable: trees are shared between filters and the trie.
struct ExprNode {
  ExprOp op;
  uint8_t bits = 0;     // Load: 8, 16, 32 (64 only after coalescing, inside the engine)
  uint32_t offset = 0;  // Load: bytes from the current base
  uint64_t value = 0;   // Const
  ExprPtr a, b;         // operands of binary operators
};

// A value-semantics handle on an expression, with the C operators for the builder API.
class Expr {
 public:
  Expr(uint64_t constant);  // NOLINT: constants convert implicitly, as in the text syntax
  explicit Expr(ExprPtr node) : node_(std::move(node)) {}
  const ExprPtr& node() const { return node_; }

 private:
  ExprPtr node_;
};

Expr field(uint32_t offset, unsigned bits);  // offset:bits
Expr length();                               // LEN: bytes from the base to the packet's end
Expr operator&(Expr a, Expr b);
Expr operator|(Expr a, Expr b);
Expr operator^(Expr a, Expr b);
Expr operator+(Expr a, Expr b);
Expr operator-(Expr a, Expr b);
Expr operator*(Expr a, Expr b);
Expr operator<<(Expr a, Expr b);
Expr operator>>(Expr a, Expr b);

enum class Cmp : uint8_t { Eq, Ne, Lt, Le, Gt, Ge };
std::string_view cmp_name(Cmp c);

struct Atom {
  enum class Kind : uint8_t { Compare, Shift, Record, Recorded };
  Kind kind = Kind::Compare;
  ExprPtr expr;  // Compare: left side; Shift: amount; Record/Recorded: the remembered value
  Cmp cmp = Cmp::Eq;
  uint64_t value = 0;  // Compare: the constant
};

// A conjunction of atoms, checked in order (reordering is allowed: the language has no side
// effects except RECORD, which acts only once the whole filter has accepted).
class Filter {
 public:
  Filter& eq(Expr e, uint64_t v) { return compare(std::move(e), Cmp::Eq, v); }
  Filter& ne(Expr e, uint64_t v) { return compare(std::move(e), Cmp::Ne, v); }
  Filter& lt(Expr e, uint64_t v) { return compare(std::move(e), Cmp::Lt, v); }
  Filter& le(Expr e, uint64_t v) { return compare(std::move(e), Cmp::Le, v); }
  Filter& gt(Expr e, uint64_t v) { return compare(std::move(e), Cmp::Gt, v); }
  Filter& ge(Expr e, uint64_t v) { return compare(std::move(e), Cmp::Ge, v); }
  Filter& compare(Expr e, Cmp c, uint64_t v);
  Filter& shift(Expr amount);
  Filter& record(Expr e);
  Filter& recorded(Expr e);

  std::vector<Atom>& atoms() { return atoms_; }
  const std::vector<Atom>& atoms() const { return atoms_; }

 private:
  std::vector<Atom> atoms_;
};

// Parses the text syntax; a syntax error is an exojit::Error with the column.
Filter parse_filter(std::string_view text);

// Prints a filter (or one atom, or an expression) in the text syntax; the result parses back.
std::string to_string(const Filter& f);
std::string to_string(const Atom& a);
std::string to_string(const ExprPtr& e);

// Structural equality and ordering of expressions (used for merging and canonical order).
bool same_expr(const ExprPtr& a, const ExprPtr& b);
int compare_expr(const ExprPtr& a, const ExprPtr& b);

}  // namespace exojit::dpf

namespace exojit::dpf {

// Does `f` on its own accept the packet? Evaluates the atoms as written, in order, without the
// engine (a field past the end of the packet makes its atom false, RECORD's too; RECORD is
// otherwise true). RECORDED atoms make it false (they depend on the engine's state).
bool matches(const Filter& f, const uint8_t* pkt, size_t len);

}  // namespace exojit::dpf
