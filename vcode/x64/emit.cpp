// The x86-64 back end: one pass over each function's IR, one switch per instruction, straight
// into asmjit's x86::Assembler. Register slots map to fixed machine registers (VCODE style), so
// there is no register allocation: the client's getreg/putreg already did it.
//
// SysV x86-64 mapping:
//   integer temporaries t0-t6: rdi rsi rdx rcx r8 r9 r10 (t0-t5 are the argument registers)
//   integer variables   v0-v5: rbx r12 r13 r14 r15 rbp (callee-saved)
//   float temporaries   t0-t7: xmm0-xmm7;  float variables v0-v6: xmm8-xmm14 (saved around calls)
//   scratch: rax, r11, xmm15.
// Types narrower than 32 bits live sign- or zero-extended to 32 bits; 32-bit types live
// zero-extended to 64 (the x86 convention), so every operation can use 32- or 64-bit forms.
#include <asmjit/x86.h>

#include <bit>

#include "../src/backend.h"
#include "exojit/error.h"
#include "fast_asm.h"

namespace exojit::vcode::detail {

namespace {

using namespace asmjit;
using x86::Gp;
using x86::Mem;
using x86::Xmm;
using AsmLabel = asmjit::Label;

const x86::Gp kIntTemp[kIntTemps] = {x86::rdi, x86::rsi, x86::rdx, x86::rcx,
                                     x86::r8,  x86::r9,  x86::r10};
const x86::Gp kIntVar[kIntVars] = {x86::rbx, x86::r12, x86::r13, x86::r14, x86::r15, x86::rbp};
const x86::Gp kIntArg[kMaxIntArgs] = {x86::rdi, x86::rsi, x86::rdx, x86::rcx, x86::r8, x86::r9};
constexpr int kFloatVarBase = 8;
constexpr int kStageSlots = kMaxIntArgs + kMaxFloatArgs;

bool fits32(int64_t v) {
  return v == int64_t(int32_t(v));
}

struct Frame {
  int32_t stage = 0;       // call argument staging area
  int32_t scratch = 0;     // one 8-byte slot for the back end
  int32_t float_save = 0;  // float variables saved around calls
  int32_t size = 0;        // bytes subtracted from rsp
  std::vector<int32_t> local_offset;
  std::vector<Gp> saved;  // callee-saved registers pushed by the prologue
  uint32_t float_vars_used = 0;
};

class X64Emitter {
 public:
  X64Emitter(const Module& m, CodeHolder& code, const X64Features& allowed) : m_(m), a_(&code) {
    const auto& features = CpuInfo::host().features().x86();
    has_movbe_ = allowed.movbe && features.hasMOVBE();
    has_bmi2_ = allowed.bmi2 && features.hasBMI2();
  }

  // Labels for every function first, so calls can go forward; then each body.
  std::vector<EmittedFunction> module() {
    for (size_t i = 0; i < m_.functions().size(); ++i)
      entries_.push_back(EmittedFunction{a_.newLabel(), a_.newLabel()});
    for (size_t i = 0; i < m_.functions().size(); ++i) function(*m_.functions()[i], entries_[i]);
    return entries_;
  }

 private:
  void function(const Function& f, const EmittedFunction& where) {
    f_ = &f;
    labels_.clear();
    for (uint32_t i = 0; i < f.num_labels; ++i) labels_.push_back(a_.newLabel());
    map_registers();
    layout_frame();
    a_.bind(where.begin);
    prologue();
    for (size_t i = 0; i < f.code.size(); ++i) insn(f.code[i]);
    a_.bind(where.end);
  }

  // --- registers ---------------------------------------------------------------------------
  const RegInfo& info(uint32_t r) const { return f_->regs[r]; }
  // Machine register number of each vcode register, computed once per function.
  void map_registers() {
    phys_.resize(f_->regs.size());
    for (size_t r = 0; r < f_->regs.size(); ++r) {
      const RegInfo& ri = f_->regs[r];
      if (is_float(ri.type))
        phys_[r] = uint8_t(ri.cls == RegClass::Temp ? ri.slot : kFloatVarBase + ri.slot);
      else
        phys_[r] = uint8_t((ri.cls == RegClass::Temp ? kIntTemp[ri.slot] : kIntVar[ri.slot]).id());
    }
  }
  Gp gp64(uint32_t r) const { return x86::gpq(phys_[r]); }
  // The register at the operation width of type t: 64 bits for 64-bit types, else 32.
  static Gp at_width(const Gp& g, Type t) { return type_bits(t) == 64 ? Gp(g.r64()) : Gp(g.r32()); }
  Gp gp(uint32_t r, Type t) const { return at_width(gp64(r), t); }
  Xmm xmm(uint32_t r) const { return x86::xmm(phys_[r]); }

  // Re-establishes the canonical form of an 8/16-bit value after a 32-bit operation.
  void normalize(const Gp& d, Type t) {
    switch (t) {
      case Type::I8:
        a_.movsx(d.r32(), d.r8());
        break;
      case Type::U8:
        a_.movzx(d.r32(), d.r8());
        break;
      case Type::I16:
        a_.movsx(d.r32(), d.r16());
        break;
      case Type::U16:
        a_.movzx(d.r32(), d.r16());
        break;
      default:
        break;
    }
  }

