// SPDX-License-Identifier: MIT
// The classic-BPF JIT: one vcode function per program, `u32 bpf_filter(p pkt, u64 wirelen,
// u64 caplen)`, in the program's own order (every BPF instruction one or two vcode ones; a jump
// target gets a label, a jump to the next instruction none). A and X live in registers, scratch
// memory in a stack local (only when the program uses it).
//
// Bounds checks are hoisted (the must-load analysis below): at a load whose bytes are not yet
// known to be in the packet, the code checks everything that every accepting path from there
// loads anyway, so one compare usually covers a whole filter's fixed-offset loads, and one per
// value of X its X-relative ones. This is exact: if a packet is shorter than what every
// accepting path from an instruction loads, each of those paths fails a load (return 0) and the
// other paths return 0 by definition.
#include <exojit/vcode/builder.h>
#include <exojit/vcode/code.h>

#include <algorithm>
#include <limits>

#include "bpf_ops_p.h"
#include "exojit/dpf/bpf.h"
#include "exojit/error.h"

namespace exojit::dpf {

using namespace detail::bpf;
using vcode::Builder;
using vcode::Label;
using vcode::Reg;
using vcode::Type;

namespace {

constexpr uint64_t kAll = std::numeric_limits<uint64_t>::max();  // "every path returns 0"

// Successor instructions (none after a ret).
std::vector<size_t> successors(std::span<const BpfInsn> p, size_t pc) {
  const BpfInsn& in = p[pc];
  if (cls(in.code) == kRet) return {};
  if (in.code == (kJmp | kJa)) return {size_t(ja_target(in, pc))};
  if (is_cond_jump(in.code)) return {pc + 1 + in.jt, pc + 1 + in.jf};
  return {pc + 1};
}

// Registers as bits: scratch words 0-15, A, X.
constexpr uint32_t kBitA = 1u << 16, kBitX = 1u << 17;

uint32_t reads(const BpfInsn& in) {
  const uint16_t c = in.code;
  switch (cls(c)) {
    case kLd:
      return mode(c) == kMem ? 1u << in.k : mode(c) == kInd ? kBitX : 0;
    case kLdx:
      return mode(c) == kMem ? 1u << in.k : 0;
    case kSt:
      return kBitA;
    case kStx:
      return kBitX;
    case kAlu:
      return kBitA | (op(c) != kNeg && src(c) == kX ? kBitX : 0);
    case kJmp:
      return op(c) == kJa ? 0 : kBitA | (src(c) == kX ? kBitX : 0);
    case kRet:
      return c == (kRet | kRetA) ? kBitA : 0;
    default:  // misc
      return c == (kMisc | kTax) ? kBitA : kBitX;
  }
}

uint32_t writes(const BpfInsn& in) {
  switch (cls(in.code)) {
    case kLd:
    case kAlu:
      return kBitA;
    case kLdx:
      return kBitX;
    case kSt:
    case kStx:
      return 1u << in.k;
    case kMisc:
      return in.code == (kMisc | kTax) ? kBitX : kBitA;
    default:
      return 0;
  }
}

// What the code generator needs to know about the program.
struct Analysis {
  std::vector<bool> reachable;
  std::vector<bool> target;  // some jump lands here (not only a fall-through)
  bool backward = false;     // has a backward `ja`
  uint32_t undefined = 0;    // registers some path reads before writing them: start them at 0
  // Bytes from the packet start (need) and from X (need_x) that every accepting path from each
  // instruction loads (kAll: no accepting path). Only without backward jumps.
  std::vector<uint64_t> need, need_x;
};

Analysis analyse(std::span<const BpfInsn> p) {
  const size_t n = p.size();
  Analysis a;
  a.reachable.assign(n, false);
  a.target.assign(n, false);
  std::vector<size_t> work{0};
  a.reachable[0] = true;
  while (!work.empty()) {
    size_t pc = work.back();
    work.pop_back();
    const BpfInsn& in = p[pc];
    if (in.code == (kJmp | kJa) && ja_target(in, pc) <= int64_t(pc)) a.backward = true;
    for (size_t s : successors(p, pc)) {
      if (s != pc + 1 || cls(in.code) == kJmp) a.target[s] = true;
      if (!a.reachable[s]) a.reachable[s] = true, work.push_back(s);
    }
  }
  // Definitely written registers on entry to each instruction (intersection over predecessors),
  // to a fixed point (backward jumps make loops).
  std::vector<uint32_t> defined(n, ~0u);
  defined[0] = 0;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t pc = 0; pc < n; ++pc) {
      if (!a.reachable[pc]) continue;
      uint32_t out = defined[pc] | writes(p[pc]);
      for (size_t s : successors(p, pc))
        if ((defined[s] & out) != defined[s] && s != 0) defined[s] &= out, changed = true;
    }
  }
  for (size_t pc = 0; pc < n; ++pc)
    if (a.reachable[pc]) a.undefined |= reads(p[pc]) & ~defined[pc];
  if (a.backward) return a;
  a.need.assign(n, 0);
  a.need_x.assign(n, 0);
  for (size_t pc = n; pc-- > 0;) {
    const BpfInsn& in = p[pc];
    const uint16_t c = in.code;
    if (cls(c) == kRet) {
      bool rejects = c == (kRet | kK) && in.k == 0;
      a.need[pc] = a.need_x[pc] = rejects ? kAll : 0;
      continue;
    }
    uint64_t next = kAll, next_x = kAll;
    for (size_t s : successors(p, pc)) next = std::min(next, a.need[s]);
    for (size_t s : successors(p, pc)) next_x = std::min(next_x, a.need_x[s]);
    uint64_t own = 0, own_x = 0;
    if (cls(c) == kLd && mode(c) == kAbs) own = uint64_t(in.k) + load_bytes(c);
    if (c == (kLdx | kMsh | kB)) own = uint64_t(in.k) + 1;
    if (cls(c) == kLd && mode(c) == kInd) own = own_x = uint64_t(in.k) + load_bytes(c);
    a.need[pc] = std::max(own, next);
    // A new X starts afresh: what the old X needed says nothing about it.
    a.need_x[pc] = writes(in) & kBitX ? 0 : std::max(own_x, next_x);
  }
  return a;
}

