// The engine: canonicalise, check ownership, merge into the trie, then either write a hash
// table (the code stays) or regenerate and compile the demultiplexer.
#include "exojit/dpf/engine.h"

#include <exojit/vcode/code.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>

#include "codegen.h"
#include "exojit/error.h"
#include "overlap.h"
#include "trie.h"

namespace exojit::dpf {

using namespace detail;

struct Engine::Impl {
  struct Record {
    uint32_t owner;
    std::vector<Canonical> disjuncts;
    std::vector<std::pair<Node*, uint64_t>> accepts;  // where each disjunct ends, its key
  };
  EngineOptions options;
  Trie trie;
  // Stateful atoms: remembered values per filter id, held packets, the clock.
  struct Remembered {
    uint64_t value, expiry;
  };
  struct Held {
    FilterId id;
    uint64_t value, expiry;
    std::vector<uint8_t> packet;
  };
  std::map<FilterId, std::deque<Remembered>> remembered;
  std::deque<Held> held;
  std::vector<Released> released;
  std::function<uint64_t()> clock = [] {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
  };
  uint64_t now = 0;
  size_t stateful_filters = 0;

  // The lookup RECORDED atoms call (from the generated code and the trie walk).
  static uint64_t recorded_fn(const void* state, uint64_t id, uint64_t value) {
    const Impl& m = *static_cast<const Impl*>(state);
    auto it = m.remembered.find(FilterId(id));
    if (it == m.remembered.end()) return 0;
    for (const Remembered& r : it->second)
      if (r.value == value && r.expiry > m.now) return 1;
    return 0;
  }

  // Evaluates a canonical disjunct on its own; RECORDED atoms hold when remembered (or, with
  // `assume`, always: the value is returned in *recorded). *record gets RECORD's value.
  bool evaluate_stateful(const Canonical& c, FilterId id, const uint8_t* pkt, size_t len,
                         bool assume, uint64_t* record, bool* has_record, uint64_t* recorded) {
    const uint8_t* base = pkt;
    size_t avail = len;
    *has_record = false;
    for (const Atom& a : c.atoms) {
      uint64_t v;
      if (!detail::evaluate(a.expr, base, avail, &v)) return false;
      switch (a.kind) {
        case Atom::Kind::Shift:
          if (v > avail) return false;
          base += v, avail -= v;
          break;
        case Atom::Kind::Compare: {
          bool ok = a.cmp == Cmp::Eq   ? v == a.value
                    : a.cmp == Cmp::Ne ? v != a.value
                    : a.cmp == Cmp::Lt ? v < a.value
                    : a.cmp == Cmp::Le ? v <= a.value
                    : a.cmp == Cmp::Gt ? v > a.value
                                       : v >= a.value;
          if (!ok) return false;
          break;
        }
        case Atom::Kind::Record:
          *record = v, *has_record = true;
          break;
        case Atom::Kind::Recorded:
          *recorded = v;
          if (!assume && !recorded_fn(this, id, v)) return false;
          break;
      }
    }
    return true;
  }

  static bool has_kind(const Canonical& c, Atom::Kind k) {
    return std::any_of(c.atoms.begin(), c.atoms.end(), [&](const Atom& a) { return a.kind == k; });
  }

  void expire() {
    for (auto it = remembered.begin(); it != remembered.end();) {
      while (!it->second.empty() && it->second.front().expiry <= now) it->second.pop_front();
      it = it->second.empty() ? remembered.erase(it) : std::next(it);
    }
    while (!held.empty() && held.front().expiry <= now) held.pop_front();
  }
  std::map<FilterId, Record> filters;
  FilterId next_id = 1;
  Generated generated;
  vcode::Code code;
  size_t regenerations = 0;
  size_t table_updates = 0;

  // The hash node whose table holds the subtree of `n` (n's nearest hashed ancestor), if any.
  static HashNode* hashed_ancestor(Node* n) {
    for (; n && n->parent; n = n->parent->parent)
      if (n->parent->hash) return n->parent->hash;
    return nullptr;
  }

  // After an insertion: can the running code serve it by writing a table? (else regenerate)
  static bool patch_insert(const Change& c, uint64_t previous_best) {
    if (HashNode* h = hashed_ancestor(c.leaf)) return h->insert(*c.leaf);
    // Outside hash tables: only an accept added where one was already, the code unchanged.
    return c.only_accept && c.leaf->best_accept() == previous_best;
  }

