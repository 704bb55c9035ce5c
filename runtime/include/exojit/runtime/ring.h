// SPDX-License-Identifier: MIT
// Packet rings ([ASH96], 4.1): a ring of descriptors in the environment's own memory, which the
// kernel fills and the environment drains and refills with its own buffers.
//
// Layout (one page, shared): a header, then `slots` descriptors. `produced` is written by the
// kernel only, `consumed` by the environment only; both count forever and wrap as uint32_t.
// Slot i % slots is the kernel's to fill while produced - consumed < slots; the environment
// owns slots in [consumed, produced). Before advancing `consumed` past a slot, the environment
// stores in it the buffer the kernel will fill next time (the same one, or a replacement: the
// environment may keep a message buffer as long as it gives another one back).
//
// Buffers must lie in the ring's buffer area, registered (and pinned) when the ring is created;
// the kernel checks every descriptor it reads. The functions below are the environment's side,
// plain C-style so the libOS can use them as they are.
#pragma once

#include <atomic>
#include <cstdint>

namespace exojit::runtime {

struct RingHeader {
  uint32_t slots;     // a power of two, 1..kMaxRingSlots
  uint32_t produced;  // kernel -> environment
  uint32_t consumed;  // environment -> kernel
  uint32_t dropped;   // packets the kernel could not place (ring full, bad buffer, too big)
};

struct RingSlot {
  uint64_t buffer;    // virtual address of the buffer, in the ring's buffer area
  uint32_t capacity;  // bytes
  uint32_t length;    // bytes of the message, set by the kernel
};

inline constexpr uint32_t kMaxRingSlots = 128;  // header + slots fit one page
static_assert(sizeof(RingHeader) + kMaxRingSlots * sizeof(RingSlot) <= 4096);

inline RingSlot* ring_slots(RingHeader* h) {
  return reinterpret_cast<RingSlot*>(h + 1);
}

// Messages waiting for the environment.
inline uint32_t ring_ready(RingHeader* h) {
  uint32_t produced = std::atomic_ref<uint32_t>(h->produced).load(std::memory_order_acquire);
  return produced - h->consumed;
}

// The oldest waiting message's slot, or nullptr.
inline RingSlot* ring_peek(RingHeader* h) {
  return ring_ready(h) ? &ring_slots(h)[h->consumed & (h->slots - 1)] : nullptr;
}

// Gives the oldest slot back to the kernel with `buffer` as its next buffer.
inline void ring_release(RingHeader* h, uint64_t buffer, uint32_t capacity) {
  RingSlot* s = &ring_slots(h)[h->consumed & (h->slots - 1)];
  s->buffer = buffer;
  s->capacity = capacity;
  std::atomic_ref<uint32_t>(h->consumed).store(h->consumed + 1, std::memory_order_release);
}

}  // namespace exojit::runtime
