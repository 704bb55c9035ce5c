// SPDX-License-Identifier: MIT
// Handler runs and the kernel operations that must not overlap them (item 5 of the ASH issue):
// a message handler keeps translations of application pages (ash's software TLB, host
// pointers from HandlerContext::span) for the length of one run, on the delivering thread, while
// other threads may unmap, re-protect or free those pages and revoke capabilities.
//
// The scheme is a grace period, as in read-copy-update: every handler run is announced in its
// thread's slot (a sequence number, odd while a run is in progress); a kernel operation that
// removes or reduces a translation first edits the page table (under the kernel's memory lock,
// so new runs translate again), then waits until every run that was in progress has ended
// (wait_for_handler_runs), and only then lets the frame go (its mapping count is held until
// then, so free_frame refuses it and no allocation can hand it out). A run thus finishes against
// the old, still-owned frame, and never sees a frame reused.
//
// Cost for a run: one sequentially-consistent store on entry, one release store on exit, both
// to the thread's own cache line; nothing per memory access. Cost for a writer: a scan of the
// slots, and a wait only if a run is in progress. Any number of threads may run handlers at
// once (one slot each, claimed once per thread; threads beyond the slots share a counter).
// Runs nest (a handler's reply delivered on the same thread, by an immediate link).
//
// Hand-written rather than liburcu: the stress test runs under ThreadSanitizer, which sees
// std::atomic but not liburcu's barriers (an uninstrumented library, membarrier and inline
// assembly), so every frame handed over after a grace period would be reported as a race.
#pragma once

#include <cstdint>

namespace exojit::runtime {

// Marks the current thread as running a handler for its lifetime (RAII; nests).
class HandlerRun {
 public:
  HandlerRun();
  ~HandlerRun();
  HandlerRun(const HandlerRun&) = delete;
  HandlerRun& operator=(const HandlerRun&) = delete;
};

// Returns once every handler run in progress on another thread when it was called has ended.
// Runs of the calling thread itself are not waited for (a C++ handler calling the kernel).
void wait_for_handler_runs();

// Whether the calling thread is inside a handler run (tests, assertions).
bool in_handler_run();

}  // namespace exojit::runtime
