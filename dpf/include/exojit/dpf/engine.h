// SPDX-License-Identifier: MIT
// The DPF engine: filters merged into one trie and compiled to machine code with vcode.
//
//   Engine e;
//   FilterId web = e.insert(parse_filter("(12:16 == 0x800) && (23:8 == 6) && ..."),
//                           {.owner = 7});
//   FilterId who = e.demux(pkt, len);  // 0: no filter accepts
//   e.remove(web, 7);                  // only its owner may
//
// When several filters accept a packet, the most specific wins: the one with the most atoms
// (comparisons, after canonicalisation: repeated atoms and atoms true whenever their fields are
// in the packet do not count), and among those the lowest id. So a connection's filter wins over
// its server's listening filter whatever the order they were inserted in.
//
// Classic-BPF programs (tcpdump expressions through compile_pcap, or insert_bpf) are lifted into
// the trie when they can be; the others are opaque filters, run beside the generated code with
// the same winner rule (insert_bpf). An engine without them runs only the generated code.
//
// The filters come from owners that do not trust each other (dpf/README.md, "Threat model"):
// - demux() never reads outside [pkt, pkt + len): an atom whose field lies past the end is false.
// - A malformed filter, or one that breaks a rule below, is refused with exojit::Error and the
//   engine is exactly as before. Whether a filter is accepted depends on the filter, its owner's
//   limits and the filters it overlaps, never on what the code generator makes of the others.
// - Overlap: an insertion whose filter could accept a packet that a filter of another owner
//   accepts is refused (naming that filter) unless both inserted with the same nonzero `share`
//   group: sharing needs both owners' consent. Two filters are disjoint when, on the same packet
//   bytes, one requires values the other excludes; otherwise they are taken to overlap (a safe
//   approximation: an overlap is never missed).
// - Catch-all squatting: a filter must pin at least EngineOptions::min_key_bits packet bits with
//   its == atoms (a demultiplexing key: addresses, ports, protocol numbers), or hold the `broad`
//   right (a capability the embedding kernel grants, e.g. to a packet monitor).
// - Removal names the owner, and only the owner may remove.
// - Per-owner bounds (OwnerLimits): filters, canonical atoms (the code an owner adds), held
//   packets and their bytes.
//
// Code: a filter that only adds a constant to a disjunction compiled as a hash table is written
// into the table; any other change regenerates code -- for the whole trie while it is small; once
// it is large, for a second, small layer of recent changes beside it (removed filters are masked
// until then), merged into the whole when it has grown to the square root of the whole's size,
// so that n structural insertions cost O(n sqrt n), not O(n^2) (see layered()).
//
// Stateful atoms (IP fragments, [EXOTOOLS02] section 2.1.6): when a filter with RECORD(e) accepts a
// packet, e's value is remembered for that filter's id; RECORDED(e) in a filter of the same id
// holds for packets whose e was remembered. A packet that no filter accepts but that would match
// a RECORDED filter once its values are remembered (a fragment that overtook its first fragment)
// is held, charged to that filter's owner; when a value it waits for is recorded and some filter
// then accepts it, it is released (take_released) to that filter. Memory is bounded per owner;
// values and held packets expire after record_lifetime_ns.
//
// Threads (dpf/README.md, "Concurrency"): demux() may run on any number of threads at once, with
// no lock and no atomic read-modify-write, while other threads insert and remove: changes are
// serialized by a mutex inside the engine. Each demux answers as the engine before a change or
// after it, never in between. Code and tables a change replaces are freed after a grace period
// (exojit/grace_period.h). The mutex is taken by demux only where the answer needs state the
// writer edits in place: in an engine with stateful filters, a packet whose code reaches a
// RECORDED lookup or a recording filter's accept (the fragment state is shared by every packet,
// whatever thread sees it); while the engine is layered(), a packet whose answer is a removed
// filter still in the code (the trie walk) or comes from both layers (priorities); beside opaque
// filters, a packet one of them accepts whose table hit's priority is not in the engine's
// lock-free index (a filter whose disjuncts differ in specificity). Opaque filters' programs are
// published with the code and freed after a grace period, as it is.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "exojit/dpf/bpf.h"
#include "exojit/dpf/filter.h"
#include "exojit/grace_period.h"

namespace exojit::vcode {
class Code;
class Module;
}  // namespace exojit::vcode

