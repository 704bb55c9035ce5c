// SPDX-License-Identifier: MIT
// The instruction table: everything exojit knows about an opcode, in one place.
//
// Each row of EXOJIT_VCODE_OPS gives an opcode's enum name, its text name, its form (which record
// fields it reads and writes, and its text syntax), the types it takes, the types for which its
// all-registers form takes every register operand at the operation's type (the Builder's fast
// path), flags, and a one-line meaning. The verifier, the ASH sandbox, the printer and parser,
// the pipe compiler and the back ends ask this table instead of keeping their own lists; the
// instruction-set reference in vcode/README.md is generated from it (and checked by
// tests/vcode/ops_test.cpp, which also runs every opcode through every consumer).
//
// Adding an opcode: a row here, its semantics in the interpreter (interp.cpp), its lowering in
// each back end (x64/, a64/, llvm/lower.cpp); the type rules of the verifier (verify.cpp) when the
// form's generic checks are not enough. Nothing else.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "exojit/vcode/types.h"

namespace exojit::vcode {

// Which record fields an instruction uses, and how it reads (see ir.h for the record).
enum class Form : uint8_t {
  Binary,     // op %d, %a, %b|imm     d defined; a used; b used, or the immediate (kImm)
  Unary,      // op %d, %a             d defined; a used
  UnaryImm,   // op %d, %a, imm        d defined; a used; imm a parameter of the operation
  SetImm,     // op %d, imm            d defined
  Load,       // op %d, [mem]          d defined; the base (a) and index (b, kIndex) used
  Store,      // op [mem], %v          v (in dst) used; the base and index used
  LocalAddr,  // op %d, $n             d defined; a is a local
  Branch,     // op %a, %b|imm, L      a used; b used or the immediate; dst a label
  Jump,       // op L                  dst a label
  JumpReg,    // op %a                 a used
  LabelAddr,  // op %a, L              a defined; dst a label
  Place,      // L:                    dst a label
  Call,       // op [%d,] @f(%x, ...)  d defined (unless kVoid); the arguments (call_args) used
  Return,     // op [%a|imm]           a used (unless kImm or kVoid)
};
inline constexpr int kNumForms = 14;

// What the rest of exojit needs to know about an opcode beyond its form.
enum OpFlags : uint16_t {
  kOpImmForm = 1 << 0,        // the second source may be an immediate (kImm)
  kOpCommutative = 1 << 1,    // a op b == b op a
  kOpTraps = 1 << 2,          // the integer forms trap on a zero divisor (and INT_MIN / -1)
  kOpLoad = 1 << 3,           // reads memory
  kOpStore = 1 << 4,          // writes memory
  kOpCondBranch = 1 << 5,     // compare and branch to a label
  kOpTerminator = 1 << 6,     // control never falls through to the next record
  kOpLabelRef = 1 << 7,       // dst names a label
  kOpCall = 1 << 8,           // calls a function (temporaries die)
  kOpCodeAddress = 1 << 9,    // takes a code address or jumps to one held in a register
  kOpStackAddress = 1 << 10,  // exposes the address of a stack local
  kOpReadsDst = 1 << 11,      // the destination is also a source (Binary: d = op(d, a, b))
};

namespace ops_detail {
constexpr TypeSet bits(std::initializer_list<Type> ts) {
  TypeSet s = 0;
  for (Type t : ts) s |= type_bit(t);
  return s;
}
inline constexpr TypeSet kI = kIntTypes, kF = kFloatTypes, kV = kVectorTypes;
inline constexpr TypeSet kWide = kIntTypes & ~bits({Type::I8, Type::U8});  // 16-64 bits
inline constexpr TypeSet kSum = bits({Type::U32, Type::U64});
inline constexpr TypeSet kFold = bits({Type::U16, Type::U32, Type::U64});
inline constexpr TypeSet kU32 = bits({Type::U32});
inline constexpr TypeSet kP = bits({Type::P});
inline constexpr TypeSet kBound = bits({Type::U32, Type::U64, Type::P});
inline constexpr TypeSet kNone = bits({Type::Void});
inline constexpr TypeSet kWideLanes = kV & ~bits({Type::V16U8, Type::V32U8});
inline constexpr TypeSet kCallable = kI | kF | bits({Type::Void});
}  // namespace ops_detail

// X(enum, text name, form, types, uniform types, flags, meaning). The operation's type (the
// record's `type`) is the destination register's; for stores the stored register's, for
// branches the compared registers', for calls the result's, for returns the function's.
// "uniform types": the types t for which every register operand of type t is valid.
// clang-format off
#define EXOJIT_VCODE_OPS(X)                                                                      \
  /* arithmetic: d = a op b */                                                                   \
  X(Add, "add", Binary, kI | kF | kV, kI | kF | kV, kOpImmForm | kOpCommutative,                 \
    "d = a + b (wrapping; IEEE 754 for floats; lane-wise for vectors)")                          \
  X(Sub, "sub", Binary, kI | kF | kV, kI | kF | kV, kOpImmForm,                                  \
    "d = a - b")                                                                                 \
  X(Mul, "mul", Binary, kI | kF, kI | kF, kOpImmForm | kOpCommutative,                           \
    "d = a * b (the low half for integers)")                                                     \
  X(Div, "div", Binary, kI | kF, kI | kF, kOpImmForm | kOpTraps,                                 \
    "d = a / b, integers truncated toward zero (signed by type); a zero divisor traps")          \
  X(Mod, "mod", Binary, kI, kI, kOpImmForm | kOpTraps,                                           \
    "d = a % b, with the sign of a (as in C); a zero divisor traps")                             \
  X(And, "and", Binary, kI | kV, kI | kV, kOpImmForm | kOpCommutative, "d = a & b")              \
  X(Or, "or", Binary, kI | kV, kI | kV, kOpImmForm | kOpCommutative, "d = a | b")                \
  X(Xor, "xor", Binary, kI | kV, kI | kV, kOpImmForm | kOpCommutative, "d = a ^ b")              \
  X(Lsh, "lsh", Binary, kI | kV, kI, kOpImmForm,                                                 \
    "d = a << b, the count modulo 32 (64 for 64-bit types); vectors: every lane, by an "         \
    "immediate below the lane width")                                                            \
  X(Rsh, "rsh", Binary, kI | kV, kI, kOpImmForm,                                                 \
    "d = a >> b, arithmetic for signed types, counted like lsh; vectors: logical")               \
  /* unary: d = op a */                                                                          \
  X(Neg, "neg", Unary, kI | kF, kI | kF, 0, "d = -a")                                            \
  X(Com, "com", Unary, kI, kI, 0, "d = ~a (bitwise complement)")                                 \
  X(Not, "not", Unary, kI, kI, 0, "d = (a == 0) (logical not)")                                  \
  X(Mov, "mov", Unary, kI | kF | kV, kI | kF | kV, 0,                                            \
    "d = a (vectors: also reinterprets between types of one width)")                             \
  X(Bswap, "bswap", Unary, kWide, kWide, 0, "d = a with its bytes reversed")                     \
  X(Cvt, "cvt", Unary, kI | kF, 0, 0,                                                            \
    "d = a converted to d's type as C converts (floats to integers truncate and must fit in "    \
    "64 bits)")                                                                                  \
  /* d = imm (float immediates are stored as the bits of a double) */                            \
  X(Set, "set", SetImm, kI | kF | kV, kI | kF | kV, 0,                                           \
    "d = imm (vectors: in every lane, truncated to the lane)")                                   \
  /* networking (ASH paper 2.2) */                                                               \
  X(Cksum, "cksum", Binary, kSum, kSum, kOpImmForm | kOpCommutative,                             \
    "d = a + zext(b), plus 1 when that carries out of d's width (one's-complement sum, "         \
    "RFC 1071); b is u16, u32 or u64, no wider than d")                                          \
  X(CksumFold, "cksum_fold", Unary, kFold, kFold, 0,                                             \
    "d = a folded to 16 bits: while (a > 0xffff) a = (a & 0xffff) + (a >> 16)")                  \
  X(Crc32c, "crc32c", Binary, kU32, kU32, 0,                                                     \
    "d = the CRC-32C of crc a (u32) updated with the bytes of b (u8..u64, little-endian), "      \
    "no inversion (x86's crc32)")                                                                \
  /* hardening: the mask of a bounds check (Spectre v1; see README "Hardening") */               \
  X(BoundMask, "bound_mask", Binary, kBound, kBound, kOpImmForm,                                 \
    "d = all ones when a <= b (unsigned), else 0: `and` an index or base with it after its "     \
    "bounds check, and even a mispredicted check accesses inside the range")                     \
  X(BoundZero, "bound_zero", Binary, kBound, kBound, kOpImmForm | kOpReadsDst,                   \
    "d = 0 unless a <= b (unsigned), else d unchanged: the pointer or index a bounds check "      \
    "guards, zeroed branch-free (one conditional move) when the check does not hold")            \
  /* vectors */                                                                                  \
  X(Splat, "splat", Unary, kV, 0, 0, "every lane of d = the integer a, truncated to the lane")   \
  X(Widen, "widen", UnaryImm, kWideLanes, 0, 0,                                                  \
    "d's lanes (twice a's lane width, same register width) = a's low (imm 0) or high (imm 1) "   \
    "half of lanes, zero-extended")                                                              \
  X(Shuf, "shuf", UnaryImm, kV, 0, 0,                                                            \
    "byte i of each 128-bit lane of d = byte (imm >> 4i) & 15 of the same lane of a")            \
  X(Hsum, "hsum", Unary, kI, 0, 0, "d = the sum of a's lanes, zero-extended, wrapping at d's width") \
  /* memory: [base (+ index) + disp], or [$local + disp] */                                      \
  X(Ld, "ld", Load, kI | kF | kV, 0, kOpLoad, "d = the value at mem, naturally aligned")         \
  X(St, "st", Store, kI | kF | kV, 0, kOpStore, "the value at mem = v, naturally aligned")       \
  X(Ldu, "ldu", Load, kI | kF | kV, 0, kOpLoad, "d = the value at mem, any alignment")           \
  X(Stu, "stu", Store, kI | kF | kV, 0, kOpStore, "the value at mem = v, any alignment")         \
  X(Ldbe, "ldbe", Load, kI, 0, kOpLoad, "d = the big-endian value at mem, any alignment")        \
  X(Stbe, "stbe", Store, kI, 0, kOpStore, "the value at mem = v, big-endian, any alignment")     \
  X(AddrL, "addrl", LocalAddr, kP, 0, kOpStackAddress, "d = the address of local $n")            \
  /* control */                                                                                  \
  X(Blt, "blt", Branch, kI | kF, kI | kF, kOpImmForm | kOpCondBranch | kOpLabelRef,              \
    "if (a < b) goto L (signed by type; p unsigned; false on a float NaN)")                      \
  X(Ble, "ble", Branch, kI | kF, kI | kF, kOpImmForm | kOpCondBranch | kOpLabelRef,              \
    "if (a <= b) goto L")                                                                        \
  X(Bgt, "bgt", Branch, kI | kF, kI | kF, kOpImmForm | kOpCondBranch | kOpLabelRef,              \
    "if (a > b) goto L")                                                                         \
  X(Bge, "bge", Branch, kI | kF, kI | kF, kOpImmForm | kOpCondBranch | kOpLabelRef,              \
    "if (a >= b) goto L")                                                                        \
  X(Beq, "beq", Branch, kI | kF, kI | kF, kOpImmForm | kOpCondBranch | kOpLabelRef,              \
    "if (a == b) goto L")                                                                        \
  X(Bne, "bne", Branch, kI | kF, kI | kF, kOpImmForm | kOpCondBranch | kOpLabelRef,              \
    "if (a != b) goto L (true on a float NaN)")                                                  \
  X(Jmp, "jmp", Jump, kNone, 0, kOpTerminator | kOpLabelRef, "goto L")                           \
  X(Jmpr, "jmpr", JumpReg, kP, 0, kOpTerminator | kOpCodeAddress,                                \
    "goto the label whose address a holds (taken by la)")                                        \
  X(La, "la", LabelAddr, kP, 0, kOpLabelRef | kOpCodeAddress, "a = the address of label L")      \
  X(Place, "label", Place, kNone, 0, kOpLabelRef, "places label L here")                         \
  X(Call, "call", Call, kCallable, 0, kOpCall,                                                   \
    "d = f(x, ...): a C function (extern) or a function of the module; temporaries die")         \
  X(Ret, "ret", Return, kCallable, 0, kOpImmForm | kOpTerminator,                                \
    "returns a (or imm, or nothing from a void function)")
// clang-format on

enum class Op : uint8_t {
#define EXOJIT_X(e, ...) e,
  EXOJIT_VCODE_OPS(EXOJIT_X)
#undef EXOJIT_X
};

struct OpInfo {
  std::string_view name;
  Form form;
  TypeSet types;          // the operation types it takes at all
  TypeSet uniform_types;  // types t for which all register operands of type t are valid
  uint16_t flags;
  std::string_view meaning;
};

namespace ops_detail {
inline constexpr OpInfo kTable[] = {
#define EXOJIT_X(e, name, form, types, uniform, flags, meaning) \
  OpInfo{name, Form::form, types, uniform, uint16_t(flags), meaning},
    EXOJIT_VCODE_OPS(EXOJIT_X)
#undef EXOJIT_X
};
}  // namespace ops_detail
inline constexpr const auto& kOpTable = ops_detail::kTable;
inline constexpr int kNumOps = int(std::size(kOpTable));
static_assert(kNumOps <= 64, "Function::op_mask has one bit per opcode");

constexpr const OpInfo& op_info(Op op) {
  return kOpTable[unsigned(op)];
}
constexpr Form form_of(Op op) {
  return op_info(op).form;
}
constexpr bool has_flag(Op op, uint16_t flag) {
  return (op_info(op).flags & flag) != 0;
}

std::string_view op_name(Op op);
bool parse_op(std::string_view s, Op* out);
std::string_view form_syntax(Form f);  // "op %d, %a, %b|imm", ...

// Queries on opcodes (all answered by the table).
constexpr bool is_branch(Op op) {
  return has_flag(op, kOpCondBranch);
}
constexpr bool is_load(Op op) {
  return has_flag(op, kOpLoad);
}
constexpr bool is_store(Op op) {
  return has_flag(op, kOpStore);
}
constexpr bool is_memory(Op op) {
  return has_flag(op, kOpLoad | kOpStore);
}
constexpr bool is_terminator(Op op) {
  return has_flag(op, kOpTerminator);
}
constexpr bool refers_to_label(Op op) {
  return has_flag(op, kOpLabelRef);
}
// d = a op (b | imm): the arithmetic, cksum and crc32c.
constexpr bool is_binary(Op op) {
  return form_of(op) == Form::Binary;
}
// d = op a
constexpr bool is_unary(Op op) {
  return form_of(op) == Form::Unary;
}
// The types of the all-registers form that need no more checking than "every operand of type t".
constexpr bool uniform_ok(Op op, Type t) {
  return in_set(op_info(op).uniform_types, t);
}

}  // namespace exojit::vcode