  // After a removal: the surviving node nearest to what went is `c.leaf` (only an accept went)
  // or the branch that lost a key.
  static bool patch_erase(const Change& c, uint64_t previous_best) {
    Node* anchor = c.branch ? c.branch->parent : c.only_accept ? c.leaf : nullptr;
    if (!anchor) return false;  // a whole path went up to the root: the code changes
    HashNode* h = c.branch && c.branch->hash ? c.branch->hash : hashed_ancestor(anchor);
    if (h) return h->rebuild();
    return c.only_accept && c.leaf->best_accept() == previous_best;
  }

  void clear_hash(Node& n) {
    for (auto& b : n.branches) {
      b->hash = nullptr;
      for (auto& [k, child] : b->children) clear_hash(*child);
    }
  }

  // Generates and compiles; the engine keeps its old code if that throws.
  Engine::DemuxFn* regenerate() {
    CodegenOptions co;
    co.strict_alignment = options.strict_alignment;
    co.packet_alignment = options.packet_alignment;
    co.recorded = &Impl::recorded_fn;
    co.recorded_state = this;
    Generated g = generate(trie, co);
    vcode::Code c = vcode::compile(g.module);
    clear_hash(trie.root());
    for (auto& [branch, table] : g.hashed) branch->hash = table;
    generated = std::move(g);
    code = std::move(c);
    ++regenerations;
    return code.as<Engine::DemuxFn>("dpf_demux");
  }

