// SPDX-License-Identifier: MIT
#include "exojit/error.h"
#include "exojit/runtime/kernel.h"
#include "exojit/runtime/plugins.h"

namespace exojit::runtime {

// Handlers run on the delivering thread, possibly while the environment's own thread runs:
// their translations walk the page table and leave the environment's TLB alone (mmu.h), under
// the kernel's memory lock (other threads edit page tables). A pointer span() returns stays
// valid for the run: the frame is not let go before the run ends (the run is a read section,
// grace_period.h; Kernel::retire).

HandlerContext::HandlerContext(Kernel& kernel, Environment& env, Nic& nic, bool may_transmit,
                               uint32_t lane)
    : kernel_(kernel), env_(env), nic_(nic), may_transmit_(may_transmit), lane_(lane) {
  if (lane >= kMaxLanes) fail("handler context: lane {} (at most {})", lane, kMaxLanes - 1);
}

uint64_t HandlerContext::now() const {
  return kernel_.clock().now();
}

bool HandlerContext::copy_out(uint64_t va, const void* src, size_t n) {
  std::lock_guard<std::mutex> lock(kernel_.memory_lock());
  return env_.mmu().copy_out(va, src, n, /*via_tlb=*/false) == kVaLimit;
}

bool HandlerContext::copy_in(void* dst, uint64_t va, size_t n) {
  std::lock_guard<std::mutex> lock(kernel_.memory_lock());
  return env_.mmu().copy_in(dst, va, n, /*via_tlb=*/false) == kVaLimit;
}

uint8_t* HandlerContext::span(uint64_t va, size_t n, uint8_t access) {
  if (n == 0 || n > kPageSize || (va & (kPageSize - 1)) + n > kPageSize) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_.memory_lock());
  return env_.mmu().walk(va, access);
}

bool HandlerContext::reply(const uint8_t* frame, size_t n) {
  if (!may_transmit_) return false;
  if (!nic_.queue_reply(frame, n)) return false;
  ++replies_;
  return true;
}

bool HandlerContext::reply_from_env(uint64_t va, size_t n) {
  if (!may_transmit_ || n > nic_.config().max_frame) return false;
  if (uint8_t* p = span(va, n, kRead)) return reply(p, n);
  uint8_t staging[65536];
  if (!copy_in(staging, va, n)) return false;
  return reply(staging, n);
}

uint32_t HandlerContext::c_copy_out(HandlerContext* c, uint64_t va, const uint8_t* src,
                                    uint64_t n) {
  return c->copy_out(va, src, n);
}

uint32_t HandlerContext::c_copy_in(HandlerContext* c, uint8_t* dst, uint64_t va, uint64_t n) {
  return c->copy_in(dst, va, n);
}

uint32_t HandlerContext::c_reply(HandlerContext* c, const uint8_t* frame, uint64_t n) {
  return c->reply(frame, n);
}

}  // namespace exojit::runtime
