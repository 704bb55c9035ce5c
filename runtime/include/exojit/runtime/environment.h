// SPDX-License-Identifier: MIT
// An environment (Aegis/Xok's unit of protection): an address space, a list of capabilities,
// packet rings, and upcall entry points — a page-fault handler and a body the scheduler calls.
//
// Environments run either under the deterministic scheduler model (scheduler.h: the body is
// called once per time slice and returns what it wants next) or as real host threads (the body
// loops and blocks in wait(), woken by the kernel through a futex-backed atomic).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "exojit/runtime/capability.h"
#include "exojit/runtime/mmu.h"

namespace exojit::runtime {

class Kernel;
class WakeupPredicate;

// What an environment's body asks for at the end of a time slice (scheduler model).
enum class Step : uint8_t {
  Yield,  // still runnable: run again in its next slice
  Block,  // wait until woken (a packet in one of its rings, a predicate, a timer, wake())
  Exit,   // done: never run again
};

class Environment {
 public:
  // Fault upcall: gets the faulting address and access; returns true once it has fixed the
  // mapping (the access is retried), false to refuse (the access fails with exojit::Error).
  using FaultHandler = std::function<bool(Environment& env, uint64_t va, uint8_t access)>;
  using Body = std::function<Step(Environment& env)>;

  Environment(Kernel& kernel, uint32_t id, std::string name, uint32_t tlb_entries);
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  uint32_t id() const { return id_; }
  const std::string& name() const { return name_; }
  Kernel& kernel() { return kernel_; }
  AddressSpace& mmu() { return mmu_; }
  const std::vector<Capability>& caps() const { return caps_; }
  // Index of the first owned capability dominating `guard` with `need`, or -1.
  int find_cap(const Capability& guard, uint8_t need = 0) const;

  // User-level access to the environment's own memory, as its code would make it: translated
  // through the TLB; a missing or forbidden page is delivered to the fault handler, which may map
  // it, and the access is retried. Unresolved faults throw exojit::Error naming the address.
  uint8_t* user_span(uint64_t va, size_t n, uint8_t access);
  void user_copy_out(uint64_t va, const void* src, size_t n);
  void user_copy_in(void* dst, uint64_t va, size_t n);

  void set_fault_handler(FaultHandler h) { fault_handler_ = std::move(h); }
  void set_body(Body b) { body_ = std::move(b); }
  const Body& body() const { return body_; }
  void set_predicate(WakeupPredicate* p) { predicate_ = p; }
  WakeupPredicate* predicate() const { return predicate_; }

  // Wake-up: marks the environment runnable and, if its thread sleeps in wait(), wakes it.
  void wake() {
    // seq_cst on both sides (here and in wait()): either the sleeper sees the new sequence
    // number or this sees it sleeping.
    wake_seq_.fetch_add(1, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst)) wake_seq_.notify_one();
    wakeups_.fetch_add(1, std::memory_order_relaxed);
  }
  uint32_t wake_seq() const { return wake_seq_.load(std::memory_order_acquire); }
  // Thread mode: sleeps until wake() is called after `seen` was read (no lost wake-ups), or the
  // predicate, if any, holds.
  void wait(uint32_t seen);
  void wait() { wait(wake_seq()); }
  // Asks a thread-mode environment to stop: blocking calls return (the libOS's with -EINTR).
  void interrupt() {
    interrupted_.store(true, std::memory_order_release);
    wake();
  }
  bool interrupted() const { return interrupted_.load(std::memory_order_acquire); }

  // Scheduler bookkeeping (scheduler.h).
  bool runnable = true;
  bool exited = false;
  uint32_t seen_wake = 0;  // wake_seq() when its last slice started
  uint64_t slices = 0;

  struct Counters {
    uint64_t faults = 0;           // faults delivered to the upcall
    uint64_t faults_resolved = 0;  // ... after which the access succeeded
  };
  const Counters& counters() const { return counters_; }
  uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

 private:
  friend class Kernel;
  uint8_t* fault_and_retry(uint64_t va, size_t n, uint8_t access);

  Kernel& kernel_;
  uint32_t id_;
  std::string name_;
  AddressSpace mmu_;
  std::vector<Capability> caps_;
  FaultHandler fault_handler_;
  Body body_;
  WakeupPredicate* predicate_ = nullptr;
  std::atomic<uint32_t> wake_seq_{0};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> interrupted_{false};
  std::atomic<uint64_t> wakeups_{0};
  Counters counters_;
};

}  // namespace exojit::runtime