  void mov_imm(const Gp& d, int64_t v) {
    if (v == 0)
      a_.xor_(d.r32(), d.r32());
    else if (d.size() == 4 || uint64_t(v) <= 0xffffffffu)
      a_.mov(d.r32(), uint32_t(v));
    else
      a_.mov(d.r64(), v);
  }

  // --- frame -------------------------------------------------------------------------------
  void layout_frame() {
    const Function& f = *f_;
    frame_ = Frame{};
    uint64_t ops = f.op_mask;
    if (ops == 0)
      for (const Insn& in : f.code) ops |= uint64_t(1) << unsigned(in.op);
    auto uses = [ops](Op op) { return (ops >> unsigned(op) & 1) != 0; };
    // (A float division also reserves the rdx slot: 8 bytes, not worth a scan.)
    bool has_calls = uses(Op::Call), has_division = uses(Op::Div) || uses(Op::Mod);
    uint32_t int_vars = 0;
    for (const RegInfo& ri : f.regs) {
      if (ri.cls != RegClass::Var) continue;
      if (is_float(ri.type))
        frame_.float_vars_used |= 1u << ri.slot;
      else
        int_vars |= 1u << ri.slot;
    }
    for (int s = 0; s < kIntVars; ++s)
      if (int_vars >> s & 1) frame_.saved.push_back(kIntVar[s]);
    int32_t off = 0;
    if (has_calls) {
      frame_.stage = off;
      off += kStageSlots * 8;
      frame_.float_save = off;
      if (frame_.float_vars_used) off += kFloatVars * 8;
    }
    if (has_division) {  // rdx is saved there while idiv/div use it
      frame_.scratch = off;
      off += 8;
    }
    for (const LocalInfo& l : f.locals) {
      off = (off + int32_t(l.align) - 1) & ~(int32_t(l.align) - 1);
      frame_.local_offset.push_back(off);
      off += int32_t(l.size);
    }
    // At entry rsp is 8 mod 16; keep it 16-aligned after the pushes and the subtraction.
    // A leaf that needs no stack keeps no frame at all.
    int32_t pushed = 8 + 8 * int32_t(frame_.saved.size());
    frame_.size = off == 0 ? 0 : ((off + pushed + 15) & ~15) - pushed;
  }

  void prologue() {
    for (const Gp& g : frame_.saved) a_.push(g);
    if (frame_.size) a_.sub(x86::rsp, frame_.size);
    // Parameters declared as variables move from their ABI register to their slot.
    int pos[2] = {0, 0};
    for (Reg p : f_->params) {
      const RegInfo& ri = info(p.id);
      bool fl = is_float(ri.type);
      int at = pos[fl]++;
      if (ri.cls != RegClass::Var) continue;
      if (fl)
        a_.movaps(xmm(p.id), x86::xmm(at));
      else
        a_.mov(gp64(p.id), kIntArg[at]);
    }
  }

  void epilogue() {
    if (frame_.size) a_.add(x86::rsp, frame_.size);
    for (auto it = frame_.saved.rbegin(); it != frame_.saved.rend(); ++it) a_.pop(*it);
    a_.ret();
  }

  // --- memory operands ---------------------------------------------------------------------
  Mem mem(const Insn& in, uint32_t size) {
    int64_t disp = in.imm;
    if (in.flags & kLocalBase) {
      disp += frame_.local_offset[in.a];
      if (fits32(disp)) return x86::ptr(x86::rsp, int32_t(disp), size);
      mov_imm(x86::r11, disp);
      return x86::ptr(x86::rsp, x86::r11, 0, 0, size);
    }
    Gp base = gp64(in.a);
    if (fits32(disp)) {
      if (in.flags & kIndex) return x86::ptr(base, gp64(in.b), 0, int32_t(disp), size);
      return x86::ptr(base, int32_t(disp), size);
    }
    mov_imm(x86::r11, disp);
    if (in.flags & kIndex) a_.add(x86::r11, gp64(in.b));
    return x86::ptr(base, x86::r11, 0, 0, size);
  }

