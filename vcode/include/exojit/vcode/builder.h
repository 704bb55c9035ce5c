// SPDX-License-Identifier: MIT
// The vcode builder: one call per instruction, the client in control of registers (VCODE's API).
//
//   Module m;
//   Builder b(m, "add1", Type::I32, {Type::I32});
//   Reg x = b.arg(0);
//   b.add(x, x, 1);
//   b.ret(x);
//   b.finish();  // verifies; throws exojit::Error naming the bad instruction
//
// Every method checks its operands at once (types, classes, liveness of registers) and throws
// exojit::Error on a mismatch, so a bad call is reported where it is made.
#pragma once

#include <array>
#include <initializer_list>
#include <string>
#include <vector>

#include "exojit/error.h"
#include "exojit/vcode/detail/flow.h"
#include "exojit/vcode/ir.h"

namespace exojit::vcode {

class Builder {
 public:
  // Starts function `name` in `m`. `param_classes`, if given, says which parameters must survive
  // calls (RegClass::Var); parameters are temporaries by default.
  Builder(Module& m, std::string name, Type ret, std::vector<Type> params,
          std::vector<RegClass> param_classes = {});

  Reg arg(size_t i) const;
  Function& function() { return *fn_; }
  const Function& function() const { return *fn_; }

  // Registers. getreg throws when the pool of that class is exhausted.
  Reg getreg(Type t, RegClass c = RegClass::Temp);
  void putreg(Reg r);
  void name(Reg r, std::string n);  // optional name for listings

  // Labels and locals.
  Label label();
  void place(Label l);
  Local local(uint32_t size, uint32_t align = 8);
  Local local(Type t) { return local(uint32_t(type_bytes(t)), uint32_t(type_bytes(t))); }

  // Integer (and, where it makes sense, float) arithmetic: d = a op b. The type is d's.
  void add(Reg d, Reg a, Reg b) { binary(Op::Add, d, a, b); }
  void add(Reg d, Reg a, int64_t i) { binary(Op::Add, d, a, i); }
  void sub(Reg d, Reg a, Reg b) { binary(Op::Sub, d, a, b); }
  void sub(Reg d, Reg a, int64_t i) { binary(Op::Sub, d, a, i); }
  void mul(Reg d, Reg a, Reg b) { binary(Op::Mul, d, a, b); }
  void mul(Reg d, Reg a, int64_t i) { binary(Op::Mul, d, a, i); }
  void div(Reg d, Reg a, Reg b) { binary(Op::Div, d, a, b); }
  void div(Reg d, Reg a, int64_t i) { binary(Op::Div, d, a, i); }
  void mod(Reg d, Reg a, Reg b) { binary(Op::Mod, d, a, b); }
  void mod(Reg d, Reg a, int64_t i) { binary(Op::Mod, d, a, i); }
  void and_(Reg d, Reg a, Reg b) { binary(Op::And, d, a, b); }
  void and_(Reg d, Reg a, int64_t i) { binary(Op::And, d, a, i); }
  void or_(Reg d, Reg a, Reg b) { binary(Op::Or, d, a, b); }
  void or_(Reg d, Reg a, int64_t i) { binary(Op::Or, d, a, i); }
  void xor_(Reg d, Reg a, Reg b) { binary(Op::Xor, d, a, b); }
  void xor_(Reg d, Reg a, int64_t i) { binary(Op::Xor, d, a, i); }
  void lsh(Reg d, Reg a, Reg b) { binary(Op::Lsh, d, a, b); }
  void lsh(Reg d, Reg a, int64_t i) { binary(Op::Lsh, d, a, i); }
  void rsh(Reg d, Reg a, Reg b) { binary(Op::Rsh, d, a, b); }
  void rsh(Reg d, Reg a, int64_t i) { binary(Op::Rsh, d, a, i); }

  void neg(Reg d, Reg a) { unary(Op::Neg, d, a); }
  void com(Reg d, Reg a) { unary(Op::Com, d, a); }
  void not_(Reg d, Reg a) { unary(Op::Not, d, a); }
  void mov(Reg d, Reg a) { unary(Op::Mov, d, a); }
  void cvt(Reg d, Reg a) { unary(Op::Cvt, d, a); }
  void set(Reg d, int64_t imm);
  void setf(Reg d, double imm);

