// SPDX-License-Identifier: MIT
// A point-to-point link between two NICs on the virtual clock: latency, bandwidth, loss.
//
// A frame sent at virtual time t starts serializing when the link direction is free, occupies a
// transmit-ring slot of the sender until it has left (length * 8 / bandwidth), and arrives at the
// peer `latency` later. Loss is drawn from a seeded generator, so runs repeat exactly. With
// `immediate` (the thread mode's choice: real threads do not share a virtual clock) the frame is
// handed to the peer at once, on the sender's thread; latency and bandwidth are then ignored.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <vector>

namespace exojit::runtime {

class Nic;
class VirtualClock;

struct LinkConfig {
  uint64_t latency_ns = 0;
  uint64_t bits_per_second = 0;  // 0: unlimited
  double loss = 0;               // probability a frame is lost, 0..1
  uint64_t seed = 1;
  bool immediate = false;
};

struct LinkCounters {
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t lost = 0;
  uint64_t bytes = 0;
};

class Link {
 public:
  Link(VirtualClock& clock, Nic& a, Nic& b, LinkConfig config);
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Called by `from` for a frame it transmits.
  void send(Nic& from, const uint8_t* frame, size_t length);
  const LinkCounters& counters(const Nic& from) const { return dir_[&from == &b_].counters; }
  const LinkConfig& config() const { return config_; }

 private:
  struct InFlight {
    std::vector<uint8_t> bytes;
  };
  struct Direction {
    uint64_t busy_until = 0;
    std::deque<InFlight> wire;                // FIFO: arrivals keep the sending order
    std::vector<std::vector<uint8_t>> spare;  // recycled buffers
    LinkCounters counters;
    std::mt19937_64 rng;
    std::mutex lock;  // immediate mode: senders on several threads (never held across a call out)
  };
  void arrive(int d);

  VirtualClock& clock_;
  Nic& a_;
  Nic& b_;
  LinkConfig config_;
  Direction dir_[2];
};

}  // namespace exojit::runtime
