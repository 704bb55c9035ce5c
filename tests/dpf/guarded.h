// A buffer whose end touches a PROT_NONE page: a packet copied flush against it faults on any
// read past its last byte (the JIT tests and the fuzzers catch stray reads this way, without a
// sanitizer and in machine code a sanitizer does not instrument).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace exojit::dpf::testing {

class Guarded {
 public:
  explicit Guarded(size_t capacity) {
    size_t page = size_t(sysconf(_SC_PAGESIZE));
    size_ = (capacity + page - 1) / page * page + page;
    void* m = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<uint8_t*>(m);
    end_ = base_ + size_ - page;
    if (mprotect(end_, page, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
  }
  ~Guarded() { munmap(base_, size_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;

  // Copies `len` bytes so that they end at the guard page; returns where they start.
  const uint8_t* place(const uint8_t* data, size_t len) {
    if (len > size_t(end_ - base_)) throw std::runtime_error("packet larger than the buffer");
    uint8_t* at = end_ - len;
    if (len) std::memcpy(at, data, len);
    return at;
  }

 private:
  uint8_t* base_;
  uint8_t* end_;
  size_t size_;
};

}  // namespace exojit::dpf::testing
