// SPDX-License-Identifier: MIT
// libpcap as the reference: its compiler's answer for an expression, and when its own
// interpreter (bpf_filter, pcap_offline_filter) is a fair reference for a classic-BPF program.
// Shared by the tests and fuzz targets that compare compile_pcap and the JIT with libpcap.
#pragma once

#include <pcap/pcap.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "exojit/dpf/bpf.h"

namespace exojit::dpf::testing {

// libpcap's own compilation of an expression, as compile_pcap asks for it (Ethernet, optimized,
// netmask unknown), on its own handle: `ok`, or libpcap's `error`.
struct LibpcapCompiled {
  bool ok = false;
  std::string error;
  bpf_program prog{};
  explicit LibpcapCompiled(const std::string& expr) {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
    ok = pcap_compile(dead, &prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
    if (!ok) error = pcap_geterr(dead);
    pcap_close(dead);
  }
  ~LibpcapCompiled() {
    if (ok) pcap_freecode(&prog);
  }
  LibpcapCompiled(const LibpcapCompiled&) = delete;
  LibpcapCompiled& operator=(const LibpcapCompiled&) = delete;
  std::vector<BpfInsn> program() const {
    auto* p = reinterpret_cast<const BpfInsn*>(prog.bf_insns);
    return {p, p + prog.bf_len};
  }
  bool accepts(const std::vector<uint8_t>& p) const {
    pcap_pkthdr h{};
    h.caplen = h.len = bpf_u_int32(p.size());
    return pcap_offline_filter(&prog, &h, p.data()) != 0;
  }
};

// libpcap 1.10's interpreter is a fair reference only for programs without backward jumps
// (it does not bound them) whose scratch words are written before they are read on every path
// (its scratch memory starts as stack garbage).
inline bool libpcap_comparable(const std::vector<BpfInsn>& p) {
  const size_t n = p.size();
  std::vector<uint32_t> defined(n, ~0u);
  defined[0] = 0;
  for (size_t pc = 0; pc < n; ++pc) {
    const BpfInsn& in = p[pc];
    uint16_t cls = in.code & 7, mode = in.code & 0xe0;
    if ((cls == 0 || cls == 1) && mode == 0x60 && !(defined[pc] >> in.k & 1)) return false;
    uint32_t out = defined[pc];
    if (cls == 2 || cls == 3) out |= 1u << in.k;
    std::vector<size_t> next;
    if (cls == 6) continue;
    if (in.code == 0x05) {
      int64_t to = int64_t(pc) + 1 + int32_t(in.k);
      if (to <= int64_t(pc)) return false;
      next.push_back(size_t(to));
    } else if (cls == 5) {
      next = {pc + 1 + in.jt, pc + 1 + in.jf};
    } else {
      next.push_back(pc + 1);
    }
    for (size_t s : next) defined[s] &= out;
  }
  return true;
}

}  // namespace exojit::dpf::testing
