// SPDX-License-Identifier: MIT
// The AF_PACKET adapter against the real Linux stack: the test builds two network namespaces
// joined by a veth pair. In the first, a modelled NIC is attached to one end and the libOS runs
// on it; in the second, Linux answers ARP and ICMP and a real UDP socket echoes datagrams
// (fragmented ones too). Skipped, with the reason, when namespaces or raw sockets are not
// permitted.
#include "exojit/runtime/af_packet.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "exojit/libos/host.h"

namespace exojit::runtime {
namespace {

constexpr int kSkip = 77;

bool sh(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

// The second namespace: Linux at 10.9.0.2 on vb, a UDP echo server on port 7.
int linux_side(int ready_fd, int go_fd) {
  if (unshare(CLONE_NEWNET) != 0) return 2;
  char c = 1;
  if (write(ready_fd, &c, 1) != 1) return 3;
  if (read(go_fd, &c, 1) != 1) return 4;  // vb has been moved here
  if (!sh("ip link set lo up") || !sh("ip addr add 10.9.0.2/24 dev vb") || !sh("ip link set vb up"))
    return 5;
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(7);
  a.sin_addr.s_addr = htonl(0x0a090002);
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 6;
  timeval tv{10, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  c = 2;
  if (write(ready_fd, &c, 1) != 1) return 7;
  std::vector<char> buf(65536);
  for (int i = 0; i < 2; ++i) {  // two datagrams: a small one and a fragmented one
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(s, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n < 0) return 8;
    sendto(s, buf.data(), size_t(n), 0, reinterpret_cast<sockaddr*>(&from), fl);
  }
  return 0;
}

// The first namespace: the modelled machine on va.
int model_side() {
  if (unshare(CLONE_NEWNET) != 0) return kSkip;
  if (!sh("ip link add va type veth peer name vb")) return kSkip;
  int ready[2], go[2];
  if (pipe(ready) || pipe(go)) return 10;
  pid_t pid = fork();
  if (pid == 0) _exit(linux_side(ready[1], go[0]));
  char c;
  if (read(ready[0], &c, 1) != 1) return 11;
  if (!sh("ip link set vb netns " + std::to_string(pid))) return 12;
  if (!sh("ip link set va up") || !sh("ip link set va promisc on")) return 13;
  c = 1;
  if (write(go[1], &c, 1) != 1) return 14;
  if (read(ready[0], &c, 1) != 1 || c != 2) return 15;

  Kernel kernel({.frames = 1024});
  BuiltinDemux demux;
  kernel.set_demux(&demux);
  NicConfig nc;
  nc.mac = MacAddress{0x02, 0x65, 0x78, 0x6f, 0, 1};
  Nic& nic = kernel.add_nic(nc, Capability::root());
  Environment& env = kernel.create_environment("app", Capability::root());
  libos::HostConfig hc;
  hc.ip = 0x0a090001;
  libos::Host host(kernel, env, 0, nic, demux, hc);
  AfPacketPort port(nic, "va");
  exo_stack* s = host.stack();
  int fd = exo_socket(s);
  exo_setsockopt(s, fd, EXO_SO_NONBLOCK, 1);
  for (size_t size : {size_t(32), size_t(3000)}) {
    std::vector<uint8_t> msg(size);
    for (size_t i = 0; i < size; ++i) msg[i] = uint8_t(i * 7);
    if (exo_sendto(s, fd, msg.data(), uint32_t(size), 0x0a090002, 7) != int(size)) return 20;
    std::vector<uint8_t> back(65536);
    int n = -1;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (n < 0 && std::chrono::steady_clock::now() < deadline) {
      port.poll(20);
      exo_stack_poll(s);
      n = exo_recvfrom(s, fd, back.data(), uint32_t(back.size()), nullptr, nullptr);
    }
    if (n != int(size)) {
      const exo_counters& k = s->counters;
      std::fprintf(
          stderr,
          "no echo of %zu bytes: port rx %llu tx %llu; nic no-owner %llu; stack frames "
          "%llu arp %llu ip %llu (bad sum %llu, not for us %llu) udp %llu (bad sum %llu, "
          "no socket %llu) frag %llu\n",
          size, (unsigned long long)port.counters().rx, (unsigned long long)port.counters().tx,
          (unsigned long long)nic.counters().rx_drops_no_owner, (unsigned long long)k.rx_frames,
          (unsigned long long)k.arp_rx, (unsigned long long)k.ip_rx,
          (unsigned long long)k.ip_bad_checksum, (unsigned long long)k.ip_not_for_us,
          (unsigned long long)k.udp_rx, (unsigned long long)k.udp_bad_checksum,
          (unsigned long long)k.udp_no_socket, (unsigned long long)k.frag_rx);
      return 21;
    }
    if (!std::equal(msg.begin(), msg.end(), back.begin())) return 22;
    if (size == 3000 && s->counters.frag_reassembled == 0) return 23;  // Linux fragmented it
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) * 100 : 99;
}

TEST(AfPacket, ModelledHostTalksToLinuxThroughAVethPair) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, raw sockets)";
  if (!sh("ip -V")) GTEST_SKIP() << "needs the ip tool (Debian iproute2)";
  pid_t pid = fork();
  if (pid == 0) _exit(model_side());
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == kSkip)
    GTEST_SKIP() << "creating network namespaces / veth pairs is not permitted here";
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "failed step (see af_packet_test.cpp): " << WEXITSTATUS(status);
}

}  // namespace
}  // namespace exojit::runtime
