// SPDX-License-Identifier: MIT
// The vector loop: when every pipe is commutative and either lane-wise (a map) or a reduction
// the lanes can share, 4 vector registers of message data per iteration go through every pipe,
// each pipe viewing the same bytes as lanes of its own gauge (so gauge conversion is free).
//
// Reductions (cksum, add of words up to 32 bits) keep two vectors of 64-bit lane sums: every
// word's value is added exactly (extracted from its 64-bit lane by masks and shifts), and after
// the loop the lanes are summed and folded into the pipe's accumulator: end-around folding of an
// exact sum gives what word-by-word accumulation would have. The loop runs only while the
// sums cannot overflow (messages under 4 GiB; longer ones take the scalar loops).
#include <map>

#include "exojit/error.h"
#include "generator_p.h"

namespace exojit::pipes::detail {

using vcode::Insn;
using vcode::kImm;
using vcode::Label;
using vcode::Op;

namespace {

constexpr int kVectorUnroll = 4;
constexpr int64_t kMaxVectorBytes = int64_t(1) << 32;

// shuf patterns (nibble i = source byte of byte i, per 128-bit lane) for bswap of each lane.
uint64_t bswap_pattern(int lane_bits) {
  uint64_t p = 0;
  const int lb = lane_bits / 8;
  for (int i = 0; i < 16; ++i) {
    int base = i / lb * lb, src = base + (lb - 1 - i % lb);
    p |= uint64_t(src) << (4 * i);
  }
  return p;
}

}  // namespace

bool Generator::vectorizable() const {
  if (vector_bits_ <= 0) return false;
  for (const PipeSite& s : sites_)
    if (!s.shape.vector_ok) return false;
  return true;
}

// The state of the vector loop while it is recorded.
class VectorLoop {
 public:
  explicit VectorLoop(Generator& g) : g_(g), b_(g.b_), bits_(g.vector_bits_) {}

  void record();

 private:
  Type vtype(int lane) const { return vcode::vector_type(bits_, lane); }
  Reg constant(Type t, int64_t lane_value);  // a vector register set once before the loop
  Reg splat(const PipeSite& site, uint32_t body_reg, Type t);
  void prepare(PipeSite& site);  // constants, splats, accumulators: before the loop label
  void view(int lane);           // makes data_ lanes of `lane` bits
  void map(const PipeSite& site, Reg data);
  void reduce(const PipeSite& site, Reg data);
  void finish_reduction(const PipeSite& site);

