// SPDX-License-Identifier: MIT
#include "exojit/runtime/clock.h"

namespace exojit::runtime {

void VirtualClock::at(uint64_t t, Action action) {
  queue_.push(Event{t < now_ ? now_ : t, order_++, std::move(action)});
}

size_t VirtualClock::run_due() {
  size_t n = 0;
  while (!queue_.empty() && queue_.top().time <= now_) {
    // Moved out before popping: the action may schedule further events.
    Action a = std::move(const_cast<Event&>(queue_.top()).action);
    queue_.pop();
    a();
    ++n;
  }
  return n;
}

bool VirtualClock::run_next() {
  if (queue_.empty()) return false;
  if (queue_.top().time > now_) now_ = queue_.top().time;
  run_due();
  return true;
}

void VirtualClock::advance_to(uint64_t t) {
  while (!queue_.empty() && queue_.top().time <= t) run_next();
  if (t > now_) now_ = t;
}

std::optional<uint64_t> VirtualClock::next_time() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.top().time;
}

}  // namespace exojit::runtime
