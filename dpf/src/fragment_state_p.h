// SPDX-License-Identifier: MIT
// The state of the stateful atoms ([EXOTOOLS02] section 2.1.6): the values RECORD remembered, per
// filter id, and the packets held for values not yet remembered, per owner. Bounded: values per
// id (the oldest goes first), packets and bytes per owner (that owner's oldest go first, so one
// owner's fragments never evict another's); everything expires after the engine's lifetime.
// Lookups are hash-table probes: the cost of a packet does not grow with the number of filters.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "exojit/dpf/engine.h"

namespace exojit::dpf::detail {

class FragmentState {
 public:
  explicit FragmentState(size_t values_per_id) : capacity_(values_per_id) {}

  // Was `value` remembered for `id`, and not yet expired at `now`?
  bool recorded(uint32_t id, uint64_t value, uint64_t now) const;
  void remember(uint32_t id, uint64_t value, uint64_t expiry);

  struct Held {
    uint32_t id;                  // the filter it would match
    std::vector<uint64_t> waits;  // the values its RECORDED atoms test
    uint64_t expiry;
    std::vector<uint8_t> packet;
    uint64_t seq = 0;  // arrival order
  };
  // Holds a packet for `owner`, within `limits` (expired and then oldest packets of that owner
  // make room). False: not held (it alone exceeds the limits).
  bool hold(uint32_t owner, Held h, const OwnerLimits& limits, uint64_t now);
  // The owner's held packets for `id` that wait for `value`, taken out (expired ones dropped);
  // put_back returns one that no filter accepts yet to its place.
  std::vector<Held> take_waiting(uint32_t owner, uint32_t id, uint64_t value, uint64_t now);
  void put_back(uint32_t owner, Held h);
  // Filter `id` of `owner` was removed: its values and held packets go.
  void drop(uint32_t owner, uint32_t id);

  size_t held_packets(uint32_t owner) const;
  size_t held_bytes(uint32_t owner) const;
  size_t evicted() const { return evicted_; }  // held packets dropped to make room or expired

 private:
  struct Values {
    std::unordered_map<uint64_t, uint64_t> expiry;    // value -> expiry
    std::deque<std::pair<uint64_t, uint64_t>> order;  // (value, expiry) as remembered
  };
  struct Pool {
    std::deque<Held> packets;  // by seq
    size_t bytes = 0;
  };
  void pop_front(Pool& p);

  size_t capacity_;
  std::unordered_map<uint32_t, Values> values_;
  std::unordered_map<uint32_t, Pool> pools_;
  uint64_t seq_ = 0;
  size_t evicted_ = 0;
};

}  // namespace exojit::dpf::detail
