// SPDX-License-Identifier: MIT
// Grace periods: the registry of reader slots, membarrier, the writer's wait (grace_period.h).
#include "exojit/grace_period.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace exojit::grace {

namespace detail {

namespace {

// A registered reader thread: its slot (a thread-local address), null once the thread has exited
// (then the record waits for the next thread to register). Records are never freed (one per
// thread alive at once); the list and every `slot` are guarded by g_registry_mutex, which a
// writer holds while it reads other threads' slots, so that no thread exits (and its
// thread-local storage goes) meanwhile.
struct Reader {
  ReaderSlot* slot = nullptr;
  Reader* next = nullptr;
};
std::mutex g_registry_mutex;
Reader* g_registry = nullptr;

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

// Gives the thread's slot back when it exits. A pthread key's destructor rather than a
// thread_local object's: those run after every thread_local destructor (which may still run
// read sections: their slot stays registered), while the thread-local storage is still there;
// a section run by another key's destructor registers the slot again, and this runs again.
void unregister(void* record) {
  std::lock_guard lock(g_registry_mutex);
  static_cast<Reader*>(record)->slot = nullptr;
  t_slot.epoch.store(kUnregistered, std::memory_order_relaxed);
}
pthread_key_t exit_key() {
  static const pthread_key_t key = [] {
    pthread_key_t k;
    if (pthread_key_create(&k, &unregister) != 0) std::abort();
    return k;
  }();
  return key;
}

}  // namespace

// (A reader preempted inside its section holds the writer until it runs again: yield first.)
void pause_briefly(unsigned spins) {
  if (spins < 256)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(20));
}

bool enter_slow() {
  if (t_slot.epoch.load(std::memory_order_relaxed) != kUnregistered)
    return false;  // nested: the outer section covers it
  // First section of this thread: the writers' barrier is registered before any reader relies
  // on it (membarrier must be registered before use).
  membarrier_available();
  pthread_key_t key = exit_key();
  Reader* r = nullptr;
  {
    std::lock_guard lock(g_registry_mutex);
    for (Reader* f = g_registry; f && !r; f = f->next)
      if (!f->slot) r = f;
    if (!r) r = g_registry = new Reader{nullptr, g_registry};
    r->slot = &t_slot;
    // Entered under the mutex: a writer that scans after this sees the section.
    t_slot.epoch.store(g_epoch.load(std::memory_order_acquire), std::memory_order_relaxed);
  }
  if (pthread_setspecific(key, r) != 0) std::abort();
  return true;
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
  const ReaderSlot* own = &t_slot;  // the writer's own sections are not waited for
  std::lock_guard lock(g_registry_mutex);
  for (Reader* r = g_registry; r; r = r->next) {
    if (!r->slot || r->slot == own) continue;
    uint64_t seen = r->slot->epoch.load(std::memory_order_acquire);
    if (seen != 0 && seen < now) g.inside_.push_back({r, seen});
  }
  return g;
}

bool GracePeriod::done() {
  if (inside_.empty()) return true;
  std::lock_guard lock(detail::g_registry_mutex);
  while (!inside_.empty()) {
    const Inside& i = inside_.back();
    // A thread that exited has left its sections; a record taken by a later thread holds a
    // section entered after start() (a newer epoch).
    const ReaderSlot* slot = static_cast<const detail::Reader*>(i.reader)->slot;
    if (slot && slot->epoch.load(std::memory_order_acquire) == i.epoch) return false;
    inside_.pop_back();
  }
  return true;
}

void GracePeriod::wait() {
  for (unsigned spins = 0; !done(); ++spins) detail::pause_briefly(spins);
}

}  // namespace exojit::grace
