// SPDX-License-Identifier: MIT
#include "exojit/runtime/physical_memory.h"

#include <cstdlib>
#include <cstring>

#include "exojit/error.h"

namespace exojit::runtime {

PhysicalMemory::PhysicalMemory(uint32_t frames) : info_(frames) {
  if (frames == 0 || frames > (1u << 22)) fail("physical memory of {} frames (1..4194304)", frames);
  base_ = static_cast<uint8_t*>(std::aligned_alloc(kPageSize, uint64_t(frames) * kPageSize));
  if (!base_) fail("cannot allocate {} frames of host memory", frames);
  free_.reserve(frames);
  for (uint32_t f = frames; f-- > 0;) free_.push_back(f);  // frame 0 is handed out first
}

PhysicalMemory::~PhysicalMemory() {
  std::free(base_);
}

uint32_t PhysicalMemory::checked(uint32_t frame) const {
  if (frame >= frames() || !info_[frame].allocated) fail("frame {} is not allocated", frame);
  return frame;
}

uint32_t PhysicalMemory::alloc(const Capability& guard) {
  if (free_.empty()) fail("physical memory exhausted ({} frames)", frames());
  if (!guard.valid()) fail("frame guard {} is not a valid capability", guard.str());
  uint32_t f = free_.back();
  free_.pop_back();
  info_[f] = FrameInfo{guard, 0, true};
  std::memset(base_ + uint64_t(f) * kPageSize, 0, kPageSize);
  return f;
}

void PhysicalMemory::free(uint32_t frame) {
  checked(frame);
  if (info_[frame].mappings)
    fail("frame {} is still mapped {} time(s)", frame, info_[frame].mappings);
  info_[frame].allocated = false;
  free_.push_back(frame);
}

}  // namespace exojit::runtime
