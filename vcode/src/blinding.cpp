// SPDX-License-Identifier: MIT
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "blinding_p.h"
#include "exojit/error.h"

namespace exojit::vcode::detail {

namespace {

// Bytes from getrandom(2), refilled when used up.
class RandomPool {
 public:
  uint8_t byte() {
    if (next_ == sizeof(buf_)) refill();
    return buf_[next_++];
  }

 private:
  void refill() {
    size_t got = 0;
    while (got < sizeof(buf_)) {
      ssize_t n = getrandom(buf_ + got, sizeof(buf_) - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("compile: getrandom failed for constant blinding: {}", std::strerror(errno));
      }
      got += size_t(n);
    }
    next_ = 0;
  }
  uint8_t buf_[256];
  size_t next_ = sizeof(buf_);
};

thread_local RandomPool pool;

// A random byte other than 0.
uint8_t nonzero_byte() {
  for (;;)
    if (uint8_t b = pool.byte()) return b;
}

}  // namespace

BlindKey fresh_blind_key() {
  BlindKey k{0, 0};
  for (int i = 0; i < 4; ++i) k.k32 |= uint32_t(nonzero_byte()) << (8 * i);
  for (int i = 0; i < 8; ++i) k.k64 |= uint64_t(nonzero_byte()) << (8 * i);
  return k;
}

}  // namespace exojit::vcode::detail
