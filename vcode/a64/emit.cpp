// SPDX-License-Identifier: MIT
// The AArch64 emitter: module and function structure, frame, the per-instruction dispatch, and
// the integer, memory and networking instructions (see emitter.h).
#include <algorithm>
#include <bit>

#include "emitter_p.h"
#include "exojit/error.h"

namespace exojit::vcode::detail::a64 {

using namespace asmjit;

namespace {

bool is_logical_imm(uint64_t v, const Gp& d) {
  return arm64::Utils::isLogicalImm(v, d.isGpX() ? 64 : 32);
}

}  // namespace

void FirstError::handleError(asmjit::Error err, const char* message, BaseEmitter*) {
  if (!failed) {
    failed = true;
    text = message ? message : DebugUtils::errorAsString(err);
  }
}

A64Emitter::A64Emitter(const Module& m, CodeHolder& code, CodeNotes* notes, bool stack_probes)
    : Lowering(m, notes), a_(&code), probes_(stack_probes) {
  a_.setErrorHandler(&errors_);
#if defined(__aarch64__)
  has_crc32_ = CpuInfo::host().features().arm().hasCRC32();
#endif
  // Cross-compiling, the target is assumed to be ARMv8.1 or later, where CRC32 is mandatory.
}

// Re-establishes the canonical form of an 8/16-bit value after a 32-bit operation.
void A64Emitter::normalize(const Gp& d, Type t) {
  const Gp w = d.w();
  switch (t) {
    case Type::I8:
      a_.sxtb(w, w);
      break;
    case Type::U8:
      a_.uxtb(w, w);
      break;
    case Type::I16:
      a_.sxth(w, w);
      break;
    case Type::U16:
      a_.uxth(w, w);
      break;
    default:
      break;
  }
}

// The shortest of movz/movn + movk, or orr with a logical immediate.
void A64Emitter::mov_imm(const Gp& d, uint64_t v) {
  const bool wide = d.isGpX();
  const int chunks = wide ? 4 : 2;
  if (!wide) v = uint32_t(v);
  int zeros = 0, ones = 0;
  for (int i = 0; i < chunks; ++i) {
    uint64_t c = (v >> (16 * i)) & 0xffff;
    zeros += c == 0;
    ones += c == 0xffff;
  }
  if (zeros < chunks - 1 && ones < chunks - 1 && is_logical_imm(v, d)) {
    a_.orr(d, wide ? Gp(arm64::xzr) : Gp(arm64::wzr), Imm(v));
    return;
  }
  const bool inverted = ones > zeros;  // start from all ones (movn)
  const uint64_t skip = inverted ? 0xffff : 0;
  bool first = true;
  for (int i = 0; i < chunks; ++i) {
    uint64_t c = (v >> (16 * i)) & 0xffff;
    if (c == skip) continue;
    if (first)
      inverted ? a_.movn(d, Imm(~c & 0xffff), Imm(16 * i)) : a_.movz(d, Imm(c), Imm(16 * i));
    else
      a_.movk(d, Imm(c), Imm(16 * i));
    first = false;
  }
  if (first) inverted ? a_.movn(d, Imm(0)) : a_.movz(d, Imm(0));  // 0 or all ones
}

// d = a + v at a's width, through x16 when v is not an (optionally shifted) 12-bit immediate.
void A64Emitter::add_imm(const Gp& d, const Gp& a, int64_t v) {
  if (!a.isGpX()) v = int32_t(v);
  uint64_t mag = v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v);
  if (mag < 4096) {
    v < 0 ? a_.sub(d, a, Imm(mag)) : a_.add(d, a, Imm(mag));
    return;
  }
  if ((mag & 0xfff) == 0 && mag < (1u << 24)) {
    v < 0 ? a_.sub(d, a, Imm(mag >> 12), Imm(12)) : a_.add(d, a, Imm(mag >> 12), Imm(12));
    return;
  }
  Gp s = at_width(kScratch0, a.isGpX() ? Type::U64 : Type::U32);
  mov_imm(s, uint64_t(v));
  a_.add(d, a, s);
}

