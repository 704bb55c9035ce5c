// SPDX-License-Identifier: MIT
// An environment's address space: a page table and a TLB model in front of it.
//
// Page-table entries carry read/write/execute bits and three software-defined bits ([EXOTOOLS02],
// 2.1.3: x86 leaves three bits to system software; a libOS uses one to mark pages that live on
// disk). The TLB is direct-mapped with a configurable number of entries (a power of two, or 0 for
// none); every translation counts a hit or a miss, and any change to an entry flushes it.
//
// translate*() never faults: they return nullptr when the page is absent or the access is not
// permitted. Delivering the fault to the environment (an upcall) is Environment's job; running
// a message handler, the kernel simply refuses the access.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "exojit/runtime/physical_memory.h"

namespace exojit::runtime {

enum Access : uint8_t { kRead = 1, kWrite = 2, kExec = 4 };

enum PteBits : uint8_t {
  kPteRead = kRead,
  kPteWrite = kWrite,
  kPteExec = kExec,
  kPteSoft0 = 1u << 3,  // software-defined: meaning chosen by the libOS
  kPteSoft1 = 1u << 4,
  kPteSoft2 = 1u << 5,
  kPteProt = kPteRead | kPteWrite | kPteExec,
  kPteSoft = kPteSoft0 | kPteSoft1 | kPteSoft2,
};

// Virtual addresses are 48 bits, as on x86-64 and AArch64.
inline constexpr uint64_t kVaLimit = uint64_t(1) << 48;

struct Pte {
  uint32_t frame = kNoFrame;
  uint8_t bits = 0;
  uint16_t pins = 0;  // kernel objects (rings, predicates) holding a translation of this page
};

struct TlbStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t flushes = 0;
};

class AddressSpace {
 public:
  AddressSpace(PhysicalMemory& memory, uint32_t tlb_entries);

  // Page-table edits. The kernel checks capabilities before calling these; here only the
  // structural rules are enforced (alignment, range, pinned pages stay mapped).
  void map(uint64_t va, uint32_t frame, uint8_t bits);
  void unmap(uint64_t va);
  void protect(uint64_t va, uint8_t bits);  // new prot + soft bits of a mapped page
  const Pte* lookup(uint64_t va) const;
  size_t mapped_pages() const { return table_.size(); }
  // Calls f(va, pte) for every mapped page (in no particular order; f must not edit the table).
  template <typename F>
  void each_page(F f) const {
    for (const auto& [vpn, pte] : table_) f(vpn << kPageShift, pte);
  }
  // Counts page-table edits (map, unmap, protect): kernel objects that cache translations
  // (message handlers' software TLBs) compare it to know when to rebuild them.
  // Read by a handler run after it announced its read section (grace_period.h): a run either
  // sees an edit's new generation or is waited for by the edit's grace period.
  uint64_t generation() const { return generation_.load(std::memory_order_seq_cst); }

  // Host pointer to byte `va` when mapped with `access`, else nullptr. The fast path is a TLB hit.
  uint8_t* translate(uint64_t va, uint8_t access) {
    uint64_t vpn = va >> kPageShift;
    if (!tlb_.empty()) {
      TlbEntry& e = tlb_[vpn & tlb_mask_];
      if (e.vpn == vpn && (e.bits & access) == access) {
        ++stats_.hits;
        return e.page + (va & (kPageSize - 1));
      }
    }
    return translate_miss(va, access);
  }
  // Host pointer to [va, va+len) when it lies in one page and is accessible, else nullptr.
  uint8_t* translate_span(uint64_t va, size_t len, uint8_t access) {
    if (len == 0 || len > kPageSize || (va & (kPageSize - 1)) + len > kPageSize) {
      if (len == 0) return translate(va, access);
      return nullptr;
    }
    return translate(va, access);
  }

  // The page-table walk alone, without the TLB and without counting: what kernel-context code
  // (a message handler running on the NIC's thread) uses, so that it never races with the
  // environment's own thread on the TLB.
  uint8_t* walk(uint64_t va, uint8_t access) const;

  // Copy-in/copy-out that translate and check every page of the range first, so a refused copy
  // changes nothing. Returns the first address that failed, or kVaLimit on success. `via_tlb`
  // false walks the page table (kernel context, see walk()).
  uint64_t copy_out(uint64_t va, const void* src, size_t n, bool via_tlb = true);
  uint64_t copy_in(void* dst, uint64_t va, size_t n, bool via_tlb = true);
  // The first address of [va, va+n) not accessible with `access`, or kVaLimit when all are.
  uint64_t check_range(uint64_t va, size_t n, uint8_t access, bool via_tlb = true);

  void pin(uint64_t va);
  void unpin(uint64_t va);

  const TlbStats& tlb_stats() const { return stats_; }
  uint32_t tlb_entries() const { return uint32_t(tlb_.size()); }
  void flush_tlb();

 private:
  struct TlbEntry {
    uint64_t vpn = ~uint64_t(0);
    uint8_t* page = nullptr;
    uint8_t bits = 0;
  };
  uint8_t* translate_miss(uint64_t va, uint8_t access);
  void flush_entry(uint64_t vpn);
  Pte& mapped(uint64_t va);  // throws when not mapped

  PhysicalMemory& memory_;
  std::unordered_map<uint64_t, Pte> table_;  // by virtual page number
  std::vector<TlbEntry> tlb_;
  uint64_t tlb_mask_ = 0;
  TlbStats stats_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace exojit::runtime
