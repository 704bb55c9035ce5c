// SPDX-License-Identifier: MIT
// Two simulated machines joined by a link, each with one environment running the libOS: the
// set-up the demo (exo-sim), the tests and the benchmarks share.
//
//   TwoHosts net({.link = {.latency_ns = 10000, .bits_per_second = 1000000000}});
//   int a = exo_socket(net.a.stack()), b = exo_socket(net.b.stack());
//   ... bodies on net.env_a / net.env_b, then net.scheduler.run(...)
//
// Host A is 10.0.0.1 (MAC 02:00:00:00:00:01), host B 10.0.0.2 (02:00:00:00:00:02). In thread
// mode the link is immediate and environments are meant to run under a ThreadRunner.
#pragma once

#include <memory>

#include "exojit/libos/host.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"
#include "exojit/runtime/scheduler.h"

namespace exojit::libos {

struct TwoHostsConfig {
  runtime::LinkConfig link{};
  runtime::Mode mode = runtime::Mode::Scheduler;
  runtime::DmaMode dma = runtime::DmaMode::KernelBuffers;
  uint16_t mtu = 1500;
  uint32_t ring_slots = 64;
  uint32_t pool_buffers = 256;
  uint32_t queues = 1;      // receive queues of each NIC (RSS-steered)
  bool static_arp = false;  // pre-load each ARP table (else the first send resolves)
};

struct TwoHosts {
  explicit TwoHosts(const TwoHostsConfig& config = {});

  static constexpr uint32_t kIpA = ipv4(10, 0, 0, 1);
  static constexpr uint32_t kIpB = ipv4(10, 0, 0, 2);

  runtime::VirtualClock clock;
  runtime::Kernel kernel_a, kernel_b;
  runtime::BuiltinDemux demux_a, demux_b;
  runtime::Nic& nic_a;
  runtime::Nic& nic_b;
  runtime::Link& link;
  runtime::Environment& env_a;
  runtime::Environment& env_b;
  Host a, b;
  runtime::Scheduler scheduler;
};

}  // namespace exojit::libos