namespace exojit::dpf {

using FilterId = uint32_t;
struct PcapFilter;  // pcap.h
struct Lifted;      // lift.h

// What one owner may hold. An insertion or a held packet that would exceed them is refused
// (insert: exojit::Error, nothing changed; held packet: the owner's oldest held packets go first,
// a packet larger than held_bytes is not held).
struct OwnerLimits {
  size_t filters = 16384;          // filter ids
  size_t atoms = 262144;           // canonical atoms over all disjuncts: the code an owner adds
  size_t held_packets = 64;        // packets held for fragment chains not yet seen
  size_t held_bytes = 256 * 1024;  // their bytes
};

struct EngineOptions {
  // For targets that trap on unaligned loads: only coalesce into loads known to be aligned.
  bool strict_alignment = false;
  unsigned packet_alignment = 1;  // alignment the caller guarantees for packets (estimate input)
  // Stateful atoms (filter.h): values remembered per filter id, each for a bounded time; held
  // packets expire after the same time.
  size_t record_capacity = 64;                   // values per filter id (the oldest goes first)
  uint64_t record_lifetime_ns = 30'000'000'000;  // 30 s (IP reassembly timeouts are 15-60 s)
  // Catch-all squatting: the packet bits a filter (each disjunct) must pin with == atoms unless
  // inserted with InsertOptions::broad. 32: an Ethernet type and an IP protocol (24 bits) are
  // not enough, a port with them (40) or an address (48) is.
  unsigned min_key_bits = 32;
  OwnerLimits owner_limits;  // every owner's, unless set_owner_limits says otherwise
  // While the filters' canonical atoms total at most this, every change that needs new code
  // regenerates the whole; beyond, the second layer takes it (see the class comment). A tuning
  // knob (tests and the fuzzer set it low to exercise the layers with few filters).
  size_t layer_threshold = 2048;
};

// A packet that was held (it matched a filter but for a value not yet RECORDed) and that a
// filter accepts now that a value it waited for was recorded.
struct Released {
  FilterId id;
  std::vector<uint8_t> packet;
};

struct InsertOptions {
  uint32_t owner = 0;
  // Sharing group, 0 for none: filters of different owners may accept the same packets only when
  // both were inserted with the same nonzero group (the embedding kernel gives a group to the
  // owners that agreed to share, e.g. from a capability they both hold).
  uint64_t share = 0;
  FilterId id = 0;     // the id to give the filter (must be free); 0: the next unused one
  bool broad = false;  // the owner may insert filters that pin fewer than min_key_bits bits
  // The kernel trusts the owner's filters (its own). While any untrusted filter is in the engine,
  // generated code is hardened: constants blinded, packet loads masked (README "Threat model").
  bool trusted = false;
};

// What an owner holds now (see OwnerLimits).
struct OwnerUsage {
  size_t filters = 0, atoms = 0, held_packets = 0, held_bytes = 0;
};

// Counters, for tests and for a kernel's accounting of what owners cost it.
struct EngineStats {
  size_t regenerations = 0;           // code generations, either layer, merges included
  size_t merges = 0;                  // generations of the whole from every filter
  size_t table_updates = 0;           // changes served by the running code
  size_t instructions_generated = 0;  // vcode instructions, all generations together
  size_t overlap_checks = 0;          // filter pairs compared for overlap
  size_t held_evicted = 0;            // held packets dropped: expired, or room for newer ones
  size_t opaque_filters = 0;          // classic-BPF programs run beside the trie (insert_bpf)
  size_t locked_demuxes = 0;          // demux calls answered under the engine's mutex
};

class Engine {
 public:
  using DemuxFn = uint64_t(const uint8_t* pkt, uint64_t len);
  // What the published function answers when demux must go out of line (no filter's key).
  static constexpr uint64_t kOutOfLine = ~uint64_t(0);

