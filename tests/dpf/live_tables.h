// SPDX-License-Identifier: MIT
// Whether the engine writes a hash table under code that may be running on this host: only
// where loads are seen in order (x86-64); elsewhere (AArch64) every table change is new code
// (dpf/README, "Concurrency"). Tests that count regenerations expect table writes only here.
#pragma once

#if defined(__x86_64__)
inline constexpr bool kLiveTableWrites = true;
#else
inline constexpr bool kLiveTableWrites = false;
#endif
