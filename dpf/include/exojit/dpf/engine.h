// The DPF engine: filters merged into one trie and compiled to machine code with vcode.
//
//   Engine e;
//   FilterId web = e.insert(parse_filter("(12:16 == 0x800) && (23:8 == 6) && ..."));
//   FilterId who = e.demux(pkt, len);  // 0: no filter accepts
//
// When several filters accept a packet, the most specific wins: the one with the most atoms
// (comparisons, after canonicalisation: repeated atoms and constant ones do not count), and among
// those the earliest inserted (the lowest id). So a connection's filter wins over its server's
// listening filter whatever the order they were inserted in.
//
// demux() never reads outside [pkt, pkt + len): an atom whose field lies past the end is false.
// A filter that only adds a constant to a disjunction compiled as a hash table is written into
// the table; any other change regenerates the code (in microseconds; see bench_demux).
//
// Stateful atoms (IP fragments, seed 001 section 2.1.6): when a filter with RECORD(e) accepts a
// packet, e's value is remembered for that filter's id; RECORDED(e) in a filter of the same id
// holds for packets whose e was remembered. A packet that no filter accepts but that would match
// a RECORDED filter once its value is remembered (a fragment that overtook its first fragment)
// is held; when the value is recorded it is released (take_released) to that filter. Memory is
// bounded by EngineOptions; values and held packets expire after record_lifetime_ns.
//
// Ownership: every filter has an owner. An insertion whose filter could accept a packet that a
// filter of another owner accepts is refused (exojit::Error naming that filter), unless the
// caller allows sharing. Two filters are disjoint when, on the same packet bytes, one requires
// values the other excludes (== vs == or a range, masked fields bit by bit); otherwise they are
// taken to overlap (a safe approximation: an overlap is never missed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "exojit/dpf/filter.h"

namespace exojit::vcode {
class Code;
class Module;
}  // namespace exojit::vcode

namespace exojit::dpf {

using FilterId = uint32_t;

struct EngineOptions {
  // For targets that trap on unaligned loads: only coalesce into loads known to be aligned.
  bool strict_alignment = false;
  unsigned packet_alignment = 1;  // alignment the caller guarantees for packets (estimate input)
  // Stateful atoms (filter.h): values remembered per filter id, each for a bounded time; packets
  // held until their chain's first packet arrives, bounded in number and time.
  size_t record_capacity = 64;                   // values per filter id (the oldest goes first)
  uint64_t record_lifetime_ns = 30'000'000'000;  // 30 s (IP reassembly timeouts are 15-60 s)
  size_t held_capacity = 64;                     // packets held for chains not yet seen
};

// A packet that was held (it matched a filter but for a value not yet RECORDed) and whose
// chain's first packet has now arrived: it belongs to filter `id`.
struct Released {
  FilterId id;
  std::vector<uint8_t> packet;
};

struct InsertOptions {
  uint32_t owner = 0;
  bool share = false;  // allow accepting packets other owners' filters accept
  FilterId id = 0;     // the id to give the filter (must be free); 0: the next unused one
};

class Engine {
 public:
  using DemuxFn = uint64_t(const uint8_t* pkt, uint64_t len);

  explicit Engine(EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Inserts a filter (or a disjunction of filters under one id). Malformed filters and ownership
  // conflicts throw exojit::Error and leave the engine as it was.
  FilterId insert(const Filter& f, InsertOptions o = {});
  FilterId insert(std::span<const Filter> disjuncts, InsertOptions o = {});
  void remove(FilterId id);  // throws if there is no such filter

  // The accepting filter (0: none), by the generated code. (With stateful filters inserted,
  // also records values and holds or releases packets.)
  FilterId demux(const uint8_t* pkt, size_t len) {
    if (stateful_) [[unlikely]]
      return demux_stateful(pkt, len);
    return FilterId(fn_(pkt, len));
  }

  // Held packets released since the last call, in arrival order.
  std::vector<Released> take_released();
  // The clock for the lifetimes, in nanoseconds (default: std::chrono::steady_clock).
  void set_clock(std::function<uint64_t()> now_ns);

  // The same answer by walking the trie (the reference the code is tested against).
  FilterId demux_reference(const uint8_t* pkt, size_t len) const;
  // Every accepting filter, sorted, each once (by the trie walk).
  std::vector<FilterId> accepting(const uint8_t* pkt, size_t len) const;
  // The most-specific rule's measure for a filter (its canonical atom count, per disjunct).
  std::vector<unsigned> specificity(FilterId id) const;

  size_t size() const;           // filters (ids) inserted
  size_t regenerations() const;  // times code was generated (1 for the empty engine)
  size_t table_updates() const;  // insertions and removals served by writing a hash table
  DemuxFn* function() const { return fn_; }
  const vcode::Module& module() const;
  const vcode::Code& code() const;
  std::string dump_trie() const;  // the merged trie, one line per test

 private:
  FilterId demux_stateful(const uint8_t* pkt, size_t len);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  DemuxFn* fn_ = nullptr;
  bool stateful_ = false;
};

}  // namespace exojit::dpf
