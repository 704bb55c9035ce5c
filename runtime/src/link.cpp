// SPDX-License-Identifier: MIT
#include "exojit/runtime/link.h"

#include "exojit/error.h"
#include "exojit/runtime/clock.h"
#include "exojit/runtime/nic.h"

namespace exojit::runtime {

Link::Link(VirtualClock& clock, Nic& a, Nic& b, LinkConfig config)
    : clock_(clock), a_(a), b_(b), config_(config) {
  if (!(config.loss >= 0 && config.loss <= 1)) fail("link loss {} is not in [0, 1]", config.loss);
  dir_[0].rng.seed(config.seed);
  dir_[1].rng.seed(config.seed ^ 0x9e3779b97f4a7c15ull);
}

void Link::send(Nic& from, const uint8_t* frame, size_t length) {
  int d = &from == &b_;
  Nic& to = d ? a_ : b_;
  Direction& dir = dir_[d];
  bool lost;
  {
    std::unique_lock<std::mutex> lock(dir.lock, std::defer_lock);
    if (config_.immediate) lock.lock();
    ++dir.counters.sent;
    dir.counters.bytes += length;
    lost = config_.loss > 0 && std::uniform_real_distribution<double>(0, 1)(dir.rng) < config_.loss;
    if (config_.immediate) ++(lost ? dir.counters.lost : dir.counters.delivered);
  }
  if (config_.immediate) {
    from.tx_done();
    if (!lost) to.receive_from_wire(frame, length);
    return;
  }
  // Serialization: the frame starts when the direction is free and takes length*8/bandwidth.
  uint64_t start = std::max(clock_.now(), dir.busy_until);
  uint64_t wire_ns = config_.bits_per_second
                         ? (uint64_t(length) * 8 * 1000000000ull + config_.bits_per_second - 1) /
                               config_.bits_per_second
                         : 0;
  dir.busy_until = start + wire_ns;
  Nic* sender = &from;
  if (dir.busy_until == clock_.now())
    from.tx_done();  // nothing to serialize: the slot is free at once (no event needed)
  else
    clock_.at(dir.busy_until, [sender] { sender->tx_done(); });
  if (lost) {
    ++dir.counters.lost;
    return;
  }
  std::vector<uint8_t> buf;
  if (!dir.spare.empty()) {
    buf = std::move(dir.spare.back());
    dir.spare.pop_back();
  }
  buf.assign(frame, frame + length);
  dir.wire.push_back(InFlight{std::move(buf)});
  clock_.at(dir.busy_until + config_.latency_ns, [this, d] { arrive(d); });
}

void Link::arrive(int d) {
  Direction& dir = dir_[d];
  InFlight f = std::move(dir.wire.front());
  dir.wire.pop_front();
  ++dir.counters.delivered;
  (d ? a_ : b_).receive_from_wire(f.bytes.data(), f.bytes.size());
  dir.spare.push_back(std::move(f.bytes));
}

}  // namespace exojit::runtime