// sp -= bytes or sp += bytes, in 12-bit pieces (frames may be up to kMaxFrameBytes).
void A64Emitter::sp_adjust(bool down, int64_t bytes) {
  while (bytes > 0) {
    int64_t piece = bytes >= 4096 ? std::min<int64_t>(bytes & ~int64_t(0xfff), 0xfff000) : bytes;
    Imm imm = piece >= 4096 ? Imm(piece >> 12) : Imm(piece);
    if (piece >= 4096)
      down ? a_.sub(arm64::sp, arm64::sp, imm, Imm(12))
           : a_.add(arm64::sp, arm64::sp, imm, Imm(12));
    else
      down ? a_.sub(arm64::sp, arm64::sp, imm) : a_.add(arm64::sp, arm64::sp, imm);
    if (notes_) notes_->sp(a_.offset(), int32_t(down ? piece : -piece));
    bytes -= piece;
  }
}

void A64Emitter::layout_frame() {
  const Function& f = *f_;
  frame_ = Frame{};
  const bool has_calls = uses(Op::Call);
  uint32_t int_vars = 0;
  bool vector_vars = false;
  for (const RegInfo& ri : f.regs) {
    if (vector_bits(ri.type) == 256)
      fail("a {} register: this target's vectors are 128 bits wide (NEON, see vector_width())",
           type_name(ri.type));
    if (ri.cls != RegClass::Var) continue;
    if (in_float_file(ri.type)) {
      frame_.float_vars_used |= 1u << ri.slot;
      vector_vars |= is_vector(ri.type);
    } else {
      int_vars |= 1u << ri.slot;
    }
  }
  frame_.calls = has_calls;
  if (has_calls) frame_.saved_x.push_back(30);  // the link register
  for (int s = 0; s < kIntVars; ++s)
    if (int_vars >> s & 1) frame_.saved_x.push_back(kIntVar[s]);
  for (int s = 0; s < kFloatVars; ++s)
    if (frame_.float_vars_used >> s & 1) frame_.saved_d.push_back(kFloatVarBase + uint32_t(s));
  size_t saved = frame_.saved_x.size() + frame_.saved_d.size();
  frame_.save_bytes = int32_t((8 * saved + 15) & ~size_t(15));

  int32_t off = 0;
  if (has_calls) {
    frame_.stage = off;
    off += kStageSlots * 8;
    if (vector_vars) {  // the callee keeps only the low 64 bits of v8-v15
      frame_.save_vectors = true;
      frame_.vector_save = off;
      off += kFloatVars * 16;
    }
  }
  for (const LocalInfo& l : f.locals) {
    off = (off + int32_t(l.align) - 1) & ~(int32_t(l.align) - 1);
    frame_.local_offset.push_back(off);
    off += int32_t(l.size);
  }
  frame_.size = (off + 15) & ~15;  // sp stays 16-byte aligned
}