class Jit {
 public:
  Jit(vcode::Module& m, std::span<const BpfInsn> p, bool harden)
      : p_(p),
        a_(analyse(p)),
        b_(m, "bpf_filter", Type::U32, {Type::P, Type::U64, Type::U64}),
        harden_(harden) {}

  void run() {
    const size_t n = p_.size();
    pkt_ = b_.arg(0), wirelen_ = b_.arg(1), caplen_ = b_.arg(2);
    b_.name(pkt_, "pkt"), b_.name(wirelen_, "wirelen"), b_.name(caplen_, "caplen");
    acc_ = b_.getreg(Type::U32), x_ = b_.getreg(Type::U32);
    b_.name(acc_, "A"), b_.name(x_, "X");
    if (harden_) {  // every check passed so far: all ones (README "Threat model")
      ok_ = b_.getreg(Type::U64, vcode::RegClass::Var);
      b_.name(ok_, "ok");
      b_.set(ok_, -1);
    }
    labels_.resize(n);
    for (size_t pc = 0; pc < n; ++pc)
      if (a_.target[pc]) labels_[pc] = b_.label();
    ret0_ = b_.label();
    prologue();
    checked_.assign(n, kAll);
    checked_x_.assign(n, kAll);
    checked_[0] = checked_x_[0] = 0;
    for (size_t pc = 0; pc < n; ++pc) {
      if (a_.target[pc]) b_.place(labels_[pc]);
      if (a_.reachable[pc]) insn(pc);
    }
    b_.place(ret0_);
    b_.ret(int64_t(0));
    b_.finish();
  }

 private:
  bool uses_memory() const {
    for (const BpfInsn& in : p_)
      if (mode(in.code) == kMem || cls(in.code) == kSt || cls(in.code) == kStx) return true;
    return false;
  }

