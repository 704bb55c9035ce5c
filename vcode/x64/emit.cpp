// SPDX-License-Identifier: MIT
// The x86-64 emitter: frame, the per-instruction dispatch, and the integer, memory and
// networking instructions (see emitter.h).
#include <bit>

#include "emitter_p.h"
#include "exojit/error.h"

namespace exojit::vcode::detail::x64 {

X64Emitter::X64Emitter(const Module& m, const X64Features& allowed, CodeNotes* notes)
    : Lowering(m, notes),
      e_(allowed.max_code_bytes),
      has_movbe_(allowed.movbe),
      has_bmi2_(allowed.bmi2),
      has_avx_(allowed.avx),
      has_avx2_(allowed.avx && allowed.avx2),
      has_sse41_(allowed.sse41),
      has_sse42_(allowed.sse42),
      probes_(allowed.stack_probes) {}

MachineCode X64Emitter::module() {
  lower_module();
  if (!e_.finish()) fail("x86-64: {}", e_.error());
  MachineCode code;
  for (const Entry& entry : entries())
    code.functions.push_back(
        MachineCode::Range{e_.label_offset(entry.begin), e_.label_offset(entry.end)});
  code.size = e_.offset();
  code.bytes = e_.release();
  return code;
}

// Re-establishes the canonical form of an 8/16-bit value after a 32-bit operation.
void X64Emitter::normalize(Gp d, Type t) {
  switch (t) {
    case Type::I8:
      e_.movsx(d.r32(), d.r8());
      break;
    case Type::U8:
      e_.movzx(d.r32(), d.r8());
      break;
    case Type::I16:
      e_.movsx(d.r32(), d.r16());
      break;
    case Type::U16:
      e_.movzx(d.r32(), d.r16());
      break;
    default:
      break;
  }
}

// d = v, the shortest way: xor, mov r32 (zero-extends), mov r64 sign-extended, movabs. A 32-bit
// d takes the low 32 bits of v.
void X64Emitter::mov_imm(Gp d, int64_t v) {
  if (d.bits == 32) v = int64_t(uint32_t(v));
  if (v == 0)
    e_.alu(Alu::Xor, d.r32(), d.r32());
  else if (uint64_t(v) <= 0xffffffffu)
    e_.mov(d.r32(), v);
  else
    e_.mov(d.r64(), v);
}

// Constant blinding (../src/blinding_p.h): r11 = v from v ^ key and one xor (64-bit values that
// need it: a 64-bit key through rax).
inline void X64Emitter::load_blinded(uint64_t v, const BlindKey& k) {
  if (v <= 0xffffffffu) {
    e_.mov(r11d, int64_t(uint32_t(v) ^ k.k32));
    e_.alu(Alu::Xor, r11d, int32_t(k.k32));
  } else if (fits32(int64_t(v))) {  // sign-extended: both halves of the xor extend alike
    e_.mov(r11, int64_t(int32_t(uint32_t(v) ^ k.k32)));
    e_.alu(Alu::Xor, r11, int32_t(k.k32));
  } else {
    e_.mov(r11, int64_t(v ^ k.k64));
    e_.mov(rax, int64_t(k.k64));
    e_.alu(Alu::Xor, r11, rax);
  }
}

void X64Emitter::float_from_blinded(const Insn& in) {
  e_.sse(vop::kMovqFromGp, xmm(in.dst).id, r11.id, true);
}

void X64Emitter::layout_frame() {
  const Function& f = *f_;
  frame_ = Frame{};
  // (A float division also reserves the rdx slot: 8 bytes, not worth a scan.)
  const bool has_calls = uses(Op::Call), has_division = uses(Op::Div) || uses(Op::Mod);
  uint32_t int_vars = 0;
  for (const RegInfo& ri : f.regs) {
    frame_.uses_ymm |= vector_bits(ri.type) == 256;
    if (ri.cls != RegClass::Var) continue;
    if (in_float_file(ri.type)) {
      frame_.save_width = std::max<int32_t>(frame_.save_width, type_bytes(ri.type));
      frame_.float_vars_used |= 1u << ri.slot;
    } else {
      int_vars |= 1u << ri.slot;
    }
  }
  if (frame_.uses_ymm && !has_avx2_)
    fail("256-bit vector registers need AVX2 (see vector_width())");
  for (int s = 0; s < kIntVars; ++s)
    if (int_vars >> s & 1) frame_.saved.push_back(gpq(kIntVar[s]));
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
  for (Gp g : frame_.saved) {
    e_.push(g);
    if (notes_) {
      notes_->sp(e_.offset(), 8);
      notes_->saved(e_.offset(), dwarf_x64_gp(g.id), 0);
    }
  }
  allocate_frame();
  // Parameters declared as variables move from their ABI register to their slot.
  int pos[2] = {0, 0};
  for (Reg p : f_->params) {
    const RegInfo& ri = info(p.id);
    bool fl = in_float_file(ri.type);
    int at = pos[fl]++;
    if (ri.cls != RegClass::Var) continue;
    if (fl)
      movaps(xmm(p.id), x64::xmm(unsigned(at)));
    else
      move(gp64(p.id), kIntArg[at]);
  }
}

// rsp -= frame size. The return address and the pushes touched the stack down to rsp; a frame
// of which a page or more would stay untouched (counting the return address a call from the body
// pushes below it) is probed as it is allocated (../src/stack_probe_p.h): sub a page, `or qword
// [rsp], 0`, a loop for many pages, the last partial page probed too.
void X64Emitter::allocate_frame() {
  const int32_t size = frame_.size;
  if (!probes_ || size <= kProbeInterval - 8) {
    if (size) e_.alu(Alu::Sub, rsp, size);
    if (notes_ && size) notes_->sp(e_.offset(), size);
    return;
  }
  auto step = [&](int32_t bytes) {
    e_.alu(Alu::Sub, rsp, bytes);
    if (notes_) notes_->sp(e_.offset(), bytes);
    e_.alu(Alu::Or, 64, ptr(rsp, 0), 0);
  };
  const ProbeSteps s = probe_steps(size, 0);
  step(int32_t(s.first));
  if (s.loop()) {
    // r11 = where the loop stops (rax and r11 are free before the parameters move); meanwhile
    // the frame is found from r11, sp moving.
    const int32_t pages = int32_t(s.pages * kProbeInterval);
    e_.lea(r11, ptr(rsp, -pages));
    if (notes_) notes_->cfa_in(e_.offset(), dwarf_x64_gp(r11.id), pages);
    const Label top = e_.new_label();
    e_.bind(top);
    e_.alu(Alu::Sub, rsp, int32_t(kProbeInterval));
    e_.alu(Alu::Or, 64, ptr(rsp, 0), 0);
    e_.alu(Alu::Cmp, rsp, r11);
    e_.jcc(Cond::NE, top);
    if (notes_) notes_->sp(e_.offset(), pages);
  } else {
    for (int64_t i = 0; i < s.pages; ++i) step(int32_t(kProbeInterval));
  }
  if (s.rest) step(int32_t(s.rest));
}

void X64Emitter::epilogue() {
  if (notes_) notes_->epilogue(e_.offset());
  if (frame_.size) e_.alu(Alu::Add, rsp, frame_.size);
  if (notes_ && frame_.size) notes_->sp(e_.offset(), -frame_.size);
  if (frame_.uses_ymm) e_.vzeroupper();  // no AVX-SSE transition penalty in the caller
  for (auto it = frame_.saved.rbegin(); it != frame_.saved.rend(); ++it) {
    e_.pop(*it);
    if (notes_) notes_->sp(e_.offset(), -8);
  }
  e_.ret();
  if (notes_) notes_->returned(e_.offset());
}

Mem X64Emitter::mem(const Insn& in) {
  int64_t disp = in.imm;
  if (in.flags & kLocalBase) {
    disp += frame_.local_offset[in.a];
    if ((in.flags & kIndex) && fits32(disp)) return ptr(rsp, gp64(in.b), int32_t(disp));  // blinded
    if (fits32(disp)) return ptr(rsp, int32_t(disp));
    mov_imm(r11, disp);
    return ptr(rsp, r11);
  }
  const Gp base = gp64(in.a);
  if (fits32(disp)) {
    if (in.flags & kIndex) return ptr(base, gp64(in.b), int32_t(disp));
    return ptr(base, int32_t(disp));
  }
  mov_imm(r11, disp);
  if (in.flags & kIndex) e_.alu(Alu::Add, r11, gp64(in.b));
  return ptr(base, r11);
}

// The common integer records straight to their handlers (inlined into the walk: one jump table
// on the opcode and the immediate flag, then predictable tests of the type); every other record
// through insn_general. The immediate flag is in the table's key because register and immediate
// forms come mixed in real code: a test of kImm after the jump mispredicted as often as the jump
// (bench_codegen's vcode_fast: 18% faster with it in the key). (One dense table on opcode, type
// and form together measured slower: more distinct targets for the indirect branch to mispredict
// among; the type is almost always the same.)
template <bool kBlind>
inline void X64Emitter::insn(const Insn& in) {
  const bool integer = is_int(in.type);
  constexpr auto key = [](Op op, bool imm) { return unsigned(op) << 1 | unsigned(imm); };
  static_assert(kImm == 1, "key(in.op, in.flags & kImm) is the flag bit itself: no compare");
  switch (key(in.op, in.flags & kImm)) {
    case key(Op::Add, false):
      if (!integer) break;
      return alu_rr<Alu::Add>(in);
    case key(Op::Add, true):
      if (!integer) break;
      if (kBlind && hides_operand(in)) return alu_rr<Alu::Add>(with_hidden_operand(*this, in));
      return alu_ri<Alu::Add>(in);
    case key(Op::Sub, false):
      if (!integer) break;
      return alu_rr<Alu::Sub>(in);
    case key(Op::Sub, true):
      if (!integer) break;
      if (kBlind && hides_operand(in)) return alu_rr<Alu::Sub>(with_hidden_operand(*this, in));
      return alu_ri<Alu::Sub>(in);
    case key(Op::And, false):
      if (!integer) break;
      return alu_rr<Alu::And>(in);
    case key(Op::And, true):
      if (!integer) break;
      if (kBlind && hides_operand(in)) return alu_rr<Alu::And>(with_hidden_operand(*this, in));
      return alu_ri<Alu::And>(in);
    case key(Op::Or, false):
      if (!integer) break;
      return alu_rr<Alu::Or>(in);
    case key(Op::Or, true):
      if (!integer) break;
      if (kBlind && hides_operand(in)) return alu_rr<Alu::Or>(with_hidden_operand(*this, in));
      return alu_ri<Alu::Or>(in);
    case key(Op::Xor, false):
      if (!integer) break;
      return alu_rr<Alu::Xor>(in);
    case key(Op::Xor, true):
      if (!integer) break;
      if (kBlind && hides_operand(in)) return alu_rr<Alu::Xor>(with_hidden_operand(*this, in));
      return alu_ri<Alu::Xor>(in);
    case key(Op::Mul, false):
      if (!integer) break;
      return int_mul(in, false);
    case key(Op::Mul, true):
      if (!integer) break;
      if (kBlind && hides_operand(in)) return int_mul(with_hidden_operand(*this, in), false);
      return int_mul(in, true);
    case key(Op::Lsh, true):
    case key(Op::Rsh, true):
      if (!integer) break;
      return shift(in);
    case key(Op::Ld, false):
    case key(Op::Ld, true):
    case key(Op::Ldu, false):
    case key(Op::Ldu, true):
      if (!integer) break;
      if (kBlind && hides_displacement(in)) return load(with_hidden_displacement(*this, in));
      return load(in);
    case key(Op::St, false):
    case key(Op::St, true):
    case key(Op::Stu, false):
    case key(Op::Stu, true):
      if (!integer) break;
      if (kBlind && hides_displacement(in)) return store(with_hidden_displacement(*this, in));
      return store(in);
    default:
      break;
  }
  if constexpr (kBlind)
    insn_blinded(*this, in);
  else
    insn_general(in);
}

// Every record, by opcode and type (the uncommon ones come here from insn()).
void X64Emitter::insn_general(const Insn& in) {
  const bool integer = is_int(in.type);
  switch (in.op) {
    case Op::Add:  // (integer forms come through insn())
    case Op::Sub:
      return is_vector(in.type) ? vector(in) : float_binary(in);
    case Op::And:
    case Op::Or:
    case Op::Xor:
      return vector(in);
    case Op::Mul:
      return integer ? int_mul(in, in.flags & kImm) : float_binary(in);
    case Op::Div:
      return integer ? divide(in) : float_binary(in);
    case Op::Mod:
      return divide(in);
    case Op::Lsh:
    case Op::Rsh:
      return integer ? shift(in) : vector(in);
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
    case Op::BoundMask:
      return bound_mask(in);
    case Op::BoundZero:
      return bound_zero(in);
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
      return is_vector(in.type) ? vector_memory(in) : load(in);
    case Op::St:
    case Op::Stu:
    case Op::Stbe:
      return is_vector(in.type) ? vector_memory(in) : store(in);
    case Op::AddrL:
      return address(in);
    case Op::Blt:
    case Op::Ble:
    case Op::Bgt:
    case Op::Bge:
    case Op::Beq:
    case Op::Bne:
      return branch(in);
    case Op::Jmp:
    case Op::Jmpr:
    case Op::La:
    case Op::Place:
      return jump(in);
    case Op::Call:
      return call(in);
    case Op::Ret:
      return ret(in);
  }
  unknown(in);
}

void X64Emitter::unknown(const Insn& in) {
  e_.fail(fmt::format("no lowering for opcode {}", unsigned(in.op)));
}

// add/sub/and/or/xor: two-address forms, lea for three-address adds.
template <Alu op>
inline void X64Emitter::alu_rr(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t), b = gp(in.b, t);
  if (d == a) {
    e_.alu(op, d, b);
  } else if (d == b && op != Alu::Sub) {
    e_.alu(op, d, a);
  } else if (d == b) {  // d = a - d
    e_.neg(d);
    e_.alu(Alu::Add, d, a);
  } else if (op == Alu::Add) {
    e_.lea(d, ptr(a.r64(), b.r64()));
  } else {
    e_.mov(d, a);
    e_.alu(op, d, b);
  }
  if (is_narrow(t)) [[unlikely]]
    normalize(d, t);
}

