// SPDX-License-Identifier: MIT
// Read sections and grace periods for data read on a fast path by many threads while one writer
// replaces it (read-copy-update's reclamation, userspace flavour with asymmetric fences).
//
//   { ReadSection r; const T* p = r.load(published); ... use p ... }
//   // writer: published.store(new_p, release); synchronize(); delete old_p;
//
// A reader announces its section in its thread's own slot (the epoch it read, 0 outside), a
// thread-local word: two plain stores -- no lock, no atomic read-modify-write, no fence, and no
// pointer to follow (the writers' registry holds the slots' addresses; a thread gives its slot
// back when it exits, as liburcu's rcu_unregister_thread does). The
// fence a reader would need between announcing itself and loading the pointer (store-load order) is
// paid by the writer instead: synchronize() issues membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED),
// which runs a full barrier on every CPU running a thread of this process, so afterwards either the
// writer sees a reader's announcement or that reader's load sees the new pointer; then it waits
// for the sections it saw to end. This is liburcu's "memb" flavour; it is written here rather
// than taken from liburcu because ThreadSanitizer sees std::atomic but not liburcu's barriers (an
// uninstrumented library, membarrier and inline assembly): every object handed over after a grace
// period would be reported as a race, and the concurrency tests must run clean under it. Without
// membarrier (kernels before 4.14, seccomp) the writer forces the same barrier on every CPU
// running the process with a TLB shootdown (mprotect of a page it has just written: what .NET's
// FlushProcessWriteBuffers does on Linux).
//
// One mechanism for the whole process, used by
//   - dpf's Engine::demux: a section around one classification (a few nanoseconds); its writers
//     poll their grace periods (GracePeriod::done) and free retired code later;
//   - runtime's Kernel::deliver: a section around each message handler run (an ASH, bounded by
//     its budget; it may block on the kernel's memory lock). unmap_page, protect_page, revoke,
//     remove_handler wait (synchronize) before letting go of what a run may touch.
// A section may last any time and block (the writer yields, then sleeps, while it waits); a
// writer must not hold, while it waits, a lock that a reader takes inside its section. Sections
// nest, and a thread's own sections are never waited for: a section's code may call a writer
// (a C++ message handler calling the kernel's unmap_page; but two threads doing so at once would
// wait for each other, as synchronize_rcu inside a read section does in RCU). Sections of one
// thread are waited for by the writers of every structure (one epoch, as in RCU's single domain): a
// long section delays every reclamation, not only its own structure's.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace exojit::grace {

// A reader thread's announcement: thread-local (a section writes only its own).
struct ReaderSlot {
  constexpr ReaderSlot() = default;
  constexpr explicit ReaderSlot(uint64_t e) : epoch(e) {}
  // The grace-period epoch the owning thread read when it entered its section; 0 outside (and
  // kUnregistered before the thread's first section).
  std::atomic<uint64_t> epoch{0};
};

namespace detail {
// The current epoch, from 1: a writer's grace period advances it (written once per grace period,
// read by every section: a read-mostly cache line).
alignas(64) inline std::atomic<uint64_t> g_epoch{1};
// Never 0: the calling thread's slot until its first section registers it with the writers (so
// the fast path tests one thing, a nonzero word, for "first section" and "nested").
inline constexpr uint64_t kUnregistered = ~uint64_t(0);
inline thread_local ReaderSlot t_slot{kUnregistered};
// The nonzero case of a section's entry: registers the thread's slot and enters it (true), or,
// nested in another section, enters nothing (false: the outer section covers it).
bool enter_slow();
}  // namespace detail

// The fast path of a read section, for a caller that has an out-of-line path anyway (a
// demultiplexer's inline wrapper): enters a section in the thread's slot and returns true when
// the thread has registered it and is not inside a section; else false, nothing entered (use
// ReadSection). The slot's load and test, the epoch's load, a store.
inline bool try_enter() noexcept {
  std::atomic<uint64_t>& slot = detail::t_slot.epoch;
  if (slot.load(std::memory_order_relaxed) != 0) [[unlikely]]
    return false;
  slot.store(detail::g_epoch.load(std::memory_order_acquire), std::memory_order_relaxed);
  return true;
}
// Ends the section try_enter entered (pointers loaded inside are no longer protected).
inline void leave() noexcept {
  detail::t_slot.epoch.store(0, std::memory_order_release);
}
// Loads a published pointer (or word) inside the thread's section. The compiler keeps the order
// through an empty asm that reads the slot and may write `published` -- not a full compiler
// barrier (std::atomic_signal_fence), which would make the caller reload everything it holds in
// registers; the processor keeps it through the writer's barrier (see the file comment).
template <typename T>
T load_in(const std::atomic<T>& published) noexcept {
  asm volatile("" : "+m"(const_cast<std::atomic<T>&>(published)) : "m"(detail::t_slot.epoch));
  return published.load(std::memory_order_acquire);
}

// A read section (RAII). Sections nest; pointers loaded inside, through load(), stay valid until
// it ends. The fast path is try_enter's; one store at the end.
class ReadSection {
 public:
  ReadSection() : entered_(try_enter() || detail::enter_slow()) {}
  ~ReadSection() {
    if (entered_) leave();
  }
  ReadSection(const ReadSection&) = delete;
  ReadSection& operator=(const ReadSection&) = delete;

  // Loads a published pointer (or word) after the announcement (load_in).
  template <typename T>
  T load(const std::atomic<T>& published) const {
    return load_in(published);
  }

 private:
  bool entered_;  // false: nested in an outer section of this thread, which covers it
};

// A grace period: started by a writer after it unpublished something; done() once every read
// section that was in progress on another thread when it started has ended (then what was
// unpublished can be freed). Starting costs one membarrier system call and a scan of the slots;
// done() is a poll (a writer that must not wait keeps the retired data until it says yes).
class GracePeriod {
 public:
  static GracePeriod start();
  bool done();  // never blocks (but on the registry's mutex, held for a scan or a thread's exit)
  void wait();  // until done()

 private:
  struct Inside {
    const void* reader;  // the registration (grace_period.cpp) of the thread seen inside
    uint64_t epoch;      // the section in progress at start()
  };
  std::vector<Inside> inside_;
};

// Returns once every read section in progress on another thread when it was called has ended.
inline void synchronize() {
  GracePeriod::start().wait();
}

}  // namespace exojit::grace
