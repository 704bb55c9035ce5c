// SPDX-License-Identifier: MIT
// Fuzz target for everything that reads frames from the wire: the NIC's receive path, the
// built-in demux, and the libOS's Ethernet/ARP/IPv4 (reassembly)/ICMP/UDP input. The input is
// split into frames (a 2-byte length before each); they are received by host B, whose stack
// processes them, and whatever it answers goes out through the NIC. Nothing may crash or read
// out of bounds, and the stack must still deliver a valid datagram afterwards.
//
// Built as a libFuzzer binary with -DEXOJIT_FUZZ=ON (clang); the corpus runner main() in this
// directory replays seeds as a test in every build.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "exojit/libos/two_hosts.h"

using exojit::libos::TwoHosts;

namespace {

struct World {
  TwoHosts net{{.static_arp = true}};
  std::vector<uint8_t> good;  // a valid datagram A -> B, port 9000
  int sb;
  World() {
    exo_stack* a = net.a.stack();
    exo_stack* b = net.b.stack();
    sb = exo_socket(b);
    exo_bind(b, sb, 9000);
    exo_setsockopt(b, sb, EXO_SO_NONBLOCK, 1);
    net.nic_a.add_tx_tap([this](const uint8_t* f, size_t n, uint64_t) {
      if (good.empty()) good.assign(f, f + n);
    });
    int sa = exo_socket(a);
    exo_sendto(a, sa, "probe", 5, TwoHosts::kIpB, 9000);
    drain();
  }
  void drain() {
    exo_stack* b = net.b.stack();
    exo_stack_poll(b);
    uint8_t buf[65536];
    while (exo_recvfrom(b, sb, buf, sizeof buf, nullptr, nullptr) >= 0) {
    }
    while (net.clock.run_next()) {
    }
    exo_stack_poll(net.a.stack());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World();
  size_t i = 0;
  while (i + 2 <= size) {
    size_t n = size_t(data[i] << 8 | data[i + 1]) % 2048;
    i += 2;
    if (n > size - i) n = size - i;
    std::vector<uint8_t> frame(data + i, data + i + n);  // exact size: ASan sees overreads
    // Steer most frames to host B (its MAC, IPv4) so the fuzzer reaches the stack quickly.
    if (frame.size() >= 14 && (frame[0] & 1) == 0) {
      const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 2};
      for (int k = 0; k < 6; ++k) frame[size_t(k)] = mac[k];
    }
    w->net.nic_b.receive_from_wire(frame.data(), frame.size());
    i += n;
  }
  w->drain();
  // Still alive: a valid datagram gets through.
  w->net.nic_b.receive_from_wire(w->good.data(), w->good.size());
  exo_stack_poll(w->net.b.stack());
  uint8_t buf[64];
  if (exo_recvfrom(w->net.b.stack(), w->sb, buf, sizeof buf, nullptr, nullptr) != 5) {
    std::fprintf(stderr, "fuzz_frames: the stack stopped delivering\n");
    std::abort();
  }
  w->drain();
  return 0;
}
