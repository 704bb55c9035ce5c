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

#include <algorithm>
#include <cmath>
#include <mutex>

#include "engine_impl_p.h"
#include "exojit/dpf/lift.h"
#include "exojit/dpf/pcap.h"
#include "exojit/error.h"
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

Engine::Impl::Impl(const EngineOptions& o) : options(o), state(o.record_capacity) {
  codegen.strict_alignment = o.strict_alignment;
  codegen.packet_alignment = o.packet_alignment;
  codegen.recorded = &Impl::code_recorded_fn;
  codegen.recorded_state = this;
  codegen.recording = &recording;
  init_layer(base);
  init_layer(recent);
}

const OwnerLimits& Engine::Impl::limits_of(uint32_t owner) const {
  auto it = owners.find(owner);
  return it != owners.end() && it->second.custom ? it->second.limits : options.owner_limits;
}

void Engine::Impl::check_limits(const Record& rec) const {
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

void Engine::Impl::check_rights(const Record& rec, FilterId id, bool broad) const {
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

bool Engine::Impl::shares_with(const Record& rec, const Record& other) const {
  return other.owner == rec.owner || (rec.share != 0 && other.share == rec.share);
}

void Engine::Impl::refuse_opaque_overlap(FilterId id, FilterId other_id, const Record& other,
                                         bool new_is_opaque) const {
  fail(
      "dpf: filter {}overlaps filter {} of owner {} ({}): both must be inserted with the same "
      "sharing group to accept the same packets",
      id ? fmt::format("{} ", id) : "", other_id, other.owner,
      new_is_opaque ? "an opaque filter overlaps every filter" : "an opaque filter");
}

void Engine::Impl::check_opaque_overlaps(const Record& rec, FilterId id) const {
  for (FilterId other_id : opaque_ids) {
    const Record& other = filters.at(other_id);
    if (shares_with(rec, other)) continue;
    ++overlap_checks;
    refuse_opaque_overlap(id, other_id, other, false);
  }
}

void Engine::Impl::check_opaque_rights(const Record& rec, FilterId id, bool broad) const {
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

void Engine::Impl::check_overlaps(const Layer& l, const Canonical& c, const Record& rec,
                                  FilterId id) const {
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

FilterId Engine::Impl::choose_id(const InsertOptions& o) const {
  FilterId id = o.id ? o.id : next_id;
  if (id == 0) fail("dpf: filter ids exhausted");
  if (filters.count(id)) fail("dpf: filter id {} is taken", id);
  return id;
}

void Engine::Impl::commit(Record&& rec, FilterId id) {
  Owner& owner = owners[rec.owner];
  ++owner.filters;
  owner.atoms += rec.atoms;
  if (next_id != 0 && id >= next_id) next_id = id + 1;  // 0 after 0xffffffff: exhausted
  if (rec.form == Form::Opaque) opaque_ids.insert(id);
  if (rec.form == Form::Trie && !rec.trusted) ++untrusted_filters;  // (remove undoes it)
  filters.emplace(id, std::move(rec));
}

Engine::Impl::Record Engine::Impl::canonical_record(std::span<const Filter> disjuncts,
                                                    const InsertOptions& o) {
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

FilterId Engine::Impl::insert_record(Record&& rec, const InsertOptions& o) {
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

void Engine::Impl::undo(Layer& l, Record& rec) {
  log.undo();
  for (auto it = rec.accepts.rbegin(); it != rec.accepts.rend(); ++it)
    l.trie.erase(it->first, it->second);
  rec.accepts.clear();
}

Patch Engine::Impl::place(Layer& l, Record& rec, FilterId id, bool regen) {
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

void Engine::Impl::merge(Record* extra, FilterId extra_id) {
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

void Engine::Impl::generate_layer(Layer& l) {
  regenerate(l, codegen, &retired, &live);
  view_stale = true;
  ++regenerations;
  instructions += l.gen.instructions;
}

bool Engine::Impl::over_budget() const {
  return recent.weight + recent.dead_weight + base.dead_weight >
         recent_budget(options.layer_threshold, base.weight);
}

void Engine::Impl::maybe_merge() {
  if (!over_budget()) return;
  try {
    merge(nullptr, 0);
  } catch (...) {
  }
}

void Engine::Impl::note_in(Layer& l, const Record& r, FilterId id) {
  l.weight += r.atoms;
  if (r.uniform) {
    auto replaced = priorities.put(id, uint32_t(priority_high(r.disjuncts.front().specificity)));
    if (replaced) retired.indexes.push_back(std::move(replaced));
  }
}

Engine::Engine(EngineOptions options) : impl_(std::make_unique<Impl>(options)) {
  impl_->generate_layer(impl_->base);
  publish();
}

// No demux may run any more (the caller's promise, as for any object being destroyed).
Engine::~Engine() {
  delete static_cast<const ReaderView*>(view_.load());
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
  m.view_stale = true;
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
      m.retired.programs.push_back(m.opaque.remove(priority_key(rec.opaque_specificity, id)));
      m.opaque_ids.erase(id);
      m.view_stale = true;
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
  m.priorities.erase(id);
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
