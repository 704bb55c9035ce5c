// SPDX-License-Identifier: MIT
// libFuzzer target for the classic-BPF JIT and the lift: raw programs and packets, both from
// the input.
//
// Input: a 16-bit little-endian instruction count N, N instructions of 8 bytes (BpfInsn's
// layout, little-endian), then packets as [length byte][bytes]...; without packets, eight
// generated ones (tests/dpf/packets.h). An invalid program must be refused with exojit::Error by
// validate_bpf, compile_bpf and lift_bpf alike. A valid one is compiled and run on every packet
// (and on two truncations of it), each copied flush against a PROT_NONE page (a read past its
// end faults): the machine code must equal the vcode interpreter running the same function and,
// where libpcap 1.10's bpf_filter is a fair reference (no backward jump, no scratch word read
// before it is written), bpf_filter; where the program lifts, its filters must accept exactly
// what bpf_filter accepts.
#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "exojit/dpf/bpf.h"
#include "exojit/dpf/lift.h"
#include "exojit/error.h"
#include "exojit/vcode/interp.h"
#include "guarded.h"
#include "libpcap_reference.h"
#include "packets.h"

// Outcome of the last input, for the corpus driver: 0 refused, 1 valid.
int exojit_fuzz_parse_outcome = 0;

namespace {

using namespace exojit::dpf;

[[noreturn]] void bug(const char* what, uint64_t got, uint64_t want, size_t len) {
  std::fprintf(stderr, "fuzz_bpf: %s: got %llu, expected %llu (packet of %zu bytes)\n", what,
               static_cast<unsigned long long>(got), static_cast<unsigned long long>(want), len);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  exojit_fuzz_parse_outcome = 0;
  if (size < 2) return 0;
  size_t n = size_t(data[0] | data[1] << 8);
  if (n > 512 || 2 + 8 * n > size) return 0;  // keep each input fast
  std::vector<BpfInsn> program(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* b = data + 2 + 8 * i;
    program[i] = BpfInsn{uint16_t(b[0] | b[1] << 8), b[2], b[3],
                         uint32_t(b[4] | b[5] << 8 | b[6] << 16 | uint32_t(b[7]) << 24)};
  }
  std::vector<testing::Bytes> packets;
  for (size_t at = 2 + 8 * n; at < size;) {
    size_t len = std::min<size_t>(data[at], size - at - 1);
    packets.emplace_back(data + at + 1, data + at + 1 + len);
    at += 1 + len;
  }
  if (packets.empty()) {
    std::mt19937_64 rng(size);
    for (int i = 0; i < 8; ++i) packets.push_back(testing::random_packet(rng));
  }
  try {
    validate_bpf(program);
  } catch (const exojit::Error&) {
    bool compiled = true, lifted = true;
    try {
      compile_bpf(program);
    } catch (const exojit::Error&) {
      compiled = false;
    }
    try {
      lift_bpf(program);
    } catch (const exojit::Error&) {
      lifted = false;
    }
    if (compiled || lifted) bug("an invalid program was accepted", compiled, lifted, 0);
    return 0;
  }
  exojit_fuzz_parse_outcome = 1;
  BpfFilter jit = compile_bpf(program);
  exojit::vcode::Interpreter interp(jit.module());
  bool reference = testing::libpcap_comparable(program);
  Lifted lifted = lift_bpf(program);
  static testing::GuardedPages guard(1024);
  for (const testing::Bytes& full : packets)
    for (size_t cap : {full.size(), full.size() / 2, full.size() * 3 / 4}) {
      const uint8_t* at = guard.place(full.data(), cap);
      uint32_t got = jit(at, full.size(), cap);
      uint32_t ref = interp.run<uint32_t>("bpf_filter", at, uint64_t(full.size()), uint64_t(cap));
      if (got != ref) bug("machine code vs vcode interpreter", got, ref, cap);
      if (!reference) continue;
      uint32_t want = bpf_filter(reinterpret_cast<const bpf_insn*>(program.data()), at,
                                 u_int(full.size()), u_int(cap));
      if (got != want) bug("JIT vs libpcap's bpf_filter", got, want, cap);
      if (lifted.opaque) continue;
      uint32_t same_len =
          bpf_filter(reinterpret_cast<const bpf_insn*>(program.data()), at, u_int(cap), u_int(cap));
      bool any = false;
      for (const Filter& f : lifted.disjuncts) any = any || matches(f, at, cap);
      if (any != (same_len != 0)) bug("lifted filters vs libpcap's bpf_filter", any, same_len, cap);
    }
  return 0;
}
