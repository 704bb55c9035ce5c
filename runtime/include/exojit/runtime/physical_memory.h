// SPDX-License-Identifier: MIT
// The machine's physical memory: an array of page frames, each with a guard capability.
//
// Frames are handed out zeroed (no environment sees another's old data) and come back only when
// no page table maps them any more. A frame's guard is the capability an environment must
// dominate to map it (Kernel::map_page checks; this class only keeps the books).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "exojit/runtime/capability.h"

namespace exojit::runtime {

inline constexpr uint64_t kPageShift = 12;
inline constexpr uint64_t kPageSize = uint64_t(1) << kPageShift;
inline constexpr uint32_t kNoFrame = 0xffffffffu;

class PhysicalMemory {
 public:
  explicit PhysicalMemory(uint32_t frames);
  PhysicalMemory(const PhysicalMemory&) = delete;
  PhysicalMemory& operator=(const PhysicalMemory&) = delete;
  ~PhysicalMemory();

  uint32_t frames() const { return uint32_t(info_.size()); }
  uint32_t free_frames() const { return uint32_t(free_.size()); }

  // A zeroed frame guarded by `guard`; exojit::Error when memory is exhausted.
  uint32_t alloc(const Capability& guard);
  // Returns a frame; exojit::Error if it is not allocated or still mapped somewhere.
  void free(uint32_t frame);

  bool allocated(uint32_t frame) const { return frame < frames() && info_[frame].allocated; }
  const Capability& guard(uint32_t frame) const { return info_[checked(frame)].guard; }
  uint32_t mappings(uint32_t frame) const { return info_[checked(frame)].mappings; }
  void add_mapping(uint32_t frame) { ++info_[checked(frame)].mappings; }
  void drop_mapping(uint32_t frame) { --info_[checked(frame)].mappings; }

  uint8_t* frame_data(uint32_t frame) { return base_ + uint64_t(checked(frame)) * kPageSize; }
  // All of physical memory, frame after frame, allocated or not: for invariant checks (tests
  // and fuzzers compare it before and after running untrusted code).
  const uint8_t* bytes() const { return base_; }
  uint64_t size_bytes() const { return uint64_t(frames()) * kPageSize; }

 private:
  struct FrameInfo {
    Capability guard;
    uint32_t mappings = 0;
    bool allocated = false;
  };
  uint32_t checked(uint32_t frame) const;  // throws on an unallocated frame number

  uint8_t* base_ = nullptr;
  std::vector<FrameInfo> info_;
  std::vector<uint32_t> free_;  // a stack: the most recently freed frame is reused first
};

}  // namespace exojit::runtime
