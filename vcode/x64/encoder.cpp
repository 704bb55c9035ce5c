// SPDX-License-Identifier: MIT
// The x86-64 encoder (see encoder.h): prefixes, REX, VEX, ModRM/SIB, labels and fix-ups.
#include <fmt/format.h>

#include <algorithm>

#include "encoder_p.h"

namespace exojit::vcode::detail::x64 {

namespace {

// Enough for most functions without growing (a copy): untouched bytes cost nothing.
constexpr size_t kInitialBytes = 16384;

constexpr uint8_t kLegacyPrefix[4] = {0, 0x66, 0xf3, 0xf2};  // by VecOp::pp

}  // namespace

Encoder::Encoder(size_t max_bytes)
    : buf_(new uint8_t[kInitialBytes + kSlack]),
      capacity_(kInitialBytes),
      max_bytes_(std::max(max_bytes, kSlack)) {
  p_ = limit_ = buf_.get();
  end_ = p_ + std::min(capacity_, max_bytes_);
}

std::unique_ptr<uint8_t[]> Encoder::release() {
  p_ = end_ = nullptr;
  return std::move(buf_);
}

void Encoder::fail(std::string why) {
  if (failed_) return;
  failed_ = true;
  error_ = std::move(why);
}

// Doubles the room. Past the size limit the code is an error and writing starts over at the
// beginning (the bytes are discarded): every write stays in bounds without further checks.
void Encoder::grow(size_t need) {
  const size_t used = offset();
  if (need > kSlack) need = kSlack;  // a reservation is at most kSlack bytes
  if (used + need > max_bytes_) {
    fail(fmt::format("the code exceeds {} bytes", max_bytes_));
    p_ = buf_.get();
    return;
  }
  size_t cap = capacity_;
  while (cap - used < need) cap *= 2;
  if (cap != capacity_) {
    std::unique_ptr<uint8_t[]> bigger(new uint8_t[cap + kSlack]);
    std::memcpy(bigger.get(), buf_.get(), used);
    buf_ = std::move(bigger);
    capacity_ = cap;
    p_ = buf_.get() + used;
  }
  end_ = buf_.get() + std::min(capacity_, max_bytes_);
}

void Encoder::report_overrun() {
  fail(fmt::format("{} bytes written where {} were reserved", size_t(p_ - limit_) + reserved_,
                   reserved_));
}

Label Encoder::new_label() {
  labels_.push_back(-1);
  return Label{uint32_t(labels_.size() - 1)};
}

Label Encoder::new_labels(uint32_t n) {
  Label first{uint32_t(labels_.size())};
  labels_.resize(labels_.size() + n, -1);
  return first;
}

void Encoder::bind(Label l) {
  if (labels_[l.id] >= 0) return fail(fmt::format("label {} bound twice", l.id));
  labels_[l.id] = int64_t(offset());
}

bool Encoder::finish() {
  if (failed_) return false;
  uint8_t* base = buf_.get();
  for (const Fixup& f : fixups_) {
    int64_t target = labels_[f.label];
    if (target < 0) {
      fail(fmt::format("label {} is used but never bound", f.label));
      break;
    }
    store32(base + f.at, uint32_t(int32_t(target + f.addend - int64_t(f.next))));
  }
  fixups_.clear();
  return !failed_;
}

// ---------------------------------------------------------------------------------------------
// Legacy encodings.

void Encoder::short_reg(uint8_t code, uint8_t id) {
  uint8_t* p = p_;
  if (id & 8) *p++ = 0x41;
  *p++ = uint8_t(code | (id & 7));
  p_ = p;
}

// ---------------------------------------------------------------------------------------------
// General-purpose instructions with immediates.

void Encoder::shiftx(Shift op, Gp d, Gp s, Gp count) {
  const uint8_t pp = op == Shift::Shl ? 1 : op == Shift::Sar ? 2 : 3;
  vex(VecOp{pp, 2, 0xf7}, false, d.bits == 64, d.id, count.id, s.id);
}

void Encoder::bswap(Gp d) {
  uint8_t* p = p_;
  uint8_t rex = uint8_t(0x40 | (d.bits == 64 ? 8 : 0) | (d.id & 8) >> 3);
  if (rex != 0x40) *p++ = rex;
  p[0] = 0x0f;
  p[1] = uint8_t(0xc8 | (d.id & 7));
  p_ = p + 2;
}

void Encoder::btc(Gp d, uint8_t bit) {
  gp_rr(d.bits, false, 1, 0xba, 7, d.id);
  *p_++ = bit;
}

// crc32 d, s: F2 0F 38 F0 (8-bit source) or F1; the operand-size prefix goes before F2.
void Encoder::crc32(Gp d, Gp s) {
  uint8_t* p = p_;
  if (s.bits == 16) *p++ = 0x66;
  *p++ = 0xf2;
  uint8_t rex = uint8_t(0x40 | (s.bits == 64 ? 8 : 0) | (d.id & 8) >> 1 | (s.id & 8) >> 3);
  if (rex != 0x40 || byte_rex(s, s)) *p++ = rex;
  p[0] = 0x0f;
  p[1] = 0x38;
  p[2] = s.bits == 8 ? 0xf0 : 0xf1;
  p[3] = uint8_t(0xc0 | (d.id & 7) << 3 | (s.id & 7));
  p_ = p + 4;
}

// ---------------------------------------------------------------------------------------------
// Branches and calls.

void Encoder::call(Label l) {
  *p_ = 0xe8;
  p_ = rel32(p_ + 1, l);
}

// ---------------------------------------------------------------------------------------------
// SSE and AVX.

void Encoder::vec_rr(VecOp op, bool w, uint8_t reg, uint8_t rm, int imm) {
  uint8_t* p = p_;
  if (op.pp) *p++ = kLegacyPrefix[op.pp];
  uint8_t rex = uint8_t(0x40 | (w ? 8 : 0) | (reg & 8) >> 1 | (rm & 8) >> 3);
  if (rex != 0x40) *p++ = rex;
  *p++ = 0x0f;
  if (op.map == 2) *p++ = 0x38;
  if (op.map == 3) *p++ = 0x3a;
  p[0] = op.code;
  p[1] = uint8_t(0xc0 | (reg & 7) << 3 | (rm & 7));
  p += 2;
  if (imm >= 0) *p++ = uint8_t(imm);
  p_ = p;
}

void Encoder::vec_rm(VecOp op, bool w, uint8_t reg, const Mem& m, int imm) {
  uint8_t* p = p_;
  if (op.pp) *p++ = kLegacyPrefix[op.pp];
  const uint8_t index = m.index == Mem::kNoIndex ? 0 : m.index;
  const uint8_t base = m.rip ? 0 : m.base;
  uint8_t rex = uint8_t(0x40 | (w ? 8 : 0) | (reg & 8) >> 1 | (index & 8) >> 2 | (base & 8) >> 3);
  if (rex != 0x40) *p++ = rex;
  *p++ = 0x0f;
  if (op.map == 2) *p++ = 0x38;
  if (op.map == 3) *p++ = 0x3a;
  *p++ = op.code;
  p = modrm_mem(p, reg, m, imm >= 0 ? 1 : 0);
  if (imm >= 0) *p++ = uint8_t(imm);
  p_ = p;
}

// VEX: the 2-byte form (C5) when the map is 0F, W is 0 and r/m needs no extension bit; else C4.
void Encoder::vex(VecOp op, bool l256, bool w, uint8_t reg, uint8_t vvvv, uint8_t rm, int imm) {
  uint8_t* p = p_;
  const uint8_t r = (reg & 8) ? 0 : 0x80;
  const uint8_t tail = uint8_t((~vvvv & 15) << 3 | (l256 ? 4 : 0) | op.pp);
  if (op.map == 1 && !w && !(rm & 8)) {
    p[0] = 0xc5;
    p[1] = uint8_t(r | tail);
    p += 2;
  } else {
    p[0] = 0xc4;
    p[1] = uint8_t(r | 0x40 | ((rm & 8) ? 0 : 0x20) | op.map);
    p[2] = uint8_t((w ? 0x80 : 0) | tail);
    p += 3;
  }
  p[0] = op.code;
  p[1] = uint8_t(0xc0 | (reg & 7) << 3 | (rm & 7));
  p += 2;
  if (imm >= 0) *p++ = uint8_t(imm);
  p_ = p;
}

void Encoder::vex(VecOp op, bool l256, bool w, uint8_t reg, uint8_t vvvv, const Mem& m) {
  uint8_t* p = p_;
  const uint8_t index = m.index == Mem::kNoIndex ? 0 : m.index;
  const uint8_t base = m.rip ? 0 : m.base;
  const uint8_t r = (reg & 8) ? 0 : 0x80;
  const uint8_t tail = uint8_t((~vvvv & 15) << 3 | (l256 ? 4 : 0) | op.pp);
  if (op.map == 1 && !w && !(index & 8) && !(base & 8)) {
    p[0] = 0xc5;
    p[1] = uint8_t(r | tail);
    p += 2;
  } else {
    p[0] = 0xc4;
    p[1] = uint8_t(r | ((index & 8) ? 0 : 0x40) | ((base & 8) ? 0 : 0x20) | op.map);
    p[2] = uint8_t((w ? 0x80 : 0) | tail);
    p += 3;
  }
  *p++ = op.code;
  p_ = modrm_mem(p, reg, m, 0);
}

// ---------------------------------------------------------------------------------------------
// Data.

void Encoder::align_data(size_t alignment) {
  size_t pad = (alignment - offset() % alignment) % alignment;
  reserve(pad);
  std::memset(p_, 0xcc, pad);
  p_ += pad;
}

void Encoder::embed(const void* bytes, size_t n) {
  const uint8_t* from = static_cast<const uint8_t*>(bytes);
  for (size_t done = 0; done < n;) {
    const size_t piece = std::min(n - done, kSlack);
    reserve(piece);
    std::memcpy(p_, from + done, piece);
    p_ += piece, done += piece;
  }
}

}  // namespace exojit::vcode::detail::x64
