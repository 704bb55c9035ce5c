// SPDX-License-Identifier: MIT
// The priorities of the filters whose disjuncts all have one specificity, by id, readable
// without the engine's mutex while its writer changes them. A hash-table hit in the generated
// code returns a filter's id alone (codegen_p.h); the winner rule between that answer and
// another function's -- the other layer's, an opaque filter's -- needs the id's priority, and
// demux finds it here inside its read section (dpf/README.md, "Concurrency").
//
// Open addressing with linear probing over 64-bit words `id << 32 | high` (high, the priority's
// high half, is never 0; 0 is an empty slot, `id << 32` a removed id's tombstone). One writer:
// each change is one atomic store of a whole word, so a reader sees an entry before or after it,
// never torn; a removed id's tombstone stays where it was until the table is rebuilt, so a
// reader's probe run never loses an id that is in the table. The table is rebuilt (twice the
// size) when live entries and tombstones would fill half of it, published with one release
// store; the old one goes to the caller, to be freed after a grace period. Ids hash with a
// multiplier drawn per engine (ids may be chosen by owners: InsertOptions::id).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace exojit::dpf::detail {

class PriorityIndex {
 public:
  struct Table {
    explicit Table(size_t slots);
    size_t mask;
    std::unique_ptr<std::atomic<uint64_t>[]> words;
  };

  PriorityIndex();
  ~PriorityIndex();
  PriorityIndex(const PriorityIndex&) = delete;
  PriorityIndex& operator=(const PriorityIndex&) = delete;

  // The writer's (the engine's mutex held). put may rebuild the table: it returns the one it
  // replaced (to be freed once no reader can be inside it), else nullptr.
  [[nodiscard]] std::unique_ptr<Table> put(uint32_t id, uint32_t high);
  void erase(uint32_t id);

  // Any thread (a reader inside its read section): the priority's high half of filter `id`, or
  // false when it has none here (not uniform, or not in the engine).
  bool find(uint32_t id, uint64_t* high) const {
    const Table& t = *table_.load(std::memory_order_acquire);
    for (size_t i = slot(t, id), n = 0; n <= t.mask; ++n, i = (i + 1) & t.mask) {
      uint64_t w = t.words[i].load(std::memory_order_relaxed);
      if (w == 0) return false;
      if (uint32_t(w >> 32) == id) {
        *high = uint32_t(w);
        return *high != 0;
      }
    }
    return false;
  }

 private:
  size_t slot(const Table& t, uint32_t id) const {
    return size_t((uint64_t(id) * multiplier_) >> 32) & t.mask;
  }
  // The slot holding `id` (live or tombstone), else the first free one of its run.
  size_t place(const Table& t, uint32_t id, bool* found) const;

  uint64_t multiplier_;
  std::atomic<Table*> table_;
  size_t live_ = 0, used_ = 0;  // entries, and entries plus tombstones
};

}  // namespace exojit::dpf::detail
