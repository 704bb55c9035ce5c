// The vcode IR: types, opcodes, the fixed-size instruction record, functions and modules.
//
// A function is a flat array of 24-byte `Insn` records plus small side tables (registers, labels,
// locals, call arguments). Every consumer (back ends, interpreter, printer, verifier) walks that
// array with one switch per record. See builder.h for the API that records it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace exojit::vcode {

// ---------------------------------------------------------------------------------------------
// Types (as in VCODE). Integer registers of 8/16/32-bit types hold values of exactly that width;
// `p` is a 64-bit pointer that compares unsigned.
//
// Vector types (the extension the pipe compiler needs): 128- and 256-bit registers of unsigned
// lanes, named v<lanes>u<lane bits>. A vector register holds its bits; the type says how lane-wise
// operations split them. Vectors live in the float register file (xmm/ymm on x86-64).
// clang-format off
enum class Type : uint8_t {
  I8, U8, I16, U16, I32, U32, I64, U64, P, F32, F64, Void,
  V16U8, V8U16, V4U32, V2U64,   // 128-bit
  V32U8, V16U16, V8U32, V4U64,  // 256-bit
};
// clang-format on
inline constexpr int kNumTypes = 20;

std::string_view type_name(Type t);
bool parse_type(std::string_view s, Type* out);

constexpr bool is_float(Type t) {
  return t == Type::F32 || t == Type::F64;
}
constexpr bool is_vector(Type t) {
  return t >= Type::V16U8;
}
// Registers of these types live in the float register file.
constexpr bool in_float_file(Type t) {
  return is_float(t) || is_vector(t);
}
// Vector geometry: register width in bits, lane width in bits, lane count.
constexpr int vector_bits(Type t) {
  return t >= Type::V32U8 ? 256 : t >= Type::V16U8 ? 128 : 0;
}
constexpr int lane_bits(Type t) {
  return is_vector(t) ? 8 << ((unsigned(t) - unsigned(Type::V16U8)) & 3) : 0;
}
constexpr int lane_count(Type t) {
  return is_vector(t) ? vector_bits(t) / lane_bits(t) : 0;
}
// The vector type of `bits` width with lanes of `lane` bits (8, 16, 32, 64).
constexpr Type vector_type(int bits, int lane) {
  unsigned k = lane == 8 ? 0 : lane == 16 ? 1 : lane == 32 ? 2 : 3;
  return Type(unsigned(bits == 256 ? Type::V32U8 : Type::V16U8) + k);
}
constexpr bool is_int(Type t) {
  return t <= Type::P;
}  // pointers are integers here
constexpr bool is_signed(Type t) {
  return t == Type::I8 || t == Type::I16 || t == Type::I32 || t == Type::I64;
}
constexpr int type_bits(Type t) {
  switch (t) {
    case Type::I8:
    case Type::U8:
      return 8;
    case Type::I16:
    case Type::U16:
      return 16;
    case Type::I32:
    case Type::U32:
    case Type::F32:
      return 32;
    case Type::Void:
      return 0;
    case Type::I64:
    case Type::U64:
    case Type::P:
    case Type::F64:
      return 64;
    default:
      return vector_bits(t);
  }
}
constexpr int type_bytes(Type t) {
  return type_bits(t) / 8;
}

// Normalizes a 64-bit immediate to the value a register of type `t` would hold (truncated to the
// width, then sign- or zero-extended), so that every consumer sees the same canonical constant.
constexpr int64_t normalize_imm(Type t, int64_t v) {
  switch (t) {
    case Type::I8:
      return int8_t(v);
    case Type::U8:
      return uint8_t(v);
    case Type::I16:
      return int16_t(v);
    case Type::U16:
      return uint16_t(v);
    case Type::I32:
      return int32_t(v);
    case Type::U32:
      return uint32_t(v);
    default:
      return v;
  }
}

// ---------------------------------------------------------------------------------------------
// Registers. VCODE's two classes: temporaries do not survive calls, variables do.
enum class RegClass : uint8_t { Temp, Var };

// Physical slots every target provides, per register file (integer / float) and class. getreg
// fails with an Error when a pool is exhausted; spill to a local then.
inline constexpr int kIntTemps = 7;    // x86-64: rdi rsi rdx rcx r8 r9 r10
inline constexpr int kIntVars = 6;     // x86-64: rbx r12 r13 r14 r15 rbp
inline constexpr int kFloatTemps = 8;  // x86-64: xmm0-7
inline constexpr int kFloatVars = 7;   // x86-64: xmm8-14 (saved around calls by the back end)
inline constexpr int kMaxIntArgs = 6;
inline constexpr int kMaxFloatArgs = 4;  // for calls out; parameters may use up to 8

