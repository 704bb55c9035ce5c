// SPDX-License-Identifier: MIT
// Hierarchically-named capabilities: layout, dominance, refinement, and every guarded kernel
// call refusing an inadequate capability with nothing changed.
#include <gtest/gtest.h>

#include "exojit/error.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"

namespace exojit::runtime {
namespace {

TEST(Capability, LayoutAndDominance) {
  Capability c = Capability::make({0x12, 0x34}, kPermWrite | kPermAlloc);
  EXPECT_EQ(c.length(), 2u);
  EXPECT_TRUE(c.valid());
  EXPECT_EQ(c.header, 2 | Capability::kValid | kPermWrite | kPermAlloc);
  Capability longer = Capability::make({0x12, 0x34, 0x56}, 0);
  Capability other = Capability::make({0x12, 0x35, 0x56}, 0);
  EXPECT_TRUE(c.dominates(longer));
  EXPECT_TRUE(c.dominates(longer, kPermWrite));
  EXPECT_FALSE(c.dominates(longer, kPermGrant));  // lacks the permission
  EXPECT_FALSE(c.dominates(other));               // not a prefix
  EXPECT_FALSE(longer.dominates(c));              // the longer never dominates the shorter
  EXPECT_TRUE(c.dominates(c));
  EXPECT_TRUE(Capability::root().dominates(other, kPermAll));
  EXPECT_FALSE(Capability{}.dominates(longer));  // invalid
  EXPECT_FALSE(c.dominates(Capability{}));
  EXPECT_THROW(Capability::make({1, 2, 3, 4, 5, 6, 7, 8}, 0), Error);
  EXPECT_THROW(Capability::make({1}, 0x01), Error);
  EXPECT_EQ(c.str(), "cap<12.34 w a>");
}

TEST(Capability, RefinementWhenHandedToAChild) {
  Kernel k;
  Environment& parent = k.create_environment("parent", Capability::make({7}, kPermAll));
  Environment& child = k.create_environment("child", Capability{});
  EXPECT_EQ(child.caps().size(), 0u);
  size_t i = k.grant(parent, 0, child, Capability::make({7, 1}, kPermWrite | kPermAlloc));
  EXPECT_EQ(child.caps()[i], Capability::make({7, 1}, kPermWrite | kPermAlloc));
  // The child cannot widen its name, add permissions, or grant without the grant bit.
  Environment& grandchild = k.create_environment("grandchild", Capability{});
  EXPECT_THROW(k.grant(child, 0, grandchild, Capability::make({7, 1, 1}, kPermWrite)), Error);
  EXPECT_THROW(k.grant(parent, 0, child, Capability::make({8}, kPermWrite)), Error);
  EXPECT_THROW(k.grant(parent, 5, child, Capability::make({7, 2}, 0)), Error);
  Environment& p2 = k.create_environment("p2", Capability::make({7}, kPermGrant | kPermWrite));
  EXPECT_THROW(k.grant(p2, 0, child, Capability::make({7, 3}, kPermAlloc)), Error);
  EXPECT_EQ(child.caps().size(), 1u);
  EXPECT_EQ(grandchild.caps().size(), 0u);
}

TEST(Capability, GuardedCallsRefuseAndChangeNothing) {
  Kernel k({.frames = 256});
  BuiltinDemux demux;
  k.set_demux(&demux);
  Nic& nic = k.add_nic({}, Capability::make({0x4e}, kPermWrite));
  Environment& a = k.create_environment("a", Capability::make({1}, kPermAll));
  Environment& b = k.create_environment("b", Capability::make({2}, kPermAll));
  Environment& ro = k.create_environment("ro", Capability::make({1}, 0));  // no permissions
  // Frames: b cannot allocate under a's name, nor map a's frame.
  uint32_t free_before = k.memory().free_frames();
  EXPECT_THROW(k.alloc_frame(b, 0, Capability::make({1, 9}, 0)), Error);
  EXPECT_EQ(k.memory().free_frames(), free_before);
  uint32_t f = k.alloc_frame(a, 0, Capability::make({1, 9}, 0));
  EXPECT_THROW(k.map_page(b, 0, 0x1000, f, kPteRead), Error);
  EXPECT_EQ(b.mmu().mapped_pages(), 0u);
  // Read-only mapping needs no permission, a writable one needs write.
  k.map_page(ro, 0, 0x1000, f, kPteRead);
  EXPECT_THROW(k.map_page(ro, 0, 0x2000, f, kPteRead | kPteWrite), Error);
  EXPECT_EQ(ro.mmu().mapped_pages(), 1u);
  EXPECT_THROW(k.unmap_page(b, 0, 0x1000), Error);  // not mapped in b
  EXPECT_THROW(k.free_frame(b, 0, f), Error);
  EXPECT_THROW(k.free_frame(ro, 0, f), Error);  // no alloc permission
  EXPECT_TRUE(k.memory().allocated(f));
  // No capability at that index at all.
  EXPECT_THROW(k.alloc_frame(a, 3, Capability::make({1}, 0)), Error);
  // Rings and filter slots.
  k.alloc_pages(a, 0, 0x100000, 3, kPteRead | kPteWrite);
  EXPECT_THROW(k.create_ring(ro, 0, 0x100000, 8, 0x101000, 8192), Error);
  uint32_t r = k.create_ring(a, 0, 0x100000, 8, 0x101000, 8192);
  uint32_t id = demux.add({0x0800, 0, 17, 53});
  EXPECT_THROW(k.claim_filter(ro, 0, id), Error);
  k.claim_filter(a, 0, id);
  EXPECT_THROW(k.claim_filter(b, 0, id), Error);  // already claimed
  EXPECT_THROW(k.bind_filter(b, 0, id, r), Error);
  EXPECT_THROW(k.bind_filter(ro, 0, id, r), Error);  // dominates, but without write
  EXPECT_EQ(k.filter(id)->ring, nullptr);
  k.bind_filter(a, 0, id, r);
  EXPECT_EQ(k.filter(id)->ring, &k.ring(r));
  struct Nothing : MessageHandler {
    HandlerVerdict handle(HandlerContext&, const Message&) override {
      return HandlerVerdict::Declined;
    }
  } handler;
  EXPECT_THROW(k.install_handler(b, 0, id, &handler), Error);
  // a holds no capability for the NIC's transmit side: a replying handler is refused.
  EXPECT_THROW(k.install_handler(a, 0, id, &handler, &nic), Error);
  EXPECT_EQ(k.filter(id)->handler, nullptr);
  k.install_handler(a, 0, id, &handler);
  EXPECT_EQ(k.filter(id)->handler, &handler);
  // Transmit needs write on the NIC guard.
  uint8_t frame[60] = {};
  EXPECT_THROW(k.transmit_bytes(a, 0, nic, frame, sizeof frame), Error);
  EXPECT_EQ(nic.counters().tx_frames, 0u);
  Environment& net = k.create_environment("net", Capability::make({0x4e}, kPermWrite));
  EXPECT_TRUE(k.transmit_bytes(net, 0, nic, frame, sizeof frame));
  EXPECT_EQ(nic.counters().tx_frames, 1u);
}

}  // namespace
}  // namespace exojit::runtime