  // --- instructions ------------------------------------------------------------------------
  void insn(const Insn& in) {
    switch (in.op) {
      // The common integer cases dispatch once, straight to the direct encoder.
      case Op::Add:
        return is_float(in.type) ? float_binary(in) : int_alu(in, FastAssembler::kAdd);
      case Op::Sub:
        return is_float(in.type) ? float_binary(in) : int_alu(in, FastAssembler::kSub);
      case Op::And:
        return int_alu(in, FastAssembler::kAnd);
      case Op::Or:
        return int_alu(in, FastAssembler::kOr);
      case Op::Xor:
        return int_alu(in, FastAssembler::kXor);
      case Op::Mul:
        return is_float(in.type) ? float_binary(in) : int_mul(in);
      case Op::Div:
        if (is_float(in.type)) return float_binary(in);
        return divide(in);
      case Op::Mod:
        return divide(in);
      case Op::Lsh:
      case Op::Rsh:
        return shift(in);
      case Op::Neg:
      case Op::Com:
      case Op::Not:
      case Op::Mov:
        return unary(in);
      case Op::Bswap:
        return bswap(in);
      case Op::Cvt:
        return convert(in);
      case Op::Set:
        return set(in);
      case Op::Cksum:
        return cksum(in);
      case Op::CksumFold:
        return cksum_fold(in);
      case Op::Ld:
      case Op::Ldu:
      case Op::Ldbe:
        return load(in);
      case Op::St:
      case Op::Stu:
      case Op::Stbe:
        return store(in);
      case Op::AddrL:
        a_.lea(gp64(in.dst), x86::ptr(x86::rsp, frame_.local_offset[in.a]));
        return;
      case Op::Blt:
      case Op::Ble:
      case Op::Bgt:
      case Op::Bge:
      case Op::Beq:
      case Op::Bne:
        return branch(in);
      case Op::Jmp:
        a_.jmp(labels_[in.dst]);
        return;
      case Op::Jmpr:
        a_.jmp(gp64(in.a));
        return;
      case Op::La:
        a_.lea(gp64(in.a), x86::ptr(labels_[in.dst]));
        return;
      case Op::Place:
        a_.bind(labels_[in.dst]);
        return;
      case Op::Call:
        return call(in);
      case Op::Ret:
        return ret(in);
    }
  }

  // add/sub/and/or/xor (digit) through the direct encoder; the rare forms go to int_binary.
  void int_alu(const Insn& in, FastAssembler::Alu digit) {
    const Type t = in.type;
    const bool w = type_bits(t) == 64;
    const uint32_t d = phys_[in.dst], a = phys_[in.a];
    if (!a_.room()) return int_binary(in);
    if (in.flags & kImm) {
      if (w && !fits32(in.imm)) return int_binary(in);
      int32_t v = int32_t(in.imm);
      if (digit == FastAssembler::kAdd && d != a) {
        a_.mem(0x8d, d, a, v, w);  // lea d, [a + v]
      } else {
        if (d != a) a_.rr(0x89, d, a, w);
        a_.ri(digit, d, v, w);
      }
    } else {
      const uint32_t b = phys_[in.b];
      const uint8_t opcode = FastAssembler::kAluRm[digit];
      if (d == a) {
        a_.rr(opcode, d, b, w);
      } else if (d == b && digit != FastAssembler::kSub) {
        a_.rr(opcode, d, a, w);
      } else if (d == b) {
        return int_binary(in);
      } else if (digit == FastAssembler::kAdd) {
        a_.lea_bi(d, a, b, w);
      } else {
        a_.rr(0x89, d, a, w);
        a_.rr(opcode, d, b, w);
      }
    }
    if (type_bits(t) < 32) normalize(gp(in.dst, t), t);
  }

  void int_mul(const Insn& in) {
    const Type t = in.type;
    const bool w = type_bits(t) == 64;
    const uint32_t d = phys_[in.dst], a = phys_[in.a];
    if (!a_.room()) return int_binary(in);
    if (in.flags & kImm) {
      if (w && !fits32(in.imm)) return int_binary(in);
      a_.imul_ri(d, a, int32_t(in.imm), w);
    } else {
      const uint32_t b = phys_[in.b];
      if (d == a) {
        a_.imul_rr(d, b, w);
      } else if (d == b) {
        a_.imul_rr(d, a, w);
      } else {
        a_.rr(0x89, d, a, w);
        a_.imul_rr(d, b, w);
      }
    }
    if (type_bits(t) < 32) normalize(gp(in.dst, t), t);
  }

  // Every form of add/sub/mul/and/or/xor through asmjit (the direct encoder's leftovers).
  [[gnu::noinline]] void int_binary(const Insn& in) {
    Type t = in.type;
    Gp d = gp(in.dst, t), a = gp(in.a, t);
    if (in.flags & kImm) {
      int64_t v = in.imm;
      bool direct = type_bits(t) < 64 || fits32(v);
      if (in.op == Op::Mul) {
        if (direct && a_.room()) {
          a_.imul_ri(phys_[in.dst], phys_[in.a], int32_t(v), type_bits(t) == 64);
        } else if (direct) {
          a_.imul(d, a, int32_t(v));
        } else {
          mov_imm(x86::r11, v);
          if (d != a) a_.mov(d, a);
          a_.imul(d, x86::r11);
        }
        return normalize(d, t);
      }
      if (in.op == Op::Add && d != a && direct) {
        a_.lea(d, x86::ptr(a.r64(), int32_t(v)));
        return normalize(d, t);
      }
      if (d != a) a_.mov(d, a);
      Imm imm{int32_t(v)};
      Gp big = at_width(x86::r11, t);
      if (!direct) mov_imm(x86::r11, v);
      switch (in.op) {
        case Op::Add:
          direct ? a_.add(d, imm) : a_.add(d, big);
          break;
        case Op::Sub:
          direct ? a_.sub(d, imm) : a_.sub(d, big);
          break;
        case Op::And:
          direct ? a_.and_(d, imm) : a_.and_(d, big);
          break;
        case Op::Or:
          direct ? a_.or_(d, imm) : a_.or_(d, big);
          break;
        default:
          direct ? a_.xor_(d, imm) : a_.xor_(d, big);
          break;
      }
      return normalize(d, t);
    }
    Gp b = gp(in.b, t);
    bool commutative = in.op != Op::Sub;
    if (d == a) {
      alu(in.op, d, b);
    } else if (d == b && commutative) {
      alu(in.op, d, a);
    } else if (d == b) {  // d = a - d
      a_.neg(d);
      a_.add(d, a);
    } else if (in.op == Op::Add) {
      a_.lea(d, x86::ptr(a.r64(), b.r64()));
    } else {
      a_.mov(d, a);
      alu(in.op, d, b);
    }
    normalize(d, t);
  }