struct Reg {
  uint32_t id = kNone;
  static constexpr uint32_t kNone = 0xffffffffu;
  bool valid() const { return id != kNone; }
  friend bool operator==(Reg a, Reg b) { return a.id == b.id; }
};

struct RegInfo {
  Type type;
  RegClass cls;
  uint8_t slot;  // index within its pool (class x integer/float)
};

struct Label {
  uint32_t id = 0xffffffffu;
  friend bool operator==(Label a, Label b) { return a.id == b.id; }
};

struct Local {
  uint32_t id = 0xffffffffu;
};

// A function's locals together may take at most this much stack (the verifier checks).
inline constexpr uint64_t kMaxFrameBytes = 64ull << 20;
// A local's alignment: a power of two up to this (the frame itself is 16-byte aligned).
inline constexpr uint32_t kMaxLocalAlign = 16;

struct LocalInfo {
  uint32_t size;
  uint32_t align;
};

// ---------------------------------------------------------------------------------------------
// Opcodes. X(enum, text name). The operation's type is the type of its destination register
// (for stores: of the stored register; for branches: of the compared registers).
// clang-format off
#define EXOJIT_VCODE_OPS(X)                                                               \
  /* integer and float arithmetic: dst = a op (b | imm) */                                \
  X(Add, "add") X(Sub, "sub") X(Mul, "mul") X(Div, "div") X(Mod, "mod")                  \
  X(And, "and") X(Or, "or") X(Xor, "xor") X(Lsh, "lsh") X(Rsh, "rsh")                     \
  /* unary: dst = op a */                                                                 \
  X(Neg, "neg") X(Com, "com") X(Not, "not") X(Mov, "mov") X(Bswap, "bswap") X(Cvt, "cvt")  \
  /* dst = imm (float immediates are stored as the bits of a double) */                   \
  X(Set, "set")                                                                           \
  /* networking: one's-complement accumulate with end-around carry, fold to 16 bits */    \
  X(Cksum, "cksum") X(CksumFold, "cksum_fold")                                            \
  /* dst(u32) = CRC-32C (Castagnoli) of crc a updated with the bytes of b (its width, LE) */ \
  X(Crc32c, "crc32c")                                                                     \
  /* vectors: dst = a in every lane; zero-extend half of a's lanes (imm 0 low, 1 high); */ \
  /* byte shuffle in each 128-bit lane (imm nibble i = source byte of byte i); */         \
  /* scalar dst = wrapping sum of a's lanes */                                            \
  X(Splat, "splat") X(Widen, "widen") X(Shuf, "shuf") X(Hsum, "hsum")                     \
  /* memory: [base (+ index) + imm]; base may be a local */                               \
  X(Ld, "ld") X(St, "st") X(Ldu, "ldu") X(Stu, "stu") X(Ldbe, "ldbe") X(Stbe, "stbe")      \
  X(AddrL, "addrl")                                                                       \
  /* control */                                                                           \
  X(Blt, "blt") X(Ble, "ble") X(Bgt, "bgt") X(Bge, "bge") X(Beq, "beq") X(Bne, "bne")      \
  X(Jmp, "jmp") X(Jmpr, "jmpr") X(La, "la") X(Place, "label")                             \
  X(Call, "call") X(Ret, "ret")
// clang-format on

enum class Op : uint8_t {
#define EXOJIT_X(e, s) e,
  EXOJIT_VCODE_OPS(EXOJIT_X)
#undef EXOJIT_X
};

std::string_view op_name(Op op);
bool parse_op(std::string_view s, Op* out);

constexpr bool is_branch(Op op) {
  return op >= Op::Blt && op <= Op::Bne;
}
constexpr bool is_binary(Op op) {
  return op >= Op::Add && op <= Op::Rsh;
}
constexpr bool is_unary(Op op) {
  return op >= Op::Neg && op <= Op::Cvt;
}
constexpr bool is_load(Op op) {
  return op == Op::Ld || op == Op::Ldu || op == Op::Ldbe;
}
constexpr bool is_store(Op op) {
  return op == Op::St || op == Op::Stu || op == Op::Stbe;
}
constexpr bool is_terminator(Op op) {
  return op == Op::Jmp || op == Op::Jmpr || op == Op::Ret;
}

// Flags of an instruction record.
enum InsnFlags : uint8_t {
  kImm = 1,        // the second source operand is `imm` (not register b)
  kIndex = 2,      // memory: b is an index register added to the base
  kLocalBase = 4,  // memory: the base is local number `a` (not a register)
  kExtern = 8,     // call: the callee is extern number `imm` (else module function `imm`)
  kVoid = 16,      // ret without value / call whose result is discarded
};

