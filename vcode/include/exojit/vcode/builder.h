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
  // Appends a record. `trusted` says the caller's inline checks already proved the operands
  // valid; otherwise the full check runs and a rejected record is taken back before throwing.
  // (The record is written in place, field by field: building it on the stack and copying it
  // would reload it whole right after its narrow stores, a store-forwarding stall per record.)
  [[gnu::always_inline]] void emit(Op op, Type type, uint8_t flags, uint32_t dst, uint32_t a,
                                   uint32_t b, int64_t imm, bool trusted) {
    fn_->op_mask |= uint64_t(1) << unsigned(op);
    Insn& in = fn_->code.emplace_back();
    in.op = op;
    in.type = type;
    in.flags = flags;
    in.dst = dst;
    in.a = a;
    in.b = b;
    in.imm = imm;
    if (!trusted) [[unlikely]]
      check_last();
  }
  void check_last();  // full check of the last record; takes it back and throws if bad
  // What the builder keeps per register, compact so the hot checks touch one small array.
  struct RegMeta {
    Type type;
    uint8_t key;    // detail::slot_key of its slot
    uint8_t alive;  // 1 until putreg
    uint8_t unused = 0;
  };
  // The register's record; throws on an invalid or released register.
  const RegMeta& live(Reg r) const {
    if (r.id < meta_.size() && meta_[r.id].alive) [[likely]]
      return meta_[r.id];
    not_live(r);
  }
  [[noreturn]] void not_live(Reg r) const;

  // Definedness, tracked as instructions are recorded (see detail/flow.h): a use of a register
  // not defined on every path is rejected at once. Each is called after the record is emitted.
  size_t last() const { return fn_->code.size() - 1; }
  void use(uint32_t r) {
    if (flow_.reachable() && !flow_.defined_at(meta_[r].key, r)) [[unlikely]]
      reject_undefined(r);
  }
  void def(uint32_t r) { flow_.define_at(meta_[r].key, r); }
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
constexpr uint32_t bit(Type t) {
  return 1u << unsigned(t);
}
constexpr uint32_t kIntTypeBits = 0x1ff;  // i8 .. p
constexpr uint32_t kAllTypeBits = kIntTypeBits | bit(Type::F32) | bit(Type::F64);
constexpr uint32_t kVectorTypeBits = 0xffu << unsigned(Type::V16U8);

// The types for which the register form of `op`, with every operand of the destination's type,
// is valid. The builder's fast path accepts exactly these; anything else (mixed pointer and
// integer operands, checksum widths, errors) goes through check_insn, which decides and explains.
constexpr uint32_t same_type_ok(Op op) {
  switch (op) {
    case Op::Add:
    case Op::Sub:
    case Op::Mov:
      return kAllTypeBits | kVectorTypeBits;
    case Op::And:
    case Op::Or:
    case Op::Xor:
      return kIntTypeBits | kVectorTypeBits;
    case Op::Mul:
    case Op::Div:
    case Op::Neg:
    case Op::Set:
    case Op::Blt:
    case Op::Ble:
    case Op::Bgt:
    case Op::Bge:
    case Op::Beq:
    case Op::Bne:
      return kAllTypeBits;
    case Op::Mod:
    case Op::Lsh:
    case Op::Rsh:
    case Op::Com:
    case Op::Not:
      return kIntTypeBits;
    case Op::Bswap:
      return kIntTypeBits & ~bit(Type::I8) & ~bit(Type::U8);
    case Op::Cksum:
      return bit(Type::U32) | bit(Type::U64);
    default:
      return 0;
  }
}
inline constexpr auto kSameTypeOk = [] {
  std::array<uint32_t, 64> table{};
  for (unsigned op = 0; op <= unsigned(Op::Ret); ++op) table[op] = same_type_ok(Op(op));
  return table;
}();
constexpr bool ok(Op op, Type t) {
  return kSameTypeOk[unsigned(op)] >> unsigned(t) & 1;
}
inline bool pointer_like(Type t) {
  return t == Type::P || t == Type::U64 || t == Type::I64;
}
}  // namespace detail

// Inline so that the opcode folds into the checks at each call site (VCODE's macros, in C++).

[[gnu::flatten]] inline void Builder::binary(Op op, Reg d, Reg a, Reg b) {
  Type t = live(d).type;
  bool trusted = live(a).type == t && live(b).type == t && detail::ok(op, t);
  emit(op, t, 0, d.id, a.id, b.id, 0, trusted);
  use(a.id), use(b.id), def(d.id);
}

[[gnu::flatten]] inline void Builder::binary(Op op, Reg d, Reg a, int64_t imm) {
  Type t = live(d).type;
  bool trusted = live(a).type == t && detail::ok(op, t) && !in_float_file(t);
  emit(op, t, kImm, d.id, a.id, 0, normalize_imm(t, imm), trusted);
  use(a.id), def(d.id);
}

[[gnu::flatten]] inline void Builder::unary(Op op, Reg d, Reg a) {
  Type t = live(d).type;
  bool trusted = op == Op::Cvt ? !is_vector(t) && !is_vector(live(a).type)
                               : (live(a).type == t && detail::ok(op, t));
  emit(op, t, 0, d.id, a.id, 0, 0, trusted);
  use(a.id), def(d.id);
}

[[gnu::flatten]] inline void Builder::mem(Op op, Reg v, Reg base, Reg index, int64_t off) {
  Type t = live(v).type;
  bool trusted = live(base).type == Type::P && (is_int(t) || (op != Op::Ldbe && op != Op::Stbe));
  uint8_t flags = 0;
  if (index.valid()) {
    trusted = trusted && detail::pointer_like(live(index).type);
    flags |= kIndex;
  }
  emit(op, t, flags, v.id, base.id, index.valid() ? index.id : 0, off, trusted);
  use(base.id);
  if (index.valid()) use(index.id);
  if (is_store(op))
    use(v.id);
  else
    def(v.id);
}

[[gnu::flatten]] inline void Builder::branch(Op op, Reg a, Reg b, Label l) {
  Type t = live(a).type;
  bool trusted = live(b).type == t && detail::ok(op, t);
  emit(op, t, 0, check_label(l).id, a.id, b.id, 0, trusted);
  use(a.id), use(b.id), edge(l.id);
}

[[gnu::flatten]] inline void Builder::branch(Op op, Reg a, int64_t imm, Label l) {
  Type t = live(a).type;
  emit(op, t, kImm, check_label(l).id, a.id, 0, normalize_imm(t, imm), !in_float_file(t));
  use(a.id), edge(l.id);
}

}  // namespace exojit::vcode