  // Networking instructions (see the semantics in interp.h and the RFC 1071 note there).
  void cksum(Reg d, Reg a, Reg b) { binary(Op::Cksum, d, a, b); }
  void cksum(Reg d, Reg a, int64_t i) { binary(Op::Cksum, d, a, i); }
  void cksum_fold(Reg d, Reg a) { unary(Op::CksumFold, d, a); }
  // d = all ones when a <= b (unsigned), else 0: after a bounds check, `and` the index with it
  // (Spectre v1: a mispredicted check then still accesses inside the range).
  void bound_mask(Reg d, Reg a, Reg b) { binary(Op::BoundMask, d, a, b); }
  void bound_mask(Reg d, Reg a, int64_t i) { binary(Op::BoundMask, d, a, i); }
  void bound_zero(Reg d, Reg a, Reg b) { binary(Op::BoundZero, d, a, b); }
  void bound_zero(Reg d, Reg a, int64_t i) { binary(Op::BoundZero, d, a, i); }
  void bswap(Reg d, Reg a) { unary(Op::Bswap, d, a); }
  void crc32c(Reg d, Reg crc, Reg data) { binary(Op::Crc32c, d, crc, data); }

  // Vectors (types v16u8 .. v4u64; add/sub/and/or/xor/mov/set/lsh/rsh and the loads and stores
  // above also take vector registers, see interp.h).
  void splat(Reg d, Reg scalar) { unary(Op::Splat, d, scalar); }
  void widen(Reg d, Reg a, int half) { with_imm(Op::Widen, d, a, half); }
  void shuf(Reg d, Reg a, uint64_t pattern) { with_imm(Op::Shuf, d, a, int64_t(pattern)); }
  void hsum(Reg d, Reg a) { unary(Op::Hsum, d, a); }

  // Memory: aligned (ld/st), unaligned (ldu/stu), big-endian and unaligned (ldbe/stbe).
  void ld(Reg d, Reg base, int64_t off = 0) { mem(Op::Ld, d, base, Reg{}, off); }
  void ld(Reg d, Reg base, Reg index, int64_t off = 0) { mem(Op::Ld, d, base, index, off); }
  void ld(Reg d, Local l, int64_t off = 0) { mem_local(Op::Ld, d, l, off); }
  void st(Reg v, Reg base, int64_t off = 0) { mem(Op::St, v, base, Reg{}, off); }
  void st(Reg v, Reg base, Reg index, int64_t off = 0) { mem(Op::St, v, base, index, off); }
  void st(Reg v, Local l, int64_t off = 0) { mem_local(Op::St, v, l, off); }
  void ldu(Reg d, Reg base, int64_t off = 0) { mem(Op::Ldu, d, base, Reg{}, off); }
  void ldu(Reg d, Reg base, Reg index, int64_t off = 0) { mem(Op::Ldu, d, base, index, off); }
  void stu(Reg v, Reg base, int64_t off = 0) { mem(Op::Stu, v, base, Reg{}, off); }
  void stu(Reg v, Reg base, Reg index, int64_t off = 0) { mem(Op::Stu, v, base, index, off); }
  void ldbe(Reg d, Reg base, int64_t off = 0) { mem(Op::Ldbe, d, base, Reg{}, off); }
  void ldbe(Reg d, Reg base, Reg index, int64_t off = 0) { mem(Op::Ldbe, d, base, index, off); }
  void stbe(Reg v, Reg base, int64_t off = 0) { mem(Op::Stbe, v, base, Reg{}, off); }
  void stbe(Reg v, Reg base, Reg index, int64_t off = 0) { mem(Op::Stbe, v, base, index, off); }
  void addrl(Reg d, Local l);

  // Compare and branch: if (a op b) goto l. The type is a's (b must match).
  void blt(Reg a, Reg b, Label l) { branch(Op::Blt, a, b, l); }
  void blt(Reg a, int64_t i, Label l) { branch(Op::Blt, a, i, l); }
  void ble(Reg a, Reg b, Label l) { branch(Op::Ble, a, b, l); }
  void ble(Reg a, int64_t i, Label l) { branch(Op::Ble, a, i, l); }
  void bgt(Reg a, Reg b, Label l) { branch(Op::Bgt, a, b, l); }
  void bgt(Reg a, int64_t i, Label l) { branch(Op::Bgt, a, i, l); }
  void bge(Reg a, Reg b, Label l) { branch(Op::Bge, a, b, l); }
  void bge(Reg a, int64_t i, Label l) { branch(Op::Bge, a, i, l); }
  void beq(Reg a, Reg b, Label l) { branch(Op::Beq, a, b, l); }
  void beq(Reg a, int64_t i, Label l) { branch(Op::Beq, a, i, l); }
  void bne(Reg a, Reg b, Label l) { branch(Op::Bne, a, b, l); }
  void bne(Reg a, int64_t i, Label l) { branch(Op::Bne, a, i, l); }
  void jmp(Label l);
  void jmpr(Reg target);    // indirect jump to an address taken with la()
  void la(Reg d, Label l);  // d = address of label l

