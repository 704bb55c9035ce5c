// SPDX-License-Identifier: MIT
// The engine: canonicalise, check the owner's rights and limits and the overlaps, then serve the
// change with the running code (tables), a regeneration, or the layer of recent changes.
//
// Layers (layer.h): `base` holds the whole trie's code. While the engine is small every
// structural change regenerates it. Once it is large, a structural insertion goes to `recent`, a
// second trie whose code is regenerated alone (it is small), and a structural removal kills the
// filter's accepts in its layer (the code still returns its id, which demux masks by walking the
// trie for that packet); when `recent` and the killed filters outweigh sqrt(kMergeGrain x the
// whole), `recent` is merged into the base trie and the whole regenerated (so it is whenever a
// table of the whole needs new code anyway). n structural insertions then cost O(n sqrt n)
// generation instead of O(n^2).
#include "exojit/dpf/engine.h"

#include <exojit/vcode/code.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "exojit/dpf/lift.h"
#include "exojit/dpf/pcap.h"
#include "exojit/error.h"
#include "fragment_state_p.h"
#include "layer_p.h"
#include "opaque_p.h"
#include "ownership_p.h"

namespace exojit::dpf {

using namespace detail;

namespace {

// The layer of recent changes is merged once it (with the killed filters) outweighs
// sqrt(kMergeGrain x the whole's weight): regenerating it each time then costs about as much as
// the merges it saves (for insertions of a few atoms each; a merge costs a few times more per
// atom than a regeneration of the layer).
constexpr double kMergeGrain = 16;

// Disjuncts of one filter (the owner's atom limit bounds them too).
constexpr size_t kMaxDisjuncts = 65536;

// The engine whose mutex this thread holds while it runs the generated code (demux_slow): the
// code's RECORDED lookups and recording accepts go on only then (else the code answers
// kNeedsMutex, codegen.h).
thread_local const void* t_locked = nullptr;

// (The whole is regenerated at once while it weighs at most EngineOptions::layer_threshold: a
// few hundred microseconds at the default.)
size_t recent_budget(size_t threshold, size_t base_weight) {
  return std::max(threshold / 4, size_t(std::sqrt(kMergeGrain * double(base_weight))));
}

size_t atoms_of(const std::vector<Canonical>& ds) {
  size_t n = 0;
  for (const Canonical& c : ds) n += c.atoms.size();
  return n;
}

}  // namespace

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
  // What the published ReaderView mirrors (functions, masks, whether the engine needs one)
  // changed since it was built: the next publication builds a new one.
  bool view_stale = true;

  explicit Impl(const EngineOptions& o) : options(o), state(o.record_capacity) {
    codegen.strict_alignment = o.strict_alignment;
    codegen.packet_alignment = o.packet_alignment;
    codegen.recorded = &Impl::code_recorded_fn;
    codegen.recorded_state = this;
    codegen.recording = &recording;
    init_layer(base);
    init_layer(recent);
  }

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
  static uint64_t code_recorded_fn(const void* state, uint64_t id, uint64_t value) {
    if (t_locked != state) return 2;
    return id == 0 ? 1 : recorded_fn(state, id, value);
  }

  // The lookup RECORDED atoms call (the trie walk, and the code under the mutex).
  static uint64_t recorded_fn(const void* state, uint64_t id, uint64_t value) {
    const Impl& m = *static_cast<const Impl*>(state);
    if (m.assume) return 1;
    if (m.state.recorded(uint32_t(id), value, m.now())) return 1;
    ++m.misses;
    return 0;
  }

  // --- owners ----------------------------------------------------------------------------

  const OwnerLimits& limits_of(uint32_t owner) const {
    auto it = owners.find(owner);
    return it != owners.end() && it->second.custom ? it->second.limits : options.owner_limits;
  }

  // One more filter of rec's size within its owner's limits?
  void check_limits(const Record& rec) const {
    const OwnerLimits& lim = limits_of(rec.owner);
    auto it = owners.find(rec.owner);
    size_t have_filters = it == owners.end() ? 0 : it->second.filters;
    size_t have_atoms = it == owners.end() ? 0 : it->second.atoms;
    if (have_filters + 1 > lim.filters)
      fail("dpf: owner {} holds {} filters, its limit", rec.owner, have_filters);
    if (have_atoms + rec.atoms > lim.atoms)
      fail("dpf: owner {} would hold {} atoms, over its limit of {}", rec.owner,
           have_atoms + rec.atoms, lim.atoms);
  }

