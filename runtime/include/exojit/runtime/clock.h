// SPDX-License-Identifier: MIT
// The deterministic virtual clock: a time in nanoseconds and a queue of events ordered by
// (time, order of scheduling). Links and timers put events here; the scheduler model advances
// the clock to the next event when no environment can run.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <vector>

namespace exojit::runtime {

class VirtualClock {
 public:
  using Action = std::function<void()>;

  uint64_t now() const { return now_; }
  // Runs `action` at time `t` (clamped to now: the past cannot be scheduled).
  void at(uint64_t t, Action action);
  void after(uint64_t dt, Action action) { at(now_ + dt, std::move(action)); }

  // Runs every event due at the current time. Returns how many ran.
  size_t run_due();
  // Advances to the next event's time and runs every event due then; false when none is pending.
  bool run_next();
  // Advances to `t`, running the events due on the way.
  void advance_to(uint64_t t);
  std::optional<uint64_t> next_time() const;
  size_t pending() const { return queue_.size(); }

 private:
  struct Event {
    uint64_t time;
    uint64_t order;
    Action action;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time != b.time ? a.time > b.time : a.order > b.order;
    }
  };
  uint64_t now_ = 0;
  uint64_t order_ = 0;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
};

}  // namespace exojit::runtime
