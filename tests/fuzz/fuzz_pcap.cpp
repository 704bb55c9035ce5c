// SPDX-License-Identifier: MIT
// libFuzzer target for the tcpdump front end: compile_pcap on any bytes, against libpcap.
//
// Input: the expression up to the first newline (any bytes, NULs included), then packets as
// [length byte][bytes]...; without packets, 24 generated frames of every encapsulation
// (pcap_packets.h). Invariants:
//   - compile_pcap returns or throws exojit::Error, nothing else, and never crashes or hangs
//     (the bounds keep libpcap's compilation under a second);
//   - it refuses an expression within the bounds (no NUL, kMaxPcapExpressionBytes,
//     kMaxPcapNesting, kMaxPcapCost) only when libpcap refuses it, with libpcap's message;
//   - it never returns a filter for an expression past them;
//   - a returned filter is libpcap's own program, and on every packet (flush against a
//     PROT_NONE page) its lifted filters accept exactly what pcap_offline_filter accepts; an
//     opaque one's JIT returns what pcap_offline_filter returns where libpcap 1.10 is a fair
//     reference (libpcap_reference.h).
#include <pcap/pcap.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "exojit/dpf/bpf.h"
#include "exojit/dpf/pcap.h"
#include "exojit/error.h"
#include "guarded.h"
#include "libpcap_reference.h"
#include "pcap_packets.h"

// Outcome of the last input, for the corpus driver: 0 refused, 1 compiled.
int exojit_fuzz_parse_outcome = 0;

namespace {

using namespace exojit::dpf;

[[noreturn]] void bug(const std::string& what, const std::string& expr) {
  std::fprintf(stderr, "fuzz_pcap: %s: `%.200s`\n", what.c_str(), expr.c_str());
  std::abort();
}

const std::vector<std::vector<uint8_t>>& frames() {
  static const std::vector<std::vector<uint8_t>> out = [] {
    testing::FrameMaker m(5);
    std::vector<std::vector<uint8_t>> v;
    for (int i = 0; i < 24; ++i) v.push_back(m.next());
    return v;
  }();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  exojit_fuzz_parse_outcome = 0;
  size_t end = 0;
  while (end < size && data[end] != '\n') ++end;
  std::string expr(reinterpret_cast<const char*>(data), end);
  std::vector<std::vector<uint8_t>> own;
  for (size_t at = end + 1; at < size;) {
    size_t len = std::min<size_t>(data[at], size - at - 1);
    own.emplace_back(data + at + 1, data + at + 1 + len);
    at += 1 + len;
  }
  const std::vector<std::vector<uint8_t>>& packets = own.empty() ? frames() : own;

  PcapSize m = measure_pcap(expr);
  bool within = expr.find('\0') == std::string::npos && m.bytes <= kMaxPcapExpressionBytes &&
                m.nesting <= kMaxPcapNesting && m.cost <= kMaxPcapCost;
  PcapFilter f;
  try {
    f = compile_pcap(expr);
  } catch (const exojit::Error& e) {
    if (within) {
      testing::LibpcapCompiled ref(expr);
      if (ref.ok) bug(std::string("refused what libpcap compiles: ") + e.what(), expr);
      if (std::string(e.what()) != "pcap filter: " + ref.error)
        bug(std::string("not libpcap's message: ") + e.what() + " / " + ref.error, expr);
    }
    return 0;
  }
  if (!within) bug("compiled past the bounds", expr);
  exojit_fuzz_parse_outcome = 1;
  testing::LibpcapCompiled ref(expr);
  if (!ref.ok) bug("compiled what libpcap refuses: " + ref.error, expr);
  if (f.program.size() != ref.prog.bf_len) bug("not libpcap's program", expr);
  for (size_t i = 0; i < f.program.size(); ++i) {
    const bpf_insn& r = ref.prog.bf_insns[i];
    const BpfInsn& g = f.program[i];
    if (g.code != r.code || g.jt != r.jt || g.jf != r.jf || g.k != r.k)
      bug("not libpcap's program", expr);
  }
  static testing::GuardedPages guard(262144);
  bool reference = testing::libpcap_comparable(f.program);
  std::optional<BpfFilter> jit;
  if (f.lifted.opaque && reference) jit.emplace(compile_bpf(f.program));
  for (const std::vector<uint8_t>& p : packets) {
    const uint8_t* at = guard.place(p.data(), p.size());
    pcap_pkthdr h{};
    h.caplen = h.len = bpf_u_int32(p.size());
    uint32_t want = uint32_t(pcap_offline_filter(&ref.prog, &h, at));
    if (!f.lifted.opaque) {
      bool any = false;
      for (const Filter& d : f.lifted.disjuncts) any = any || matches(d, at, p.size());
      if (any != (want != 0)) bug("lifted filters vs pcap_offline_filter", expr);
    } else if (jit && (*jit)(at, p.size()) != want) {
      bug("JIT of the opaque program vs pcap_offline_filter", expr);
    }
  }
  return 0;
}
