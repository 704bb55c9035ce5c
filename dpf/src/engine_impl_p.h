// SPDX-License-Identifier: MIT
// The engine's state (Engine::Impl), shared by its two halves: engine.cpp makes the changes
// (insertion, removal, owners, layers, merges) and engine_demux.cpp serves the packets
// (publication, the reader view, demux's out-of-line and locked paths, fragment state).
#pragma once

#include <exojit/vcode/code.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "exojit/dpf/engine.h"
#include "fragment_state_p.h"
#include "layer_p.h"
#include "opaque_p.h"
#include "priority_index_p.h"

namespace exojit::dpf {

namespace detail {
// The engine whose mutex this thread holds while it runs the generated code (demux_slow): the
// code's RECORDED lookups and recording accepts go on only then (else the code answers
// kNeedsMutex, codegen.h).
inline thread_local const void* t_locked = nullptr;
}  // namespace detail

// (Only engine.cpp and engine_demux.cpp include this header; both work in detail's terms.)
using namespace detail;

struct Engine::Impl {
  // Where a filter lives: merged into a layer's trie, run as a classic-BPF program beside the
  // tries (opaque.h), or nowhere (it accepts no packet).
  enum class Form : uint8_t { Trie, Opaque, Empty };
  struct Record {
    Form form = Form::Trie;
    uint32_t owner = 0;
    uint64_t share = 0;
    bool trusted = false;
    std::vector<Canonical> disjuncts;
    std::vector<std::pair<Node*, uint64_t>> accepts;  // where each disjunct ends, its key
    bool in_recent = false;
    size_t atoms = 0;
    bool uniform = true;              // every disjunct has the same specificity
    unsigned opaque_specificity = 0;  // Opaque: bpf_specificity of its program
  };
  struct Owner {
    OwnerLimits limits;
    bool custom = false;
    size_t filters = 0, atoms = 0;
  };

  EngineOptions options;
  CodegenOptions codegen;
  // Serializes writers, and the out-of-line demux with them (engine.h). The lock-free demux
  // reads only the published entry, the code and its tables.
  mutable std::mutex mutex;
  LiveTables live;  // quarantine of slots emptied in published tables
  Retired retired;  // code and tables the change in progress replaced
  // A layered engine's entry (compile_entry), built with the view; empty otherwise.
  vcode::Code layered_entry;
  // Replaced by earlier changes, each freed once its grace period is done (polled at each
  // publication: a writer does not wait for readers unless kMaxPending are waiting).
  std::deque<std::pair<grace::GracePeriod, Retired>> pending;
  static constexpr size_t kMaxPending = 32;
  Layer base, recent;
  // The priority of each filter whose disjuncts share one specificity (a table hit's answer is
  // its id alone): read by the lock-free demux beside opaque filters, and by exact().
  PriorityIndex priorities;
  OpaqueSet opaque;
  std::set<FilterId> opaque_ids;  // the Opaque records (the overlap check looks at them all)
  std::map<FilterId, Record> filters;
  std::unordered_map<uint32_t, Owner> owners;
  FilterId next_id = 1;
  size_t regenerations = 0;
  size_t table_updates = 0;
  size_t merges = 0;
  size_t instructions = 0;
  mutable size_t overlap_checks = 0;
  size_t stateful_filters = 0;
  size_t untrusted_filters = 0;  // while nonzero, code is generated hardened (codegen.harden)
  std::unordered_set<FilterId> recording;  // ids with a RECORD atom
  TableLog log;

  // Stateful atoms. `assume` makes every RECORDED lookup hold (the second pass over a packet no
  // filter accepts: would one accept it once its values are remembered?); `misses` counts the
  // lookups that failed, so that the second pass runs only when one did.
  FragmentState state;
  std::vector<Released> released;
  std::function<uint64_t()> clock = [] {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
  };
  mutable uint64_t now_cache = 0;
  mutable bool now_valid = false;
  mutable bool assume = false;
  mutable size_t misses = 0;
  size_t locked_demuxes = 0;
  // What the published ReaderView mirrors (functions, masks, the recent layer's guard, opaque
  // programs) changed since it was built: the next publication builds a new one.
  bool view_stale = true;

  explicit Impl(const EngineOptions& o);

  void init_layer(Layer& l) {
    l.trie.recorded = &Impl::recorded_fn;
    l.trie.recorded_state = this;
  }

  uint64_t now() const {
    if (!now_valid) now_cache = clock(), now_valid = true;
    return now_cache;
  }

  // The lookup RECORDED atoms call from the generated code (codegen.h): without the engine's
  // mutex (a lock-free demux) it reads nothing of the engine and answers 2, "needs the mutex";
  // id 0 asks only that (a recording filter's accept).
  static uint64_t code_recorded_fn(const void* state, uint64_t id, uint64_t value);

