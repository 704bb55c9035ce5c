// SPDX-License-Identifier: MIT
// Grace periods: the registry of reader slots, membarrier, the writer's wait (grace_period.h).
#include "exojit/grace_period.h"

#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <thread>

namespace exojit::grace {

namespace detail {

constinit ReaderSlot g_unclaimed{~uint64_t(0)};  // never 0: never outside a section

namespace {

// Every slot ever claimed, newest first; slots are reused by later threads, never freed (one
// per thread alive at once).
std::atomic<ReaderSlot*> g_registry{nullptr};

long membarrier(int cmd) {
  return syscall(__NR_membarrier, cmd, 0, 0);
}

// Registers the process for private expedited membarrier once; true if it can be used.
bool membarrier_available() {
  static const bool ok = [] {
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  }();
  return ok;
}

// A full barrier on every CPU running a thread of this process: membarrier, or else a TLB
// shootdown (write a page, take its permissions away: the kernel interrupts every CPU that may
// cache its translation).
void barrier_everywhere() {
  if (membarrier_available()) {
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    return;
  }
  static std::mutex m;
  static auto* page = static_cast<volatile uint8_t*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  std::lock_guard lock(m);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  mprotect(const_cast<uint8_t*>(page), 4096, PROT_READ | PROT_WRITE);
  page[0] = page[0] + 1;
  mprotect(const_cast<uint8_t*>(page), 4096, PROT_NONE);
}

// Gives the slot back when its thread exits (a separate object: the fast path's t_slot stays a
// constant-initialised pointer, read without a TLS wrapper).
struct SlotOwner {
  ReaderSlot* slot = nullptr;
  ~SlotOwner() {
    if (!slot) return;
    t_slot = &g_unclaimed;
    slot->taken.store(false, std::memory_order_release);
  }
};
thread_local SlotOwner t_owner;

}  // namespace

// (A reader preempted inside its section holds the writer until it runs again: yield first.)
void pause_briefly(unsigned spins) {
  if (spins < 256)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(20));
}

// Per thread, for nested sections: entered and left without anyone looking.
thread_local ReaderSlot t_nested;

ReaderSlot* enter_slow(ReaderSlot* s) {
  if (s != &g_unclaimed) return &t_nested;  // nested: the outer section covers it
  // First section of this thread: the writers' barrier is registered before any reader relies
  // on it (membarrier must be registered before use).
  membarrier_available();
  s = nullptr;
  for (ReaderSlot* r = g_registry.load(std::memory_order_acquire); r && !s; r = r->next) {
    bool expected = false;
    if (!r->taken.load(std::memory_order_relaxed) &&
        r->taken.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
      s = r;
  }
  if (!s) {
    s = new ReaderSlot;
    s->taken.store(true, std::memory_order_relaxed);
    ReaderSlot* head = g_registry.load(std::memory_order_relaxed);
    do {
      s->next = head;
    } while (!g_registry.compare_exchange_weak(head, s, std::memory_order_acq_rel));
  }
  t_owner.slot = s;
  t_slot = s;
  s->epoch.store(g_epoch.load(std::memory_order_acquire), std::memory_order_relaxed);
  return s;
}

}  // namespace detail

GracePeriod GracePeriod::start() {
  using namespace detail;
  // A reader that reads the new epoch reads it after the unpublishing stores before this.
  uint64_t now = g_epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  // Orders the writer's stores before its reads of the slots, and every reader's announcement
  // before that reader's loads of the published data (see the header).
  barrier_everywhere();
  GracePeriod g;
  ReaderSlot* own = t_slot;  // the writer's own sections are not waited for
  for (ReaderSlot* s = g_registry.load(std::memory_order_acquire); s; s = s->next) {
    if (s == own) continue;
    uint64_t seen = s->epoch.load(std::memory_order_acquire);
    if (seen != 0 && seen < now) g.inside_.push_back({s, seen});
  }
  return g;
}

bool GracePeriod::done() {
  while (!inside_.empty()) {
    const Inside& i = inside_.back();
    if (i.slot->epoch.load(std::memory_order_acquire) == i.epoch) return false;
    inside_.pop_back();
  }
  return true;
}

void GracePeriod::wait() {
  for (unsigned spins = 0; !done(); ++spins) detail::pause_briefly(spins);
}

}  // namespace exojit::grace