  void prologue() {
    if (a_.undefined & kBitA || a_.backward) b_.set(acc_, 0);
    if (a_.undefined & kBitX || a_.backward) b_.set(x_, 0);
    if (uses_memory()) mem_ = b_.local(4 * kBpfMemWords, 4);
    // With loops, every word the program reads (the analysis above is for straight paths).
    uint32_t zero = a_.undefined & 0xffffu;
    if (a_.backward)
      for (const BpfInsn& in : p_) zero |= reads(in) & 0xffffu;
    if (zero || a_.backward) {
      Reg z = b_.getreg(Type::U32);
      b_.set(z, 0);
      for (unsigned w = 0; w < kBpfMemWords; ++w)
        if (zero >> w & 1) b_.st(z, mem_, 4 * w);
      if (a_.backward) {
        jumps_ = b_.local(Type::U32);
        b_.st(z, jumps_);
      }
      b_.putreg(z);
    }
  }

  // Flows the bounds facts of the instruction just emitted to its successors.
  void flow(size_t pc, uint64_t checked, uint64_t checked_x) {
    for (size_t s : successors(p_, pc)) {
      if (s <= pc) continue;  // a backward jump: nothing is hoisted in such programs
      checked_[s] = std::min(checked_[s], checked);
      checked_x_[s] = std::min(checked_x_[s], checked_x);
    }
  }

  void jump_to(size_t target, size_t pc) {
    if (target != pc + 1) b_.jmp(labels_[target]);
  }

  // Makes sure `end` bytes from the packet start are present (else return 0); returns what is
  // known present afterwards.
  uint64_t check_abs(size_t pc, uint64_t end, uint64_t checked) {
    if (end <= checked) return checked;
    uint64_t want = a_.backward ? end : a_.need[pc];
    if (want == kAll) {  // every path from here returns 0
      b_.jmp(ret0_);
      return kAll;
    }
    b_.blt(caplen_, int64_t(want), ret0_);
    if (harden_) {  // ok &= (want <= caplen): 0 from a mispredicted check on
      Reg m = b_.getreg(Type::U64);
      b_.set(m, int64_t(want));
      b_.bound_mask(m, m, caplen_);
      b_.and_(ok_, ok_, m);
      b_.putreg(m);
    }
    return want;
  }

  void insn(size_t pc) {
    const BpfInsn& in = p_[pc];
    const uint16_t c = in.code;
    const uint32_t k = in.k;
    // Bytes known present: none in programs with loops (each load checks for itself).
    uint64_t checked = a_.backward ? 0 : checked_[pc];
    uint64_t checked_x = a_.backward ? 0 : checked_x_[pc];
    switch (cls(c)) {
      case kRet:
        if (c == (kRet | kRetA))
          b_.ret(acc_);
        else
          b_.ret(int64_t(k));
        return;
      case kLd:
      case kLdx: {
        Reg dst = cls(c) == kLd ? acc_ : x_;
        switch (mode(c)) {
          case kImm:
            b_.set(dst, int64_t(k));
            break;
          case kLen:
            b_.cvt(dst, wirelen_);
            break;
          case kMem:
            b_.ld(dst, mem_, 4 * int64_t(k));
            break;
          case kAbs:
            checked = check_abs(pc, uint64_t(k) + load_bytes(c), checked);
            if (checked != kAll) load(dst, c, Reg{}, k);
            break;
          case kMsh:
            checked = check_abs(pc, uint64_t(k) + 1, checked);
            if (checked == kAll) break;
            load(dst, c, Reg{}, k);
            b_.and_(dst, dst, 0xf);
            b_.lsh(dst, dst, 2);
            break;
          case kInd: {
            Reg index = b_.getreg(Type::U64);
            b_.cvt(index, x_);
            uint64_t end = uint64_t(k) + load_bytes(c);
            if (end > checked_x) {
              uint64_t want = a_.backward ? end : a_.need_x[pc];
              if (want == kAll) {
                b_.jmp(ret0_);
                b_.putreg(index);
                return;
              }
              Reg last = b_.getreg(Type::U64);
              b_.add(last, index, int64_t(want));
              b_.bgt(last, caplen_, ret0_);
              if (harden_) {
                b_.bound_mask(last, last, caplen_);
                b_.and_(ok_, ok_, last);
              }
              b_.putreg(last);
              checked_x = want;
            }
            load(dst, c, index, k);
            b_.putreg(index);
            break;
          }
        }
        if (cls(c) == kLdx) checked_x = 0;
        break;
      }
      case kSt:
        b_.st(acc_, mem_, 4 * int64_t(k));
        break;
      case kStx:
        b_.st(x_, mem_, 4 * int64_t(k));
        break;
      case kAlu:
        alu(in);
        break;
      case kJmp:
        if (op(c) == kJa) {
          size_t to = size_t(ja_target(in, pc));
          if (to <= pc)
            backward_jump(to);
          else
            jump_to(to, pc);
        } else {
          conditional(in, pc);
        }
        break;
      case kMisc:
        if (c == (kMisc | kTax)) {
          b_.mov(x_, acc_);
          checked_x = 0;
        } else {
          b_.mov(acc_, x_);
        }
        break;
    }
    if (checked != kAll) flow(pc, checked, checked_x);
  }

