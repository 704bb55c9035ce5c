// SPDX-License-Identifier: MIT
#include "exojit/runtime/scheduler.h"

#include "exojit/error.h"
#include "exojit/runtime/plugins.h"

namespace exojit::runtime {

void Scheduler::set_slices(std::vector<Environment*> slices) {
  for (Environment* e : slices)
    if (!e) fail("scheduler: null environment in the time-slice vector");
  slices_ = std::move(slices);
  cursor_ = 0;
}

bool Scheduler::step() {
  VirtualClock& clock = clock_;
  bool events = clock.run_due() > 0;
  size_t n = slices_.size();
  for (size_t i = 0; i < n; ++i) {
    Environment* env = slices_[cursor_];
    cursor_ = (cursor_ + 1) % n;
    if (env->exited || !env->body()) continue;
    if (!env->runnable && env->wake_seq() != env->seen_wake) env->runnable = true;
    if (!env->runnable && env->predicate() && env->predicate()->evaluate()) {
      env->runnable = true;
      ++stats_.predicate_wakeups;
    }
    if (!env->runnable) continue;
    env->seen_wake = env->wake_seq();
    Step s = env->body()(*env);
    ++env->slices;
    ++stats_.slices;
    if (quantum_ns) clock.advance_to(clock.now() + quantum_ns);
    if (s == Step::Exit) env->exited = true;
    // Woken during its own slice (e.g. a reply arrived already): stays runnable.
    env->runnable = s == Step::Yield || (s == Step::Block && env->wake_seq() != env->seen_wake);
    return true;
  }
  if (events) return true;  // they may have made someone runnable, or fed a poller
  if (clock.run_next()) {
    ++stats_.idle_jumps;
    return true;
  }
  return false;
}

bool Scheduler::run(const std::function<bool()>& done, uint64_t max_slices) {
  uint64_t start = stats_.slices;
  while (stats_.slices - start < max_slices) {
    if (done && done()) return true;
    if (!step()) return !done;
  }
  return done && done();
}

ThreadRunner::ThreadRunner(Kernel& kernel) {
  if (!kernel.threaded()) fail("ThreadRunner needs a kernel in Mode::Threads");
}

ThreadRunner::~ThreadRunner() {
  stop();
}

void ThreadRunner::start(Environment& env, Main main) {
  envs_.push_back(&env);
  threads_.emplace_back([&env, main = std::move(main)] { main(env); });
}

void ThreadRunner::stop() {
  stop_.store(true, std::memory_order_release);
  for (Environment* e : envs_) e->interrupt();
  join();
}

void ThreadRunner::join() {
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace exojit::runtime