template <Alu op>
inline void X64Emitter::alu_ri(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  const int64_t v = in.imm;
  if (!fits32(v) && is_wide(t)) [[unlikely]] {
    move(d, a);
    mov_imm(r11, v);
    e_.alu(op, d, r11);
  } else if (op == Alu::Add && d != a) {
    e_.lea(d, ptr(a.r64(), int32_t(v)));
  } else {
    move(d, a);
    e_.alu(op, d, int32_t(v));
  }
  if (is_narrow(t)) [[unlikely]]
    normalize(d, t);
}

inline void X64Emitter::int_mul(const Insn& in, bool imm) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  if (imm) {
    if (is_wide(t) && !fits32(in.imm)) {
      mov_imm(r11, in.imm);
      move(d, a);
      e_.imul(d, r11);
    } else {
      e_.imul(d, a, int32_t(in.imm));
    }
  } else {
    const Gp b = gp(in.b, t);
    if (d == a) {
      e_.imul(d, b);
    } else if (d == b) {
      e_.imul(d, a);
    } else {
      e_.mov(d, a);
      e_.imul(d, b);
    }
  }
  if (is_narrow(t)) normalize(d, t);
}

void X64Emitter::divide(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t);
  const Gp rax_t = at_width(rax, t), rdx_t = at_width(rdx, t);
  const bool keep_rdx = d.id != rdx.id;  // rdx may hold a live register
  const Mem save = ptr(rsp, frame_.scratch);
  if (keep_rdx) e_.mov(save, rdx);
  e_.mov(rax_t, gp(in.a, t));
  Gp divisor;
  if (in.flags & kImm) {
    mov_imm(r11, in.imm);
    divisor = at_width(r11, t);
  } else {
    divisor = gp(in.b, t);
    if (divisor.id == rdx.id) {
      e_.mov(at_width(r11, t), divisor);
      divisor = at_width(r11, t);
    }
  }
  if (is_signed(t)) {
    type_bits(t) == 64 ? e_.cqo() : e_.cdq();
    e_.idiv(divisor);
  } else {
    e_.alu(Alu::Xor, edx, edx);
    e_.div(divisor);
  }
  move(d, in.op == Op::Div ? rax_t : rdx_t);
  if (keep_rdx) e_.mov(rdx, save);
  normalize(d, t);
}

