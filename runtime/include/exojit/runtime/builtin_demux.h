// SPDX-License-Identifier: MIT
// The built-in demultiplexer: keeps the runtime usable without dpf. A rule matches frames by
// EtherType and, for IPv4, optionally by destination address, IP protocol and (UDP/TCP)
// destination port; the most specific matching rule wins (the one naming the most fields; the
// earlier one on a tie). Every field is read only after checking the frame is long enough.
//
// IPv4 fragments other than the first carry no port: they match only rules without a port.
// (Steering later fragments by port needs the state of the first one: dpf's stateful atoms.)
#pragma once

#include <cstdint>
#include <vector>

#include "exojit/runtime/plugins.h"

namespace exojit::runtime {

struct DemuxRule {
  uint16_t ethertype = 0;  // e.g. 0x0800 IPv4, 0x0806 ARP; required
  uint32_t ip_dst = 0;     // host byte order; 0: any
  uint8_t ip_proto = 0;    // 0: any
  uint16_t dst_port = 0;   // UDP/TCP; 0: any (needs ip_proto 6 or 17)
};

class BuiltinDemux : public Demux {
 public:
  // Adds a rule; returns its filter id (1, 2, ...). Bad rules are an exojit::Error.
  uint32_t add(const DemuxRule& rule);
  void remove(uint32_t id);
  uint32_t classify(const uint8_t* packet, size_t length) override;
  // classify only reads the rules: any number of queues at once. add/remove while traffic
  // flows (thread mode) under Kernel::exclude_delivery.
  bool concurrent() const override { return true; }
  size_t size() const { return rules_.size(); }

 private:
  struct Entry {
    DemuxRule rule;
    uint32_t id;
    int specificity;
  };
  std::vector<Entry> rules_;  // sorted by specificity, most specific first
  uint32_t next_id_ = 1;
};

}  // namespace exojit::runtime