  // The rules an insertion must pass before anything changes (engine.h).
  void check_rights(const Record& rec, FilterId id, bool broad) const {
    check_limits(rec);
    for (size_t i = 0; i < rec.disjuncts.size(); ++i) {
      unsigned bits = key_bits(rec.disjuncts[i]);
      if (bits < options.min_key_bits && !broad)
        fail(
            "dpf: filter{} pins {} packet bits with == atoms, fewer than the {} a demultiplexing "
            "key needs: a broad filter needs the right to be broad (InsertOptions::broad)",
            rec.disjuncts.size() > 1 ? fmt::format(" (disjunct {})", i + 1) : "", bits,
            options.min_key_bits);
    }
    for (const Canonical& c : rec.disjuncts)
      for (const Layer* l : {&base, &recent}) check_overlaps(*l, c, rec, id);
    if (!rec.disjuncts.empty()) check_opaque_overlaps(rec, id);
  }

  // An opaque filter proves nothing about the packets it takes: it overlaps every filter that
  // may accept a packet (all but those that accept none). So does every filter overlap it.
  bool shares_with(const Record& rec, const Record& other) const {
    return other.owner == rec.owner || (rec.share != 0 && other.share == rec.share);
  }
  [[noreturn]] void refuse_opaque_overlap(FilterId id, FilterId other_id, const Record& other,
                                          bool new_is_opaque) const {
    fail(
        "dpf: filter {}overlaps filter {} of owner {} ({}): both must be inserted with the same "
        "sharing group to accept the same packets",
        id ? fmt::format("{} ", id) : "", other_id, other.owner,
        new_is_opaque ? "an opaque filter overlaps every filter" : "an opaque filter");
  }
  void check_opaque_overlaps(const Record& rec, FilterId id) const {
    for (FilterId other_id : opaque_ids) {
      const Record& other = filters.at(other_id);
      if (shares_with(rec, other)) continue;
      ++overlap_checks;
      refuse_opaque_overlap(id, other_id, other, false);
    }
  }

  // The rules an opaque insertion must pass (an opaque filter is broad, and overlaps all).
  void check_opaque_rights(const Record& rec, FilterId id, bool broad) const {
    check_limits(rec);
    if (!broad)
      fail(
          "dpf: an opaque filter (a classic-BPF program that does not lift) pins no packet bits "
          "the engine can prove: it needs the right to be broad (InsertOptions::broad)");
    for (const auto& [other_id, other] : filters) {
      if (other.form == Form::Empty || shares_with(rec, other)) continue;
      ++overlap_checks;
      refuse_opaque_overlap(id, other_id, other, true);
    }
  }

  // Refuses `c` if a filter of another owner without the same sharing group may overlap it.
  void check_overlaps(const Layer& l, const Canonical& c, const Record& rec, FilterId id) const {
    overlap_candidates(l.trie, c, [&](const Node& n, const Canonical& path) {
      for (uint64_t k : n.accepts) {
        const Record& other = filters.at(FilterId(k));
        if (other.owner == rec.owner || (rec.share != 0 && other.share == rec.share)) continue;
        ++overlap_checks;
        if (!may_overlap(c, path)) return true;  // the same path for every accept here
        Filter shown;
        shown.atoms() = path.atoms;
        fail(
            "dpf: filter {}overlaps filter {} of owner {} (`{}`); both must be inserted with the "
            "same sharing group to accept the same packets",
            id ? fmt::format("{} ", id) : "", FilterId(k), other.owner, to_string(shown));
      }
      return true;
    });
  }

  // The id an insertion gets (checked, nothing changed yet).
  FilterId choose_id(const InsertOptions& o) const {
    FilterId id = o.id ? o.id : next_id;
    if (id == 0) fail("dpf: filter ids exhausted");
    if (filters.count(id)) fail("dpf: filter id {} is taken", id);
    return id;
  }

  // Records an inserted filter and charges its owner (nothing here throws but bad_alloc).
  void commit(Record&& rec, FilterId id) {
    Owner& owner = owners[rec.owner];
    ++owner.filters;
    owner.atoms += rec.atoms;
    if (next_id != 0 && id >= next_id) next_id = id + 1;  // 0 after 0xffffffff: exhausted
    if (rec.form == Form::Opaque) opaque_ids.insert(id);
    if (rec.form == Form::Trie && !rec.trusted) ++untrusted_filters;  // (remove undoes it)
    filters.emplace(id, std::move(rec));
  }

