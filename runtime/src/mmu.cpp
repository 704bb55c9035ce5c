// SPDX-License-Identifier: MIT
#include "exojit/runtime/mmu.h"

#include <algorithm>
#include <cstring>

#include "exojit/error.h"

namespace exojit::runtime {

namespace {
void check_va(uint64_t va) {
  if (va & (kPageSize - 1)) fail("virtual address 0x{:x} is not page aligned", va);
  if (va >= kVaLimit) fail("virtual address 0x{:x} is beyond the 48-bit address space", va);
}
}  // namespace

AddressSpace::AddressSpace(PhysicalMemory& memory, uint32_t tlb_entries)
    : memory_(memory), tlb_(tlb_entries), tlb_mask_(tlb_entries ? tlb_entries - 1 : 0) {
  if (tlb_entries & (tlb_entries - 1))
    fail("TLB size {} is not a power of two (or 0 for no TLB)", tlb_entries);
}

void AddressSpace::map(uint64_t va, uint32_t frame, uint8_t bits) {
  check_va(va);
  if (bits & ~(kPteProt | kPteSoft)) fail("page bits 0x{:02x} are not prot/soft bits", bits);
  if (!memory_.allocated(frame)) fail("frame {} is not allocated", frame);
  uint64_t vpn = va >> kPageShift;
  auto [it, fresh] = table_.try_emplace(vpn);
  if (!fresh) {
    if (it->second.pins) fail("page 0x{:x} is pinned and cannot be remapped", va);
    memory_.drop_mapping(it->second.frame);
  }
  memory_.add_mapping(frame);
  it->second.frame = frame;
  it->second.bits = bits;
  flush_entry(vpn);
  generation_.fetch_add(1, std::memory_order_seq_cst);
}

Pte& AddressSpace::mapped(uint64_t va) {
  check_va(va);
  auto it = table_.find(va >> kPageShift);
  if (it == table_.end()) fail("page 0x{:x} is not mapped", va);
  return it->second;
}

void AddressSpace::unmap(uint64_t va) {
  Pte& p = mapped(va);
  if (p.pins) fail("page 0x{:x} is pinned by {} kernel object(s)", va, p.pins);
  memory_.drop_mapping(p.frame);
  table_.erase(va >> kPageShift);
  flush_entry(va >> kPageShift);
  generation_.fetch_add(1, std::memory_order_seq_cst);
}

void AddressSpace::protect(uint64_t va, uint8_t bits) {
  if (bits & ~(kPteProt | kPteSoft)) fail("page bits 0x{:02x} are not prot/soft bits", bits);
  Pte& p = mapped(va);
  // A pinned page backs a ring or a predicate the kernel writes or reads: keep it accessible.
  if (p.pins && (p.bits & ~bits & kPteProt))
    fail("page 0x{:x} is pinned: its access rights cannot be reduced", va);
  p.bits = bits;
  flush_entry(va >> kPageShift);
  generation_.fetch_add(1, std::memory_order_seq_cst);
}

const Pte* AddressSpace::lookup(uint64_t va) const {
  auto it = table_.find(va >> kPageShift);
  return it == table_.end() ? nullptr : &it->second;
}

void AddressSpace::pin(uint64_t va) {
  ++mapped(va & ~(kPageSize - 1)).pins;
}

void AddressSpace::unpin(uint64_t va) {
  Pte& p = mapped(va & ~(kPageSize - 1));
  if (p.pins == 0) fail("page 0x{:x} is not pinned", va);
  --p.pins;
}

uint8_t* AddressSpace::translate_miss(uint64_t va, uint8_t access) {
  ++stats_.misses;
  if (va >= kVaLimit) return nullptr;
  uint64_t vpn = va >> kPageShift;
  auto it = table_.find(vpn);
  if (it == table_.end() || (it->second.bits & access) != access) return nullptr;
  uint8_t* page = memory_.frame_data(it->second.frame);
  if (!tlb_.empty())
    tlb_[vpn & tlb_mask_] = TlbEntry{vpn, page, uint8_t(it->second.bits & kPteProt)};
  return page + (va & (kPageSize - 1));
}

void AddressSpace::flush_entry(uint64_t vpn) {
  if (tlb_.empty()) return;
  TlbEntry& e = tlb_[vpn & tlb_mask_];
  if (e.vpn == vpn) {
    e = TlbEntry{};
    ++stats_.flushes;
  }
}

void AddressSpace::flush_tlb() {
  std::fill(tlb_.begin(), tlb_.end(), TlbEntry{});
  ++stats_.flushes;
}

uint8_t* AddressSpace::walk(uint64_t va, uint8_t access) const {
  if (va >= kVaLimit) return nullptr;
  auto it = table_.find(va >> kPageShift);
  if (it == table_.end() || (it->second.bits & access) != access) return nullptr;
  return memory_.frame_data(it->second.frame) + (va & (kPageSize - 1));
}

uint64_t AddressSpace::check_range(uint64_t va, size_t n, uint8_t access, bool via_tlb) {
  if (n == 0) return kVaLimit;
  if (va >= kVaLimit || n > kVaLimit - va) return va;
  uint64_t end = va + n;
  for (uint64_t page = va & ~(kPageSize - 1); page < end; page += kPageSize) {
    uint64_t a = std::max(page, va);
    if (!(via_tlb ? translate(a, access) : walk(a, access))) return a;
  }
  return kVaLimit;
}

uint64_t AddressSpace::copy_out(uint64_t va, const void* src, size_t n, bool via_tlb) {
  if (uint64_t bad = check_range(va, n, kWrite, via_tlb); bad != kVaLimit) return bad;
  const uint8_t* s = static_cast<const uint8_t*>(src);
  while (n) {
    size_t chunk = std::min<uint64_t>(n, kPageSize - (va & (kPageSize - 1)));
    std::memcpy(via_tlb ? translate(va, kWrite) : walk(va, kWrite), s, chunk);
    va += chunk, s += chunk, n -= chunk;
  }
  return kVaLimit;
}

uint64_t AddressSpace::copy_in(void* dst, uint64_t va, size_t n, bool via_tlb) {
  if (uint64_t bad = check_range(va, n, kRead, via_tlb); bad != kVaLimit) return bad;
  uint8_t* d = static_cast<uint8_t*>(dst);
  while (n) {
    size_t chunk = std::min<uint64_t>(n, kPageSize - (va & (kPageSize - 1)));
    std::memcpy(d, via_tlb ? translate(va, kRead) : walk(va, kRead), chunk);
    va += chunk, d += chunk, n -= chunk;
  }
  return kVaLimit;
}

}  // namespace exojit::runtime
