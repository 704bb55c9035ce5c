// SPDX-License-Identifier: MIT
// Running environments: the deterministic scheduler model and real host threads.
//
// Scheduler (the default for tests): a time-slice vector — each entry gives one slice to one
// environment, so an environment listed twice gets twice the share — walked round-robin,
// skipping environments that are blocked (or exited). A blocked environment becomes runnable
// when it is woken (a packet in its ring, a timer, wake()) or its wake-up predicate holds. When
// nothing can run, the virtual clock jumps to the next event (a frame arriving, a timer). Each
// slice may charge `quantum_ns` of virtual time, the modelled CPU time of a slice.
//
// ThreadRunner (the default for benchmarks): each environment is a host thread running its own
// loop, sleeping in Environment::wait() until the kernel wakes it, so the cost of being woken and
// scheduled by the host ([ASH96], Figure 5) is real when measured.
#pragma once

#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "exojit/runtime/environment.h"
#include "exojit/runtime/kernel.h"

namespace exojit::runtime {

struct SchedulerStats {
  uint64_t slices = 0;
  uint64_t idle_jumps = 0;         // times the clock jumped to the next event
  uint64_t predicate_wakeups = 0;  // blocked environments made runnable by their predicate
};

class Scheduler {
 public:
  explicit Scheduler(VirtualClock& clock) : clock_(clock) {}
  explicit Scheduler(Kernel& kernel) : clock_(kernel.clock()) {}

  // The time-slice vector (environments may repeat); replaces the previous one.
  void set_slices(std::vector<Environment*> slices);
  void add(Environment& env) { slices_.push_back(&env); }

  // Runs until `done` returns true (checked after every slice and event), nothing can run and
  // no event is pending, or `max_slices` slices have run. Returns true when `done` held (or,
  // without `done`, when the machine went idle).
  bool run(const std::function<bool()>& done = {}, uint64_t max_slices = ~uint64_t(0));
  // One slice for the next runnable environment, or one clock event when none is runnable.
  // Returns false when the machine is idle.
  bool step();

  uint64_t quantum_ns = 0;
  const SchedulerStats& stats() const { return stats_; }

 private:
  VirtualClock& clock_;
  std::vector<Environment*> slices_;
  size_t cursor_ = 0;
  SchedulerStats stats_;
};

class ThreadRunner {
 public:
  using Main = std::function<void(Environment& env)>;
  explicit ThreadRunner(Kernel& kernel);
  ~ThreadRunner();  // joins (call stop() first if the mains loop until asked to end)

  void start(Environment& env, Main main);
  // Asks every thread to end (stopping() becomes true, each environment is interrupted: its
  // blocking calls return) and joins.
  void stop();
  bool stopping() const { return stop_.load(std::memory_order_acquire); }
  void join();

 private:
  std::vector<std::thread> threads_;
  std::vector<Environment*> envs_;
  std::atomic<bool> stop_{false};
};

}  // namespace exojit::runtime
