// SPDX-License-Identifier: MIT
// Stack probing (private header): how a back end's prologue moves the stack pointer down over a
// frame larger than a page without jumping over the guard page below the stack (stack clash,
// Qualys 2017; gcc -fstack-clash-protection, LLVM "probe-stack"="inline-asm").
//
// The invariant: between the caller's last store to the stack and every address the function
// stores to, no untouched gap exceeds kProbeInterval (no larger than the smallest guard page),
// so the first access below the stack's mapping is always in the guard and faults. A prologue
// allocates a large frame in steps of at most kProbeInterval and stores to the new bottom after
// each one ("probes"), the last partial step too, so that sp itself is touched when the body
// starts (a call's return address then lands within a page). A frame whose bytes stay within
// that distance without probes keeps its plain prologue: small frames cost nothing.
#pragma once

#include <algorithm>
#include <cstdint>

namespace exojit::vcode::detail {

// The probe interval: 4 KiB, the smallest guard page (Linux's page; a thread stack's guard).
inline constexpr int64_t kProbeInterval = 4096;
// AArch64 (bl stores nothing): what a caller may leave untouched above the callee's entry sp,
// and so what a function leaves at most below its last store when it calls (gcc's AArch64
// convention, its STACK_CLASH_CALLER_GUARD). On x86-64 the call's push touches the entry sp.
inline constexpr int64_t kCallerGap = 1024;
// Up to this many whole-page probes are emitted one after the other; more make a loop.
inline constexpr int64_t kProbeUnroll = 4;

// The steps a probed allocation of `bytes` takes, when the lowest touched address is already
// `gap` bytes above sp: `first` (at most kProbeInterval - gap), `pages` whole pages, `rest`.
// Each step is followed by a probe at the new sp.
struct ProbeSteps {
  int64_t first = 0, pages = 0, rest = 0;
  bool loop() const { return pages > kProbeUnroll; }
};

inline ProbeSteps probe_steps(int64_t bytes, int64_t gap) {
  ProbeSteps s;
  s.first = std::min(bytes, kProbeInterval - gap);
  s.pages = (bytes - s.first) / kProbeInterval;
  s.rest = (bytes - s.first) % kProbeInterval;
  return s;
}

}  // namespace exojit::vcode::detail
