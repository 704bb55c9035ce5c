// SPDX-License-Identifier: MIT
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

#include "exojit/vcode/ops.h"
#include "exojit/vcode/types.h"

namespace exojit::vcode {

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

// Whether the back ends give two registers one machine register: the same file (integer, or
// floating point and vector), class and slot. (A sandbox that reserves registers checks that no
// other register shares theirs.)
inline bool same_machine_register(const RegInfo& a, const RegInfo& b) {
  return in_float_file(a.type) == in_float_file(b.type) && a.cls == b.cls &&
         (a.slot & 7) == (b.slot & 7);
}

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

// Flags of an instruction record.
enum InsnFlags : uint8_t {
  kImm = 1,        // the second source operand is `imm` (not register b)
  kIndex = 2,      // memory: b is an index register added to the base
  kLocalBase = 4,  // memory: the base is local number `a` (not a register)
  kExtern = 8,     // call: the callee is extern number `imm` (else module function `imm`)
  kVoid = 16,      // ret without value / call whose result is discarded
  // The record's constant (carries_constant) is the client's own -- a table address, a hash
  // multiplier, a layout offset -- never derived from untrusted input: constant blinding leaves
  // it as it is (README "Hardening"). Printed `owned` before the constant. A boundary that
  // takes code from an untrusted party refuses it (the ASH sandbox does).
  kOwnedImm = 32,
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

// ---------------------------------------------------------------------------------------------
// Operand roles of one record: which register fields it reads and which one it defines, from
// its opcode's form (ops.h) and its flags. The verifier's flow analysis, the ASH sandbox and the
// pipe compiler ask these instead of keeping their own lists.
enum OperandRoles : uint8_t {
  kUsesDst = 1,       // dst is read (stores: the stored value)
  kUsesA = 2,         // a is read
  kUsesB = 4,         // b is read
  kUsesCallArgs = 8,  // the call's arguments (Function::call_args[a .. a + b)) are read
  kDefinesDst = 16,   // dst is written
  kDefinesA = 32,     // a is written (la)
};

constexpr uint8_t operand_roles(const Insn& in) {
  const bool imm = in.flags & kImm;
  // Memory: the base unless it is a local; the index when there is one.
  const uint8_t address =
      uint8_t(((in.flags & kLocalBase) ? 0 : kUsesA) | ((in.flags & kIndex) ? kUsesB : 0));
  switch (form_of(in.op)) {
    case Form::Binary:
      return uint8_t(kUsesA | (imm ? 0 : kUsesB) | kDefinesDst |
                     (has_flag(in.op, kOpReadsDst) ? kUsesDst : 0));
    case Form::Unary:
    case Form::UnaryImm:
      return kUsesA | kDefinesDst;
    case Form::SetImm:
    case Form::LocalAddr:
      return kDefinesDst;
    case Form::Load:
      return uint8_t(address | kDefinesDst);
    case Form::Store:
      return uint8_t(address | kUsesDst);
    case Form::Branch:
      return uint8_t(kUsesA | (imm ? 0 : kUsesB));
    case Form::Jump:
    case Form::Place:
      return 0;
    case Form::JumpReg:
      return kUsesA;
    case Form::LabelAddr:
      return kDefinesA;
    case Form::Call:
      return uint8_t(kUsesCallArgs | ((in.flags & kVoid) ? 0 : kDefinesDst));
    case Form::Return:
      return (in.flags & (kImm | kVoid)) ? 0 : kUsesA;
  }
  return 0;
}

// Whether the record carries a constant of the client's that constant blinding would hide: the
// second operand of a binary or branch record with kImm, `ret imm`, `set`, and a load's or
// store's displacement (the records kOwnedImm may mark).
constexpr bool carries_constant(const Insn& in) {
  switch (form_of(in.op)) {
    case Form::Binary:
    case Form::Branch:
      return (in.flags & kImm) != 0;
    case Form::Return:
      return (in.flags & (kImm | kVoid)) == kImm;
    case Form::SetImm:
    case Form::Load:
    case Form::Store:
      return true;
    default:
      return false;
  }
}

// Calls use(r) for every register the record reads.
template <typename F>
void for_each_use(const Function& f, const Insn& in, F&& use) {
  const uint8_t r = operand_roles(in);
  if (r & kUsesDst) use(in.dst);
  if (r & kUsesA) use(in.a);
  if (r & kUsesB) use(in.b);
  if (r & kUsesCallArgs)
    for (uint32_t k = 0; k < in.b; ++k) use(f.call_args[size_t(in.a) + k]);
}

// The register the record defines, or -1.
constexpr int64_t defined_reg(const Insn& in) {
  const uint8_t r = operand_roles(in);
  if (r & kDefinesDst) return in.dst;
  if (r & kDefinesA) return in.a;
  return -1;
}

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