  // A big-endian load of the instruction's size into the 32-bit register `dst`. Hardened, the
  // offset (index + k) is and-ed with the checks' mask: a mispredicted check reads the packet's
  // first bytes.
  void load(Reg dst, uint16_t c, Reg index, uint32_t k) {
    unsigned bytes = c == (kLdx | kMsh | kB) ? 1 : load_bytes(c);
    Reg r = dst;
    if (bytes != 4) r = b_.getreg(bytes == 2 ? Type::U16 : Type::U8);
    Reg offset;  // taken for an absolute load (an indexed one masks its own index copy)
    if (harden_) {
      if (index.valid()) {
        b_.add(index, index, int64_t(k));
      } else {
        index = offset = b_.getreg(Type::U64);
        b_.set(index, int64_t(k));
      }
      b_.and_(index, index, ok_);
      k = 0;
    }
    if (index.valid()) {
      if (bytes == 1)
        b_.ld(r, pkt_, index, int64_t(k));
      else
        b_.ldbe(r, pkt_, index, int64_t(k));
    } else {
      if (bytes == 1)
        b_.ld(r, pkt_, int64_t(k));
      else
        b_.ldbe(r, pkt_, int64_t(k));
    }
    if (bytes != 4) {
      b_.cvt(dst, r);
      b_.putreg(r);
    }
    if (offset.valid()) b_.putreg(offset);
  }

  void alu(const BpfInsn& in) {
    const uint16_t o = op(in.code);
    if (o == kNeg) return b_.neg(acc_, acc_);
    static constexpr std::pair<uint16_t, vcode::Op> ops[] = {
        {kAdd, vcode::Op::Add}, {kSub, vcode::Op::Sub}, {kMul, vcode::Op::Mul},
        {kDiv, vcode::Op::Div}, {kMod, vcode::Op::Mod}, {kAnd, vcode::Op::And},
        {kOr, vcode::Op::Or},   {kXor, vcode::Op::Xor}, {kLsh, vcode::Op::Lsh},
        {kRsh, vcode::Op::Rsh}};
    vcode::Op vop = vcode::Op::Add;
    for (auto [bpf_op, v] : ops)
      if (bpf_op == o) vop = v;
    if (src(in.code) == kK) return b_.binary(vop, acc_, acc_, int64_t(in.k));
    if (o == kDiv || o == kMod) {
      b_.beq(x_, 0, ret0_);  // libpcap and the kernel: division by zero rejects the packet
      return b_.binary(vop, acc_, acc_, x_);
    }
    if (o == kLsh || o == kRsh) {  // libpcap: a shift by 32 or more gives 0 (vcode: count mod 32)
      Label wide = b_.label(), done = b_.label();
      b_.bge(x_, 32, wide);
      b_.binary(vop, acc_, acc_, x_);
      b_.jmp(done);
      b_.place(wide);
      b_.set(acc_, 0);
      b_.place(done);
      return;
    }
    b_.binary(vop, acc_, acc_, x_);
  }

