// SPDX-License-Identifier: MIT
// Statistics counters that kernel code on delivering threads adds to while any thread may read
// them (tests, tools, exo-sim's report), with no data race and no lock on the reading side.
//
//   Counter        one writer at a time (the holder of the lock that guards the counter's
//                  structure: a receive queue's lock, the NIC's transmit lock): a relaxed load
//                  and store, no read-modify-write, nothing more than a plain increment on x86-64
//                  and AArch64.
//   SharedCounter  several writers at once (a filter slot reached from several receive queues):
//                  a relaxed fetch_add.
// Both copy as values (a snapshot), so the structures holding them stay copyable.
#pragma once

#include <atomic>
#include <cstdint>

namespace exojit::runtime {

template <bool kShared>
class BasicCounter {
 public:
  BasicCounter() = default;
  BasicCounter(const BasicCounter& o) : v_(o.get()) {}
  BasicCounter& operator=(const BasicCounter& o) {
    v_.store(o.get(), std::memory_order_relaxed);
    return *this;
  }
  void add(uint64_t n) {
    if constexpr (kShared)
      v_.fetch_add(n, std::memory_order_relaxed);
    else
      v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // For a SharedCounter whose writers the caller knows to be one thread now (the scheduler
  // model): no read-modify-write.
  void add_alone(uint64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  BasicCounter& operator++() {
    add(1);
    return *this;
  }
  BasicCounter& operator+=(uint64_t n) {
    add(n);
    return *this;
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  operator uint64_t() const { return get(); }

 private:
  std::atomic<uint64_t> v_{0};
};

using Counter = BasicCounter<false>;
using SharedCounter = BasicCounter<true>;

}  // namespace exojit::runtime