  // A record of canonical disjuncts (throws on a malformed filter, nothing changed).
  static Record canonical_record(std::span<const Filter> disjuncts, const InsertOptions& o) {
    if (disjuncts.empty()) fail("dpf: insert of an empty disjunction");
    if (disjuncts.size() > kMaxDisjuncts)
      fail("dpf: {} disjuncts (at most {})", disjuncts.size(), kMaxDisjuncts);
    Record rec;
    rec.owner = o.owner;
    rec.share = o.share;
    rec.trusted = o.trusted;
    for (size_t i = 0; i < disjuncts.size(); ++i) {
      try {
        rec.disjuncts.push_back(canonicalize(disjuncts[i]));
      } catch (const Error& e) {
        if (disjuncts.size() == 1) throw;
        fail("disjunct {}: {}", i + 1, e.what());
      }
    }
    rec.atoms = atoms_of(rec.disjuncts);
    for (const Canonical& c : rec.disjuncts)
      rec.uniform = rec.uniform && c.specificity == rec.disjuncts.front().specificity;
    return rec;
  }

  // Inserts a canonical record into the layers (throws with nothing changed).
  FilterId insert_record(Record&& rec, const InsertOptions& o) {
    FilterId id = choose_id(o);
    check_rights(rec, o.id, o.broad);
    bool stateful = false, records = false;
    for (Canonical& c : rec.disjuncts) {
      stateful = stateful || c.records || c.recorded;
      records = records || c.records;
      for (Atom& a : c.atoms)
        if (a.kind == Atom::Kind::Recorded) a.value = id;  // a branch of its own per id
    }

    // Served by the running code, else new code: for the whole while it is small, else for the
    // layer of recent changes (merged into the whole when it has grown).
    // A table that is only too full gets new code at once: it doubles, so that costs O(1) per key.
    bool small = base.weight + recent.weight + rec.atoms <= options.layer_threshold;
    // Code generated for this insertion is hardened if the filter is untrusted (undone if it
    // throws).
    codegen.harden = untrusted_filters > 0 || !rec.trusted;
    // A recording filter's accepts are compiled to ask for the mutex (codegen.h): its id is in
    // `recording` while its code is generated (undone if it throws; place() gives it new code).
    if (records) recording.insert(id);
    struct Undo {
      Impl& m;
      FilterId recording;
      bool armed = true;
      ~Undo() {
        if (!armed) return;
        m.codegen.harden = m.untrusted_filters > 0;
        if (recording) m.recording.erase(recording);
      }
    } undo_on_throw{*this, records ? id : 0};
    Patch p = place(base, rec, id, false);
    if (p == Patch::Done) {
      note_in(base, rec, id);
    } else if (p == Patch::TableFull || small) {
      merge(&rec, id);  // the whole regenerated (the recent layer merged in); sets rec.accepts
    } else {
      place(recent, rec, id, true);
      note_in(recent, rec, id);
      rec.in_recent = true;
    }
    // Committed: nothing below throws (but a merge, which catches its own failure).
    commit(std::move(rec), id);
    undo_on_throw.armed = false;
    if (stateful) ++stateful_filters;
    maybe_merge();
    return id;
  }

  // --- layers -----------------------------------------------------------------------------

  void undo(Layer& l, Record& rec) {
    log.undo();
    for (auto it = rec.accepts.rbegin(); it != rec.accepts.rend(); ++it)
      l.trie.erase(it->first, it->second);
    rec.accepts.clear();
  }

  // Inserts rec's disjuncts into `l`: served by the running code (tables written): Done; or,
  // with `regen`, by new code for the layer: Done. Without `regen`, nothing changes and the
  // result says why the code would have to change (TableFull: only tables are too full). A
  // recording filter always needs new code (its accepts ask for the mutex, codegen.h).
  Patch place(Layer& l, Record& rec, FilterId id, bool regen) {
    log.clear();
    rec.accepts.clear();
    try {
      Patch worst = recording.count(id) ? Patch::NewCode : Patch::Done;
      for (const Canonical& c : rec.disjuncts) {
        uint64_t key = priority_key(c.specificity, id);
        Node* leaf = nullptr;
        if (worst == Patch::NewCode)
          leaf = l.trie.insert(c, key).leaf;
        else
          worst = std::max(worst, insert_patched(l, c, key, !rec.trusted, &leaf, &log));
        rec.accepts.emplace_back(leaf, key);
      }
      if (worst == Patch::Done) {
        ++table_updates;
        return Patch::Done;
      }
      if (!regen) {
        undo(l, rec);
        return worst;
      }
      generate_layer(l);
      return Patch::Done;
    } catch (...) {
      undo(l, rec);
      throw;
    }
  }

