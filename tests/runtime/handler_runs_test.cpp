// SPDX-License-Identifier: MIT
// Handler runs against the kernel's memory operations (thread mode), with C++ message handlers
// that stop inside their run until the test lets them go: a run is a read section
// (exojit/grace_period.h), unmap_page waits for it and holds the frame until it has ended, and a
// handler may call the kernel during its own run without waiting for itself. ash's
// concurrency tests do the same with sandboxed handlers under load; these pin the order of
// events down exactly. Bounded (milliseconds); under ThreadSanitizer with `./exo tsan`.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "exojit/error.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"

namespace exojit::runtime {
namespace {

constexpr uint64_t kPage = 0x40000000;
constexpr uint16_t kEtherType = 0x88b6;
const Capability kNicGuard = Capability::make({0x4e}, kPermWrite);

void wait_for(const std::atomic<int>& v, int value) {
  while (v.load(std::memory_order_acquire) != value) std::this_thread::yield();
}

// Takes a host pointer to the environment's page (HandlerContext::span), says so, waits until
// released, then stores through the pointer: a store of a run that began before an unmap.
class HoldingHandler : public MessageHandler {
 public:
  HandlerVerdict handle(HandlerContext& ctx, const Message&) override {
    uint8_t* p = ctx.span(kPage, 8, kWrite);
    if (!p) return HandlerVerdict::Declined;
    state.store(1, std::memory_order_release);
    wait_for(release, 1);
    std::memset(p, 0x5a, 8);
    state.store(2, std::memory_order_release);
    return HandlerVerdict::Consumed;
  }
  std::atomic<int> state{0}, release{0};
};

struct Box {
  Kernel kernel{KernelConfig{.frames = 64, .mode = Mode::Threads}};
  BuiltinDemux demux;
  Nic& nic;
  Environment& env;
  uint32_t filter;

  Box()
      : nic(kernel.add_nic({.name = "n0", .rx_slots = 8}, kNicGuard)),
        env(kernel.create_environment("app", Capability::make({1}, kPermAll))) {
    kernel.set_demux(&demux);
    kernel.alloc_pages(env, 0, kPage, 1, kPteRead | kPteWrite);
    filter = demux.add(DemuxRule{.ethertype = kEtherType});
    kernel.claim_filter(env, 0, filter);
  }
  // A frame for the filter, delivered on a thread of its own (on arrival: the calling thread).
  std::thread deliver() {
    return std::thread([this] {
      uint8_t f[60] = {};
      f[12] = kEtherType >> 8, f[13] = kEtherType & 0xff;
      nic.receive_from_wire(f, sizeof f);
    });
  }
};

TEST(HandlerRuns, UnmapWaitsForTheRunInProgressAndHoldsTheFrame) {
  Box b;
  HoldingHandler h;
  b.kernel.install_handler(b.env, 0, b.filter, &h);
  uint32_t frame = b.env.mmu().lookup(kPage)->frame;
  std::thread delivery = b.deliver();
  wait_for(h.state, 1);  // the run holds a pointer into the frame
  std::atomic<int> unmapped{0};
  std::thread unmapper([&] {
    b.kernel.unmap_page(b.env, 0, kPage);
    unmapped.store(1, std::memory_order_release);
  });
  // The page is gone from the table at once (new runs would not find it)...
  auto mapped = [&b] {
    std::lock_guard<std::mutex> lock(b.kernel.memory_lock());  // the unmapper edits the table
    return b.env.mmu().lookup(kPage) != nullptr;
  };
  for (auto t = std::chrono::steady_clock::now(); mapped();)
    ASSERT_LT(std::chrono::steady_clock::now() - t, std::chrono::seconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // ...but unmap_page has not returned, and the frame is still held: not freed, not reused.
  EXPECT_EQ(unmapped.load(std::memory_order_acquire), 0);
  EXPECT_THROW(b.kernel.free_frame(b.env, 0, frame), Error);
  EXPECT_EQ(b.kernel.memory().mappings(frame), 1u);
  h.release.store(1, std::memory_order_release);
  unmapper.join();
  delivery.join();
  EXPECT_EQ(h.state.load(), 2);  // the run's store landed in the still-owned frame
  EXPECT_EQ(b.kernel.memory().frame_data(frame)[0], 0x5a);
  EXPECT_EQ(b.kernel.memory().mappings(frame), 0u);
  b.kernel.free_frame(b.env, 0, frame);  // now it may go
}

// A handler calling the kernel during its run: its own read section is not waited for (else
// protect_page would never return), and the change holds for its next run.
class ProtectingHandler : public MessageHandler {
 public:
  HandlerVerdict handle(HandlerContext& ctx, const Message&) override {
    ++runs;
    if (!ctx.span(kPage, 8, kWrite)) return HandlerVerdict::Declined;
    ctx.kernel().protect_page(ctx.env(), 0, kPage, kPteRead);
    return HandlerVerdict::Consumed;
  }
  int runs = 0;
};

TEST(HandlerRuns, AHandlerMayChangeItsPageTableDuringItsRun) {
  Box b;
  ProtectingHandler h;
  b.kernel.install_handler(b.env, 0, b.filter, &h);
  b.deliver().join();
  b.deliver().join();
  EXPECT_EQ(h.runs, 2);
  EXPECT_EQ(b.nic.counters().rx_handled, 1u);  // the second run found the page read-only
  EXPECT_EQ(b.env.mmu().lookup(kPage)->bits & kPteWrite, 0);
}

// remove_handler returns only once the handler cannot be running: a run in progress holds it.
TEST(HandlerRuns, RemoveHandlerWaitsForTheRunInProgress) {
  Box b;
  HoldingHandler h;
  b.kernel.install_handler(b.env, 0, b.filter, &h);
  std::thread delivery = b.deliver();
  wait_for(h.state, 1);
  std::atomic<int> removed{0};
  std::thread remover([&] {
    b.kernel.remove_handler(b.env, 0, b.filter);
    removed.store(h.state.load(std::memory_order_acquire) == 2 ? 1 : -1, std::memory_order_release);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(removed.load(std::memory_order_acquire), 0);
  h.release.store(1, std::memory_order_release);
  remover.join();
  delivery.join();
  EXPECT_EQ(removed.load(), 1);  // it returned after the run had ended
  EXPECT_EQ(b.kernel.filter(b.filter)->handler, nullptr);
}

}  // namespace
}  // namespace exojit::runtime
