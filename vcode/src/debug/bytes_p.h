// SPDX-License-Identifier: MIT
// A little-endian byte writer for the binary formats debug/ produces (ELF, DWARF, jitdump):
// fixed-width integers, LEB128, NUL-terminated strings, and patching a length written earlier.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace exojit::vcode::detail {

class Bytes {
 public:
  size_t size() const { return b_.size(); }
  const std::vector<uint8_t>& data() const { return b_; }
  std::vector<uint8_t>&& take() { return std::move(b_); }

  void u8(uint64_t v) { b_.push_back(uint8_t(v)); }
  void u16(uint64_t v) { put(v, 2); }
  void u32(uint64_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void uleb(uint64_t v) {
    do {
      uint8_t byte = v & 0x7f;
      v >>= 7;
      b_.push_back(uint8_t(byte | (v ? 0x80 : 0)));
    } while (v);
  }
  void sleb(int64_t v) {
    for (;;) {
      uint8_t byte = v & 0x7f;
      v >>= 7;  // arithmetic shift
      bool done = (v == 0 && !(byte & 0x40)) || (v == -1 && (byte & 0x40));
      b_.push_back(uint8_t(byte | (done ? 0 : 0x80)));
      if (done) return;
    }
  }
  void str(std::string_view s) {  // with its NUL
    b_.insert(b_.end(), s.begin(), s.end());
    b_.push_back(0);
  }
  void bytes(const void* p, size_t n) {
    const uint8_t* q = static_cast<const uint8_t*>(p);
    b_.insert(b_.end(), q, q + n);
  }
  void append(const Bytes& o) { b_.insert(b_.end(), o.b_.begin(), o.b_.end()); }
  void align(size_t to, uint8_t fill = 0) {
    while (b_.size() % to) b_.push_back(fill);
  }
  // Overwrites `width` bytes at `at` with v (a length known only once what follows is written).
  void patch(size_t at, uint64_t v, int width) {
    for (int i = 0; i < width; ++i) b_[at + size_t(i)] = uint8_t(v >> (8 * i));
  }

 private:
  void put(uint64_t v, int width) {
    for (int i = 0; i < width; ++i) b_.push_back(uint8_t(v >> (8 * i)));
  }
  std::vector<uint8_t> b_;
};

}  // namespace exojit::vcode::detail