// Saves the callee-saved registers it uses at [sp + size ...], the rest of the frame below.
void A64Emitter::prologue() {
  if (frame_.save_bytes) {
    sp_adjust(true, frame_.save_bytes);
    int32_t at = 0;
    const auto& xs = frame_.saved_x;
    for (size_t i = 0; i < xs.size(); i += 2, at += 16) {
      if (i + 1 < xs.size())
        a_.stp(arm64::x(xs[i]), arm64::x(xs[i + 1]), arm64::ptr(arm64::sp, at));
      else
        a_.str(arm64::x(xs[i]), arm64::ptr(arm64::sp, at));
      if (notes_) note_saved(xs, i, at, dwarf_a64_x);
      if (i + 1 == xs.size()) at -= 8;
    }
    const auto& ds = frame_.saved_d;
    for (size_t i = 0; i < ds.size(); i += 2, at += 16) {
      if (i + 1 < ds.size())
        a_.stp(arm64::d(ds[i]), arm64::d(ds[i + 1]), arm64::ptr(arm64::sp, at));
      else
        a_.str(arm64::d(ds[i]), arm64::ptr(arm64::sp, at));
      if (notes_) note_saved(ds, i, at, dwarf_a64_d);
      if (i + 1 == ds.size()) at -= 8;
    }
  }
  allocate_frame();
  // Parameters move from their ABI register to their slot when declared as variables; narrow
  // integers are re-extended (AAPCS64 leaves the bits above them unspecified).
  int pos[2] = {0, 0};
  for (Reg p : f_->params) {
    const RegInfo& ri = info(p.id);
    const bool fl = in_float_file(ri.type);
    const uint32_t at = uint32_t(pos[fl]++);
    if (fl) {
      if (ri.cls == RegClass::Var) a_.fmov(arm64::d(phys_[p.id]), arm64::d(at));
      continue;
    }
    const Gp src = arm64::w(at), d = gp(p.id, ri.type);
    if (type_bits(ri.type) == 64) {
      if (ri.cls == RegClass::Var) a_.mov(d, arm64::x(at));
    } else if (type_bits(ri.type) == 32) {
      a_.mov(d, src);
    } else {
      switch (ri.type) {
        case Type::I8:
          a_.sxtb(d, src);
          break;
        case Type::U8:
          a_.uxtb(d, src);
          break;
        case Type::I16:
          a_.sxth(d, src);
          break;
        default:
          a_.uxth(d, src);
          break;
      }
    }
  }
}

// sp -= frame size, below the register save area. bl stores nothing: as gcc's AArch64 stack clash
// protection does, the caller may leave up to kCallerGap bytes above the entry sp untouched, and
// a function leaves no more than that below its last store at each of its calls. A frame that
// keeps both within the probe interval keeps its plain adjustment; others are probed as they are
// allocated (../src/stack_probe_p.h): sub, `str xzr, [sp]`, a loop for many pages, the last
// partial step probed too (sp is then touched: a callee starts with no gap).
void A64Emitter::allocate_frame() {
  const int64_t size = frame_.size, below_entry = frame_.save_bytes + size;
  const bool plain =
      below_entry <= kProbeInterval - kCallerGap && (!frame_.calls || size <= kCallerGap);
  if (!probes_ || plain) return sp_adjust(true, size);
  auto step = [&](int64_t bytes) {
    sp_adjust(true, bytes);
    a_.str(arm64::xzr, arm64::ptr(arm64::sp));
  };
  // The save area's stores touched [sp]; without any, the caller's last store may be
  // kCallerGap above.
  const ProbeSteps s = probe_steps(size, frame_.save_bytes ? 0 : kCallerGap);
  step(s.first);
  if (s.loop()) {
    // x17 = where the loop stops (x16, x17 are free before the parameters move); meanwhile the
    // frame is found from x17, sp moving.
    const Gp end = arm64::x(kScratch1);
    add_imm(end, arm64::sp, -s.pages * kProbeInterval);
    if (notes_)
      notes_->cfa_in(a_.offset(), dwarf_a64_x(kScratch1), int32_t(s.pages * kProbeInterval));
    const AsmLabel top = a_.newLabel();
    a_.bind(top);
    a_.sub(arm64::sp, arm64::sp, Imm(kProbeInterval >> 12), Imm(12));
    a_.str(arm64::xzr, arm64::ptr(arm64::sp));
    a_.cmp(arm64::sp, end);
    a_.b_ne(top);
    if (notes_) notes_->sp(a_.offset(), int32_t(s.pages * kProbeInterval));
  } else {
    for (int64_t i = 0; i < s.pages; ++i) step(kProbeInterval);
  }
  if (s.rest) step(s.rest);
}

