// SPDX-License-Identifier: MIT
#include "exojit/runtime/quiescence.h"

#include <atomic>
#include <chrono>
#include <thread>

namespace exojit::runtime {

namespace {

// One cache line per thread: a run touches only its own.
struct alignas(64) Slot {
  std::atomic<uint64_t> seq{0};  // odd while the owning thread runs a handler
  std::atomic<bool> taken{false};
};
constexpr size_t kSlots = 256;
Slot g_slots[kSlots];
// Runs of threads that found no free slot (more than kSlots threads at once).
std::atomic<uint64_t> g_overflow_runs{0};

struct ThreadState {
  Slot* slot = nullptr;
  bool claimed = false;
  uint32_t depth = 0;
  ~ThreadState() {
    if (slot) slot->taken.store(false, std::memory_order_release);
  }
  Slot* get() {
    if (!claimed) {
      claimed = true;
      for (Slot& s : g_slots) {
        bool expected = false;
        if (!s.taken.load(std::memory_order_relaxed) &&
            s.taken.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
          slot = &s;
          break;
        }
      }
    }
    return slot;
  }
};
thread_local ThreadState t_state;

void pause_briefly(unsigned spins) {
  if (spins < 64)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(50));
}

}  // namespace

HandlerRun::HandlerRun() {
  ThreadState& t = t_state;
  if (t.depth++ != 0) return;
  if (Slot* s = t.get()) {
    // seq_cst: ordered before this run's reads of the page tables' generations (a writer that
    // does not see this store is ordered before it, so the run sees the writer's edit).
    s->seq.store(s->seq.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
  } else {
    g_overflow_runs.fetch_add(1, std::memory_order_seq_cst);
  }
}

HandlerRun::~HandlerRun() {
  ThreadState& t = t_state;
  if (--t.depth != 0) return;
  if (Slot* s = t.slot)
    s->seq.store(s->seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  else
    g_overflow_runs.fetch_sub(1, std::memory_order_release);
}

bool in_handler_run() {
  return t_state.depth != 0;
}

void wait_for_handler_runs() {
  // No fence needed (nor supported by gcc's ThreadSanitizer): the writer's edit bumped a page
  // table's generation with a seq_cst read-modify-write before this, and the loads below are
  // seq_cst, as are a run's slot store and generation load: one total order, so either this
  // sees the run's odd number or the run sees the new generation. (Handler pointers are read
  // under the delivery lock, which their writers hold.)
  Slot* own = t_state.slot;
  for (Slot& s : g_slots) {
    if (&s == own) continue;
    uint64_t seen = s.seq.load(std::memory_order_seq_cst);
    if (!(seen & 1)) continue;
    for (unsigned spins = 0; s.seq.load(std::memory_order_acquire) == seen; ++spins)
      pause_briefly(spins);
  }
  for (unsigned spins = 0; g_overflow_runs.load(std::memory_order_acquire) != 0; ++spins)
    pause_briefly(spins);
}

}  // namespace exojit::runtime