  void alu(Op op, const Gp& d, const Gp& s) {
    switch (op) {
      case Op::Add:
        a_.add(d, s);
        break;
      case Op::Sub:
        a_.sub(d, s);
        break;
      case Op::Mul:
        a_.imul(d, s);
        break;
      case Op::And:
        a_.and_(d, s);
        break;
      case Op::Or:
        a_.or_(d, s);
        break;
      default:
        a_.xor_(d, s);
        break;
    }
  }

  void divide(const Insn& in) {
    Type t = in.type;
    Gp d = gp(in.dst, t);
    Gp rax = at_width(x86::rax, t), rdx = at_width(x86::rdx, t);
    bool keep_rdx = d.id() != x86::rdx.id();  // rdx may hold a live register
    Mem save = x86::qword_ptr(x86::rsp, frame_.scratch);
    if (keep_rdx) a_.mov(save, x86::rdx);
    a_.mov(rax, gp(in.a, t));
    Gp divisor;
    if (in.flags & kImm) {
      mov_imm(x86::r11, in.imm);
      divisor = at_width(x86::r11, t);
    } else {
      divisor = gp(in.b, t);
      if (divisor.id() == x86::rdx.id()) {
        a_.mov(at_width(x86::r11, t), divisor);
        divisor = at_width(x86::r11, t);
      }
    }
    if (is_signed(t)) {
      type_bits(t) == 64 ? a_.cqo() : a_.cdq();
      a_.idiv(divisor);
    } else {
      a_.xor_(x86::edx, x86::edx);
      a_.div(divisor);
    }
    Gp result = in.op == Op::Div ? rax : rdx;
    if (d.id() != result.id()) a_.mov(d, result);
    if (keep_rdx) a_.mov(x86::rdx, save);
    normalize(d, t);
  }

  void shift(const Insn& in) {
    Type t = in.type;
    Gp d = gp(in.dst, t), a = gp(in.a, t);
    bool left = in.op == Op::Lsh, sign = is_signed(t);
    if (in.flags & kImm) {
      uint32_t n = uint32_t(in.imm) & (type_bits(t) == 64 ? 63 : 31);
      if (a_.room()) {
        const bool w = type_bits(t) == 64;
        if (d != a) a_.rr(0x89, phys_[in.dst], phys_[in.a], w);
        a_.shift_ri(left ? 4 : sign ? 7 : 5, phys_[in.dst], uint8_t(n), w);
        return normalize(d, t);
      }
      if (d != a) a_.mov(d, a);
      left ? a_.shl(d, n) : sign ? a_.sar(d, n) : a_.shr(d, n);
      return normalize(d, t);
    }
    Gp count = gp(in.b, t);
    if (has_bmi2_) {
      left ? a_.shlx(d, a, count) : sign ? a_.sarx(d, a, count) : a_.shrx(d, a, count);
      return normalize(d, t);
    }
    // Without BMI2 the count must be in cl: borrow rcx through r11.
    Gp rax = at_width(x86::rax, t);
    bool count_in_rcx = count.id() == x86::rcx.id();
    if (!count_in_rcx) a_.mov(x86::r11, x86::rcx);
    if (!count_in_rcx && a.id() == x86::rcx.id())
      a_.mov(rax, at_width(x86::r11, t));
    else
      a_.mov(rax, a);
    if (!count_in_rcx) a_.mov(x86::ecx, count.r32());
    left ? a_.shl(rax, x86::cl) : sign ? a_.sar(rax, x86::cl) : a_.shr(rax, x86::cl);
    if (!count_in_rcx) a_.mov(x86::rcx, x86::r11);
    a_.mov(d, rax);
    normalize(d, t);
  }

