// SPDX-License-Identifier: MIT
// The tcpdump front end: libpcap's compiler, then the lift.
#include "exojit/dpf/pcap.h"

#include <pcap/pcap.h>

#include <cstddef>
#include <mutex>

#include "exojit/error.h"

namespace exojit::dpf {

static_assert(sizeof(bpf_insn) == sizeof(BpfInsn) && offsetof(bpf_insn, code) == 0 &&
                  offsetof(bpf_insn, jt) == 2 && offsetof(bpf_insn, jf) == 3 &&
                  offsetof(bpf_insn, k) == 4,
              "BpfInsn must be libpcap's bpf_insn");

namespace {

// One dead handle for every compilation, under a lock: a pcap_t is not for concurrent use.
struct Compiler {
  std::mutex lock;
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
  ~Compiler() {
    if (dead) pcap_close(dead);
  }
};

}  // namespace

std::vector<BpfInsn> compile_pcap_bpf(std::string_view expression) {
  static Compiler compiler;
  if (!compiler.dead) fail("pcap filter: libpcap could not open a handle for DLT_EN10MB");
  if (expression.find('\0') != std::string_view::npos)
    fail("pcap filter: a NUL byte in the expression");
  if (expression.size() > kMaxPcapExpressionBytes)
    fail("pcap filter: the expression is {} bytes (kMaxPcapExpressionBytes: at most {})",
         expression.size(), kMaxPcapExpressionBytes);
  PcapSize size = measure_pcap(expression);
  if (size.nesting > kMaxPcapNesting)
    fail("pcap filter: parentheses and brackets nested {} deep (kMaxPcapNesting: at most {})",
         size.nesting, kMaxPcapNesting);
  if (size.cost > kMaxPcapCost)
    fail(
        "pcap filter: the expression costs {} (kMaxPcapCost: at most {}; e.g. about 125 `port N` "
        "or 150 `host A` terms): libpcap's compiler would take too long",
        size.cost, kMaxPcapCost);
  std::string text(expression);
  std::lock_guard<std::mutex> guard(compiler.lock);
  bpf_program prog{};
  if (pcap_compile(compiler.dead, &prog, text.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    fail("pcap filter: {}", pcap_geterr(compiler.dead));
  if (prog.bf_len > kBpfMaxInsns) {
    size_t n = prog.bf_len;
    pcap_freecode(&prog);
    fail("pcap filter: libpcap's program has {} instructions (kBpfMaxInsns: at most {})", n,
         kBpfMaxInsns);
  }
  auto* first = reinterpret_cast<const BpfInsn*>(prog.bf_insns);
  std::vector<BpfInsn> out(first, first + prog.bf_len);
  pcap_freecode(&prog);
  return out;
}

PcapFilter compile_pcap(std::string_view expression) {
  PcapFilter f;
  size_t first = expression.find_first_not_of(" \t\r\n"),
         last = expression.find_last_not_of(" \t\r\n");
  f.expression = first == std::string_view::npos
                     ? ""
                     : std::string(expression.substr(first, last - first + 1));
  f.program = compile_pcap_bpf(expression);
  f.lifted = lift_bpf(f.program);
  return f;
}

}  // namespace exojit::dpf