inline void X64Emitter::shift(const Insn& in) {
  const Type t = in.type;
  if (!(in.flags & kImm)) return shift_by_register(in);
  const Gp d = gp(in.dst, t);
  move(d, gp(in.a, t));
  const Shift op = in.op == Op::Lsh ? Shift::Shl : is_signed(t) ? Shift::Sar : Shift::Shr;
  e_.shift(op, d, uint8_t(uint32_t(in.imm) & (is_wide(t) ? 63 : 31)));
  if (is_narrow(t)) normalize(d, t);
}

void X64Emitter::shift_by_register(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t), count = gp(in.b, t);
  const Shift op = in.op == Op::Lsh ? Shift::Shl : is_signed(t) ? Shift::Sar : Shift::Shr;
  if (has_bmi2_) {
    e_.shiftx(op, d, a, count);
    return normalize(d, t);
  }
  // Without BMI2 the count must be in cl: borrow rcx through r11.
  const Gp rax_t = at_width(rax, t);
  const bool count_in_rcx = count.id == rcx.id;
  if (!count_in_rcx) e_.mov(r11, rcx);
  if (!count_in_rcx && a.id == rcx.id)
    e_.mov(rax_t, at_width(r11, t));
  else
    e_.mov(rax_t, a);
  if (!count_in_rcx) e_.mov(ecx, count.r32());
  e_.shift_cl(op, rax_t);
  if (!count_in_rcx) e_.mov(rcx, r11);
  e_.mov(d, rax_t);
  normalize(d, t);
}

