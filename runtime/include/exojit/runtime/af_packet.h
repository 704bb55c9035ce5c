// SPDX-License-Identifier: MIT
// An AF_PACKET adapter: attaches a modelled NIC to a real Linux interface. Frames the NIC
// transmits go out on the interface; frames the interface receives are fed to the NIC's receive
// side by poll(). Linux only; needs CAP_NET_RAW. Errors are exojit::Error naming the cause.
#pragma once

#include <cstdint>
#include <string>

namespace exojit::runtime {

class Nic;

struct AfPacketCounters {
  uint64_t rx = 0, tx = 0, tx_errors = 0;
};

class AfPacketPort {
 public:
  AfPacketPort(Nic& nic, const std::string& interface);
  ~AfPacketPort();
  AfPacketPort(const AfPacketPort&) = delete;
  AfPacketPort& operator=(const AfPacketPort&) = delete;

  // Feeds every frame waiting on the interface (waiting up to timeout_ms for the first) to the
  // NIC. Returns how many.
  size_t poll(int timeout_ms = 0);
  const AfPacketCounters& counters() const { return counters_; }
  int fd() const { return fd_; }

 private:
  Nic& nic_;
  int fd_ = -1;
  AfPacketCounters counters_;
};

}  // namespace exojit::runtime