void A64Emitter::epilogue() {
  if (notes_) notes_->epilogue(a_.offset());
  sp_adjust(false, frame_.size);
  if (frame_.save_bytes) {
    int32_t at = 0;
    const auto& xs = frame_.saved_x;
    for (size_t i = 0; i < xs.size(); i += 2, at += 16) {
      if (i + 1 < xs.size())
        a_.ldp(arm64::x(xs[i]), arm64::x(xs[i + 1]), arm64::ptr(arm64::sp, at));
      else
        a_.ldr(arm64::x(xs[i]), arm64::ptr(arm64::sp, at)), at -= 8;
    }
    const auto& ds = frame_.saved_d;
    for (size_t i = 0; i < ds.size(); i += 2, at += 16) {
      if (i + 1 < ds.size())
        a_.ldp(arm64::d(ds[i]), arm64::d(ds[i + 1]), arm64::ptr(arm64::sp, at));
      else
        a_.ldr(arm64::d(ds[i]), arm64::ptr(arm64::sp, at)), at -= 8;
    }
    sp_adjust(false, frame_.save_bytes);
  }
  a_.ret(arm64::x30);
  if (notes_) notes_->returned(a_.offset());
}

// Debug notes: the caller's registers regs[i] (and regs[i + 1], stored as a pair) are now at
// [sp + at].
void A64Emitter::note_saved(const std::vector<uint32_t>& regs, size_t i, int32_t at,
                            unsigned (*dwarf)(unsigned)) {
  notes_->saved(a_.offset(), dwarf(regs[i]), at);
  if (i + 1 < regs.size()) notes_->saved(a_.offset(), dwarf(regs[i + 1]), at + 8);
}

// The address [base (+ index) + imm] for an access of `size` bytes. Displacements that no
// addressing mode takes go through x17.
Mem A64Emitter::mem(const Insn& in, int size) {
  int64_t disp = in.imm;
  Gp base;
  if (in.flags & kLocalBase) {
    disp += frame_.local_offset[in.a];
    base = arm64::sp;
  } else {
    base = x(in.a);
  }
  const Gp tmp = arm64::x(kScratch1);
  if (in.flags & kIndex) {
    if (disp == 0) return arm64::ptr(base, x(in.b));
    add_imm(tmp, x(in.b), disp);
    return arm64::ptr(base, tmp);
  }
  const bool unscaled = disp >= -256 && disp <= 255;
  const bool scaled = disp >= 0 && disp % size == 0 && disp / size < 4096;
  if (unscaled || scaled) return arm64::ptr(base, int32_t(disp));
  mov_imm(tmp, uint64_t(disp));
  return arm64::ptr(base, tmp);
}

void A64Emitter::insn(const Insn& in) {
  switch (in.op) {
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
      if (is_vector(in.type)) return vector(in);
      if (is_float(in.type)) return float_binary(in);
      return (in.flags & kImm) ? int_binary_imm(in) : int_binary(in);
    case Op::Mod:
    case Op::And:
    case Op::Or:
    case Op::Xor:
    case Op::Lsh:
    case Op::Rsh:
      if (is_vector(in.type)) return vector(in);
      return (in.flags & kImm) ? int_binary_imm(in) : int_binary(in);
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
      if (is_vector(in.type)) return vector(in);
      return is_float(in.type) ? float_set(in) : set(in);
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
      return load(in);
    case Op::St:
    case Op::Stu:
    case Op::Stbe:
      return store(in);
    case Op::AddrL: {
      const int64_t off = frame_.local_offset[in.a];
      if (off < 4096) {
        a_.add(x(in.dst), arm64::sp, Imm(off));
      } else {
        mov_imm(arm64::x(kScratch0), uint64_t(off));
        a_.add(x(in.dst), arm64::sp, arm64::x(kScratch0));
      }
      return;
    }
    case Op::Blt:
    case Op::Ble:
    case Op::Bgt:
    case Op::Bge:
    case Op::Beq:
    case Op::Bne:
      return branch(in);
    case Op::Jmp:
      a_.b(label(in.dst));
      return;
    case Op::Jmpr:
      a_.br(x(in.a));
      return;
    case Op::La:
      a_.adr(x(in.a), label(in.dst));
      return;
    case Op::Place:
      a_.bind(label(in.dst));
      return;
    case Op::Call:
      return call(in);
    case Op::Ret:
      return ret(in);
  }
}