  Generator& g_;
  vcode::Builder& b_;
  int bits_;
  std::map<std::pair<Type, int64_t>, Reg> constants_;
  std::map<std::pair<const PipeSite*, uint32_t>, Reg> splats_;
  std::map<const PipeSite*, std::pair<Reg, Reg>> sums_;  // reduction accumulators
  Reg data_[kVectorUnroll];
  int lane_ = 0;
};

// (prepare() makes every constant before the loop; inside it they are only looked up.)
Reg VectorLoop::constant(Type t, int64_t lane_value) {
  if (vcode::lane_bits(t) < 64) lane_value &= (int64_t(1) << vcode::lane_bits(t)) - 1;
  auto key = std::make_pair(t, lane_value);
  auto it = constants_.find(key);
  if (it != constants_.end()) return it->second;
  Reg r = g_.alloc(t);
  b_.set(r, lane_value);
  constants_.emplace(key, r);
  return r;
}

Reg VectorLoop::splat(const PipeSite& site, uint32_t body_reg, Type t) {
  auto key = std::make_pair(&site, body_reg);
  auto it = splats_.find(key);
  if (it != splats_.end()) return it->second;
  Reg r = g_.alloc(t);
  b_.splat(r, g_.persistent_reg(site, body_reg));
  splats_.emplace(key, r);
  return r;
}

void VectorLoop::prepare(PipeSite& site) {
  const Pipe& p = *site.pipe;
  const Type t = vtype(p.gauge);
  if (site.shape.kind == Shape::Reduction) {
    Reg lo = g_.alloc(vtype(64)), hi = g_.alloc(vtype(64));
    b_.set(lo, 0);
    b_.set(hi, 0);
    sums_.emplace(&site, std::make_pair(lo, hi));
    if (p.gauge < 64) constant(vtype(64), (int64_t(1) << p.gauge) - 1);
    return;
  }
  if (site.shape.kind != Shape::Map) return;
  for (const Insn& in : p.code) {
    switch (in.op) {
      case Op::Add:
      case Op::Sub:
      case Op::And:
      case Op::Or:
      case Op::Xor:
        if (in.flags & kImm) constant(t, in.imm);
        break;
      case Op::Com:
        constant(t, -1);
        break;
      case Op::Neg:
        constant(t, 0);
        break;
      default:
        break;
    }
    for (uint32_t r : {in.a, in.b})
      if (in.op != Op::Set && g_.persistent_reg(site, r).valid()) splat(site, r, t);
  }
}

// Reinterprets the data registers as lanes of `lane` bits (a register move, which the CPU
// renames away).
void VectorLoop::view(int lane) {
  if (lane == lane_) return;
  for (Reg& d : data_) {
    Reg v = g_.alloc(vtype(lane));
    b_.mov(v, d);
    b_.putreg(d);
    d = v;
  }
  lane_ = lane;
}

void VectorLoop::map(const PipeSite& site, Reg data) {
  const Pipe& p = *site.pipe;
  const vcode::Function& f = p.body();
  const Type t = vtype(p.gauge);
  const int lane = p.gauge;
  std::map<uint32_t, Reg> temps;
  auto reg = [&](uint32_t body_reg) -> Reg {
    if (body_reg == f.params[0].id) return data;
    if (g_.persistent_reg(site, body_reg).valid()) return splats_.at({&site, body_reg});
    auto it = temps.find(body_reg);
    if (it != temps.end()) return it->second;
    Reg r = g_.alloc(t);
    temps.emplace(body_reg, r);
    return r;
  };
  for (const Insn& in : p.code) {
    const bool imm = in.flags & kImm;
    switch (in.op) {
      case Op::Add:
      case Op::Sub:
      case Op::And:
      case Op::Or:
      case Op::Xor: {
        Reg a = reg(in.a), bv = imm ? constant(t, in.imm) : reg(in.b);
        b_.binary(in.op, reg(in.dst), a, bv);
        break;
      }
      case Op::Lsh:
      case Op::Rsh: {
        // Scalar counts are taken modulo 32 (or 64): a count past the lane width gives 0.
        int64_t count = in.imm & (lane == 64 ? 63 : 31);
        Reg a = reg(in.a), d = reg(in.dst);
        if (count >= lane)
          b_.set(d, 0);
        else
          b_.binary(in.op, d, a, count);
        break;
      }
      case Op::Neg:
        b_.sub(reg(in.dst), constant(t, 0), reg(in.a));
        break;
      case Op::Com: {
        Reg a = reg(in.a);
        b_.xor_(reg(in.dst), a, constant(t, -1));
        break;
      }
      case Op::Mov: {
        Reg a = reg(in.a), d = reg(in.dst);
        if (!(a == d)) b_.mov(d, a);
        break;
      }
      case Op::Bswap:
        if (lane == 8)
          b_.mov(reg(in.dst), reg(in.a));
        else
          b_.shuf(reg(in.dst), reg(in.a), bswap_pattern(lane));
        break;
      case Op::Set:
        b_.set(reg(in.dst), in.imm);
        break;
      default:
        fail("pipe '{}': internal error: `{}` is not lane-wise", p.name, vcode::op_name(in.op));
    }
  }
  for (auto& [id, r] : temps) b_.putreg(r);
}

// Adds every word of `data` (lanes of the pipe's gauge) into the two 64-bit lane sums.
void VectorLoop::reduce(const PipeSite& site, Reg data) {
  const int g = site.pipe->gauge;
  auto [lo, hi] = sums_.at(&site);
  Reg mask = constant(vtype(64), (int64_t(1) << g) - 1);
  Reg whole = g_.alloc(vtype(64)), field = g_.alloc(vtype(64));
  b_.mov(whole, data);
  for (int k = 0; k < 64 / g; ++k) {
    if (k == 64 / g - 1) {
      b_.rsh(field, whole, int64_t(k * g));
    } else if (k == 0) {
      b_.and_(field, whole, mask);
    } else {
      b_.rsh(field, whole, int64_t(k * g));
      b_.and_(field, field, mask);
    }
    Reg sum = k % 2 ? hi : lo;
    b_.add(sum, sum, field);
  }
  b_.putreg(field);
  b_.putreg(whole);
}

// After the loop: acc = fold(acc + the exact sum of every word the lanes took).
void VectorLoop::finish_reduction(const PipeSite& site) {
  auto [lo, hi] = sums_.at(&site);
  b_.add(lo, lo, hi);
  Reg total = g_.alloc(Type::U64);
  b_.hsum(total, lo);
  Reg acc = g_.persistent_reg(site, site.shape.acc);
  const Type at = site.shape.acc_type;
  if (site.shape.op == Op::Add) {
    Reg part = g_.alloc(at);
    b_.cvt(part, total);
    b_.add(acc, acc, part);
    b_.putreg(part);
  } else if (vcode::type_bits(at) == 64) {
    b_.cksum(acc, acc, total);
  } else {  // u32: the low and high halves, each with end-around carry
    Reg half = g_.alloc(Type::U32);
    b_.cvt(half, total);
    b_.cksum(acc, acc, half);
    b_.rsh(total, total, 32);
    b_.cvt(half, total);
    b_.cksum(acc, acc, half);
    b_.putreg(half);
  }
  b_.putreg(total);
}

void VectorLoop::record() {
  const int64_t vbytes = bits_ / 8, step = vbytes * kVectorUnroll;
  Label loop = b_.label(), done = b_.label();
  bool reductions = false;
  for (const PipeSite& s : g_.sites_) reductions |= s.shape.kind == Shape::Reduction;
  b_.blt(g_.rem_, step, done);
  if (reductions) b_.bge(g_.rem_, kMaxVectorBytes, done);
  for (PipeSite& s : g_.sites_) prepare(s);

  b_.place(loop);
  const size_t first = b_.function().code.size();
  lane_ = g_.sites_.front().pipe->gauge;
  for (int u = 0; u < kVectorUnroll; ++u) {
    data_[u] = g_.alloc(vtype(lane_));
    b_.ldu(data_[u], g_.src_, u * vbytes);
  }
  for (const PipeSite& s : g_.sites_) {
    if (s.shape.kind == Shape::Copy) continue;
    if (s.shape.kind == Shape::Reduction) {
      for (Reg d : data_) reduce(s, d);
      continue;
    }
    view(s.pipe->gauge);
    for (Reg d : data_) map(s, d);
  }
  if (g_.dir_ == Direction::Write)
    for (int u = 0; u < kVectorUnroll; ++u) b_.stu(data_[u], g_.dst_, u * vbytes);
  for (Reg d : data_) b_.putreg(d);
  g_.advance(step);
  b_.bge(g_.rem_, step, loop);
  g_.cost_.insns_per_iteration = uint32_t(b_.function().code.size() - first);
  g_.cost_.bytes_per_iteration = uint32_t(step);
  g_.cost_.vector_bits = bits_;

  for (const PipeSite& s : g_.sites_)
    if (s.shape.kind == Shape::Reduction) finish_reduction(s);
  for (auto& [key, r] : constants_) b_.putreg(r);
  for (auto& [key, r] : splats_) b_.putreg(r);
  for (auto& [key, sums] : sums_) b_.putreg(sums.first), b_.putreg(sums.second);
  b_.place(done);
}

void Generator::vector_loop() {
  VectorLoop(*this).record();
}

}  // namespace exojit::pipes::detail