// One instruction: 24 bytes, no heap. Field use by opcode:
//   arithmetic/unary/set/cksum/crc32c: dst, a, b | imm
//   splat/hsum: dst, a;  widen/shuf: dst, a, imm (half / shuffle pattern)
//   loads:  dst, a = base (or local), b = index, imm = displacement
//   stores: dst = value register, a = base (or local), b = index, imm = displacement
//   branches: a, b | imm compared, dst = label id
//   jmp/place/la: dst = label id (la: a = destination register)
//   call: dst = result register, a = first entry in Function::call_args, b = count, imm = callee
//   ret: a = value register | imm
struct Insn {
  Op op = Op::Place;
  Type type = Type::Void;
  uint8_t flags = 0;
  uint8_t reserved = 0;
  uint32_t dst = 0;
  uint32_t a = 0;
  uint32_t b = 0;
  int64_t imm = 0;
};
static_assert(sizeof(Insn) == 24, "Insn must stay a small fixed-size record");

// A function signature: parameter and return types.
struct Signature {
  std::vector<Type> params;
  Type ret = Type::Void;
};

struct Function {
  std::string name;
  Signature sig;
  std::vector<Reg> params;  // register of each parameter, in order
  std::vector<Insn> code;
  std::vector<RegInfo> regs;
  std::vector<std::string> reg_names;  // optional, parallel to regs ("" = print as %rN)
  uint32_t num_labels = 0;
  std::vector<std::string> label_names;  // optional, parallel to labels ("" = print as LN)
  std::vector<LocalInfo> locals;
  std::vector<uint32_t> call_args;  // register ids of call arguments, referenced by Call insns
  // Set by Builder::finish() and parse(); compile() and the interpreter verify any function
  // without it first. (Whoever edits the records directly clears it.)
  bool verified = false;
  // One bit per opcode present (1 << Op), kept by the Builder and the parser so that back ends
  // need not scan the code for calls or divisions; 0 = not known.
  uint64_t op_mask = 0;

  const RegInfo& reg(uint32_t id) const { return regs[id]; }
  std::string reg_label(uint32_t id) const;
  std::string label_label(uint32_t id) const;
};

// A C function the generated code may call, named so that listings print and parse back.
struct Extern {
  std::string name;
  Signature sig;
  void* address = nullptr;
};

// A compilation unit: functions that may call each other, and the C functions they call.
class Module {
 public:
  Module();
  ~Module();
  Module(Module&&) noexcept;
  Module& operator=(Module&&) noexcept;

  // Declares a C function callable from generated code. Returns its extern index.
  uint32_t add_extern(std::string name, Signature sig, void* address);
  // Typed form: the signature is derived from the C function's type.
  template <typename R, typename... A>
  uint32_t add_extern(std::string name, R (*fn)(A...));

  Function& add_function(std::string name, Signature sig);

  int find_function(std::string_view name) const;  // -1 if absent
  int find_extern(std::string_view name) const;

  const std::vector<std::unique_ptr<Function>>& functions() const { return functions_; }
  std::vector<std::unique_ptr<Function>>& functions() { return functions_; }
  const std::vector<Extern>& externs() const { return externs_; }

 private:
  std::vector<std::unique_ptr<Function>> functions_;
  std::vector<Extern> externs_;
};

// Maps a C++ type to a vcode type at compile time (used by typed externs and Code::as).
template <typename T>
constexpr Type type_of() {
  if constexpr (std::is_void_v<T>)
    return Type::Void;
  else if constexpr (std::is_pointer_v<T>)
    return Type::P;
  else if constexpr (std::is_same_v<T, float>)
    return Type::F32;
  else if constexpr (std::is_same_v<T, double>)
    return Type::F64;
  else if constexpr (std::is_same_v<T, bool>)
    return Type::U8;
  else {
    static_assert(std::is_integral_v<T>, "vcode types are integers, pointers, float and double");
    constexpr bool s = std::is_signed_v<T>;
    if constexpr (sizeof(T) == 1)
      return s ? Type::I8 : Type::U8;
    else if constexpr (sizeof(T) == 2)
      return s ? Type::I16 : Type::U16;
    else if constexpr (sizeof(T) == 4)
      return s ? Type::I32 : Type::U32;
    else
      return s ? Type::I64 : Type::U64;
  }
}

template <typename R, typename... A>
uint32_t Module::add_extern(std::string name, R (*fn)(A...)) {
  return add_extern(std::move(name), Signature{{type_of<A>()...}, type_of<R>()},
                    reinterpret_cast<void*>(fn));
}

}  // namespace exojit::vcode