  // The whole regenerated with everything in it: the recent layer's filters (and `extra`, not
  // yet in `filters`) merged into the base trie, `recent` emptied. Throws with nothing changed
  // (the accepts added to the base trie are taken back; killed ones are pruned only once the
  // new code is in).
  void merge(Record* extra, FilterId extra_id) {
    std::vector<std::pair<Record*, FilterId>> moving;
    for (auto& [id, r] : filters)
      if (r.in_recent) moving.emplace_back(&r, id);
    if (extra) moving.emplace_back(extra, extra_id);
    std::vector<std::vector<std::pair<Node*, uint64_t>>> placed;
    try {
      for (auto& [r, id] : moving) {
        placed.emplace_back();
        for (const Canonical& c : r->disjuncts) {
          uint64_t key = priority_key(c.specificity, id);
          placed.back().emplace_back(base.trie.insert(c, key).leaf, key);
        }
      }
      generate_layer(base);
    } catch (...) {
      for (auto p = placed.rbegin(); p != placed.rend(); ++p)
        for (auto a = p->rbegin(); a != p->rend(); ++a) base.trie.erase(a->first, a->second);
      throw;
    }
    for (size_t i = 0; i < moving.size(); ++i) {
      auto [r, id] = moving[i];
      r->accepts = std::move(placed[i]);
      r->in_recent = false;
      note_in(base, *r, id);
    }
    retired.take(recent);
    recent = Layer();
    init_layer(recent);
    ++merges;
    view_stale = true;
  }

  bool layered() const { return !recent.empty() || !base.dead.empty(); }

  void generate_layer(Layer& l) {
    regenerate(l, codegen, &retired, &live);
    view_stale = true;
    ++regenerations;
    instructions += l.gen.instructions;
  }

  bool over_budget() const {
    return recent.weight + recent.dead_weight + base.dead_weight >
           recent_budget(options.layer_threshold, base.weight);
  }

  // After a committed change: merge when the recent layer grew too large. A merge that fails
  // (out of memory) leaves the layers as they are, which demux serves correctly.
  void maybe_merge() {
    if (!over_budget()) return;
    try {
      merge(nullptr, 0);
    } catch (...) {
    }
  }

  // --- demux ------------------------------------------------------------------------------

  // Does canonical disjunct `c` accept the packet? (RECORDED as the state says, or `assume`d.)
  // *record gets RECORD's value, *waits the values RECORDED atoms test.
  bool accepts(const Canonical& c, const uint8_t* pkt, size_t len, uint64_t* record,
               std::vector<uint64_t>* waits) const {
    return detail::accepts(c.atoms, pkt, len, record, [&](const Atom& a, uint64_t v) {
      if (waits) waits->push_back(v);
      return recorded_fn(this, a.value, v) != 0;
    });
  }

  // Layer `l`'s answer for the packet: its code's, or its walk's when the code returned a
  // removed filter's id. Reads only the layer (what a reader of a published layer would hold).
  uint64_t layer_key(const Layer& l, const uint8_t* pkt, size_t len) const {
    uint64_t k = l.fn(pkt, len);
    assert(k != kNeedsMutex);  // the caller holds the mutex (demux_slow)
    FilterId id = FilterId(k);
    if (id == 0) return kNoFilter;
    if (!l.dead.empty() && l.dead.count(id)) return l.trie.walk(pkt, len);
    return k;
  }

  // The full priority key of an answer of layer `l` (a table hit returns the id alone): from
  // the layer's priorities, or its walk when the id's disjuncts differ in specificity.
  uint64_t exact(const Layer& l, uint64_t k, const uint8_t* pkt, size_t len) const {
    if (k >> 32 != 0) return k;
    auto it = l.uniform_high.find(FilterId(k));
    return it != l.uniform_high.end() ? it->second << 32 | uint32_t(k) : l.trie.walk(pkt, len);
  }

