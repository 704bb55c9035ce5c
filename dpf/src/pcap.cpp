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
  std::string text(expression);
  if (text.find('\0') != std::string::npos) fail("pcap filter: a NUL byte in the expression");
  std::lock_guard<std::mutex> guard(compiler.lock);
  bpf_program prog{};
  if (pcap_compile(compiler.dead, &prog, text.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    fail("pcap filter: {}", pcap_geterr(compiler.dead));
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