  void unary(const Insn& in) {
    Type t = in.type;
    if (is_float(t)) {
      Xmm d = xmm(in.dst), a = xmm(in.a);
      if (in.op == Op::Mov) {
        if (d != a) a_.movaps(d, a);
        return;
      }
      // neg: flip the sign bit
      mov_imm(x86::r11, t == Type::F32 ? int64_t(0x80000000) : int64_t(INT64_MIN));
      a_.movq(x86::xmm15, x86::r11);
      if (d != a) a_.movaps(d, a);
      a_.xorps(d, x86::xmm15);
      return;
    }
    Gp d = gp(in.dst, t), a = gp(in.a, t);
    switch (in.op) {
      case Op::Mov:
        if (d == a) return;
        if (a_.room())
          a_.rr(0x89, phys_[in.dst], phys_[in.a], type_bits(t) == 64);
        else
          a_.mov(d, a);
        return;
      case Op::Not:
        a_.test(a, a);
        a_.sete(x86::al);
        a_.movzx(d.r32(), x86::al);
        return;
      case Op::Neg:
        if (d != a) a_.mov(d, a);
        a_.neg(d);
        return normalize(d, t);
      default:  // Com
        if (d != a) a_.mov(d, a);
        a_.not_(d);
        return normalize(d, t);
    }
  }

  void bswap(const Insn& in) {
    Type t = in.type;
    Gp d = gp(in.dst, t), a = gp(in.a, t);
    if (d != a) a_.mov(d, a);
    if (type_bits(t) == 16) {
      a_.rol(d.r16(), 8);
      return normalize(d, t);
    }
    a_.bswap(d);
  }

  void set(const Insn& in) {
    Type t = in.type;
    if (is_float(t)) {
      Xmm d = xmm(in.dst);
      uint64_t bits = uint64_t(in.imm);
      if (t == Type::F32) bits = std::bit_cast<uint32_t>(float(std::bit_cast<double>(bits)));
      if (bits == 0) {
        a_.xorps(d, d);
      } else {
        mov_imm(x86::r11, int64_t(bits));
        a_.movq(d, x86::r11);
      }
      return;
    }
    if (a_.room()) return a_.mov_imm(phys_[in.dst], in.imm, type_bits(t) == 64);
    mov_imm(gp(in.dst, t), in.imm);
  }

  void cksum(const Insn& in) {
    Type t = in.type;
    Gp d = gp(in.dst, t), a = gp(in.a, t);
    if (in.flags & kImm) {
      if (d != a) a_.mov(d, a);
      if (type_bits(t) == 32 || fits32(in.imm)) {
        a_.add(d, int32_t(in.imm));
      } else {
        mov_imm(x86::r11, in.imm);
        a_.add(d, x86::r11);
      }
    } else {
      Gp b = gp(in.b, t);  // narrower inputs are already zero-extended
      if (d == b) {
        a_.add(d, a);
      } else {
        if (d != a) a_.mov(d, a);
        a_.add(d, b);
      }
    }
    a_.adc(d, 0);
  }

  void cksum_fold(const Insn& in) {
    Type s = info(in.a).type;
    Gp d = gp(in.dst, in.type);
    if (s == Type::U64) {
      a_.mov(x86::rax, gp64(in.a));
      a_.mov(x86::r11, x86::rax);
      a_.shr(x86::r11, 32);
      a_.add(x86::eax, x86::r11d);
      a_.adc(x86::eax, 0);
    } else {
      a_.mov(x86::eax, gp64(in.a).r32());
    }
    if (s != Type::U16) {
      a_.mov(x86::r11d, x86::eax);
      a_.shr(x86::r11d, 16);
      a_.add(x86::ax, x86::r11w);
      a_.adc(x86::ax, 0);
    }
    a_.movzx(d.r32(), x86::ax);
  }

  // 32/64-bit mov load (0x8b) or store (0x89) at [base + disp] through the direct encoder.
  bool fast_mem(const Insn& in, uint8_t opcode) {
    if (!a_.room() || (in.flags & kIndex)) return false;
    int64_t disp = in.imm;
    uint32_t base;
    if (in.flags & kLocalBase) {
      disp += frame_.local_offset[in.a];
      base = uint32_t(x86::rsp.id());
    } else {
      base = phys_[in.a];
    }
    if (!fits32(disp)) return false;
    a_.mem(opcode, phys_[in.dst], base, int32_t(disp), type_bytes(in.type) == 8);
    return true;
  }

  void load(const Insn& in) {
    Type t = in.type;
    uint32_t n = uint32_t(type_bytes(t));
    if (is_float(t)) {
      Mem m = mem(in, n);
      t == Type::F32 ? a_.movss(xmm(in.dst), m) : a_.movsd(xmm(in.dst), m);
      return;
    }
    if (n >= 4 && in.op != Op::Ldbe && fast_mem(in, 0x8b)) return;
    Gp d = gp(in.dst, t);
    Mem m = mem(in, n);
    bool be = in.op == Op::Ldbe && n > 1;
    if (n == 1) {
      is_signed(t) ? a_.movsx(d.r32(), m) : a_.movzx(d.r32(), m);
    } else if (n == 2) {
      if (!be) {
        is_signed(t) ? a_.movsx(d.r32(), m) : a_.movzx(d.r32(), m);
      } else if (has_movbe_) {
        a_.movbe(d.r16(), m);
        normalize(d, t);
      } else {
        a_.movzx(d.r32(), m);
        a_.rol(d.r16(), 8);
        normalize(d, t);
      }
    } else if (be && has_movbe_) {
      a_.movbe(d, m);
    } else {
      a_.mov(d, m);
      if (be) a_.bswap(d);
    }
  }