  // if (A op operand) goto jt else goto jf, falling through where a target is next.
  void conditional(const BpfInsn& in, size_t pc) {
    const size_t next = pc + 1, t = next + in.jt, f = next + in.jf;
    if (t == f) return jump_to(t, pc);
    const uint16_t o = op(in.code);
    Reg value = acc_;
    bool test_nonzero = o == kJset;
    if (test_nonzero) {
      value = b_.getreg(Type::U32);
      if (src(in.code) == kX)
        b_.and_(value, acc_, x_);
      else
        b_.and_(value, acc_, int64_t(in.k));
    }
    // Branch to `to` when the condition is `sense`.
    auto branch = [&](bool sense, size_t to) {
      Label l = labels_[to];
      vcode::Op bop = test_nonzero ? (sense ? vcode::Op::Bne : vcode::Op::Beq)
                      : o == kJeq  ? (sense ? vcode::Op::Beq : vcode::Op::Bne)
                      : o == kJgt  ? (sense ? vcode::Op::Bgt : vcode::Op::Ble)
                                   : (sense ? vcode::Op::Bge : vcode::Op::Blt);
      if (test_nonzero)
        compare(bop, value, int64_t(0), l);
      else if (src(in.code) == kX)
        compare(bop, value, x_, l);
      else
        compare(bop, value, int64_t(in.k), l);
    };
    if (f == next) {
      branch(true, t);
    } else if (t == next) {
      branch(false, f);
    } else {
      branch(true, t);
      b_.jmp(labels_[f]);
    }
    if (test_nonzero) b_.putreg(value);
  }

  template <typename B>
  void compare(vcode::Op op, Reg a, B b, Label l) {
    switch (op) {
      case vcode::Op::Beq:
        return b_.beq(a, b, l);
      case vcode::Op::Bne:
        return b_.bne(a, b, l);
      case vcode::Op::Bgt:
        return b_.bgt(a, b, l);
      case vcode::Op::Ble:
        return b_.ble(a, b, l);
      case vcode::Op::Bge:
        return b_.bge(a, b, l);
      default:
        return b_.blt(a, b, l);
    }
  }

  // libpcap >= 1.11: at most kBpfMaxBackwardJumps backward jumps per packet, then reject.
  void backward_jump(size_t to) {
    Reg count = b_.getreg(Type::U32);
    b_.ld(count, jumps_);
    b_.bge(count, int64_t(kBpfMaxBackwardJumps), ret0_);
    b_.add(count, count, 1);
    b_.st(count, jumps_);
    b_.putreg(count);
    b_.jmp(labels_[to]);
  }

  std::span<const BpfInsn> p_;
  Analysis a_;
  Builder b_;
  Reg pkt_, wirelen_, caplen_, acc_, x_;
  bool harden_;
  Reg ok_;  // hardened: the and of every bounds check's mask so far
  vcode::Local mem_, jumps_;
  std::vector<Label> labels_;
  Label ret0_;
  // Bytes known present on entry to each instruction (from the start, and from X).
  std::vector<uint64_t> checked_, checked_x_;
};

}  // namespace

struct BpfFilter::Impl {
  std::vector<BpfInsn> program;
  vcode::Module module;
  vcode::Code code;
};

BpfFilter::BpfFilter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  fn_ = impl_->code.as<Fn>("bpf_filter");
}
BpfFilter::BpfFilter(BpfFilter&&) noexcept = default;
BpfFilter& BpfFilter::operator=(BpfFilter&&) noexcept = default;
BpfFilter::~BpfFilter() = default;

std::span<const BpfInsn> BpfFilter::program() const {
  return impl_->program;
}
const vcode::Module& BpfFilter::module() const {
  return impl_->module;
}
const vcode::Code& BpfFilter::code() const {
  return impl_->code;
}

BpfFilter compile_bpf(std::span<const BpfInsn> program, BpfCompileOptions options) {
  validate_bpf(program);
  auto impl = std::make_unique<BpfFilter::Impl>();
  impl->program.assign(program.begin(), program.end());
  Jit(impl->module, impl->program, !options.trusted).run();
  vcode::CompileOptions co;
  co.blind_constants = !options.trusted;
  impl->code = vcode::compile(impl->module, co);
  return BpfFilter(std::move(impl));
}

}  // namespace exojit::dpf
