// SPDX-License-Identifier: MIT
// The filters' priorities by id, for lock-free readers (priority_index_p.h).
#include <random>

#include "priority_index_p.h"

namespace exojit::dpf::detail {

namespace {
constexpr size_t kMinSlots = 16;
}

PriorityIndex::Table::Table(size_t slots)
    : mask(slots - 1), words(std::make_unique<std::atomic<uint64_t>[]>(slots)) {
  for (size_t i = 0; i < slots; ++i) words[i].store(0, std::memory_order_relaxed);
}

PriorityIndex::PriorityIndex()
    : multiplier_(std::random_device{}() | uint64_t(std::random_device{}()) << 32 | 1),
      table_(new Table(kMinSlots)) {}

// No reader may run any more (the engine's destructor's promise).
PriorityIndex::~PriorityIndex() {
  delete table_.load(std::memory_order_relaxed);
}

size_t PriorityIndex::place(const Table& t, uint32_t id, bool* found) const {
  size_t free = SIZE_MAX;
  for (size_t i = slot(t, id), n = 0; n <= t.mask; ++n, i = (i + 1) & t.mask) {
    uint64_t w = t.words[i].load(std::memory_order_relaxed);
    if (uint32_t(w >> 32) == id && w != 0) return *found = true, i;
    if (w == 0) return *found = false, free != SIZE_MAX ? free : i;
    // A tombstone may take a new id only once no earlier slot of the run can: the first one.
    if (uint32_t(w) == 0 && free == SIZE_MAX) free = i;
  }
  *found = false;
  return free;  // (the table is never full: rebuilt at half)
}

std::unique_ptr<PriorityIndex::Table> PriorityIndex::put(uint32_t id, uint32_t high) {
  Table* t = table_.load(std::memory_order_relaxed);
  bool found = false;
  size_t i = place(*t, id, &found);
  uint64_t old = t->words[i].load(std::memory_order_relaxed);
  if (found && uint32_t(old) != 0) {  // live: a new priority, one store
    t->words[i].store(uint64_t(id) << 32 | high, std::memory_order_release);
    return nullptr;
  }
  const bool reuses = old != 0;  // id's own tombstone, or another id's
  if (!reuses && 2 * (used_ + 1) > t->mask + 1) {
    // Rebuilt without tombstones, at least twice the live entries' room, then published.
    size_t slots = kMinSlots;
    while (slots < 4 * (live_ + 1)) slots *= 2;
    auto fresh = std::make_unique<Table>(slots);
    for (size_t j = 0; j <= t->mask; ++j) {
      uint64_t w = t->words[j].load(std::memory_order_relaxed);
      if (uint32_t(w) == 0) continue;
      bool f = false;
      fresh->words[place(*fresh, uint32_t(w >> 32), &f)].store(w, std::memory_order_relaxed);
    }
    fresh->words[place(*fresh, id, &found)].store(uint64_t(id) << 32 | high,
                                                  std::memory_order_relaxed);
    ++live_;
    used_ = live_;
    table_.store(fresh.release(), std::memory_order_release);
    return std::unique_ptr<Table>(t);
  }
  t->words[i].store(uint64_t(id) << 32 | high, std::memory_order_release);
  ++live_;
  if (!reuses) ++used_;
  return nullptr;
}

void PriorityIndex::erase(uint32_t id) {
  Table* t = table_.load(std::memory_order_relaxed);
  bool found = false;
  size_t i = place(*t, id, &found);
  if (!found || uint32_t(t->words[i].load(std::memory_order_relaxed)) == 0) return;
  t->words[i].store(uint64_t(id) << 32, std::memory_order_release);  // the tombstone
  --live_;
}

}  // namespace exojit::dpf::detail