  // Calls. `result` may be Reg{} to discard (or for void callees).
  void ccall(Reg result, uint32_t extern_index, std::initializer_list<Reg> args);
  void call(Reg result, uint32_t function_index, std::initializer_list<Reg> args);
  void ccall(Reg result, uint32_t extern_index, const std::vector<Reg>& args);
  void call(Reg result, uint32_t function_index, const std::vector<Reg>& args);

  void ret(Reg r);
  void ret(int64_t imm);
  void ret();

  // Marks the constant of the record just recorded as the client's own (kOwnedImm in ir.h: a
  // table address, a hash multiplier, a layout offset -- nothing from untrusted input), which
  // constant blinding leaves as it is. Throws when that record carries none (carries_constant).
  void own_constant();

  // Verifies the whole function (labels, definitions on every path, returns); throws on error.
  Function& finish();

  // By opcode, for generators that copy or translate instructions: d = a op b (binary
  // arithmetic, cksum, crc32c) and d = op a (neg com not mov bswap cvt cksum_fold splat hsum).
  void binary(Op op, Reg d, Reg a, Reg b);
  void binary(Op op, Reg d, Reg a, int64_t imm);
  void unary(Op op, Reg d, Reg a);

 private:
  void with_imm(Op op, Reg d, Reg a, int64_t imm);  // widen, shuf: imm is a parameter
  void mem(Op op, Reg v, Reg base, Reg index, int64_t off);
  void mem_local(Op op, Reg v, Local l, int64_t off);
  void branch(Op op, Reg a, Reg b, Label l);
  void branch(Op op, Reg a, int64_t imm, Label l);
  void call_any(Reg result, uint32_t index, bool is_extern, const Reg* args, size_t n);
  // The paths for everything but the common case of the inline methods above.
  [[gnu::noinline]] void binary_checked(Op op, Reg d, Reg a, Reg b);
  [[gnu::noinline]] void binary_checked(Op op, Reg d, Reg a, int64_t imm);
  [[gnu::noinline]] void unary_checked(Op op, Reg d, Reg a);
  [[gnu::noinline]] void mem_checked(Op op, Reg v, Reg base, Reg index, int64_t off);
  static constexpr uint32_t head(Op op, Type t, uint8_t flags) {
    return uint32_t(op) | uint32_t(t) << 8 | uint32_t(flags) << 16;
  }
  // Appends a record. `trusted` says the caller's inline checks already proved the operands
  // valid; otherwise the full check runs and a rejected record is taken back before throwing.
  [[gnu::always_inline]] void emit(Op op, Type type, uint8_t flags, uint32_t dst, uint32_t a,
                                   uint32_t b, int64_t imm, bool trusted) {
    record(head(op, type, flags), dst, a, b, imm);
    if (!trusted) [[unlikely]]
      check_last();
  }
  // The append itself, out of line: one small function shared by every kind of record. `head`
  // is the record's first four bytes (op, type, flags, 0), so that every argument travels in a
  // register and the record is written with four stores.
  [[gnu::noinline]] void record(uint32_t head, uint32_t dst, uint32_t a, uint32_t b, int64_t imm);
  [[gnu::noinline]] void grow_code();
  void check_last();  // full check of the last record; takes it back and throws if bad
  // What the builder keeps per register, compact so the hot checks touch one small array.
  struct RegMeta {
    Type type;
    uint8_t key;    // detail::slot_key of its slot
    uint8_t alive;  // 1 until putreg
    uint8_t unused = 0;
  };
  // The register's record; throws on an invalid or released register.
  [[gnu::always_inline]] const RegMeta& live(Reg r) const {
    if (r.id < meta_.size() && meta_[r.id].alive) [[likely]]
      return meta_[r.id];
    not_live(r);
  }
  [[noreturn]] void not_live(Reg r) const;

