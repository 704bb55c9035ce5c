// SPDX-License-Identifier: MIT
// The scalar loops: 64-bit chunks (unrolled), words of the widest gauge, and the tail. Each pipe
// runs on the pieces of its own gauge that a chunk or word holds, in memory order; gauge
// conversion is the extraction and reassembly of those pieces.
#include <map>

#include "exojit/error.h"
#include "generator_p.h"

namespace exojit::pipes::detail {

using vcode::Insn;
using vcode::kImm;
using vcode::Label;
using vcode::Op;

namespace {

constexpr int kChunkUnroll = 4;  // 64-bit chunks per iteration of the chunk loop

Type uint_type(int bits) {
  return bits == 8 ? Type::U8 : bits == 16 ? Type::U16 : bits == 32 ? Type::U32 : Type::U64;
}

bool reads_b(const Insn& in) {
  return vcode::operand_roles(in) & vcode::kUsesB;
}

}  // namespace

// Copies the body's records with its registers renamed: the input to `input`, persistent
// registers to the loop's, temporaries to fresh registers released at the end (so that pipes
// never see each other's names).
void Generator::run_body(const PipeSite& site, Reg input) {
  const Pipe& p = *site.pipe;
  const vcode::Function& f = p.body();
  std::map<uint32_t, Reg> temps;
  auto map = [&](uint32_t body_reg) -> Reg {
    if (body_reg == f.params[0].id) return input;
    Reg r = persistent_reg(site, body_reg);
    if (r.valid()) return r;
    auto it = temps.find(body_reg);
    if (it != temps.end()) return it->second;
    Reg t = alloc(f.regs[body_reg].type);
    temps.emplace(body_reg, t);
    return t;
  };
  for (const Insn& in : p.code) {
    switch (vcode::form_of(in.op)) {  // the forms check_body (pipe.cpp) lets through
      case vcode::Form::SetImm:
        b_.set(map(in.dst), in.imm);
        break;
      case vcode::Form::Binary: {
        Reg a = map(in.a);
        if (reads_b(in))
          b_.binary(in.op, map(in.dst), a, map(in.b));
        else
          b_.binary(in.op, map(in.dst), a, in.imm);
        break;
      }
      case vcode::Form::Unary: {
        Reg a = map(in.a);
        b_.unary(in.op, map(in.dst), a);
        break;
      }
      default:
        fail("pipe '{}': {} in a pipe body", p.name, vcode::op_name(in.op));
    }
  }
  for (auto& [id, r] : temps) b_.putreg(r);
}

// One pipe on a word of `word`'s width. In the tail, `rem` (bytes present, 1 .. width/8 - 1)
// skips the pieces wholly past the end, and `mask` keeps only the present bytes of the output.
void Generator::pipe_on_word(PipeSite& site, Reg word, Reg rem, Reg mask) {
  const Pipe& p = *site.pipe;
  const Type wt = b_.function().regs[word.id].type;
  const int width = vcode::type_bits(wt), g = p.gauge;
  if (site.shape.kind == Shape::Copy) return;
  if (g >= width) {  // (a tail word is as wide as the widest gauge)
    run_body(site, word);
  } else {
    const Type gt = uint_type(g);
    const bool modifies = !p.non_modifying();
    Reg rebuilt = modifies ? alloc(wt) : Reg{};
    for (int k = 0; k < width / g; ++k) {
      Label skip;
      if (rem.valid() && k > 0) {
        skip = b_.label();
        b_.ble(rem, int64_t(k * g / 8), skip);
      }
      Reg piece = alloc(gt);
      if (k == 0) {
        b_.cvt(piece, word);
      } else {
        Reg shifted = alloc(wt);
        b_.rsh(shifted, word, int64_t(k * g));
        b_.cvt(piece, shifted);
        b_.putreg(shifted);
      }
      run_body(site, piece);
      if (modifies) {
        if (k == 0) {
          b_.cvt(rebuilt, piece);
        } else {
          Reg part = alloc(wt);
          b_.cvt(part, piece);
          b_.lsh(part, part, int64_t(k * g));
          b_.or_(rebuilt, rebuilt, part);
          b_.putreg(part);
        }
      }
      b_.putreg(piece);
      if (rem.valid() && k > 0) b_.place(skip);
    }
    if (modifies) {
      b_.mov(word, rebuilt);
      b_.putreg(rebuilt);
    }
  }
  if (mask.valid() && !p.non_modifying()) b_.and_(word, word, mask);
}

void Generator::process(Reg word, Reg rem) {
  Reg mask;
  bool modifies = false;
  for (const PipeSite& site : sites_) modifies |= !site.pipe->non_modifying();
  if (rem.valid() && modifies) {  // mask = 2^(8 rem) - 1 (rem < 8, so no overflow)
    const Type wt = b_.function().regs[word.id].type;
    mask = alloc(wt);
    Reg bits = alloc(wt);
    b_.cvt(bits, rem);
    b_.lsh(bits, bits, 3);
    b_.set(mask, 1);
    b_.lsh(mask, mask, bits);
    b_.sub(mask, mask, 1);
    b_.putreg(bits);
  }
  for (PipeSite& site : sites_) pipe_on_word(site, word, rem, mask);
  if (mask.valid()) b_.putreg(mask);
}

void Generator::process_chunk(Reg chunk) {
  for (PipeSite& site : sites_) {
    if (site.shape.kind == Shape::Reduction && site.shape.chunk_ok) {
      Reg acc = persistent_reg(site, site.shape.acc);
      if (site.shape.op == Op::Crc32c)
        b_.crc32c(acc, acc, chunk);
      else if (site.wide.valid())
        b_.cksum(site.wide, site.wide, chunk);
      else
        b_.cksum(acc, acc, chunk);
      continue;
    }
    pipe_on_word(site, chunk, Reg{}, Reg{});
  }
}

void Generator::chunk_loop() {
  const int64_t step = 8 * kChunkUnroll;
  Label loop = b_.label(), done = b_.label();
  b_.blt(rem_, step, done);
  b_.place(loop);
  size_t first = b_.function().code.size();
  Reg chunk = alloc(Type::U64);
  b_.name(chunk, "chunk");
  for (int u = 0; u < kChunkUnroll; ++u) {
    b_.ldu(chunk, src_, 8 * u);
    process_chunk(chunk);
    if (dir_ == Direction::Write) b_.stu(chunk, dst_, 8 * u);
  }
  b_.putreg(chunk);
  advance(step);
  b_.bge(rem_, step, loop);
  if (cost_.vector_bits == 0) {
    cost_.insns_per_iteration = uint32_t(b_.function().code.size() - first);
    cost_.bytes_per_iteration = uint32_t(step);
  }
  b_.place(done);
}

void Generator::word_loop() {
  const int64_t step = widest_gauge_ / 8;
  Label loop = b_.label(), done = b_.label();
  b_.blt(rem_, step, done);
  b_.place(loop);
  Reg word = alloc(uint_type(widest_gauge_));
  b_.ldu(word, src_, 0);
  process(word, Reg{});
  if (dir_ == Direction::Write) b_.stu(word, dst_, 0);
  b_.putreg(word);
  advance(step);
  b_.bge(rem_, step, loop);
  b_.place(done);
}

// Fewer than widest_gauge/8 bytes remain: gather them into a zero-padded word, run the pipes
// under the tail rule, and write back only the bytes present.
void Generator::tail() {
  if (widest_gauge_ == 8) return;
  const Type wt = uint_type(widest_gauge_);
  Label done = b_.label();
  b_.beq(rem_, 0, done);
  Reg word = alloc(wt);
  b_.name(word, "tail");
  {  // word = the rem bytes at src, little-endian, from the last one down
    Reg i = alloc(Type::U64), byte = alloc(Type::U8), wide = alloc(wt);
    b_.set(word, 0);
    b_.mov(i, rem_);
    Label gather = b_.label();
    b_.place(gather);
    b_.sub(i, i, 1);
    b_.ld(byte, src_, i, 0);
    b_.cvt(wide, byte);
    b_.lsh(word, word, 8);
    b_.or_(word, word, wide);
    b_.bgt(i, 0, gather);
    for (Reg r : {i, byte, wide}) b_.putreg(r);
  }
  process(word, rem_);
  if (dir_ == Direction::Write) {  // the rem bytes back, first one first
    Reg i = alloc(Type::U64), byte = alloc(Type::U8);
    b_.set(i, 0);
    Label scatter = b_.label();
    b_.place(scatter);
    b_.cvt(byte, word);
    b_.st(byte, dst_, i, 0);
    b_.rsh(word, word, 8);
    b_.add(i, i, 1);
    b_.blt(i, rem_, scatter);
    b_.putreg(i);
    b_.putreg(byte);
  }
  b_.putreg(word);
  b_.place(done);
}

// The chunk-wide cksum accumulators join their pipe's accumulator: end-around folding of the
// exact 64-bit one's-complement sum gives the value word-by-word accumulation would have.
void Generator::fold_wide_accumulators() {
  for (PipeSite& site : sites_) {
    if (!site.wide.valid()) continue;
    Reg acc = persistent_reg(site, site.shape.acc);  // u32
    Reg half = alloc(Type::U32), high = alloc(Type::U64);
    b_.cvt(half, site.wide);
    b_.cksum(acc, acc, half);
    b_.rsh(high, site.wide, 32);
    b_.cvt(half, high);
    b_.cksum(acc, acc, half);
    b_.putreg(half);
    b_.putreg(high);
    b_.putreg(site.wide);
  }
}

}  // namespace exojit::pipes::detail