void X64Emitter::unary(const Insn& in) {
  const Type t = in.type;
  if (is_float(t)) {
    const Vec d = xmm(in.dst), a = xmm(in.a);
    if (in.op == Op::Mov) return movaps(d, a);
    // neg: flip the sign bit
    mov_imm(r11, t == Type::F32 ? int64_t(0x80000000) : int64_t(INT64_MIN));
    e_.sse(vop::kMovqFromGp, xmm15.id, r11.id, true);
    movaps(d, a);
    e_.sse(vop::kXorps, d.id, xmm15.id);
    return;
  }
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  switch (in.op) {
    case Op::Mov:
      return move(d, a);
    case Op::Not:
      e_.test(a, a);
      e_.setcc(Cond::E, al);
      e_.movzx(d.r32(), al);
      return;
    case Op::Neg:
      move(d, a);
      e_.neg(d);
      return normalize(d, t);
    default:  // Com
      move(d, a);
      e_.not_(d);
      return normalize(d, t);
  }
}

void X64Emitter::bswap(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  move(d, a);
  if (type_bits(t) == 16) {
    e_.shift(Shift::Rol, d.r16(), 8);
    return normalize(d, t);
  }
  e_.bswap(d);
}

void X64Emitter::set(const Insn& in) {
  const Type t = in.type;
  if (is_float(t)) {
    const Vec d = xmm(in.dst);
    uint64_t bits = uint64_t(in.imm);
    if (t == Type::F32) bits = std::bit_cast<uint32_t>(float(std::bit_cast<double>(bits)));
    if (bits == 0) return e_.sse(vop::kXorps, d.id, d.id);
    mov_imm(r11, int64_t(bits));
    e_.sse(vop::kMovqFromGp, d.id, r11.id, true);
    return;
  }
  mov_imm(gp(in.dst, t), in.imm);
}