// Register forms: every operation has a three-operand instruction.
void A64Emitter::int_binary(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t), b = gp(in.b, t);
  const bool sign = is_signed(t);
  switch (in.op) {
    case Op::Add:
      a_.add(d, a, b);
      break;
    case Op::Sub:
      a_.sub(d, a, b);
      break;
    case Op::Mul:
      a_.mul(d, a, b);
      break;
    case Op::Div:
      sign ? a_.sdiv(d, a, b) : a_.udiv(d, a, b);
      break;
    case Op::Mod: {  // a - (a / b) * b
      const Gp q = at_width(kScratch0, t);
      sign ? a_.sdiv(q, a, b) : a_.udiv(q, a, b);
      a_.msub(d, q, b, a);
      break;
    }
    case Op::And:
      a_.and_(d, a, b);
      return;  // bitwise operations keep the canonical form
    case Op::Or:
      a_.orr(d, a, b);
      return;
    case Op::Xor:
      a_.eor(d, a, b);
      return;
    case Op::Lsh:  // the register forms take the count modulo the width, as vcode does
      a_.lsl(d, a, b);
      break;
    default:  // Rsh
      sign ? a_.asr(d, a, b) : a_.lsr(d, a, b);
      return;  // a shifted canonical value stays canonical
  }
  normalize(d, t);
}

void A64Emitter::int_binary_imm(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  const uint64_t v = type_bits(t) == 64 ? uint64_t(in.imm) : uint32_t(in.imm);
  switch (in.op) {
    case Op::Add:
      add_imm(d, a, int64_t(v));
      break;
    case Op::Sub:
      add_imm(d, a, int64_t(uint64_t(0) - v));
      break;
    case Op::And:
    case Op::Or:
    case Op::Xor: {
      if (is_logical_imm(v, d)) {
        in.op == Op::And  ? a_.and_(d, a, Imm(v))
        : in.op == Op::Or ? a_.orr(d, a, Imm(v))
                          : a_.eor(d, a, Imm(v));
        return;
      }
      const Gp s = at_width(kScratch0, t);
      mov_imm(s, v);
      in.op == Op::And ? a_.and_(d, a, s) : in.op == Op::Or ? a_.orr(d, a, s) : a_.eor(d, a, s);
      return;
    }
    case Op::Lsh:
    case Op::Rsh: {
      const uint32_t n = uint32_t(v) & (type_bits(t) == 64 ? 63 : 31);
      if (in.op == Op::Lsh) {
        a_.lsl(d, a, Imm(n));
        break;
      }
      is_signed(t) ? a_.asr(d, a, Imm(n)) : a_.lsr(d, a, Imm(n));
      return;
    }
    default: {  // mul, div, mod: the immediate goes through x17 (x16 is mod's quotient)
      const Gp s = at_width(kScratch1, t), q = at_width(kScratch0, t);
      const bool sign = is_signed(t);
      mov_imm(s, v);
      if (in.op == Op::Mul) {
        a_.mul(d, a, s);
      } else if (in.op == Op::Div) {
        sign ? a_.sdiv(d, a, s) : a_.udiv(d, a, s);
      } else {
        sign ? a_.sdiv(q, a, s) : a_.udiv(q, a, s);
        a_.msub(d, q, s, a);
      }
      break;
    }
  }
  normalize(d, t);
}

void A64Emitter::unary(const Insn& in) {
  const Type t = in.type;
  if (is_float(t)) {
    const Vec d = fp(in.dst), a = fp(in.a);
    if (in.op == Op::Mov) {
      if (d.id() != a.id()) a_.fmov(d, a);
      return;
    }
    a_.fneg(d, a);
    return;
  }
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  switch (in.op) {
    case Op::Mov:
      if (d.id() != a.id()) a_.mov(d, a);
      return;
    case Op::Not:
      a_.cmp(a, Imm(0));
      a_.cset(d.w(), Imm(arm64::CondCode::kEQ));
      return;
    case Op::Neg:
      a_.neg(d, a);
      return normalize(d, t);
    default:  // Com
      a_.mvn(d, a);
      return normalize(d, t);
  }
}