  // The lookup RECORDED atoms call (the trie walk, and the code under the mutex).
  static uint64_t recorded_fn(const void* state, uint64_t id, uint64_t value);

  // --- owners ----------------------------------------------------------------------------

  const OwnerLimits& limits_of(uint32_t owner) const;

  // One more filter of rec's size within its owner's limits?
  void check_limits(const Record& rec) const;

  // The rules an insertion must pass before anything changes (engine.h).
  void check_rights(const Record& rec, FilterId id, bool broad) const;

  // An opaque filter proves nothing about the packets it takes: it overlaps every filter that
  // may accept a packet (all but those that accept none). So does every filter overlap it.
  bool shares_with(const Record& rec, const Record& other) const;
  [[noreturn]] void refuse_opaque_overlap(FilterId id, FilterId other_id, const Record& other,
                                          bool new_is_opaque) const;
  void check_opaque_overlaps(const Record& rec, FilterId id) const;

  // The rules an opaque insertion must pass (an opaque filter is broad, and overlaps all).
  void check_opaque_rights(const Record& rec, FilterId id, bool broad) const;

  // Refuses `c` if a filter of another owner without the same sharing group may overlap it.
  void check_overlaps(const Layer& l, const Canonical& c, const Record& rec, FilterId id) const;

  // The id an insertion gets (checked, nothing changed yet).
  FilterId choose_id(const InsertOptions& o) const;

  // Records an inserted filter and charges its owner (nothing here throws but bad_alloc).
  void commit(Record&& rec, FilterId id);

  // A record of canonical disjuncts (throws on a malformed filter, nothing changed).
  static Record canonical_record(std::span<const Filter> disjuncts, const InsertOptions& o);

  // Inserts a canonical record into the layers (throws with nothing changed).
  FilterId insert_record(Record&& rec, const InsertOptions& o);

  // --- layers -----------------------------------------------------------------------------

  void undo(Layer& l, Record& rec);

  // Inserts rec's disjuncts into `l`: served by the running code (tables written): Done; or,
  // with `regen`, by new code for the layer: Done. Without `regen`, nothing changes and the
  // result says why the code would have to change (TableFull: only tables are too full). A
  // recording filter always needs new code (its accepts ask for the mutex, codegen.h).
  Patch place(Layer& l, Record& rec, FilterId id, bool regen);

  // The whole regenerated with everything in it: the recent layer's filters (and `extra`, not
  // yet in `filters`) merged into the base trie, `recent` emptied. Throws with nothing changed
  // (the accepts added to the base trie are taken back; killed ones are pruned only once the
  // new code is in).
  void merge(Record* extra, FilterId extra_id);

  bool layered() const { return !recent.empty() || !base.dead.empty(); }

  void generate_layer(Layer& l);

  bool over_budget() const;

  // After a committed change: merge when the recent layer grew too large. A merge that fails
  // (out of memory) leaves the layers as they are, which demux serves correctly.
  void maybe_merge();

  // --- demux ------------------------------------------------------------------------------

  // Does canonical disjunct `c` accept the packet? (RECORDED as the state says, or `assume`d.)
  // *record gets RECORD's value, *waits the values RECORDED atoms test.
  bool accepts(const Canonical& c, const uint8_t* pkt, size_t len, uint64_t* record,
               std::vector<uint64_t>* waits) const;

  // Layer `l`'s answer for the packet: its code's, or its walk's when the code returned a
  // removed filter's id. Reads only the layer (what a reader of a published layer would hold).
  uint64_t layer_key(const Layer& l, const uint8_t* pkt, size_t len) const;

  // The full priority key of an answer of layer `l` (a table hit returns the id alone): from
  // the layer's priorities, or its walk when the id's disjuncts differ in specificity.
  uint64_t exact(const Layer& l, uint64_t k, const uint8_t* pkt, size_t len) const;

  void note_in(Layer& l, const Record& r, FilterId id);

  // The best priority key over the layers and the opaque filters: the winner rule across
  // functions. Only the id of the result counts (its low half).
  uint64_t best_key(const uint8_t* pkt, size_t len) const;

  // The layers' best (kNoFilter: none); with `full` its whole priority key, else only its id is
  // sure (a table hit returns the id alone).
  uint64_t layers_key(const uint8_t* pkt, size_t len, bool full) const;

  // Filter `id` won the packet: its RECORD value is remembered, and the held packets waiting for
  // it that a filter accepts now are released (which may remember more values).
  void record(FilterId id, const uint8_t* pkt, size_t len);

  // No filter accepts the packet, but filter `id` would once its RECORDED values are
  // remembered: held, charged to id's owner.
  void hold(FilterId id, const uint8_t* pkt, size_t len);
};

}  // namespace exojit::dpf