  void note_in(Layer& l, const Record& r, FilterId id) {
    l.weight += r.atoms;
    if (r.uniform) l.uniform_high[id] = priority_high(r.disjuncts.front().specificity);
  }

  // The best priority key over the layers and the opaque filters: the winner rule across
  // functions. Only the id of the result counts (its low half).
  uint64_t best_key(const uint8_t* pkt, size_t len) const {
    uint64_t k = layers_key(pkt, len, false);
    if (opaque.empty()) return k;
    // A whole key (or none): the opaque filters that could beat it run, best first.
    if (k >> 32 != 0) return opaque.best_key(pkt, len, k);
    // A table hit gives the id alone, and its priority is a lookup (a cache miss in a large
    // engine): needed only when an opaque filter accepts the packet, which is rare.
    uint64_t o = opaque.best_key(pkt, len, kNoFilter);
    if (uint32_t(o) == 0) return k;
    return std::min(o, layers_key(pkt, len, true));
  }

  // The layers' best (kNoFilter: none); with `full` its whole priority key, else only its id is
  // sure (a table hit returns the id alone).
  uint64_t layers_key(const uint8_t* pkt, size_t len, bool full) const {
    uint64_t k = layer_key(base, pkt, len);
    uint64_t r = recent.empty() ? kNoFilter : layer_key(recent, pkt, len);
    if (uint32_t(r) == 0) return full && uint32_t(k) ? exact(base, k, pkt, len) : k;
    if (uint32_t(k) == 0) return full ? exact(recent, r, pkt, len) : r;
    return std::min(exact(base, k, pkt, len), exact(recent, r, pkt, len));
  }

  // Filter `id` won the packet: its RECORD value is remembered, and the held packets waiting for
  // it that a filter accepts now are released (which may remember more values).
  void record(FilterId id, const uint8_t* pkt, size_t len) {
    std::vector<std::pair<FilterId, uint64_t>> work;
    auto remember = [&](FilterId fid, const uint8_t* p, size_t n) {
      for (const Canonical& c : filters.at(fid).disjuncts) {
        uint64_t value = 0;
        if (!c.records || !accepts(c, p, n, &value, nullptr)) continue;
        state.remember(fid, value, now() + options.record_lifetime_ns);
        work.emplace_back(fid, value);
        return;
      }
    };
    remember(id, pkt, len);
    while (!work.empty()) {
      auto [fid, value] = work.back();
      work.pop_back();
      uint32_t owner = filters.at(fid).owner;
      for (FragmentState::Held& h : state.take_waiting(owner, fid, value, now())) {
        FilterId winner = FilterId(best_key(h.packet.data(), h.packet.size()));
        if (winner == 0) {
          state.put_back(owner, std::move(h));
          continue;
        }
        if (recording.count(winner)) remember(winner, h.packet.data(), h.packet.size());
        released.push_back(Released{winner, std::move(h.packet)});
      }
    }
  }

  // No filter accepts the packet, but filter `id` would once its RECORDED values are
  // remembered: held, charged to id's owner.
  void hold(FilterId id, const uint8_t* pkt, size_t len) {
    const Record& r = filters.at(id);
    assume = true;
    std::vector<uint64_t> waits;
    for (const Canonical& c : r.disjuncts) {
      waits.clear();
      if (c.recorded && accepts(c, pkt, len, nullptr, &waits)) break;
      waits.clear();
    }
    assume = false;
    if (waits.empty()) return;
    state.hold(r.owner,
               FragmentState::Held{id, std::move(waits), now() + options.record_lifetime_ns,
                                   std::vector<uint8_t>(pkt, pkt + len)},
               limits_of(r.owner), now());
  }
};

static_assert(Engine::kOutOfLine == kNeedsMutex);

// What demux calls while the engine is layered or has opaque filters: the answer is out of line.
uint64_t Engine::out_of_line_entry(const uint8_t*, uint64_t) {
  return kOutOfLine;
}

Engine::Engine(EngineOptions options) : impl_(std::make_unique<Impl>(options)) {
  impl_->generate_layer(impl_->base);
  publish();
}

// No demux may run any more (the caller's promise, as for any object being destroyed).
Engine::~Engine() {
  delete static_cast<const ReaderView*>(view_.load());
}