// d = a <= b ? ~0 : 0, branch-free: cmp b, a sets the carry when b < a (out of range); sbb d, d
// spreads it; not turns it into the in-range mask. No branch, so no prediction to abuse.
void X64Emitter::bound_mask(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  Gp b = at_width(r11, t);
  if (in.flags & kImm)
    mov_imm(b, in.imm);
  else
    b = gp(in.b, t);
  e_.alu(Alu::Cmp, b, a);
  e_.alu(Alu::Sbb, d, d);
  e_.not_(d);
}

// d = a <= b ? d : 0, branch-free: a zero in rax (xor first: it sets the flags), cmp a, b, then
// cmova d, rax. Two instructions after the compared values, one after the compare: cheaper on
// the path to the guarded access than bound_mask's mask and its and. Right after a branch that
// compared the same registers (the bounds check it guards), the branch's flags serve: mov eax, 0
// (which keeps them) and the cmov, as LLVM's speculative load hardening does.
void X64Emitter::bound_zero(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  if (!(in.flags & kImm) && last_compare_.at == e_.offset()) {
    const Gp b = gp(in.b, t);
    const bool same = last_compare_.a == a && last_compare_.b == b;
    if (same || (last_compare_.a == b && last_compare_.b == a)) {  // flags of cmp a, b or b, a
      e_.mov(eax, 0);
      return e_.cmov(same ? Cond::A : Cond::B, d, at_width(rax, t));
    }
  }
  e_.alu(Alu::Xor, eax, eax);
  if (!(in.flags & kImm)) {
    e_.alu(Alu::Cmp, a, gp(in.b, t));
  } else if (!is_wide(t) || fits32(in.imm)) {
    e_.alu(Alu::Cmp, a, int32_t(in.imm));
  } else {
    mov_imm(r11, in.imm);
    e_.alu(Alu::Cmp, a, r11);
  }
  e_.cmov(Cond::A, d, at_width(rax, t));
}

