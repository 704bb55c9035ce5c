// SPDX-License-Identifier: MIT
#include "exojit/runtime/environment.h"

#include "exojit/error.h"
#include "exojit/runtime/kernel.h"
#include "exojit/runtime/plugins.h"

namespace exojit::runtime {

Environment::Environment(Kernel& kernel, uint32_t id, std::string name, uint32_t tlb_entries)
    : kernel_(kernel), id_(id), name_(std::move(name)), mmu_(kernel.memory(), tlb_entries) {}

int Environment::find_cap(const Capability& guard, uint8_t need) const {
  for (size_t i = 0; i < caps_.size(); ++i)
    if (caps_[i].dominates(guard, need)) return int(i);
  return -1;
}

uint8_t* Environment::fault_and_retry(uint64_t va, size_t n, uint8_t access) {
  // A handler may fix one page at a time: allow as many rounds as the range has pages, plus one.
  size_t rounds = (n + kPageSize - 1) / kPageSize + 2;
  for (size_t i = 0; i < rounds; ++i) {
    uint64_t bad = mmu_.check_range(va, n ? n : 1, access);
    if (bad == kVaLimit) return mmu_.translate(va, access);
    ++counters_.faults;
    if (!fault_handler_ || !fault_handler_(*this, bad, access))
      fail("environment {}: {} fault at 0x{:x} not resolved", name_,
           access & kWrite  ? "write"
           : access & kExec ? "execute"
                            : "read",
           bad);
    if (mmu_.check_range(bad, 1, access) == kVaLimit) ++counters_.faults_resolved;
  }
  fail("environment {}: fault at 0x{:x} persists after the handler ran", name_, va);
}

uint8_t* Environment::user_span(uint64_t va, size_t n, uint8_t access) {
  if (n > kPageSize || (va & (kPageSize - 1)) + n > kPageSize)
    fail("environment {}: span 0x{:x}+{} crosses a page", name_, va, n);
  if (uint8_t* p = mmu_.translate(va, access)) return p;
  return fault_and_retry(va, n, access);
}

void Environment::user_copy_out(uint64_t va, const void* src, size_t n) {
  if (mmu_.copy_out(va, src, n) == kVaLimit) return;
  fault_and_retry(va, n, kWrite);
  if (mmu_.copy_out(va, src, n) != kVaLimit)
    fail("environment {}: copy to 0x{:x} failed", name_, va);
}

void Environment::user_copy_in(void* dst, uint64_t va, size_t n) {
  if (mmu_.copy_in(dst, va, n) == kVaLimit) return;
  fault_and_retry(va, n, kRead);
  if (mmu_.copy_in(dst, va, n) != kVaLimit)
    fail("environment {}: copy from 0x{:x} failed", name_, va);
}

void Environment::wait(uint32_t seen) {
  for (;;) {
    if (predicate_ && predicate_->evaluate()) return;
    sleeping_.store(true, std::memory_order_seq_cst);
    if (wake_seq_.load(std::memory_order_seq_cst) != seen) {
      sleeping_.store(false, std::memory_order_relaxed);
      return;
    }
    wake_seq_.wait(seen, std::memory_order_acquire);  // a futex wait on Linux
    sleeping_.store(false, std::memory_order_relaxed);
    if (wake_seq_.load(std::memory_order_acquire) != seen) return;
  }
}

}  // namespace exojit::runtime