void A64Emitter::bswap(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  if (type_bits(t) == 16) {
    a_.rev16(d, a);
    return normalize(d, t);
  }
  a_.rev(d, a);
}

void A64Emitter::set(const Insn& in) {
  mov_imm(gp(in.dst, in.type), uint64_t(in.imm));
}

// One's-complement accumulate: adds, then add the carry back in (adc with the zero register).
// Constant blinding (../src/blinding_p.h): x9 = v from v ^ key, the key in x16, and one eor.
void A64Emitter::load_blinded(uint64_t v, const BlindKey& k) {
  if (v <= 0xffffffffu) {
    mov_imm(arm64::w(kBlindReg), uint32_t(v) ^ k.k32);
    mov_imm(arm64::w(kScratch0), k.k32);
    a_.eor(arm64::w(kBlindReg), arm64::w(kBlindReg), arm64::w(kScratch0));
  } else {
    mov_imm(arm64::x(kBlindReg), v ^ k.k64);
    mov_imm(arm64::x(kScratch0), k.k64);
    a_.eor(arm64::x(kBlindReg), arm64::x(kBlindReg), arm64::x(kScratch0));
  }
}

void A64Emitter::float_from_blinded(const Insn& in) {
  const Gp s = in.type == Type::F32 ? Gp(arm64::w(kBlindReg)) : Gp(arm64::x(kBlindReg));
  a_.fmov(fp(in.dst), s);
}

// d = a <= b ? ~0 : 0, branch-free: cmp, then csetm on "unsigned lower or same".
void A64Emitter::bound_mask(const Insn& in) {
  const Gp a = gp(in.a, in.type);
  if (in.flags & kImm)
    compare_imm(a, in.imm);
  else
    a_.cmp(a, gp(in.b, in.type));
  a_.csetm(gp(in.dst, in.type), arm64::CondCode::kLS);
}

// d = a <= b ? d : 0, branch-free: cmp, then csel d, d, zr on "unsigned lower or same".
void A64Emitter::bound_zero(const Insn& in) {
  const Gp a = gp(in.a, in.type), d = gp(in.dst, in.type);
  if (in.flags & kImm)
    compare_imm(a, in.imm);
  else
    a_.cmp(a, gp(in.b, in.type));
  a_.csel(d, d, type_bits(in.type) == 64 ? Gp(arm64::xzr) : Gp(arm64::wzr), arm64::CondCode::kLS);
}

void A64Emitter::cksum(const Insn& in) {
  const Type t = in.type;
  const Gp d = gp(in.dst, t), a = gp(in.a, t);
  const Gp zero = type_bits(t) == 64 ? Gp(arm64::xzr) : Gp(arm64::wzr);
  if (in.flags & kImm) {
    const uint64_t v = type_bits(t) == 64 ? uint64_t(in.imm) : uint32_t(in.imm);
    if (v < 4096) {
      a_.adds(d, a, Imm(v));
    } else {
      const Gp s = at_width(kScratch0, t);
      mov_imm(s, v);
      a_.adds(d, a, s);
    }
  } else {
    a_.adds(d, a, gp(in.b, t));  // narrower inputs are already zero-extended
  }
  a_.adc(d, d, zero);
}

// Folds to 16 bits: 64 -> 32 with end-around carry, then twice (lo16 + hi16), which reaches
// the same value as the interpreter's loop (the result is below 0x10000 after the second step).
void A64Emitter::cksum_fold(const Insn& in) {
  const Type s = info(in.a).type;
  const Gp d = gp(in.dst, in.type).w();
  const Gp acc = arm64::w(kScratch0), hi = arm64::w(kScratch1);
  if (s == Type::U16) {
    if (d.id() != x(in.a).id()) a_.mov(d, gp(in.a, s));
    return;
  }
  if (s == Type::U64) {
    a_.lsr(arm64::x(kScratch0), x(in.a), Imm(32));
    a_.adds(acc, acc, gp(in.a, Type::U32));
    a_.adc(acc, acc, arm64::wzr);
  } else {
    a_.mov(acc, gp(in.a, Type::U32));
  }
  a_.uxth(hi, acc);
  a_.add(acc, hi, acc, arm64::lsr(16));
  a_.uxth(hi, acc);
  a_.add(d, hi, acc, arm64::lsr(16));
}

