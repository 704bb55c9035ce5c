// Read sections and grace periods for data read on a fast path by many threads while one writer
// replaces it (read-copy-update's reclamation, userspace flavour with asymmetric fences).
//
//   { ReadSection r; const T* p = published.load(std::memory_order_acquire); ... use p ... }
//   // writer: published.store(new_p, release); synchronize(); delete old_p;
//
// A reader announces its section in its thread's own slot (a sequence number, odd while inside):
// two plain stores to its own cache line and a compiler barrier -- no lock, no atomic
// read-modify-write, no fence. The fence a reader would need between announcing itself and
// loading the pointer (store-load order) is paid by the writer instead: synchronize() issues
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full barrier on every CPU running a
// thread of this process, so afterwards either the writer sees a reader's odd number or that
// reader's load sees the new pointer; then it waits for the odd numbers it saw to change. This is
// liburcu's "memb" flavour; it is written here rather than taken from liburcu because
// ThreadSanitizer sees std::atomic but not liburcu's barriers (see runtime's quiescence.h for the
// same choice). Without membarrier (kernels before 4.14, seccomp), readers take a full fence.
//
// runtime's HandlerRun (quiescence.h) is the same scheme with a sequentially consistent store on
// entry: fine for a handler run, about 20 cycles too many for a 3 ns packet demultiplex.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace exojit::grace {

// One per reader thread, on its own cache line: a section touches only its own.
struct alignas(64) ReaderSlot {
  std::atomic<uint64_t> seq{0};  // odd while the owning thread is inside a read section
  std::atomic<bool> taken{false};
  ReaderSlot* next = nullptr;  // the registry (grace_period.cpp), immutable once linked
};

namespace detail {
// The calling thread's slot (claimed on its first section, released when it exits).
inline thread_local ReaderSlot* t_slot = nullptr;
ReaderSlot* claim_slot();
// True when the writer side uses membarrier (readers then need only a compiler barrier).
extern std::atomic<bool> g_asymmetric;
}  // namespace detail

// A read section (RAII). Sections nest; pointers loaded inside stay valid until it ends.
class ReadSection {
 public:
  ReadSection() {
    ReaderSlot* s = detail::t_slot;
    if (!s) [[unlikely]]
      s = detail::claim_slot();
    uint64_t v = s->seq.load(std::memory_order_relaxed);
    if (v & 1) [[unlikely]]
      return;  // nested: the outer section covers this one
    slot_ = s;
    s->seq.store(v + 1, std::memory_order_relaxed);
    if (detail::g_asymmetric.load(std::memory_order_relaxed)) [[likely]]
      std::atomic_signal_fence(std::memory_order_seq_cst);
    else
      std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  ~ReadSection() {
    if (slot_)
      slot_->seq.store(slot_->seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  ReadSection(const ReadSection&) = delete;
  ReadSection& operator=(const ReadSection&) = delete;

 private:
  ReaderSlot* slot_ = nullptr;
};

// A grace period: started by a writer after it unpublished something; done() once every read
// section that was in progress on another thread when it started has ended (then what was
// unpublished can be freed). Starting costs one membarrier system call and a scan of the slots;
// done() is a poll (a writer that must not wait keeps the retired data until it says yes).
class GracePeriod {
 public:
  static GracePeriod start();
  bool done();  // never blocks
  void wait();  // until done()

 private:
  struct Inside {
    ReaderSlot* slot;
    uint64_t seq;  // odd: the section in progress at start()
  };
  std::vector<Inside> inside_;
};

// Returns once every read section in progress on another thread when it was called has ended.
inline void synchronize() {
  GracePeriod::start().wait();
}

}  // namespace exojit::grace
