// SPDX-License-Identifier: MIT
// Real I/O at the edge, through pcap files (libpcap): replay a capture into a NIC's receive side,
// write a NIC's transmitted (or received) frames to a capture. Nanosecond time stamps carry the
// virtual clock's time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace exojit::runtime {

class Nic;
class VirtualClock;

class PcapWriter {
 public:
  // Creates (truncates) `path` as an Ethernet capture; exojit::Error naming the cause on failure.
  explicit PcapWriter(const std::string& path);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  void write(const uint8_t* frame, size_t length, uint64_t time_ns);
  // Records every frame `nic` transmits (or receives) from now on, at the virtual time.
  void record_tx(Nic& nic);
  void record_rx(Nic& nic);
  void flush();
  uint64_t packets() const { return packets_; }

 private:
  void* pcap_ = nullptr;    // pcap_t*
  void* dumper_ = nullptr;  // pcap_dumper_t*
  uint64_t packets_ = 0;
};

struct PcapPacket {
  uint64_t time_ns;
  std::vector<uint8_t> bytes;
};

// Reads a whole capture (any link type libpcap reads; Ethernet is what NICs take).
std::vector<PcapPacket> read_pcap(const std::string& path);

enum class ReplayTiming : uint8_t {
  Immediate,     // every packet now, one after the other
  VirtualClock,  // at its recorded offset from the first packet, on the clock (run the clock)
};

// Replays a capture into `nic`'s receive side. Returns the number of packets read.
size_t replay_pcap(const std::string& path, Nic& nic,
                   ReplayTiming timing = ReplayTiming::Immediate);

}  // namespace exojit::runtime