  // Refills every table from the trie (after a failed regeneration undid an insertion).
  void refill_tables() {
    for (auto& t : generated.tables) t->rebuild();
  }
};

Engine::Engine(EngineOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->trie.recorded = &Impl::recorded_fn;
  impl_->trie.recorded_state = impl_.get();
  fn_ = impl_->regenerate();
}

Engine::~Engine() = default;

FilterId Engine::insert(const Filter& f, InsertOptions o) {
  return insert(std::span<const Filter>(&f, 1), o);
}

FilterId Engine::insert(std::span<const Filter> disjuncts, InsertOptions o) {
  Impl& m = *impl_;
  if (disjuncts.empty()) fail("dpf: insert of an empty disjunction");
  Impl::Record rec;
  rec.owner = o.owner;
  for (size_t i = 0; i < disjuncts.size(); ++i) {
    try {
      rec.disjuncts.push_back(canonicalize(disjuncts[i]));
    } catch (const Error& e) {
      if (disjuncts.size() == 1) throw;
      fail("disjunct {}: {}", i + 1, e.what());
    }
  }
  if (!o.share)
    for (auto& [id, other] : m.filters) {
      if (other.owner == o.owner) continue;
      for (const Canonical& a : rec.disjuncts)
        for (const Canonical& b : other.disjuncts)
          if (may_overlap(a, b)) {
            Filter shown;
            shown.atoms() = b.atoms;
            fail(
                "dpf: filter overlaps filter {} of owner {} (`{}`); insert with sharing allowed "
                "to accept the same packets",
                id, other.owner, to_string(shown));
          }
    }
  FilterId id = o.id ? o.id : m.next_id;
  if (id == 0) fail("dpf: filter ids exhausted");
  if (m.filters.count(id)) fail("dpf: filter id {} is taken", id);
  bool regen = false;
  bool stateful = false;
  for (Canonical& c : rec.disjuncts)
    for (Atom& a : c.atoms)
      if (a.kind == Atom::Kind::Recorded || a.kind == Atom::Kind::Record) {
        stateful = true;
        if (a.kind == Atom::Kind::Recorded) a.value = id;  // a branch of its own per id
      }
  for (const Canonical& c : rec.disjuncts) {
    uint64_t key = priority_key(c.specificity, id);
    Change change = m.trie.insert(c, key);
    rec.accepts.emplace_back(change.leaf, key);
    // The leaf's best before this accept: the immediate the code holds.
    uint64_t before = kNoFilter;
    for (uint64_t k : change.leaf->accepts)
      if (k != key) before = std::min(before, k);
    if (!regen && !Impl::patch_insert(change, before)) regen = true;
  }
  if (regen) {
    try {
      fn_ = m.regenerate();
    } catch (...) {
      for (auto& [leaf, key] : rec.accepts) m.trie.erase(leaf, key);
      m.refill_tables();
      throw;
    }
  } else {
    ++m.table_updates;
  }
  if (m.next_id != 0 && id >= m.next_id) m.next_id = id + 1;  // 0 after 0xffffffff: exhausted
  m.filters.emplace(id, std::move(rec));
  if (stateful) ++m.stateful_filters;
  stateful_ = m.stateful_filters > 0;
  return id;
}

void Engine::remove(FilterId id) {
  Impl& m = *impl_;
  auto it = m.filters.find(id);
  if (it == m.filters.end()) fail("dpf: remove of unknown filter id {}", id);
  bool regen = false;
  for (auto& [leaf, key] : it->second.accepts) {
    uint64_t before = leaf->best_accept();
    // A key in a hash table: take it out of the table in place (same layout as if it had never
    // been inserted, so the code's probe bound still holds).
    std::vector<uint64_t> fields;
    HashNode* h = Impl::hashed_ancestor(leaf);
    if (h && !h->key_of_leaf(*leaf, &fields)) h = nullptr;
    Change change = m.trie.erase(leaf, key);
    if (regen) continue;
    if (h && (change.branch || change.only_accept) &&
        h->forget(fields, change.only_accept ? change.leaf : nullptr))
      continue;
    if (!Impl::patch_erase(change, before)) regen = true;
  }
  for (const Canonical& c : it->second.disjuncts)
    if (Impl::has_kind(c, Atom::Kind::Record) || Impl::has_kind(c, Atom::Kind::Recorded)) {
      --m.stateful_filters;
      break;
    }
  stateful_ = m.stateful_filters > 0;
  m.remembered.erase(id);
  std::erase_if(m.held, [&](const Impl::Held& h) { return h.id == id; });
  m.filters.erase(it);
  if (regen)
    fn_ = m.regenerate();
  else
    ++m.table_updates;
}

FilterId Engine::demux_stateful(const uint8_t* pkt, size_t len) {
  Impl& m = *impl_;
  m.now = m.clock();
  m.expire();
  FilterId id = FilterId(fn_(pkt, len));
  uint64_t record = 0, recorded = 0;
  bool has_record = false;
  if (id != 0) {
    // The winner remembers its RECORD value (from the disjunct that accepts), and the packets
    // held for that value go to it.
    for (const Canonical& c : m.filters.at(id).disjuncts) {
      if (!Impl::has_kind(c, Atom::Kind::Record) ||
          !m.evaluate_stateful(c, id, pkt, len, false, &record, &has_record, &recorded) ||
          !has_record)
        continue;
      auto& values = m.remembered[id];
      values.push_back({record, m.now + m.options.record_lifetime_ns});
      if (values.size() > m.options.record_capacity) values.pop_front();
      for (auto h = m.held.begin(); h != m.held.end();)
        if (h->id == id && h->value == record) {
          m.released.push_back(Released{id, std::move(h->packet)});
          h = m.held.erase(h);
        } else {
          ++h;
        }
      break;
    }
    return id;
  }
  // No filter: hold the packet if a RECORDED filter would take it once its value is recorded.
  for (auto& [fid, r] : m.filters)
    for (const Canonical& c : r.disjuncts) {
      if (!Impl::has_kind(c, Atom::Kind::Recorded) ||
          !m.evaluate_stateful(c, fid, pkt, len, true, &record, &has_record, &recorded))
        continue;
      m.held.push_back(Impl::Held{fid, recorded, m.now + m.options.record_lifetime_ns,
                                  std::vector<uint8_t>(pkt, pkt + len)});
      if (m.held.size() > m.options.held_capacity) m.held.pop_front();
      return 0;
    }
  return 0;
}

std::vector<Released> Engine::take_released() {
  return std::exchange(impl_->released, {});
}

void Engine::set_clock(std::function<uint64_t()> now_ns) {
  impl_->clock = std::move(now_ns);
}

FilterId Engine::demux_reference(const uint8_t* pkt, size_t len) const {
  return FilterId(impl_->trie.walk(pkt, len));
}

std::vector<FilterId> Engine::accepting(const uint8_t* pkt, size_t len) const {
  std::vector<uint64_t> keys;
  impl_->trie.walk_all(pkt, len, &keys);
  std::vector<FilterId> ids;
  for (uint64_t k : keys) ids.push_back(FilterId(k));
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<unsigned> Engine::specificity(FilterId id) const {
  auto it = impl_->filters.find(id);
  if (it == impl_->filters.end()) fail("dpf: unknown filter id {}", id);
  std::vector<unsigned> out;
  for (const Canonical& c : it->second.disjuncts) out.push_back(c.specificity);
  return out;
}

size_t Engine::size() const {
  return impl_->filters.size();
}
size_t Engine::regenerations() const {
  return impl_->regenerations;
}
size_t Engine::table_updates() const {
  return impl_->table_updates;
}
const vcode::Module& Engine::module() const {
  return impl_->generated.module;
}
const vcode::Code& Engine::code() const {
  return impl_->code;
}
std::string Engine::dump_trie() const {
  return impl_->trie.dump();
}

}  // namespace exojit::dpf
