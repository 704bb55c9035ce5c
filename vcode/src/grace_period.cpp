// Grace periods: the registry of reader slots, membarrier, the writer's wait (grace_period.h).
#include "exojit/grace_period.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace exojit::grace {

namespace detail {

std::atomic<bool> g_asymmetric{false};

namespace {

// Every slot ever claimed, newest first; slots are reused by later threads, never freed (one
// per thread alive at once).
std::atomic<ReaderSlot*> g_registry{nullptr};

long membarrier(int cmd) {
  return syscall(__NR_membarrier, cmd, 0, 0);
}

// Registers the process for private expedited membarrier once; true if it can be used.
bool asymmetric_available() {
  static const bool ok = [] {
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) return false;
    g_asymmetric.store(true, std::memory_order_seq_cst);
    return true;
  }();
  return ok;
}

// Gives the slot back when its thread exits (a separate object: the fast path's t_slot stays a
// constant-initialised pointer, read without a TLS wrapper).
struct SlotOwner {
  ReaderSlot* slot = nullptr;
  ~SlotOwner() {
    if (!slot) return;
    t_slot = nullptr;
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

ReaderSlot* claim_slot() {
  // Decide the fence mode before the first section: the writer's membarrier must be registered
  // before any reader relies on it.
  asymmetric_available();
  ReaderSlot* s = nullptr;
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
  return s;
}

}  // namespace detail

GracePeriod GracePeriod::start() {
  using namespace detail;
  // Orders the writer's unpublishing stores before its reads of the slots, and every reader's
  // announcement before that reader's loads of the published data (see the header).
  if (asymmetric_available())
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  else
    std::atomic_thread_fence(std::memory_order_seq_cst);
  GracePeriod g;
  ReaderSlot* own = t_slot;  // the writer's own sections are not waited for
  for (ReaderSlot* s = g_registry.load(std::memory_order_acquire); s; s = s->next) {
    if (s == own) continue;
    uint64_t seen = s->seq.load(std::memory_order_acquire);
    if (seen & 1) g.inside_.push_back({s, seen});
  }
  return g;
}

bool GracePeriod::done() {
  while (!inside_.empty()) {
    const Inside& i = inside_.back();
    if (i.slot->seq.load(std::memory_order_acquire) == i.seq) return false;
    inside_.pop_back();
  }
  return true;
}

void GracePeriod::wait() {
  for (unsigned spins = 0; !done(); ++spins) detail::pause_briefly(spins);
}

}  // namespace exojit::grace