void X64Emitter::cksum(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  if (in.flags & kImm) {
    move(d, a);
    if (type_bits(t) == 32 || fits32(in.imm)) {
      e_.alu(Alu::Add, d, int32_t(in.imm));
    } else {
      mov_imm(r11, in.imm);
      e_.alu(Alu::Add, d, r11);
    }
  } else {
    const Gp b = gp(in.b, t);  // narrower inputs are already zero-extended
    if (d == b) {
      e_.alu(Alu::Add, d, a);
    } else {
      move(d, a);
      e_.alu(Alu::Add, d, b);
    }
  }
  e_.alu(Alu::Adc, d, 0);
}

void X64Emitter::cksum_fold(const Insn& in) {
  const Type s = info(in.a).type;
  const Gp d = gp(in.dst, in.type);
  if (s == Type::U64) {
    e_.mov(rax, gp64(in.a));
    e_.mov(r11, rax);
    e_.shift(Shift::Shr, r11, 32);
    e_.alu(Alu::Add, eax, r11d);
    e_.alu(Alu::Adc, eax, 0);
  } else {
    e_.mov(eax, gp64(in.a).r32());
  }
  if (s != Type::U16) {
    e_.mov(r11d, eax);
    e_.shift(Shift::Shr, r11d, 16);
    e_.alu(Alu::Add, ax, r11w);
    e_.alu(Alu::Adc, ax, 0);
  }
  e_.movzx(d.r32(), ax);
}

void X64Emitter::address(const Insn& in) {
  e_.lea(gp64(in.dst), ptr(rsp, frame_.local_offset[in.a]));
}

// The common loads and stores (32/64-bit integers at [base + disp32]) in a few instructions; the
// rest below.
inline void X64Emitter::load(const Insn& in) {
  const Type t = in.type;
  if (!simple_access(in) || in.op == Op::Ldbe) return load_general(in);
  e_.mov(gp(in.dst, t), ptr(gp64(in.a), int32_t(in.imm)));
}

inline void X64Emitter::store(const Insn& in) {
  const Type t = in.type;
  if (!simple_access(in) || in.op == Op::Stbe) return store_general(in);
  e_.mov(ptr(gp64(in.a), int32_t(in.imm)), gp(in.dst, t));
}

void X64Emitter::load_general(const Insn& in) {
  const Type t = in.type;
  if (is_float(t))
    return e_.sse(t == Type::F32 ? vop::kMovssLoad : vop::kMovsdLoad, xmm(in.dst).id, mem(in));
  const Gp d = gp(in.dst, t);
  const Mem m = mem(in);
  const bool be = in.op == Op::Ldbe;
  if (!is_narrow(t)) {  // 32 and 64 bits
    if (!be) return e_.mov(d, m);
    if (has_movbe_) return e_.movbe(d, m);
    e_.mov(d, m);
    return e_.bswap(d);
  }
  const int bits = 8 * type_bytes(t);
  if (bits == 8 || !be) {
    is_signed(t) ? e_.movsx(d.r32(), m, bits) : e_.movzx(d.r32(), m, bits);
  } else if (has_movbe_) {
    e_.movbe(d.r16(), m);
    normalize(d, t);
  } else {
    e_.movzx(d.r32(), m, 16);
    e_.shift(Shift::Rol, d.r16(), 8);
    normalize(d, t);
  }
}

void X64Emitter::store_general(const Insn& in) {
  const Type t = in.type;
  if (is_float(t))
    return e_.sse(t == Type::F32 ? vop::kMovssStore : vop::kMovsdStore, xmm(in.dst).id, mem(in));
  const Mem m = mem(in);
  const Gp v{phys_[in.dst], uint8_t(8 * type_bytes(t))};
  if (in.op != Op::Stbe || v.bits == 8) return e_.mov(m, v);
  if (has_movbe_) return e_.movbe(m, v);
  e_.mov(rax, gp64(in.dst));
  v.bits == 16 ? e_.shift(Shift::Rol, ax, 8) : e_.bswap(Gp{rax.id, v.bits});
  e_.mov(m, Gp{rax.id, v.bits});
}

}  // namespace exojit::vcode::detail::x64

namespace exojit::vcode::detail {

MachineCode emit_x64(const Module& m, const X64Features& allowed, CodeNotes* notes,
                     const BlindKey* blind) {
  x64::X64Emitter emitter(m, allowed, notes);
  if (blind) emitter.blind_constants(*blind);
  return emitter.module();
}

}  // namespace exojit::vcode::detail
