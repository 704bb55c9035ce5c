// SPDX-License-Identifier: MIT
// Attaching the libOS to an environment: the C++ glue between the runtime's kernel calls and the
// C-style stack (netstack.h). It allocates the environment's ring page and buffer pool, creates
// the packet ring, claims demux rules for the host's traffic (ARP, and IPv4 to its address) on a
// built-in demux, and gives the stack its kernel operations (transmit through Kernel::transmit,
// translation through the environment's MMU, the virtual clock, and — in thread mode — waiting).
#pragma once

#include <cstdint>
#include <memory>

#include "exojit/libos/netstack.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"

namespace exojit::libos {

struct HostConfig {
  uint32_t ip = 0, netmask = 0xffffff00u, gateway = 0;
  uint16_t mtu = 1500;
  uint32_t ring_slots = 64;
  uint32_t pool_buffers = 256;    // 2 KiB each; the ring takes ring_slots of them
  uint64_t base_va = 0x10000000;  // ring page, then the pool
  bool claim_arp = true;          // take ARP frames (one environment per machine does)
};

inline constexpr uint32_t ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d;
}

class Host {
 public:
  // `cap` is the environment's capability used for its memory, ring, filter slots and (with
  // write permission on the NIC's transmit guard) sending.
  Host(runtime::Kernel& kernel, runtime::Environment& env, size_t cap, runtime::Nic& nic,
       runtime::BuiltinDemux& demux, const HostConfig& config);
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  exo_stack* stack() { return stack_.get(); }
  runtime::Environment& env() { return env_; }
  runtime::Nic& nic() { return nic_; }
  uint32_t ring_id() const { return ring_; }
  const runtime::PacketRing& ring() const { return kernel_.ring(ring_); }
  uint32_t ip() const { return config_.ip; }

 private:
  static int transmit(void* ctx, uint64_t va, uint32_t len);
  static uint8_t* translate(void* ctx, uint64_t va, uint32_t len, int write);
  static uint64_t now_ns(void* ctx);
  static uint32_t tx_room(void* ctx);
  static int wait(void* ctx);

  runtime::Kernel& kernel_;
  runtime::Environment& env_;
  size_t cap_;
  runtime::Nic& nic_;
  HostConfig config_;
  uint32_t ring_ = 0;
  std::unique_ptr<exo_stack> stack_;
};

}  // namespace exojit::libos
