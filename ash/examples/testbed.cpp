// SPDX-License-Identifier: MIT
#include "testbed.h"

#include <cstring>

#include "exojit/error.h"
#include "handlers.h"

namespace exojit::ash::examples {

using namespace exojit::runtime;

namespace {
libos::TwoHostsConfig config(Mode mode) {
  libos::TwoHostsConfig c;
  c.mode = mode;
  c.static_arp = true;
  return c;
}

uint32_t ring_for(Kernel& k, Environment& env, BuiltinDemux& demux, uint32_t ip, uint16_t port,
                  uint32_t* ring) {
  k.alloc_pages(env, 0, Testbed::kRingVa, 1 + 8, kPteRead | kPteWrite);
  *ring = k.create_ring(env, 0, Testbed::kRingVa, 16, Testbed::kRingVa + kPageSize, 8 * kPageSize);
  k.init_ring_buffers(env, *ring, 2048);
  uint32_t filter = demux.add(DemuxRule{0x0800, ip, 17, port});
  k.claim_filter(env, 0, filter);
  k.bind_filter(env, 0, filter, *ring);
  return filter;
}
}  // namespace

Testbed::Testbed(Mode mode, uint16_t server_port) : net(config(mode)), port_(server_port) {
  net.kernel_b.alloc_pages(net.env_b, 0, kApp, kAppPages, kPteRead | kPteWrite);
  server_filter = ring_for(net.kernel_b, net.env_b, net.demux_b, libos::TwoHosts::kIpB, server_port,
                           &server_ring);
  client_filter = ring_for(net.kernel_a, net.env_a, net.demux_a, libos::TwoHosts::kIpA, kClientPort,
                           &client_ring);
}

HandlerOptions Testbed::options(Sandbox s) const {
  HandlerOptions o;
  o.region = Region{kApp, kAppPages * kPageSize};
  o.sandbox = s;
  return o;
}

void Testbed::install(Handler& h) {
  net.kernel_b.install_handler(net.env_b, 0, server_filter, &h, &net.nic_b);
}

void Testbed::uninstall() {
  net.kernel_b.remove_handler(net.env_b, 0, server_filter);
}

std::vector<uint8_t> Testbed::request(const uint8_t* payload, size_t n) const {
  return udp_frame(net.nic_a.mac(), net.nic_b.mac(), libos::TwoHosts::kIpA, libos::TwoHosts::kIpB,
                   kClientPort, port_, payload, n);
}

void Testbed::send(const std::vector<uint8_t>& frame) {
  if (!net.kernel_a.transmit_bytes(net.env_a, 0, net.nic_a, frame.data(), frame.size()))
    fail("testbed: the client's NIC refused a frame");
}

bool Testbed::take_reply(std::vector<uint8_t>* out) {
  RingHeader* h = net.kernel_a.ring(client_ring).header;
  RingSlot* s = ring_peek(h);
  if (!s) return false;
  out->resize(s->length);
  net.env_a.user_copy_in(out->data(), s->buffer, s->length);
  ring_release(h, s->buffer, s->capacity);
  return true;
}

RingSlot* Testbed::server_message() {
  return ring_peek(net.kernel_b.ring(server_ring).header);
}

void Testbed::server_release() {
  RingHeader* h = net.kernel_b.ring(server_ring).header;
  RingSlot* s = ring_peek(h);
  if (s) ring_release(h, s->buffer, s->capacity);
}

uint8_t* Testbed::server_bytes(const RingSlot* s) {
  // Buffers are 2 KiB, half a page: never across a page.
  return net.env_b.mmu().walk(s->buffer, kRead);
}

bool Testbed::server_transmit(const uint8_t* frame, size_t n) {
  return net.kernel_b.transmit_bytes(net.env_b, 0, net.nic_b, frame, n);
}

namespace {
std::vector<uint8_t> swapped_reply(const uint8_t* f, size_t n) {
  std::vector<uint8_t> r(f, f + n);
  std::memcpy(r.data(), f + 6, 6);
  std::memcpy(r.data() + 6, f, 6);
  std::memcpy(r.data() + 26, f + 30, 4);
  std::memcpy(r.data() + 30, f + 26, 4);
  std::memcpy(r.data() + 34, f + 36, 2);
  std::memcpy(r.data() + 36, f + 34, 2);
  return r;
}
}  // namespace

std::vector<uint8_t> serve_increment(Environment& env, const uint8_t* f, size_t n) {
  if (n < kUdpHeaders + 8) return {};
  uint64_t va;
  std::memcpy(&va, f + kUdpHeaders, 8);
  uint64_t x;
  env.user_copy_in(&x, va, 8);
  ++x;
  env.user_copy_out(va, &x, 8);
  std::vector<uint8_t> r = swapped_reply(f, kUdpHeaders + 8);
  r[40] = r[41] = 0;  // no UDP checksum
  r.resize(kUdpHeaders + 16);
  std::memcpy(r.data() + kUdpHeaders + 8, &x, 8);
  return r;
}

std::vector<uint8_t> serve_echo(const uint8_t* f, size_t n) {
  if (n < kUdpHeaders) return {};
  return swapped_reply(f, n);
}

}  // namespace exojit::ash::examples