  void store(const Insn& in) {
    Type t = in.type;
    uint32_t n = uint32_t(type_bytes(t));
    if (is_float(t)) {
      Mem m = mem(in, n);
      t == Type::F32 ? a_.movss(m, xmm(in.dst)) : a_.movsd(m, xmm(in.dst));
      return;
    }
    if (n >= 4 && in.op != Op::Stbe && fast_mem(in, 0x89)) return;
    Gp v = gp64(in.dst);
    Mem m = mem(in, n);
    auto sized = [n](const Gp& g) -> Gp {
      if (n == 1) return g.r8();
      if (n == 2) return g.r16();
      return n == 4 ? Gp(g.r32()) : Gp(g.r64());
    };
    if (in.op != Op::Stbe || n == 1) {
      a_.mov(m, sized(v));
    } else if (has_movbe_) {
      a_.movbe(m, sized(v));
    } else {
      a_.mov(x86::rax, v);
      n == 2 ? a_.rol(x86::ax, 8) : a_.bswap(sized(x86::rax));
      a_.mov(m, sized(x86::rax));
    }
  }

  void convert(const Insn& in) {
    Type t = in.type, s = info(in.a).type;
    if (is_float(t) && is_float(s)) {
      Xmm d = xmm(in.dst), a = xmm(in.a);
      if (t == s) {
        if (d != a) a_.movaps(d, a);
      } else if (t == Type::F64) {
        a_.cvtss2sd(d, a);
      } else {
        a_.cvtsd2ss(d, a);
      }
      return;
    }
    if (is_float(t)) return int_to_float(in, t, s);
    if (is_float(s)) return float_to_int(in, t, s);
    // Integer to integer: widen from the source's signedness, or truncate to the destination.
    Gp d = gp64(in.dst), a = gp64(in.a);
    if (type_bits(t) == 64) {
      switch (s) {
        case Type::I32:
          a_.movsxd(d, a.r32());
          break;
        case Type::U32:
          a_.mov(d.r32(), a.r32());
          break;
        case Type::I8:
        case Type::I16:
          a_.movsxd(d, a.r32());
          break;  // already 32-bit signed
        default:
          if (d != a) a_.mov(d, a);
      }
      return;
    }
    if (d != a || type_bits(s) == 64) a_.mov(d.r32(), a.r32());
    // Widening a narrower unsigned value, or a signed value to a signed type, keeps the
    // canonical form as it is; everything else re-extends from the destination's width.
    bool canonical = type_bits(s) < type_bits(t) ? (!is_signed(s) || is_signed(t)) : s == t;
    if (!canonical) normalize(d, t);
  }

  void int_to_float(const Insn& in, Type t, Type s) {
    Xmm d = xmm(in.dst);
    Gp a = gp64(in.a);
    bool single = t == Type::F32;
    auto cvt = [&](const Gp& src) {
      a_.xorps(d, d);  // break the dependency on d's old value
      single ? a_.cvtsi2ss(d, src) : a_.cvtsi2sd(d, src);
    };
    if (s == Type::U64 || s == Type::P) {
      // Unsigned 64-bit: halve (keeping the low bit for rounding) when the top bit is set.
      AsmLabel big = a_.newLabel(), done = a_.newLabel();
      a_.test(a, a);
      a_.js(big);
      cvt(a);
      a_.jmp(done);
      a_.bind(big);
      a_.mov(x86::rax, a);
      a_.mov(x86::r11, a);
      a_.shr(x86::rax, 1);
      a_.and_(x86::r11d, 1);
      a_.or_(x86::rax, x86::r11);
      cvt(x86::rax);
      single ? a_.addss(d, d) : a_.addsd(d, d);
      a_.bind(done);
      return;
    }
    if (s == Type::I64) return cvt(a);
    // 8/16/32-bit sources are canonical in 32 bits: signed ones sign-extended, so widen to 64.
    if (is_signed(s))
      a_.movsxd(x86::rax, a.r32());
    else
      a_.mov(x86::eax, a.r32());
    cvt(x86::rax);
  }