// Publishes what demux runs (called with the mutex held, at the end of every change, also one
// that throws); what the change replaced is freed once no demux can be inside it.
void Engine::publish() {
  Impl& m = *impl_;
  // The view first, new when what it mirrors changed (the old one retired): a reader that loads
  // the entry finds a view at least as new. Every state without opaque filters has one (also
  // unlayered, where its entry is the main function), so that a reader that loaded a layered
  // engine's entry just before the change finds a view, an older or this one.
  const bool want_view = m.opaque.empty();
  auto view_now = [&] { return ReaderView::of(m.base, m.recent); };
  auto* old = static_cast<const ReaderView*>(view_.load(std::memory_order_relaxed));
  assert(!old || !want_view || m.view_stale || *old == *view_now());
  if (m.view_stale || want_view != (old != nullptr)) {
    std::unique_ptr<ReaderView> view = want_view ? view_now() : nullptr;
    view_.store(view.release(), std::memory_order_release);
    if (old) m.retired.views.emplace_back(const_cast<ReaderView*>(old));
    m.view_stale = false;
    if (!m.layered_entry.empty()) m.retired.code.push_back(std::move(m.layered_entry));
    m.layered_entry = vcode::Code();
  }
  // A layered engine's entry: the view compiled, built with it (if that fails, the out-of-line
  // entry sends demux to the view itself). Opaque filters run in demux_slow, under the mutex:
  // their programs are freed when removed. A stateful engine's code answers kNeedsMutex itself
  // where the answer needs the state.
  DemuxFn* entry = m.base.fn;
  if (m.layered() && want_view) {
    try {
      if (m.layered_entry.empty())
        m.layered_entry =
            compile_entry(*static_cast<const ReaderView*>(view_.load()), m.codegen.harden);
      entry = m.layered_entry.as<DemuxFn>("dpf_layers");
    } catch (...) {
      m.layered_entry = vcode::Code();
      entry = &out_of_line_entry;
    }
  } else if (m.layered() || !want_view) {
    entry = &out_of_line_entry;
  }
  entry_.store(entry, std::memory_order_release);
  if (!m.retired.empty()) m.pending.emplace_back(grace::GracePeriod::start(), std::move(m.retired));
  m.retired.clear();
  while (!m.pending.empty() &&
         (m.pending.front().first.done() || m.pending.size() > Impl::kMaxPending)) {
    m.pending.front().first.wait();
    m.pending.pop_front();
  }
}

namespace {
// Publishes at the end of a change, whether it completes or throws.
template <typename F>
struct AtExit {
  F f;
  ~AtExit() { f(); }
};
template <typename F>
AtExit(F) -> AtExit<F>;
}  // namespace

FilterId Engine::insert(const Filter& f, InsertOptions o) {
  return insert(std::span<const Filter>(&f, 1), o);
}

FilterId Engine::insert(std::span<const Filter> disjuncts, InsertOptions o) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  AtExit published{[this] { publish(); }};
  return m.insert_record(Impl::canonical_record(disjuncts, o), o);
}

FilterId Engine::insert_bpf(std::span<const BpfInsn> program, InsertOptions o) {
  return insert_program(program, lift_bpf(program), o);  // lift_bpf validates
}

FilterId Engine::insert(const PcapFilter& f, InsertOptions o) {
  try {
    return insert_program(f.program, f.lifted, o);
  } catch (const Error& e) {
    fail("pcap filter `{}`: {}", f.expression, e.what());
  }
}

FilterId Engine::insert_program(std::span<const BpfInsn> program, const Lifted& lifted,
                                InsertOptions o) {
  Impl& m = *impl_;
  // (The lift keeps a program whole when the engine would refuse a path of it: lift.h.)
  if (!lifted.opaque && !lifted.disjuncts.empty())
    return insert(std::span<const Filter>(lifted.disjuncts), o);
  std::lock_guard lock(m.mutex);
  AtExit published{[this] { publish(); }};
  Impl::Record rec;
  rec.owner = o.owner;
  rec.share = o.share;
  rec.trusted = o.trusted;
  FilterId id = m.choose_id(o);
  if (!lifted.opaque && lifted.disjuncts.empty()) {  // accepts no packet: overlaps nothing
    rec.form = Impl::Form::Empty;
    m.check_limits(rec);
    m.commit(std::move(rec), id);
    return id;
  }
  rec.form = Impl::Form::Opaque;
  rec.atoms = program.size();  // the code it adds is linear in its instructions
  rec.opaque_specificity = bpf_specificity(program);
  m.check_opaque_rights(rec, o.id, o.broad);
  BpfFilter compiled = compile_bpf(program, BpfCompileOptions{.trusted = o.trusted});
  m.opaque.add(priority_key(rec.opaque_specificity, id), std::move(compiled));
  m.commit(std::move(rec), id);
  return id;
}

