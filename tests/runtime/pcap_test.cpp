// SPDX-License-Identifier: MIT
// pcap round trip: what a NIC transmits, written to a capture, replays into another NIC as the
// same packets; the virtual clock's times are kept. Unreadable files are clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "exojit/error.h"
#include "exojit/libos/two_hosts.h"
#include "exojit/runtime/pcap_io.h"

namespace exojit::runtime {
namespace {

std::string temp_path(const char* stem) {
  return std::string(::testing::TempDir()) + stem + std::to_string(getpid()) + ".pcap";
}

TEST(Pcap, WriteThenReplayGivesTheSamePackets) {
  std::string path = temp_path("exojit_pcap_roundtrip_");
  std::vector<PcapPacket> sent;
  {
    libos::TwoHosts net({.link = {.latency_ns = 2000, .bits_per_second = 1000000000}});
    PcapWriter writer(path);
    writer.record_tx(net.nic_a);
    net.nic_a.add_tx_tap([&](const uint8_t* f, size_t n, uint64_t t) {
      sent.push_back(PcapPacket{t, std::vector<uint8_t>(f, f + n)});
    });
    exo_stack* a = net.a.stack();
    int s = exo_socket(a);
    std::vector<uint8_t> big(4000, 0x33);
    exo_sendto(a, s, "x", 1, libos::TwoHosts::kIpB, 9);            // ARP first, then this
    exo_sendto(a, s, big.data(), 4000, libos::TwoHosts::kIpB, 9);  // 3 fragments
    net.env_a.set_body([&](Environment&) {
      exo_stack_poll(a);
      return Step::Block;
    });
    net.env_b.set_body([&](Environment&) {
      exo_stack_poll(net.b.stack());
      return Step::Block;
    });
    net.scheduler.run();
    exo_ping(a, libos::TwoHosts::kIpB, 1, 1, 100);
    net.scheduler.run();
    EXPECT_EQ(writer.packets(), sent.size());
  }
  ASSERT_GE(sent.size(), 6u);  // ARP request, datagram, 3 fragments, ping
  std::vector<PcapPacket> read = read_pcap(path);
  ASSERT_EQ(read.size(), sent.size());
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].bytes, sent[i].bytes) << i;
    EXPECT_EQ(read[i].time_ns, sent[i].time_ns) << i;
  }
  // Replay into a fresh NIC, immediately and on its virtual clock.
  for (ReplayTiming timing : {ReplayTiming::Immediate, ReplayTiming::VirtualClock}) {
    Kernel k({.frames = 512});
    Nic& nic = k.add_nic({}, Capability::root());
    std::vector<PcapPacket> got;
    nic.add_rx_tap([&](const uint8_t* f, size_t n, uint64_t t) {
      got.push_back(PcapPacket{t, std::vector<uint8_t>(f, f + n)});
    });
    EXPECT_EQ(replay_pcap(path, nic, timing), sent.size());
    while (k.clock().run_next()) {
    }
    ASSERT_EQ(got.size(), sent.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].bytes, sent[i].bytes);
      if (timing == ReplayTiming::VirtualClock) {
        EXPECT_EQ(got[i].time_ns, sent[i].time_ns - sent[0].time_ns);
      }
    }
    EXPECT_EQ(nic.counters().rx_frames, sent.size());
    EXPECT_EQ(nic.counters().rx_drops_no_owner, sent.size());  // no demux: counted, not lost
  }
  std::remove(path.c_str());
}

TEST(Pcap, ErrorsNameTheFile) {
  try {
    read_pcap("/nonexistent/exojit.pcap");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/exojit.pcap"), std::string::npos);
  }
  std::string path = temp_path("exojit_not_a_pcap_");
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("this is not a capture\n", f);
  std::fclose(f);
  EXPECT_THROW(read_pcap(path), Error);
  std::remove(path.c_str());
  EXPECT_THROW(PcapWriter("/nonexistent/dir/out.pcap"), Error);
}

}  // namespace
}  // namespace exojit::runtime
