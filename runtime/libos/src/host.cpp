// SPDX-License-Identifier: MIT
#include "exojit/libos/host.h"

#include <atomic>

#include "exojit/error.h"
#include "exojit/runtime/ring.h"

namespace exojit::libos {

using namespace exojit::runtime;

namespace {
constexpr uint32_t kBufferSize = 2048;
}

Host::Host(Kernel& kernel, Environment& env, size_t cap, Nic& nic, BuiltinDemux& demux,
           const HostConfig& config)
    : kernel_(kernel), env_(env), cap_(cap), nic_(nic), config_(config) {
  if (config.pool_buffers < 2 * config.ring_slots || config.pool_buffers > EXO_POOL_MAX)
    fail("libOS host: {} pool buffers for a {}-slot ring (at least twice as many, at most {})",
         config.pool_buffers, config.ring_slots, EXO_POOL_MAX);
  uint64_t pool_va = config.base_va + kPageSize;
  uint64_t pool_bytes = uint64_t(config.pool_buffers) * kBufferSize;
  kernel.alloc_pages(env, cap, config.base_va, 1 + (pool_bytes + kPageSize - 1) / kPageSize,
                     kPteRead | kPteWrite);
  ring_ = kernel.create_ring(env, cap, config.base_va, config.ring_slots, pool_va, pool_bytes);

  exo_stack_config sc{};
  std::memcpy(sc.mac, nic.mac().data(), 6);
  sc.ip = config.ip;
  sc.netmask = config.netmask;
  sc.gateway = config.gateway;
  sc.mtu = config.mtu;
  sc.ring_va = config.base_va;
  sc.pool_va = pool_va;
  sc.pool_count = config.pool_buffers;
  sc.pool_buf_size = kBufferSize;
  exo_kernel_ops ops{this,          &Host::transmit, &Host::translate,
                     &Host::now_ns, &Host::tx_room,  kernel.threaded() ? &Host::wait : nullptr};
  stack_ = std::make_unique<exo_stack>();
  if (int rc = exo_stack_init(stack_.get(), &sc, &ops); rc < 0)
    fail("libOS host: stack initialisation failed ({})", rc);

  // The host's traffic: IPv4 to its address, and ARP.
  uint32_t ip_rule = demux.add(DemuxRule{0x0800, config.ip, 0, 0});
  kernel.claim_filter(env, cap, ip_rule);
  kernel.bind_filter(env, cap, ip_rule, ring_);
  if (config.claim_arp) {
    uint32_t arp_rule = demux.add(DemuxRule{0x0806, 0, 0, 0});
    kernel.claim_filter(env, cap, arp_rule);
    kernel.bind_filter(env, cap, arp_rule, ring_);
  }
}

Host::~Host() {
  if (stack_) exo_stack_fini(stack_.get());
}

int Host::transmit(void* ctx, uint64_t va, uint32_t len) {
  Host* h = static_cast<Host*>(ctx);
  return h->kernel_.transmit(h->env_, h->cap_, h->nic_, va, len) ? 0 : -ENOBUFS;
}

uint8_t* Host::translate(void* ctx, uint64_t va, uint32_t len, int write) {
  Host* h = static_cast<Host*>(ctx);
  return h->env_.mmu().translate_span(va, len, write ? kRead | kWrite : kRead);
}

uint64_t Host::now_ns(void* ctx) {
  return static_cast<Host*>(ctx)->kernel_.clock().now();
}

uint32_t Host::tx_room(void* ctx) {
  Host* h = static_cast<Host*>(ctx);
  uint32_t used = h->nic_.tx_in_flight();
  return used >= h->nic_.config().tx_slots ? 0 : h->nic_.config().tx_slots - used;
}

int Host::wait(void* ctx) {
  Host* h = static_cast<Host*>(ctx);
  if (h->env_.interrupted()) return -EINTR;
  // Read the wake-up count before looking at the ring: a frame placed after the look wakes the
  // wait below, one placed before it is seen by the look.
  uint32_t seen = h->env_.wake_seq();
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (ring_ready(h->kernel_.ring(h->ring_).header)) return 0;
  h->env_.wait(seen);
  return h->env_.interrupted() ? -EINTR : 0;
}

}  // namespace exojit::libos
