// SPDX-License-Identifier: MIT
// Physical memory, page tables, the TLB model, fault upcalls (application-level virtual memory)
// and the copy helpers.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "exojit/error.h"
#include "exojit/runtime/kernel.h"

namespace exojit::runtime {
namespace {

constexpr uint64_t kVa = 0x40000000;

TEST(Mmu, TranslatesWithProtectionAndSoftBits) {
  Kernel k({.frames = 64, .tlb_entries = 8});
  Environment& e = k.create_environment("e", Capability::root());
  uint32_t f = k.alloc_frame(e, 0, Capability::make({1}, kPermAll));
  k.map_page(e, 0, kVa, f, kPteRead | kPteSoft1);
  AddressSpace& as = e.mmu();
  ASSERT_NE(as.translate(kVa + 5, kRead), nullptr);
  EXPECT_EQ(as.translate(kVa + 5, kRead), k.memory().frame_data(f) + 5);
  EXPECT_EQ(as.translate(kVa, kWrite), nullptr);  // read-only
  EXPECT_EQ(as.translate(kVa, kExec), nullptr);
  EXPECT_EQ(as.translate(kVa + kPageSize, kRead), nullptr);  // unmapped
  EXPECT_EQ(as.lookup(kVa)->bits & kPteSoft, kPteSoft1);     // the libOS's bits are kept
  k.protect_page(e, 0, kVa, kPteRead | kPteWrite | kPteExec);
  EXPECT_NE(as.translate(kVa, kWrite | kExec), nullptr);
  EXPECT_EQ(as.lookup(kVa)->bits & kPteSoft, 0);
  k.unmap_page(e, 0, kVa);
  EXPECT_EQ(as.translate(kVa, kRead), nullptr);
  EXPECT_EQ(k.memory().mappings(f), 0u);
  k.free_frame(e, 0, f);
  EXPECT_FALSE(k.memory().allocated(f));
  EXPECT_THROW(as.map(kVa + 1, f, kPteRead), Error);  // unaligned, and the frame is free
  EXPECT_THROW(as.map(uint64_t(1) << 48, 0, kPteRead), Error);
}

TEST(Mmu, TlbCountsHitsAndMissesAndIsFlushedOnChange) {
  Kernel k({.frames = 64, .tlb_entries = 4});
  Environment& e = k.create_environment("e", Capability::root());
  k.alloc_pages(e, 0, kVa, 8, kPteRead | kPteWrite);
  AddressSpace& as = e.mmu();
  TlbStats s0 = as.tlb_stats();
  for (int round = 0; round < 3; ++round)
    for (uint64_t p = 0; p < 4; ++p) ASSERT_NE(as.translate(kVa + p * kPageSize, kRead), nullptr);
  EXPECT_EQ(as.tlb_stats().misses - s0.misses, 4u);  // 4 pages fit 4 direct-mapped entries
  EXPECT_EQ(as.tlb_stats().hits - s0.hits, 8u);
  // Pages 0 and 4 share an entry: alternating between them misses every time.
  TlbStats s1 = as.tlb_stats();
  for (int i = 0; i < 10; ++i) as.translate(kVa + uint64_t(1 - i % 2) * 4 * kPageSize, kRead);
  EXPECT_EQ(as.tlb_stats().misses - s1.misses, 10u);
  // A protection change flushes the entry: the stale writable translation is gone.
  ASSERT_NE(as.translate(kVa, kWrite), nullptr);
  k.protect_page(e, 0, kVa, kPteRead);
  EXPECT_EQ(as.translate(kVa, kWrite), nullptr);
  EXPECT_THROW(AddressSpace(k.memory(), 3), Error);  // not a power of two
}

TEST(Mmu, FaultUpcallMapsThePageAndTheAccessIsRetried) {
  Kernel k({.frames = 64});
  Environment& e = k.create_environment("e", Capability::root());
  std::vector<uint64_t> faults;
  // Application-level virtual memory: pages marked "on disk" with a soft bit are brought in by
  // the environment's own handler.
  e.set_fault_handler([&](Environment& env, uint64_t va, uint8_t access) {
    faults.push_back(va);
    if (access & kExec) return false;
    uint64_t page = va & ~(kPageSize - 1);
    if (page >= kVa + 4 * kPageSize) return false;  // outside its heap: refuse
    uint32_t f = k.alloc_frame(env, 0, Capability::make({2}, kPermAll));
    std::memset(k.memory().frame_data(f), 0xab, kPageSize);  // "read from disk"
    k.map_page(env, 0, page, f, kPteRead | kPteWrite);
    return true;
  });
  uint8_t* p = e.user_span(kVa + 10, 4, kRead);
  EXPECT_EQ(p[0], 0xab);
  EXPECT_EQ(faults.size(), 1u);
  // A copy across three unmapped pages faults once per page, then completes.
  std::vector<uint8_t> data(2 * kPageSize + 100, 7);
  e.user_copy_out(kVa + kPageSize + 50, data.data(), data.size());
  EXPECT_EQ(faults.size(), 4u);
  std::vector<uint8_t> back(data.size());
  e.user_copy_in(back.data(), kVa + kPageSize + 50, back.size());
  EXPECT_EQ(back, data);
  EXPECT_EQ(e.counters().faults, 4u);
  EXPECT_EQ(e.counters().faults_resolved, 4u);
  // A refused fault is an error naming the address.
  try {
    e.user_span(kVa + 10 * kPageSize, 1, kRead);
    FAIL() << "expected a fault";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("0x4000a000"), std::string::npos) << err.what();
  }
}

TEST(Mmu, CopyHelpersCheckEveryByteAndChangeNothingWhenRefused) {
  Kernel k({.frames = 64});
  Environment& e = k.create_environment("e", Capability::root());
  k.alloc_pages(e, 0, kVa, 2, kPteRead | kPteWrite);
  k.protect_page(e, 0, kVa + kPageSize, kPteRead);  // second page read-only
  AddressSpace& as = e.mmu();
  std::vector<uint8_t> src(200, 0x5a);
  // Straddles into the read-only page: refused, and the first page is untouched.
  EXPECT_EQ(as.copy_out(kVa + kPageSize - 100, src.data(), 200), kVa + kPageSize);
  EXPECT_EQ(as.translate(kVa + kPageSize - 100, kRead)[0], 0);
  EXPECT_EQ(as.copy_out(kVa + kPageSize - 300, src.data(), 200), kVaLimit);
  std::vector<uint8_t> dst(300, 1);
  EXPECT_EQ(as.copy_in(dst.data(), kVa + 2 * kPageSize - 100, 300, false), kVa + 2 * kPageSize);
  EXPECT_EQ(dst[0], 1);  // nothing copied
  EXPECT_EQ(as.copy_in(dst.data(), kVa + kPageSize - 300, 150, false), kVaLimit);
  EXPECT_EQ(dst[0], 0x5a);
  EXPECT_EQ(as.copy_out(kVaLimit - 10, src.data(), 20), kVaLimit - 10);  // wraps the space
  EXPECT_EQ(as.translate_span(kVa + kPageSize - 2, 4, kRead), nullptr);  // crosses a page
}

TEST(Mmu, PinnedPagesStayMapped) {
  Kernel k({.frames = 64});
  Environment& e = k.create_environment("e", Capability::root());
  k.alloc_pages(e, 0, kVa, 1, kPteRead | kPteWrite);
  e.mmu().pin(kVa);
  EXPECT_THROW(k.unmap_page(e, 0, kVa), Error);
  EXPECT_THROW(k.protect_page(e, 0, kVa, kPteRead), Error);
  EXPECT_NE(e.mmu().translate(kVa, kWrite), nullptr);
  e.mmu().unpin(kVa);
  k.unmap_page(e, 0, kVa);
}

TEST(PhysicalMemory, ExhaustionAndDoubleFreeAreErrors) {
  PhysicalMemory m(2);
  Capability g = Capability::make({1}, kPermAll);
  uint32_t a = m.alloc(g), b = m.alloc(g);
  EXPECT_THROW(m.alloc(g), Error);
  m.free(a);
  EXPECT_THROW(m.free(a), Error);
  m.add_mapping(b);
  EXPECT_THROW(m.free(b), Error);  // still mapped
  EXPECT_THROW(PhysicalMemory(0), Error);
}

}  // namespace
}  // namespace exojit::runtime
