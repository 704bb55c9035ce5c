// The x86-64 emitter: module and function structure, frame, the per-instruction dispatch, and
// the integer, memory and networking instructions (see emitter.h).
#include <bit>

#include "emitter.h"
#include "exojit/error.h"

namespace exojit::vcode::detail::x64 {

using namespace asmjit;

X64Emitter::X64Emitter(const Module& m, CodeHolder& code, const X64Features& allowed,
                       CodeNotes* notes)
    : m_(m), a_(&code), notes_(notes) {
  const auto& features = CpuInfo::host().features().x86();
  has_movbe_ = allowed.movbe && features.hasMOVBE();
  has_bmi2_ = allowed.bmi2 && features.hasBMI2();
  has_avx_ = allowed.avx && features.hasAVX();
  has_avx2_ = has_avx_ && features.hasAVX2();
  has_sse41_ = features.hasSSSE3() && features.hasSSE4_1();
  has_sse42_ = allowed.sse42 && features.hasSSE4_2();
}

// Labels for every function first, so calls can go forward; then each body.
std::vector<EmittedFunction> X64Emitter::module() {
  for (size_t i = 0; i < m_.functions().size(); ++i)
    entries_.push_back(EmittedFunction{a_.newLabel(), a_.newLabel()});
  for (size_t i = 0; i < m_.functions().size(); ++i) function(*m_.functions()[i], entries_[i]);
  return entries_;
}

void X64Emitter::function(const Function& f, const EmittedFunction& where) {
  f_ = &f;
  labels_.clear();
  for (uint32_t i = 0; i < f.num_labels; ++i) labels_.push_back(a_.newLabel());
  map_registers();
  layout_frame();
  a_.bind(where.begin);
  if (notes_) notes_->begin_function(a_.offset());
  prologue();
  if (!notes_) {
    for (const Insn& in : f.code) insn(in);
  } else {  // debug notes: where each record's code starts
    for (size_t i = 0; i < f.code.size(); ++i) {
      notes_->record(a_.offset(), i);
      insn(f.code[i]);
    }
  }
  a_.bind(where.end);
  emit_constant_pool();
}

// Machine register number of each vcode register, computed once per function.
void X64Emitter::map_registers() {
  phys_.resize(f_->regs.size());
  for (size_t r = 0; r < f_->regs.size(); ++r) {
    const RegInfo& ri = f_->regs[r];
    if (in_float_file(ri.type))
      phys_[r] = uint8_t(ri.cls == RegClass::Temp ? ri.slot : kFloatVarBase + ri.slot);
    else
      phys_[r] = uint8_t((ri.cls == RegClass::Temp ? kIntTemp[ri.slot] : kIntVar[ri.slot]).id());
  }
}

// Re-establishes the canonical form of an 8/16-bit value after a 32-bit operation.
void X64Emitter::normalize(const Gp& d, Type t) {
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

void X64Emitter::mov_imm(const Gp& d, int64_t v) {
  if (v == 0)
    a_.xor_(d.r32(), d.r32());
  else if (d.size() == 4 || uint64_t(v) <= 0xffffffffu)
    a_.mov(d.r32(), uint32_t(v));
  else
    a_.mov(d.r64(), v);
}

void X64Emitter::layout_frame() {
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
    frame_.uses_ymm |= vector_bits(ri.type) == 256;
    if (ri.cls != RegClass::Var) continue;
    if (in_float_file(ri.type))
      frame_.save_width = std::max<int32_t>(frame_.save_width, type_bytes(ri.type));
    if (in_float_file(ri.type))
      frame_.float_vars_used |= 1u << ri.slot;
    else
      int_vars |= 1u << ri.slot;
  }
  if (frame_.uses_ymm && !has_avx2_)
    fail("x86-64: @{} has 256-bit vector registers, which need AVX2 (see vector_width())", f.name);
  for (int s = 0; s < kIntVars; ++s)
    if (int_vars >> s & 1) frame_.saved.push_back(kIntVar[s]);
  int32_t off = 0;
  if (has_calls) {
    frame_.stage = off;
    off += kStageSlots * 8;
    frame_.float_save = off;
    if (frame_.float_vars_used) off += kFloatVars * frame_.save_width;
  }
  if (uses(Op::Hsum)) {
    frame_.vector_slot = off;
    off += 32;
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

void X64Emitter::prologue() {
  for (const Gp& g : frame_.saved) {
    a_.push(g);
    if (notes_) {
      notes_->sp(a_.offset(), 8);
      notes_->saved(a_.offset(), dwarf_x64_gp(g.id()), 0);
    }
  }
  if (frame_.size) a_.sub(x86::rsp, frame_.size);
  if (notes_ && frame_.size) notes_->sp(a_.offset(), frame_.size);
  // Parameters declared as variables move from their ABI register to their slot.
  int pos[2] = {0, 0};
  for (Reg p : f_->params) {
    const RegInfo& ri = info(p.id);
    bool fl = in_float_file(ri.type);
    int at = pos[fl]++;
    if (ri.cls != RegClass::Var) continue;
    if (fl)
      a_.movaps(xmm(p.id), x86::xmm(at));
    else
      a_.mov(gp64(p.id), kIntArg[at]);
  }
}

void X64Emitter::epilogue() {
  if (notes_) notes_->epilogue(a_.offset());
  if (frame_.size) a_.add(x86::rsp, frame_.size);
  if (notes_ && frame_.size) notes_->sp(a_.offset(), -frame_.size);
  if (frame_.uses_ymm) a_.vzeroupper();  // no AVX-SSE transition penalty in the caller
  for (auto it = frame_.saved.rbegin(); it != frame_.saved.rend(); ++it) {
    a_.pop(*it);
    if (notes_) notes_->sp(a_.offset(), -8);
  }
  a_.ret();
  if (notes_) notes_->returned(a_.offset());
}

Mem X64Emitter::mem(const Insn& in, uint32_t size) {
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

void X64Emitter::insn(const Insn& in) {
  switch (in.op) {
    // The common integer cases dispatch once, straight to the direct encoder.
    case Op::Add:
      if (in_float_file(in.type)) return is_vector(in.type) ? vector(in) : float_binary(in);
      return int_alu(in, FastAssembler::kAdd);
    case Op::Sub:
      if (in_float_file(in.type)) return is_vector(in.type) ? vector(in) : float_binary(in);
      return int_alu(in, FastAssembler::kSub);
    case Op::And:
      return is_vector(in.type) ? vector(in) : int_alu(in, FastAssembler::kAnd);
    case Op::Or:
      return is_vector(in.type) ? vector(in) : int_alu(in, FastAssembler::kOr);
    case Op::Xor:
      return is_vector(in.type) ? vector(in) : int_alu(in, FastAssembler::kXor);
    case Op::Mul:
      return is_float(in.type) ? float_binary(in) : int_mul(in);
    case Op::Div:
      if (is_float(in.type)) return float_binary(in);
      return divide(in);
    case Op::Mod:
      return divide(in);
    case Op::Lsh:
    case Op::Rsh:
      return is_vector(in.type) ? vector(in) : shift(in);
    case Op::Mov:
      if (is_vector(in.type)) return vector(in);
      [[fallthrough]];
    case Op::Neg:
    case Op::Com:
    case Op::Not:
      return unary(in);
    case Op::Bswap:
      return bswap(in);
    case Op::Cvt:
      return convert(in);
    case Op::Set:
      return is_vector(in.type) ? vector(in) : set(in);
    case Op::Cksum:
      return cksum(in);
    case Op::CksumFold:
      return cksum_fold(in);
    case Op::Crc32c:
      return crc32c(in);
    case Op::Splat:
    case Op::Widen:
    case Op::Shuf:
      return vector(in);
    case Op::Hsum:
      return hsum(in);
    case Op::Ld:
    case Op::Ldu:
    case Op::Ldbe:
      return is_vector(in.type) ? vector_load(in) : load(in);
    case Op::St:
    case Op::Stu:
    case Op::Stbe:
      return is_vector(in.type) ? vector_store(in) : store(in);
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
void X64Emitter::int_alu(const Insn& in, FastAssembler::Alu digit) {
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

void X64Emitter::int_mul(const Insn& in) {
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
[[gnu::noinline]] void X64Emitter::int_binary(const Insn& in) {
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

void X64Emitter::alu(Op op, const Gp& d, const Gp& s) {
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

void X64Emitter::divide(const Insn& in) {
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

void X64Emitter::shift(const Insn& in) {
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

void X64Emitter::unary(const Insn& in) {
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

void X64Emitter::bswap(const Insn& in) {
  Type t = in.type;
  Gp d = gp(in.dst, t), a = gp(in.a, t);
  if (d != a) a_.mov(d, a);
  if (type_bits(t) == 16) {
    a_.rol(d.r16(), 8);
    return normalize(d, t);
  }
  a_.bswap(d);
}

void X64Emitter::set(const Insn& in) {
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

void X64Emitter::cksum(const Insn& in) {
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

void X64Emitter::cksum_fold(const Insn& in) {
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
bool X64Emitter::fast_mem(const Insn& in, uint8_t opcode) {
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

void X64Emitter::load(const Insn& in) {
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

void X64Emitter::store(const Insn& in) {
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

}  // namespace exojit::vcode::detail::x64

namespace exojit::vcode::detail {

std::vector<EmittedFunction> emit_x64(const Module& m, asmjit::CodeHolder& code,
                                      const X64Features& allowed, CodeNotes* notes) {
  x64::X64Emitter emitter(m, code, allowed, notes);
  return emitter.module();
}

}  // namespace exojit::vcode::detail
