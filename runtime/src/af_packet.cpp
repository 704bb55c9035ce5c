// SPDX-License-Identifier: MIT
#include "exojit/runtime/af_packet.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "exojit/error.h"
#include "exojit/runtime/nic.h"

namespace exojit::runtime {

AfPacketPort::AfPacketPort(Nic& nic, const std::string& interface) : nic_(nic) {
  unsigned index = if_nametoindex(interface.c_str());
  if (index == 0) fail("AF_PACKET: no interface '{}': {}", interface, std::strerror(errno));
  fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd_ < 0) fail("AF_PACKET: socket: {} (needs CAP_NET_RAW)", std::strerror(errno));
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = int(index);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) {
    int e = errno;
    close(fd_);
    fail("AF_PACKET: bind to '{}': {}", interface, std::strerror(e));
  }
  // Frames from a local sender (veth, loopback-like paths) may carry a checksum the kernel left
  // for hardware to finish; the auxiliary data says so and poll() completes it.
  int one = 1;
  setsockopt(fd_, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one);
  nic.add_tx_tap([this](const uint8_t* f, size_t n, uint64_t) {
    if (send(fd_, f, n, 0) == ssize_t(n))
      ++counters_.tx;
    else
      ++counters_.tx_errors;
  });
}

AfPacketPort::~AfPacketPort() {
  if (fd_ >= 0) close(fd_);
}

namespace {
uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum) {
  for (; n >= 2; p += 2, n -= 2) sum += uint32_t(p[0] << 8 | p[1]);
  if (n) sum += uint32_t(p[0] << 8);
  return sum;
}

// Completes the TCP/UDP checksum of an unfragmented IPv4 frame (what checksum offload would have
// done in hardware). Frames it does not understand are left as they are.
void complete_checksum(uint8_t* f, size_t len) {
  if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00 || (f[14] >> 4) != 4) return;
  size_t ihl = size_t(f[14] & 15) * 4;
  size_t total = size_t(f[16] << 8 | f[17]);
  if (ihl < 20 || total < ihl || 14 + total > len || (f[20] & 0x3f) || f[21]) return;  // fragment
  uint8_t proto = f[23];
  size_t off = proto == 17 ? 6 : proto == 6 ? 16 : 0;
  size_t l4 = total - ihl;
  if (!off || l4 < off + 2) return;
  uint8_t* t = f + 14 + ihl;
  t[off] = t[off + 1] = 0;
  uint32_t sum = sum16(f + 26, 8, 0) + proto + uint32_t(l4);
  sum = sum16(t, l4, sum);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t c = uint16_t(~sum);
  if (proto == 17 && c == 0) c = 0xffff;
  t[off] = uint8_t(c >> 8), t[off + 1] = uint8_t(c);
}
}  // namespace

size_t AfPacketPort::poll(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return 0;
  std::vector<uint8_t> buf(65536);
  size_t n = 0;
  for (;;) {
    sockaddr_ll from{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(tpacket_auxdata))];
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t got = recvmsg(fd_, &msg, 0);
    if (got < 0) break;                                 // EAGAIN: drained
    if (from.sll_pkttype == PACKET_OUTGOING) continue;  // our own transmissions, looped back
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
        tpacket_auxdata aux;
        std::memcpy(&aux, CMSG_DATA(c), sizeof aux);
        if (aux.tp_status & TP_STATUS_CSUMNOTREADY) complete_checksum(buf.data(), size_t(got));
      }
    ++counters_.rx;
    ++n;
    nic_.receive_from_wire(buf.data(), size_t(got));
  }
  return n;
}

}  // namespace exojit::runtime