  void float_to_int(const Insn& in, Type t, Type s) {
    Xmm a = xmm(in.a);
    Gp d = gp64(in.dst);
    bool single = s == Type::F32;
    auto cvt = [&](const Gp& dst, const Xmm& src) {
      single ? a_.cvttss2si(dst, src) : a_.cvttsd2si(dst, src);
    };
    if (t == Type::U64) {
      // Values >= 2^63 are converted after subtracting 2^63, then the top bit is set back.
      AsmLabel big = a_.newLabel(), done = a_.newLabel();
      mov_imm(x86::r11, single ? int64_t(0x5f000000) : int64_t(0x43e0000000000000));
      a_.movq(x86::xmm15, x86::r11);
      single ? a_.ucomiss(a, x86::xmm15) : a_.ucomisd(a, x86::xmm15);
      a_.jae(big);
      cvt(d, a);
      a_.jmp(done);
      a_.bind(big);
      // a - 2^63 is exact here; compute 2^63 - a (xmm15 holds 2^63), convert, negate.
      single ? a_.subss(x86::xmm15, a) : a_.subsd(x86::xmm15, a);
      cvt(d, x86::xmm15);
      a_.neg(d);
      a_.btc(d, 63);
      a_.bind(done);
      return;
    }
    cvt(d, a);
    if (type_bits(t) < 64) {
      a_.mov(d.r32(), d.r32());
      normalize(d, t);
    }
  }

  void float_binary(const Insn& in) {
    Type t = in.type;
    Xmm d = xmm(in.dst), a = xmm(in.a), b = xmm(in.b);
    bool single = t == Type::F32;
    auto op = [&](const Xmm& x, const Xmm& y) {
      switch (in.op) {
        case Op::Add:
          single ? a_.addss(x, y) : a_.addsd(x, y);
          break;
        case Op::Sub:
          single ? a_.subss(x, y) : a_.subsd(x, y);
          break;
        case Op::Mul:
          single ? a_.mulss(x, y) : a_.mulsd(x, y);
          break;
        default:
          single ? a_.divss(x, y) : a_.divsd(x, y);
          break;
      }
    };
    bool commutative = in.op == Op::Add || in.op == Op::Mul;
    if (d == a) {
      op(d, b);
    } else if (d == b && commutative) {
      op(d, a);
    } else if (d == b) {
      a_.movaps(x86::xmm15, b);
      a_.movaps(d, a);
      op(d, x86::xmm15);
    } else {
      a_.movaps(d, a);
      op(d, b);
    }
  }

  void branch(const Insn& in) {
    Type t = in.type;
    const AsmLabel& target = labels_[in.dst];
    if (is_float(t)) {
      // ucomis sets CF for "below or unordered", ZF for "equal or unordered", PF for unordered;
      // swapping the operands turns < and <= into > and >=, which are false on NaN.
      Xmm a = xmm(in.a), b = xmm(in.b);
      bool single = t == Type::F32;
      auto ucom = [&](const Xmm& x, const Xmm& y) { single ? a_.ucomiss(x, y) : a_.ucomisd(x, y); };
      switch (in.op) {
        case Op::Blt:
          ucom(b, a);
          a_.ja(target);
          return;
        case Op::Ble:
          ucom(b, a);
          a_.jae(target);
          return;
        case Op::Bgt:
          ucom(a, b);
          a_.ja(target);
          return;
        case Op::Bge:
          ucom(a, b);
          a_.jae(target);
          return;
        case Op::Beq: {
          AsmLabel skip = a_.newLabel();
          ucom(a, b);
          a_.jp(skip);
          a_.je(target);
          a_.bind(skip);
          return;
        }
        default:
          ucom(a, b);
          a_.jp(target);
          a_.jne(target);
          return;
      }
    }
    Gp a = gp(in.a, t);
    const bool w = type_bits(t) == 64;
    const bool zero_test =
        (in.flags & kImm) && in.imm == 0 && (in.op == Op::Beq || in.op == Op::Bne);
    if (!(in.flags & kImm)) {
      if (a_.room())
        a_.rr(0x39, phys_[in.a], phys_[in.b], w);
      else
        a_.cmp(a, gp(in.b, t));
    } else if (zero_test) {
      if (a_.room())
        a_.rr(0x85, phys_[in.a], phys_[in.a], w);
      else
        a_.test(a, a);
    } else if (!w || fits32(in.imm)) {
      if (a_.room())
        a_.ri(FastAssembler::kCmp, phys_[in.a], int32_t(in.imm), w);
      else
        a_.cmp(a, int32_t(in.imm));
    } else {
      mov_imm(x86::r11, in.imm);
      a_.cmp(a, x86::r11);
    }
    bool s = is_signed(t);
    switch (in.op) {
      case Op::Blt:
        s ? a_.jl(target) : a_.jb(target);
        break;
      case Op::Ble:
        s ? a_.jle(target) : a_.jbe(target);
        break;
      case Op::Bgt:
        s ? a_.jg(target) : a_.ja(target);
        break;
      case Op::Bge:
        s ? a_.jge(target) : a_.jae(target);
        break;
      case Op::Beq:
        a_.je(target);
        break;
      default:
        a_.jne(target);
        break;
    }
  }

