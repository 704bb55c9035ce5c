// SPDX-License-Identifier: MIT
#include "exojit/libos/two_hosts.h"

namespace exojit::libos {

using namespace exojit::runtime;

namespace {
KernelConfig kernel_config(const TwoHostsConfig& c, VirtualClock* clock) {
  KernelConfig k;
  k.mode = c.mode;
  k.clock = clock;
  return k;
}
NicConfig nic_config(const char* name, uint8_t last, const TwoHostsConfig& c) {
  NicConfig n;
  n.name = name;
  n.mac = MacAddress{0x02, 0, 0, 0, 0, last};
  n.dma = c.dma;
  n.queues = c.queues;
  // Kernel memory for the receive buffers: 64 per queue (4096 frames of physical memory).
  if (c.queues > 1) n.rx_slots = 64;
  return n;
}
LinkConfig link_config(const TwoHostsConfig& c) {
  LinkConfig l = c.link;
  if (c.mode == Mode::Threads) l.immediate = true;
  return l;
}
HostConfig host_config(uint32_t ip, const TwoHostsConfig& c) {
  HostConfig h;
  h.ip = ip;
  h.mtu = c.mtu;
  h.ring_slots = c.ring_slots;
  h.pool_buffers = c.pool_buffers;
  return h;
}
// Each machine's NIC transmit side is guarded by a capability its environment is given.
const Capability kNicGuard = Capability::make({0x4e}, kPermWrite);
}  // namespace

TwoHosts::TwoHosts(const TwoHostsConfig& c)
    : kernel_a(kernel_config(c, &clock)),
      kernel_b(kernel_config(c, &clock)),
      nic_a(kernel_a.add_nic(nic_config("a0", 1, c), kNicGuard)),
      nic_b(kernel_b.add_nic(nic_config("b0", 2, c), kNicGuard)),
      link(kernel_a.connect(nic_a, nic_b, link_config(c))),
      env_a(kernel_a.create_environment("host-a", Capability::root())),
      env_b(kernel_b.create_environment("host-b", Capability::root())),
      a((kernel_a.set_demux(&demux_a), kernel_a), env_a, 0, nic_a, demux_a, host_config(kIpA, c)),
      b((kernel_b.set_demux(&demux_b), kernel_b), env_b, 0, nic_b, demux_b, host_config(kIpB, c)),
      scheduler(clock) {
  if (c.static_arp) {
    exo_arp_add(a.stack(), kIpB, nic_b.mac().data());
    exo_arp_add(b.stack(), kIpA, nic_a.mac().data());
  }
  scheduler.set_slices({&env_a, &env_b});
}

}  // namespace exojit::libos