  explicit Engine(EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Inserts a filter (or a disjunction of filters under one id). Malformed filters, overlaps,
  // broad filters without the right and exceeded limits throw exojit::Error and leave the engine
  // as it was.
  FilterId insert(const Filter& f, InsertOptions o = {});
  FilterId insert(std::span<const Filter> disjuncts, InsertOptions o = {});
  // A classic-BPF program (e.g. libpcap's): lifted to DPF filters under one id when it lifts
  // (lift.h), so that it merges with the others; otherwise an opaque filter, compiled on its own
  // by the classic-BPF JIT (bpf.h) and run beside the trie with the same winner rule (its
  // specificity: the fewest conditional jumps on a path to an accepting `ret`). An opaque
  // filter pins no packet bits the engine can prove: it needs the broad right, it is taken to
  // overlap every filter of another owner (so both need one sharing group), and its
  // instructions count as its atoms in the owner's limits. A program that accepts no packet
  // gets an id that never matches. An invalid program is an exojit::Error.
  FilterId insert_bpf(std::span<const BpfInsn> program, InsertOptions o = {});
  // A tcpdump expression as compile_pcap gives it (pcap.h), as insert_bpf inserts its program;
  // an error names the expression.
  FilterId insert(const PcapFilter& f, InsertOptions o = {});
  // Removes filter `id` of `owner`: an error if there is no such filter or it is another
  // owner's (then nothing changes).
  void remove(FilterId id, uint32_t owner);

  // Limits for one owner (its filters already inserted stay even if they exceed them).
  void set_owner_limits(uint32_t owner, OwnerLimits limits);
  OwnerUsage usage(uint32_t owner) const;
  uint32_t owner_of(FilterId id) const;  // throws if there is no such filter

  // The accepting filter (0: none), by the generated code. (A packet that needs the fragment
  // state -- it reaches a RECORDED atom or a RECORD filter wins it -- is answered under the
  // engine's mutex: it records values and holds or releases packets.) Any number of threads at
  // once.
  // Inline: a read section's fast path around a call of the generated code; everything else
  // (the thread's first or a nested section, the view, the mutex) is out of line.
  [[gnu::always_inline]] FilterId demux(const uint8_t* pkt, size_t len) {
    if (grace::try_enter()) [[likely]] {
      DemuxFn* fn = grace::load_in(entry_);  // the code and tables stay until leave()
      uint64_t k = fn(pkt, len);
      if (k != kOutOfLine) [[likely]] {
        grace::leave();
        return FilterId(k);
      }
      return demux_out_of_line(true, pkt, len);
    }
    return demux_out_of_line(false, pkt, len);
  }

  // demux for a burst of packets (a receive loop's, e.g. 32): out[i] = demux(pkt[i], len[i]), in
  // one read section (its announcement paid once: about 0.4 ns a packet with demux alone).
  void demux_burst(const uint8_t* const* pkt, const size_t* len, size_t n, FilterId* out) {
    for (size_t i = 0; i < n; ++i) {
      {
        grace::ReadSection section;
        DemuxFn* fn = section.load(entry_);
        for (; i < n; ++i) {
          uint64_t k = fn(pkt[i], len[i]);
          if (k == kOutOfLine) [[unlikely]]
            break;
          out[i] = FilterId(k);
        }
      }
      if (i < n) out[i] = demux_out_of_line(false, pkt[i], len[i]);  // outside the section
    }
  }

  // Held packets released since the last call, in release order.
  std::vector<Released> take_released();
  // The clock for the lifetimes, in nanoseconds (default: std::chrono::steady_clock). Read only
  // when a stateful atom needs the time, not on every packet.
  void set_clock(std::function<uint64_t()> now_ns);

  // The same answer by walking the trie (the reference the code is tested against).
  FilterId demux_reference(const uint8_t* pkt, size_t len) const;
  // Every accepting filter, sorted, each once (by the trie walk).
  std::vector<FilterId> accepting(const uint8_t* pkt, size_t len) const;
  // The most-specific rule's measure for a filter (its canonical atom count, per disjunct; for
  // an opaque filter one number, see insert_bpf; none for a filter that accepts no packet).
  std::vector<unsigned> specificity(FilterId id) const;
  bool opaque(FilterId id) const;  // run as a classic-BPF program (insert_bpf); throws if unknown

  size_t size() const;           // filters (ids) inserted
  size_t regenerations() const;  // times code was generated (1 for the empty engine)
  size_t table_updates() const;  // insertions and removals served by writing a hash table
  EngineStats stats() const;
  // True while recent changes live in a second, small function (or removed filters are masked
  // in front of the code): demux() combines them; function() alone is then not the whole answer.
  bool layered() const;
  // The main function (the whole demultiplexer unless layered() or stats().opaque_filters; with
  // stateful filters it answers kOutOfLine for a packet whose answer needs their state).
  // Valid until the next change: for callers that do not insert or remove while calling it
  // (benchmarks, tools).
  DemuxFn* function() const;
  const vcode::Module& module() const;
  const vcode::Code& code() const;
  // The second function's (the layer of recent changes; an empty module while there is none).
  const vcode::Module& recent_module() const;
  std::string dump_trie() const;  // the merged trie, one line per test; then opaque filters

 private:
  // demux's other cases; `in_section`: an entry answered kOutOfLine in the section demux entered
  // (left here). (Not the entry itself: keeping it live across the call costs demux a spill.)
  FilterId demux_out_of_line(bool in_section, const uint8_t* pkt, size_t len);
  [[gnu::always_inline]] bool view_answer(DemuxFn* ran, const uint8_t* pkt, size_t len,
                                          FilterId* id) const;
  static uint64_t out_of_line_entry(const uint8_t* pkt, uint64_t len);  // answers kOutOfLine
  FilterId demux_slow(const uint8_t* pkt, size_t len);
  FilterId insert_program(std::span<const BpfInsn> program, const Lifted& lifted, InsertOptions o);
  void publish();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  // What demux runs, published by a writer in one store: the main function, a layered engine's
  // compiled entry (both layers), or one that answers kOutOfLine at once (opaque filters: the
  // view runs them). The code answers kOutOfLine itself for a packet whose answer needs the
  // fragment state (a RECORDED lookup, a recording filter's accept): the mutex.
  std::atomic<DemuxFn*> entry_{nullptr};
  // What the out-of-line path reads without the mutex (detail::ReaderView): the layers'
  // functions and masks, the opaque filters' programs.
  std::atomic<const void*> view_{nullptr};
};

}  // namespace exojit::dpf
