// SPDX-License-Identifier: MIT
// Installing a handler on the runtime: the kernel runs it on every packet its filter accepts;
// commit consumes the message, abort hands it to the environment's ring as if there were no
// handler; capabilities are checked.
#include <gtest/gtest.h>

#include "exojit/ash/dpf_demux.h"
#include "exojit/dpf/filter.h"
#include "exojit/runtime/ring.h"
#include "machine.h"

namespace exojit::ash::testing {
namespace {

using vcode::Type;

// Commits messages whose first payload byte (after Ethernet) is even, aborts odd ones.
void even_odd(HandlerBuilder& h) {
  Reg b = h.getreg(Type::U8);
  vcode::Label odd = h.label();
  h.peek(b, int64_t(14));
  h.and_(b, b, 1);
  h.bne(b, 0, odd);
  h.commit();
  h.place(odd);
  h.abort();
  h.finish();
}

struct Installed : Machine {
  uint32_t filter = 0, ring = 0;
  Installed() {
    kernel.alloc_pages(env, 0, 0x10000000, 1 + 4, kPteRead | kPteWrite);
    ring = kernel.create_ring(env, 0, 0x10000000, 16, 0x10001000, 4 * kPageSize);
    kernel.init_ring_buffers(env, ring, 1024);
    filter = demux.add(DemuxRule{0x88b5});
    kernel.claim_filter(env, 0, filter);
    kernel.bind_filter(env, 0, filter, ring);
  }
  void send(uint8_t first) {
    std::vector<uint8_t> f(60, 0);
    f[12] = 0x88;
    f[13] = 0xb5;
    f[14] = first;
    nic.receive_from_wire(f.data(), f.size());
  }
  uint32_t in_ring() { return kernel.ring(ring).counters.delivered; }
};

TEST(Install, CommitConsumesAbortGoesToTheRing) {
  Installed m;
  HandlerBuilder h("even_odd");
  even_odd(h);
  Handler handler(h, m.env, m.options());
  m.kernel.install_handler(m.env, 0, m.filter, &handler, &m.nic);
  for (uint8_t i = 0; i < 10; ++i) m.send(i);
  EXPECT_EQ(handler.counters().committed, 5u);
  EXPECT_EQ(handler.counters().aborted_voluntary, 5u);
  EXPECT_EQ(m.in_ring(), 5u);
  EXPECT_EQ(m.kernel.filter(m.filter)->counters.handled, 5u);
  EXPECT_EQ(m.kernel.filter(m.filter)->counters.declined, 5u);
  // The ring holds exactly the odd ones, intact.
  RingHeader* hdr = m.kernel.ring(m.ring).header;
  for (uint8_t want = 1; want < 10; want += 2) {
    RingSlot* s = ring_peek(hdr);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->length, 60u);
    EXPECT_EQ(m.read<uint8_t>(s->buffer + 14), want);
    ring_release(hdr, s->buffer, s->capacity);
  }
  EXPECT_EQ(ring_peek(hdr), nullptr);
  // Removed: every message goes to the ring.
  m.kernel.remove_handler(m.env, 0, m.filter);
  m.send(2);
  EXPECT_EQ(m.in_ring(), 6u);
  EXPECT_EQ(handler.counters().runs, 10u);
}

// The same through a DPF filter: the engine's filter id is the slot the handler sits on.
TEST(Install, OnADpfFilter) {
  Machine m;
  dpf::Engine engine;
  DpfDemux demux(engine);
  m.kernel.set_demux(&demux);
  uint32_t other = engine.insert(dpf::parse_filter("(12:16 == 0x800)"), {.broad = true});
  uint32_t id =
      engine.insert(dpf::parse_filter("(12:16 == 0x88b5) && (14:8 < 0x80)"), {.broad = true});
  m.kernel.alloc_pages(m.env, 0, 0x10000000, 1 + 4, kPteRead | kPteWrite);
  uint32_t ring = m.kernel.create_ring(m.env, 0, 0x10000000, 16, 0x10001000, 4 * kPageSize);
  m.kernel.init_ring_buffers(m.env, ring, 1024);
  m.kernel.claim_filter(m.env, 0, id);
  m.kernel.bind_filter(m.env, 0, id, ring);
  HandlerBuilder h("even_odd");
  even_odd(h);
  Handler handler(h, m.env, m.options());
  m.kernel.install_handler(m.env, 0, id, &handler, &m.nic);
  for (uint8_t first : {0, 1, 2, 0x90}) {
    std::vector<uint8_t> f(60, 0);
    f[12] = 0x88;
    f[13] = 0xb5;
    f[14] = first;
    m.nic.receive_from_wire(f.data(), f.size());
  }
  EXPECT_EQ(handler.counters().committed, 2u);            // 0 and 2
  EXPECT_EQ(handler.counters().aborted_voluntary, 1u);    // 1
  EXPECT_EQ(m.kernel.ring(ring).counters.delivered, 1u);  // 1; 0x90 matched no filter
  EXPECT_EQ(m.nic.counters().rx_drops_no_owner, 1u);
  EXPECT_NE(other, id);
}

TEST(Install, NeedsTheFilterSlotsCapability) {
  Installed m;
  Environment& other = m.kernel.create_environment("other", Capability::make({7}, kPermAll));
  HandlerBuilder h("even_odd");
  even_odd(h);
  Handler handler(h, other, m.options());
  EXPECT_THROW(m.kernel.install_handler(other, 0, m.filter, &handler), Error);
  EXPECT_EQ(m.kernel.filter(m.filter)->handler, nullptr);
  // And replies need the NIC's transmit capability.
  EXPECT_THROW(m.kernel.install_handler(other, 0, m.filter, &handler, &m.nic), Error);
}

TEST(Install, BadRegionsAreRefused) {
  Machine m;
  HandlerBuilder h("even_odd");
  even_odd(h);
  HandlerOptions o = m.options();
  o.region.va = Machine::kApp + 1;
  EXPECT_THROW(Handler(h, m.env, o), Error);
  o.region = Region{Machine::kApp, kMaxRegion + kPageSize};
  EXPECT_THROW(Handler(h, m.env, o), Error);
  o.region = Region{kVaLimit - kPageSize, 2 * kPageSize};
  EXPECT_THROW(Handler(h, m.env, o), Error);
  // Trusted needs the region mapped in one host block: a hole is refused.
  o = m.options(Sandbox::Trusted);
  o.region.len += kPageSize;
  EXPECT_THROW(Handler(h, m.env, o), Error);
}

}  // namespace
}  // namespace exojit::ash::testing
