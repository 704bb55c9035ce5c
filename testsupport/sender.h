// SPDX-License-Identifier: MIT
// One simulated machine whose libOS sends UDP through a NIC with no link (a frame leaves at
// once), its frames captured by a transmit tap: the set-up of the specializer's tests, exo-spec
// and bench_spec. The next hop 10.0.0.2 (and the gateway 10.0.0.254) are in the ARP table.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "exojit/libos/host.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"

namespace exojit::specializer::testing {

struct SenderConfig {
  uint16_t mtu = 1500;
  uint32_t pool_buffers = 256;
  bool capture = true;  // keep every transmitted frame in Sender::frames
};

struct Sender {
  static constexpr uint32_t kIp = libos::ipv4(10, 0, 0, 1);
  static constexpr uint32_t kPeer = libos::ipv4(10, 0, 0, 2);
  static constexpr uint32_t kGateway = libos::ipv4(10, 0, 0, 254);
  static constexpr uint8_t kPeerMac[6] = {0x02, 0, 0, 0, 0, 2};
  static constexpr uint8_t kGatewayMac[6] = {0x02, 0, 0, 0, 0, 0xfe};

  explicit Sender(const SenderConfig& c = {})
      : kernel(runtime::KernelConfig{}),
        nic((kernel.set_demux(&demux),
             kernel.add_nic({}, runtime::Capability::make({0x4e}, runtime::kPermWrite)))),
        env(kernel.create_environment("sender", runtime::Capability::root())),
        host(kernel, env, 0, nic, demux, host_config(c)) {
    exo_arp_add(stack(), kPeer, kPeerMac);
    exo_arp_add(stack(), kGateway, kGatewayMac);
    if (c.capture)
      nic.add_tx_tap(
          [this](const uint8_t* f, size_t n, uint64_t) { frames.emplace_back(f, f + n); });
  }

  exo_stack* stack() { return host.stack(); }

  static libos::HostConfig host_config(const SenderConfig& c) {
    libos::HostConfig h;
    h.ip = kIp;
    h.gateway = kGateway;
    h.mtu = c.mtu;
    h.pool_buffers = c.pool_buffers;
    return h;
  }

  runtime::Kernel kernel;
  runtime::BuiltinDemux demux;
  runtime::Nic& nic;
  runtime::Environment& env;
  libos::Host host;
  std::vector<std::vector<uint8_t>> frames;
};

}  // namespace exojit::specializer::testing