void A64Emitter::load(const Insn& in) {
  const Type t = in.type;
  const int n = is_vector(t) ? vector_bits(t) / 8 : type_bytes(t);
  const Mem m = mem(in, n);
  if (is_vector(t)) {
    a_.ldr(q(in.dst), m);
    return;
  }
  if (is_float(t)) {
    a_.ldr(fp(in.dst), m);
    return;
  }
  // Unaligned accesses are allowed for ordinary loads: ldu is ld.
  const Gp d = gp(in.dst, t);
  const bool be = in.op == Op::Ldbe && n > 1;
  switch (n) {
    case 1:
      is_signed(t) ? a_.ldrsb(d, m) : a_.ldrb(d, m);
      return;
    case 2:
      if (!be) {
        is_signed(t) ? a_.ldrsh(d, m) : a_.ldrh(d, m);
        return;
      }
      a_.ldrh(d, m);
      a_.rev16(d, d);
      return normalize(d, t);
    default:
      a_.ldr(d, m);
      if (be) a_.rev(d, d);
  }
}

void A64Emitter::store(const Insn& in) {
  const Type t = in.type;
  const int n = is_vector(t) ? vector_bits(t) / 8 : type_bytes(t);
  const Mem m = mem(in, n);
  if (is_vector(t)) {
    a_.str(q(in.dst), m);
    return;
  }
  if (is_float(t)) {
    a_.str(fp(in.dst), m);
    return;
  }
  Gp v = gp(in.dst, t);
  if (in.op == Op::Stbe && n > 1) {
    const Gp s = at_width(kScratch0, t);
    n == 2 ? a_.rev16(s, v) : a_.rev(s, v);
    v = s;
  }
  switch (n) {
    case 1:
      a_.strb(v, m);
      return;
    case 2:
      a_.strh(v, m);
      return;
    default:
      a_.str(v, m);
  }
}

}  // namespace exojit::vcode::detail::a64

namespace exojit::vcode::detail {

MachineCode emit_a64(const Module& m, CodeNotes* notes, const BlindKey* blind, bool stack_probes) {
  asmjit::CodeHolder holder;
  holder.init(asmjit::Environment(asmjit::Arch::kAArch64));
  std::vector<std::pair<asmjit::Label, asmjit::Label>> ranges;
  {
    a64::A64Emitter emitter(m, holder, notes, stack_probes);
    if (blind) emitter.blind_constants(*blind);
    emitter.module(ranges);
  }
  asmjit::Error err = holder.flatten();
  if (!err) err = holder.resolveUnresolvedLinks();
  // Every reference is PC-relative (calls to C load the address into x16): the code runs
  // wherever compile() copies it.
  if (!err && !holder.relocEntries().empty())
    fail("aarch64: the code is not position-independent ({} relocations)",
         holder.relocEntries().size());
  if (!err) err = holder.relocateToBase(0);
  MachineCode code;
  code.size = holder.codeSize();
  code.bytes.reset(new uint8_t[code.size]);
  if (!err)
    err = holder.copyFlattenedData(code.bytes.get(), code.size,
                                   asmjit::CopySectionFlags::kPadSectionBuffer);
  if (err) fail("aarch64: assembler error: {}", asmjit::DebugUtils::errorAsString(err));
  for (const auto& [begin, end] : ranges)
    code.functions.push_back(MachineCode::Range{size_t(holder.labelOffsetFromBase(begin)),
                                                size_t(holder.labelOffsetFromBase(end))});
  return code;
}

}  // namespace exojit::vcode::detail
