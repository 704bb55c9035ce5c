// SPDX-License-Identifier: MIT
// Classic BPF lifted to DPF filters: what lets libpcap's compiler be DPF's tcpdump front end
// (pcap.h) while the filters still merge in the engine's trie.
//
//   Lifted l = lift_bpf(program);  // e.g. libpcap's optimized bpf_program
//   if (!l.opaque) engine.insert(l.disjuncts);  // one id for all of them
//
// A program whose jumps all go forward is a DAG; each path from the entry to a `ret` with a
// non-zero value becomes one conjunction: absolute loads are fields, `ldx 4*([k]&0xf)` and the
// loads at [x + k] are SHIFTs and fields after them, ALU operations with constants (and with X
// where both are plain values) are expressions, the conditional jumps and their false edges are
// atoms and negated atoms, `ld len` is LEN. Paths that cannot be taken (contradictory atoms) are
// dropped; the disjunction of the others accepts exactly the packets the program accepts (the
// proof is in lift.cpp: libpcap rejects a packet as soon as a load on its path falls past the
// end, and each conjunction holds only when every load on its own path is inside the packet).
// One assumption: LEN (libpcap's 32-bit wire length) is the packet's length, below 4 GiB.
//
// A program is opaque (not lifted; the engine runs it as an opaque filter compiled by
// compile_bpf, Engine::insert_bpf) when it has backward jumps
// (protochain), more than kMaxLiftedInsns instructions, divides or shifts by a value the lift
// cannot express in DPF (not a power of two, not a constant), mixes values of two variable
// headers, loads beyond DPF's largest packet, or has more than kMaxLiftedDisjuncts paths.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "exojit/dpf/bpf.h"
#include "exojit/dpf/filter.h"

namespace exojit::dpf {

inline constexpr size_t kMaxLiftedDisjuncts = 256;  // accepting paths (after pruning)
inline constexpr size_t kMaxLiftedInsns = 4096;

struct Lifted {
  bool opaque = false;
  // Not opaque: the program accepts exactly the packets some disjunct accepts (none: it
  // accepts no packet; an empty filter: every packet).
  std::vector<Filter> disjuncts;
  std::string reason;  // opaque: why the program cannot be lifted
};

// The program must be valid (validate_bpf); an invalid one is an exojit::Error.
Lifted lift_bpf(std::span<const BpfInsn> program);

}  // namespace exojit::dpf