  // Definedness, tracked as instructions are recorded (see detail/flow.h): a use of a register
  // not defined on every path is rejected at once. Each is called after the record is emitted.
  size_t last() const { return fn_->code.size() - 1; }
  // Whether register r is defined here (or the code here is unreachable).
  [[gnu::always_inline]] bool defined(uint32_t r) const {
    return !flow_.reachable() || flow_.defined_at(meta_[r].key, r);
  }
  [[gnu::always_inline]] void use(uint32_t r) {
    if (flow_.reachable() && !flow_.defined_at(meta_[r].key, r)) [[unlikely]]
      reject_undefined(r);
  }
  [[gnu::always_inline]] void def(uint32_t r) { flow_.define_at(meta_[r].key, r); }
  void edge(uint32_t label) {
    if (flow_.reachable())
      flow_.edge(label, last());
    else
      flow_.reference(label, last());
  }
  [[noreturn]] void reject_undefined(uint32_t r);  // takes the record back, throws
  Label check_label(Label l) const;

  Module& module_;
  Function* fn_;
  std::vector<RegMeta> meta_;
  uint32_t used_slots_[2][2] = {};  // [float][class] bit set of slots in use
  detail::FlowTracker flow_;
  size_t call_args_mark_ = 0;  // call_args size before the call being recorded
};

namespace detail {
inline bool pointer_like(Type t) {
  return t == Type::P || t == Type::U64 || t == Type::I64;
}
}  // namespace detail

// Inline so that the opcode folds into the checks at each call site (VCODE's macros, in C++).
// The common case records the instruction last, as a tail call: operands of the instruction
// table's uniform forms (ops.h), defined on every path. Anything else (mixed pointer and integer
// operands, checksum widths, errors) goes to the *_checked paths (builder.cpp), which record
// first, then check and explain exactly as check_insn and the flow analysis do.

[[gnu::always_inline]] inline void Builder::binary(Op op, Reg d, Reg a, Reg b) {
  const Type t = live(d).type;
  if (live(a).type == t && live(b).type == t && uniform_ok(op, t) && defined(a.id) && defined(b.id))
      [[likely]] {
    def(d.id);
    return record(head(op, t, 0), d.id, a.id, b.id, 0);
  }
  binary_checked(op, d, a, b);
}

[[gnu::always_inline]] inline void Builder::binary(Op op, Reg d, Reg a, int64_t imm) {
  const Type t = live(d).type;
  if (live(a).type == t && uniform_ok(op, t) && has_flag(op, kOpImmForm) && !in_float_file(t) &&
      defined(a.id)) [[likely]] {
    def(d.id);
    return record(head(op, t, kImm), d.id, a.id, 0, normalize_imm(t, imm));
  }
  binary_checked(op, d, a, imm);
}

[[gnu::always_inline]] inline void Builder::unary(Op op, Reg d, Reg a) {
  const Type t = live(d).type;
  const bool trusted = op == Op::Cvt ? !is_vector(t) && !is_vector(live(a).type)
                                     : (live(a).type == t && uniform_ok(op, t));
  if (trusted && defined(a.id)) [[likely]] {
    def(d.id);
    return record(head(op, t, 0), d.id, a.id, 0, 0);
  }
  unary_checked(op, d, a);
}

[[gnu::always_inline]] inline void Builder::mem(Op op, Reg v, Reg base, Reg index, int64_t off) {
  const Type t = live(v).type;
  bool fast = live(base).type == Type::P && (is_int(t) || (op != Op::Ldbe && op != Op::Stbe)) &&
              defined(base.id);
  if (index.valid()) fast = fast && detail::pointer_like(live(index).type) && defined(index.id);
  if (fast && (!is_store(op) || defined(v.id))) [[likely]] {
    if (!is_store(op)) def(v.id);
    return record(head(op, t, index.valid() ? kIndex : 0), v.id, base.id,
                  index.valid() ? index.id : 0, off);
  }
  mem_checked(op, v, base, index, off);
}

[[gnu::always_inline]] inline void Builder::branch(Op op, Reg a, Reg b, Label l) {
  Type t = live(a).type;
  bool trusted = live(b).type == t && uniform_ok(op, t);
  emit(op, t, 0, check_label(l).id, a.id, b.id, 0, trusted);
  use(a.id), use(b.id), edge(l.id);
}

[[gnu::always_inline]] inline void Builder::branch(Op op, Reg a, int64_t imm, Label l) {
  Type t = live(a).type;
  emit(op, t, kImm, check_label(l).id, a.id, 0, normalize_imm(t, imm), !in_float_file(t));
  use(a.id), edge(l.id);
}

}  // namespace exojit::vcode
