// SPDX-License-Identifier: MIT
// Packets placed flush against a PROT_NONE page, for the adversarial tests and the fuzzer: a
// read one byte past the packet's end (or, placed the other way, one byte before its start)
// faults at once, in any build, sanitizers or not.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace exojit::dpf::testing {

class GuardedPages {
 public:
  // Room for packets of up to `capacity` bytes between two inaccessible pages.
  explicit GuardedPages(size_t capacity = 65536) {
    page_ = size_t(sysconf(_SC_PAGESIZE));
    middle_ = (capacity + page_ - 1) / page_ * page_;
    size_ = middle_ + 2 * page_;
    void* m = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    base_ = static_cast<uint8_t*>(m);
    if (mprotect(base_, page_, PROT_NONE) != 0 ||
        mprotect(base_ + page_ + middle_, page_, PROT_NONE) != 0)
      std::abort();
  }
  ~GuardedPages() { munmap(base_, size_); }
  GuardedPages(const GuardedPages&) = delete;
  GuardedPages& operator=(const GuardedPages&) = delete;

  // Copies the packet so that its last byte is the last accessible one (`at_end`), or its first
  // byte the first accessible one. Returns where it starts (for len 0: the guard's edge).
  const uint8_t* place(const uint8_t* data, size_t len, bool at_end = true) {
    if (len > middle_) std::abort();
    uint8_t* at = at_end ? base_ + page_ + middle_ - len : base_ + page_;
    if (len) std::memcpy(at, data, len);
    return at;
  }

 private:
  size_t page_, middle_, size_;
  uint8_t* base_;
};

}  // namespace exojit::dpf::testing