  void call(const Insn& in) {
    const bool ext = in.flags & kExtern;
    const Signature& sig =
        ext ? m_.externs()[size_t(in.imm)].sig : m_.functions()[size_t(in.imm)]->sig;
    const uint32_t* args = f_->call_args.data() + in.a;
    const uint32_t n = in.b;

    // Float variables live in caller-saved xmm registers: save them around the call.
    uint32_t keep = frame_.float_vars_used;
    for (int s = 0; s < kFloatVars; ++s)
      if (keep >> s & 1)
        a_.movsd(x86::qword_ptr(x86::rsp, frame_.float_save + 8 * s), x86::xmm(kFloatVarBase + s));

    // Arguments move to their ABI registers. When a source is another argument's destination
    // the moves go through the staging area (a parallel move), else straight.
    bool conflict = false;
    uint32_t written_int = 0, written_float = 0;  // ABI registers assigned so far
    {
      int ni = 0, nf = 0;
      for (uint32_t k = 0; k < n; ++k) {
        const RegInfo& ri = info(args[k]);
        if (is_float(ri.type)) {
          int src = ri.cls == RegClass::Temp ? ri.slot : kFloatVarBase + ri.slot;
          if (src < 8 && (written_float >> src & 1)) conflict = true;
          written_float |= 1u << nf++;
        } else {
          Gp src = gp64(args[k]);
          for (int j = 0; j < ni; ++j)
            if (written_int >> j & 1 && kIntArg[j].id() == src.id()) conflict = true;
          written_int |= 1u << ni++;
        }
      }
    }
    int ni = 0, nf = 0;
    if (conflict) {
      for (uint32_t k = 0; k < n; ++k) {
        Mem slot = x86::qword_ptr(x86::rsp, frame_.stage + 8 * int32_t(k));
        if (is_float(info(args[k]).type))
          a_.movsd(slot, xmm(args[k]));
        else
          a_.mov(slot, gp64(args[k]));
      }
      for (uint32_t k = 0; k < n; ++k) {
        Mem slot = x86::qword_ptr(x86::rsp, frame_.stage + 8 * int32_t(k));
        if (is_float(info(args[k]).type))
          a_.movsd(x86::xmm(nf++), slot);
        else
          a_.mov(kIntArg[ni++], slot);
      }
    } else {
      for (uint32_t k = 0; k < n; ++k) {
        if (is_float(info(args[k]).type)) {
          Xmm dst = x86::xmm(nf++);
          if (dst != xmm(args[k])) a_.movaps(dst, xmm(args[k]));
        } else {
          Gp dst = kIntArg[ni++];
          if (dst.id() != gp64(args[k]).id()) a_.mov(dst, gp64(args[k]));
        }
      }
    }
    if (ext) {
      a_.mov(x86::r11, reinterpret_cast<uint64_t>(m_.externs()[size_t(in.imm)].address));
      a_.mov(x86::eax, nf);  // vector register count, for variadic callees
      a_.call(x86::r11);
    } else {
      a_.call(entries_[size_t(in.imm)].begin);
    }

    int32_t result_float_var = -1;
    if (!(in.flags & kVoid)) {
      Type rt = sig.ret;
      if (is_float(rt)) {
        Xmm d = xmm(in.dst);
        if (d != x86::xmm0) a_.movaps(d, x86::xmm0);
        if (info(in.dst).cls == RegClass::Var) result_float_var = info(in.dst).slot;
      } else {
        // C callees may leave the bits above a narrow result undefined: re-extend them.
        Gp d = gp64(in.dst);
        switch (rt) {
          case Type::I8:
            a_.movsx(d.r32(), x86::al);
            break;
          case Type::U8:
            a_.movzx(d.r32(), x86::al);
            break;
          case Type::I16:
            a_.movsx(d.r32(), x86::ax);
            break;
          case Type::U16:
            a_.movzx(d.r32(), x86::ax);
            break;
          case Type::I32:
          case Type::U32:
            a_.mov(d.r32(), x86::eax);
            break;
          default:
            a_.mov(d, x86::rax);
            break;
        }
      }
    }
    for (int s = 0; s < kFloatVars; ++s)
      if ((keep >> s & 1) && s != result_float_var)
        a_.movsd(x86::xmm(kFloatVarBase + s), x86::qword_ptr(x86::rsp, frame_.float_save + 8 * s));
  }

  void ret(const Insn& in) {
    if (!(in.flags & kVoid)) {
      Type t = f_->sig.ret;
      if (in.flags & kImm) {
        mov_imm(type_bits(t) == 64 ? Gp(x86::rax) : Gp(x86::eax), in.imm);
      } else if (is_float(t)) {
        if (xmm(in.a) != x86::xmm0) a_.movaps(x86::xmm0, xmm(in.a));
      } else {
        a_.mov(at_width(x86::rax, t), gp(in.a, t));
      }
    }
    epilogue();
  }

  const Module& m_;
  FastAssembler a_;
  std::vector<EmittedFunction> entries_;
  const Function* f_ = nullptr;
  std::vector<asmjit::Label> labels_;
  std::vector<uint8_t> phys_;
  Frame frame_;
  bool has_movbe_ = false;
  bool has_bmi2_ = false;
};

}  // namespace

std::vector<EmittedFunction> emit_x64(const Module& m, CodeHolder& code,
                                      const X64Features& allowed) {
  X64Emitter emitter(m, code, allowed);
  return emitter.module();
}

}  // namespace exojit::vcode::detail
