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

#include <initializer_list>
#include <string>
#include <vector>

#include "exojit/error.h"
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

 private:
  void binary(Op op, Reg d, Reg a, Reg b);
  void binary(Op op, Reg d, Reg a, int64_t imm);
  void unary(Op op, Reg d, Reg a);
  void mem(Op op, Reg v, Reg base, Reg index, int64_t off);
  void mem_local(Op op, Reg v, Local l, int64_t off);
  void branch(Op op, Reg a, Reg b, Label l);
  void branch(Op op, Reg a, int64_t imm, Label l);
  void call_any(Reg result, uint32_t index, bool is_extern, const Reg* args, size_t n);
  void emit(const Insn& insn);
  const RegInfo& live(Reg r) const;  // throws on an invalid or released register
  Label check_label(Label l) const;

  Module& module_;
  Function* fn_;
  std::vector<uint8_t> alive_;      // per register: 1 until putreg
  uint32_t used_slots_[2][2] = {};  // [float][class] bit set of slots in use
};

}  // namespace exojit::vcode