void Engine::remove(FilterId id, uint32_t owner) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  AtExit published{[this] { publish(); }};
  auto it = m.filters.find(id);
  // The same answer for a filter of another owner as for none: ids reveal nothing.
  if (it == m.filters.end() || it->second.owner != owner)
    fail("dpf: owner {} has no filter {}", owner, id);
  Impl::Record& rec = it->second;
  if (rec.form != Impl::Form::Trie) {  // not in a layer: nothing to regenerate
    if (rec.form == Impl::Form::Opaque) {
      m.opaque.remove(priority_key(rec.opaque_specificity, id));
      m.opaque_ids.erase(id);
    }
    Impl::Owner& o = m.owners[owner];
    --o.filters;
    o.atoms -= rec.atoms;
    m.filters.erase(it);
    return;
  }
  Layer& l = rec.in_recent ? m.recent : m.base;
  m.log.clear();
  bool killed = false;
  for (auto& [leaf, key] : rec.accepts)
    if (!remove_patched(l, leaf, key, &m.log)) {
      kill(l, leaf, key, 0);
      killed = true;
    }
  l.weight -= rec.atoms;
  l.uniform_high.erase(id);
  if (killed)
    l.dead_weight += rec.atoms;
  else
    ++m.table_updates;
  bool stateful = false;
  for (const Canonical& c : rec.disjuncts) stateful = stateful || c.records || c.recorded;
  if (stateful) --m.stateful_filters;
  m.recording.erase(id);
  m.view_stale = true;  // masks, the layers' emptiness
  m.state.drop(owner, id);
  Impl::Owner& o = m.owners[owner];
  --o.filters;
  o.atoms -= rec.atoms;
  if (!rec.trusted) --m.untrusted_filters;
  m.codegen.harden = m.untrusted_filters > 0;  // the next code; the running code stays as it is
  m.filters.erase(it);
  // Killed accepts are masked until new code: at once for a small whole and for the recent
  // layer, at the next merge otherwise. (A failed regeneration leaves them masked: correct.)
  if (killed) {
    bool small = m.base.weight + m.recent.weight <= m.options.layer_threshold;
    try {
      if (small)
        m.merge(nullptr, 0);
      else if (&l == &m.recent)
        m.generate_layer(l);
    } catch (...) {
    }
    m.maybe_merge();
  }
}

void Engine::set_owner_limits(uint32_t owner, OwnerLimits limits) {
  std::lock_guard lock(impl_->mutex);
  Impl::Owner& o = impl_->owners[owner];
  o.limits = limits;
  o.custom = true;
}

OwnerUsage Engine::usage(uint32_t owner) const {
  const Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  OwnerUsage u;
  if (auto it = m.owners.find(owner); it != m.owners.end())
    u.filters = it->second.filters, u.atoms = it->second.atoms;
  u.held_packets = m.state.held_packets(owner);
  u.held_bytes = m.state.held_bytes(owner);
  return u;
}

uint32_t Engine::owner_of(FilterId id) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->filters.find(id);
  if (it == impl_->filters.end()) fail("dpf: unknown filter id {}", id);
  return it->second.owner;
}

// The answer without the mutex, if it needs none, once the entry `ran` answered kNeedsMutex
// (inside a read section): the main function's answer needs the fragment state; the out-of-line
// entry's, a layered engine's view (kNeedsMutex from its layers, a masked id or both layers
// answering need the mutex) or, with opaque filters, the mutex.
inline bool Engine::view_answer(DemuxFn* ran, const uint8_t* pkt, size_t len, FilterId* id) const {
  if (ran != &out_of_line_entry) return false;
  auto* v = static_cast<const ReaderView*>(view_.load(std::memory_order_acquire));
  return v && v->answer(pkt, len, id);
}

