// SPDX-License-Identifier: MIT
// DPDK's rte_bpf JIT as a demux peer (README, "Benchmarks"): libpcap's compiled filters
// converted to eBPF (rte_bpf_convert), JIT-compiled (rte_bpf_load + rte_bpf_get_jit) and tried
// in turn, as the bpf_filter rows try them. Built only when Debian's libdpdk-dev is installed
// (EXOJIT_HAVE_DPDK); kept in its own file because DPDK's headers want their own compiler flags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace exojit::bench {

class RteBpfSet {
 public:
  // Compiles each tcpdump expression with libpcap, converts and JIT-compiles it. Initializes
  // DPDK's EAL on first use (no hugepages, no PCI). Throws exojit::Error when DPDK refuses.
  explicit RteBpfSet(const std::vector<std::string>& exprs);
  ~RteBpfSet();
  RteBpfSet(const RteBpfSet&) = delete;
  RteBpfSet& operator=(const RteBpfSet&) = delete;

  // 1 + the index of the first filter that accepts, 0 if none.
  uint32_t demux(const uint8_t* packet, size_t length) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace exojit::bench