// demux's other cases: the thread's first section or a nested one, a layered engine's view
// (lock-free unless the answer needs the walk or the fragment state), the mutex.
FilterId Engine::demux_out_of_line(DemuxFn* ran, const uint8_t* pkt, size_t len) {
  FilterId id = 0;
  bool answered;
  if (ran) {  // it answered kOutOfLine in the section demux entered
    answered = view_answer(ran, pkt, len, &id);
    grace::leave();
  } else {
    grace::ReadSection section;  // the code, tables and view stay while it runs
    DemuxFn* fn = section.load(entry_);
    uint64_t k = fn(pkt, len);
    answered = k != kNeedsMutex ? (id = FilterId(k), true) : view_answer(fn, pkt, len, &id);
  }
  return answered ? id : demux_slow(pkt, len);  // outside the section: a writer may wait for it
}

FilterId Engine::demux_slow(const uint8_t* pkt, size_t len) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  // The code's RECORDED lookups and recording accepts go on (t_locked).
  struct Locked {
    const void* outer = t_locked;
    explicit Locked(const void* engine) { t_locked = engine; }
    ~Locked() { t_locked = outer; }
  } locked(&m);
  ++m.locked_demuxes;
  m.now_valid = false;
  m.misses = 0;
  FilterId id = FilterId(m.best_key(pkt, len));
  if (m.stateful_filters == 0) return id;
  if (id != 0) {
    if (m.recording.count(id)) m.record(id, pkt, len);
    return id;
  }
  if (m.misses == 0) return 0;  // no RECORDED lookup failed: nothing to hold
  m.assume = true;
  FilterId would = FilterId(m.best_key(pkt, len));
  m.assume = false;
  if (would != 0) m.hold(would, pkt, len);
  return 0;
}

std::vector<Released> Engine::take_released() {
  std::lock_guard lock(impl_->mutex);
  return std::exchange(impl_->released, {});
}

void Engine::set_clock(std::function<uint64_t()> now_ns) {
  std::lock_guard lock(impl_->mutex);
  impl_->clock = std::move(now_ns);
}

FilterId Engine::demux_reference(const uint8_t* pkt, size_t len) const {
  const Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  m.now_valid = false;
  uint64_t k = m.base.trie.walk(pkt, len);
  if (!m.recent.empty()) k = std::min(k, m.recent.trie.walk(pkt, len));
  if (!m.opaque.empty()) k = m.opaque.best_key(pkt, len, k);
  return FilterId(k);
}

std::vector<FilterId> Engine::accepting(const uint8_t* pkt, size_t len) const {
  const Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  m.now_valid = false;
  std::vector<uint64_t> keys;
  m.base.trie.walk_all(pkt, len, &keys);
  m.recent.trie.walk_all(pkt, len, &keys);
  m.opaque.accepting(pkt, len, &keys);
  std::vector<FilterId> ids;
  for (uint64_t k : keys) ids.push_back(FilterId(k));
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<unsigned> Engine::specificity(FilterId id) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->filters.find(id);
  if (it == impl_->filters.end()) fail("dpf: unknown filter id {}", id);
  if (it->second.form == Impl::Form::Opaque) return {it->second.opaque_specificity};
  std::vector<unsigned> out;
  for (const Canonical& c : it->second.disjuncts) out.push_back(c.specificity);
  return out;
}

bool Engine::opaque(FilterId id) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->filters.find(id);
  if (it == impl_->filters.end()) fail("dpf: unknown filter id {}", id);
  return it->second.form == Impl::Form::Opaque;
}

size_t Engine::size() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->filters.size();
}
size_t Engine::regenerations() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->regenerations;
}
size_t Engine::table_updates() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->table_updates;
}
EngineStats Engine::stats() const {
  const Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  EngineStats s;
  s.regenerations = m.regenerations;
  s.merges = m.merges;
  s.table_updates = m.table_updates;
  s.instructions_generated = m.instructions;
  s.overlap_checks = m.overlap_checks;
  s.held_evicted = m.state.evicted();
  s.opaque_filters = m.opaque.size();
  s.locked_demuxes = m.locked_demuxes;
  return s;
}
bool Engine::layered() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->layered();
}
Engine::DemuxFn* Engine::function() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->base.fn;
}
// (Like function(): valid until the next change.)
const vcode::Module& Engine::module() const {
  return impl_->base.gen.module;
}
const vcode::Code& Engine::code() const {
  return impl_->base.code;
}
const vcode::Module& Engine::recent_module() const {
  return impl_->recent.gen.module;
}
std::string Engine::dump_trie() const {
  const Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  std::string out = m.base.trie.dump();
  if (!m.recent.empty()) out += "recent changes (a second function):\n" + m.recent.trie.dump();
  return out + m.opaque.dump();
}

}  // namespace exojit::dpf
