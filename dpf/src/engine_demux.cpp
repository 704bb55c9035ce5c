// SPDX-License-Identifier: MIT
// The engine's packet side: what demux runs (publication of the entry and the reader view, old
// code freed after a grace period), demux's out-of-line paths (the view without the mutex, the
// locked run for packets that need the fragment state), the fragment state's recording and
// holding, and the trie walk's answers (demux_reference, accepting).
#include <algorithm>
#include <cassert>
#include <mutex>

#include "engine_impl_p.h"

namespace exojit::dpf {

using namespace detail;

uint64_t Engine::Impl::code_recorded_fn(const void* state, uint64_t id, uint64_t value) {
  if (t_locked != state) return 2;
  return id == 0 ? 1 : recorded_fn(state, id, value);
}

uint64_t Engine::Impl::recorded_fn(const void* state, uint64_t id, uint64_t value) {
  const Impl& m = *static_cast<const Impl*>(state);
  if (m.assume) return 1;
  if (m.state.recorded(uint32_t(id), value, m.now())) return 1;
  ++m.misses;
  return 0;
}

bool Engine::Impl::accepts(const Canonical& c, const uint8_t* pkt, size_t len, uint64_t* record,
                           std::vector<uint64_t>* waits) const {
  return detail::accepts(c.atoms, pkt, len, record, [&](const Atom& a, uint64_t v) {
    if (waits) waits->push_back(v);
    return recorded_fn(this, a.value, v) != 0;
  });
}

uint64_t Engine::Impl::layer_key(const Layer& l, const uint8_t* pkt, size_t len) const {
  uint64_t k = l.fn(pkt, len);
  assert(k != kNeedsMutex);  // the caller holds the mutex (demux_slow)
  FilterId id = FilterId(k);
  if (id == 0) return kNoFilter;
  if (!l.dead.empty() && l.dead.count(id)) return l.trie.walk(pkt, len);
  return k;
}

uint64_t Engine::Impl::exact(const Layer& l, uint64_t k, const uint8_t* pkt, size_t len) const {
  if (k >> 32 != 0) return k;
  uint64_t high = 0;
  return priorities.find(uint32_t(k), &high) ? high << 32 | uint32_t(k) : l.trie.walk(pkt, len);
}

uint64_t Engine::Impl::best_key(const uint8_t* pkt, size_t len) const {
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

uint64_t Engine::Impl::layers_key(const uint8_t* pkt, size_t len, bool full) const {
  uint64_t k = layer_key(base, pkt, len);
  uint64_t r = recent.empty() ? kNoFilter : layer_key(recent, pkt, len);
  if (uint32_t(r) == 0) return full && uint32_t(k) ? exact(base, k, pkt, len) : k;
  if (uint32_t(k) == 0) return full ? exact(recent, r, pkt, len) : r;
  return std::min(exact(base, k, pkt, len), exact(recent, r, pkt, len));
}

void Engine::Impl::record(FilterId id, const uint8_t* pkt, size_t len) {
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

void Engine::Impl::hold(FilterId id, const uint8_t* pkt, size_t len) {
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

static_assert(Engine::kOutOfLine == kNeedsMutex);

// What demux calls while the engine is layered or has opaque filters: the answer is out of line.
uint64_t Engine::out_of_line_entry(const uint8_t*, uint64_t) {
  return kOutOfLine;
}

// Publishes what demux runs (called with the mutex held, at the end of every change, also one
// that throws); what the change replaced is freed once no demux can be inside it.
void Engine::publish() {
  Impl& m = *impl_;
  // The view first, new when what it mirrors changed (the old one retired): a reader that loads
  // the entry finds a view at least as new. Every state has one (also unlayered, where its
  // entry is the main function), so that a reader that loaded an older entry just before the
  // change finds a view, an older or this one.
  // A change that may have changed it (view_stale) builds it again, but publishes (and
  // retires the old one: a grace period, an interrupt on every CPU running a reader) only if it
  // differs -- a removal served by a table write changes no mask, no function.
  auto view_now = [&] { return ReaderView::of(m.base, m.recent, m.opaque); };
  auto* old = static_cast<const ReaderView*>(view_.load(std::memory_order_relaxed));
  assert(!old || m.view_stale || *old == *view_now());
  std::unique_ptr<ReaderView> now;
  if (m.view_stale || !old) now = view_now();
  if (now && (!old || !(*now == *old))) {
    view_.store(now.release(), std::memory_order_release);
    if (old) m.retired.views.emplace_back(const_cast<ReaderView*>(old));
    if (!m.layered_entry.empty()) m.retired.code.push_back(std::move(m.layered_entry));
    m.layered_entry = vcode::Code();
  }
  m.view_stale = false;
  // With opaque filters every packet goes out of line, to the view (their programs and the
  // layers' functions, without the mutex). A layered engine's entry: the view compiled, built
  // with it (if that fails, the out-of-line entry sends demux to the view itself). A stateful
  // engine's code answers kNeedsMutex itself where the answer needs the state.
  DemuxFn* entry = m.base.fn;
  if (!m.opaque.empty()) {
    entry = &out_of_line_entry;
  } else if (m.layered()) {
    try {
      if (m.layered_entry.empty())
        m.layered_entry =
            compile_entry(*static_cast<const ReaderView*>(view_.load()), m.codegen.harden);
      entry = m.layered_entry.as<DemuxFn>("dpf_layers");
    } catch (...) {
      m.layered_entry = vcode::Code();
      entry = &out_of_line_entry;
    }
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

// The answer without the mutex, if it needs none, once the entry `ran` answered kNeedsMutex
// (inside a read section): the main function's answer needs the fragment state; the out-of-line
// entry's, the view's (ReaderView::answer: the layers and the opaque filters, unless the
// fragment state, a masked id or an unknown priority needs the mutex).
inline bool Engine::view_answer(DemuxFn* ran, const uint8_t* pkt, size_t len, FilterId* id) const {
  if (ran != &out_of_line_entry) return false;
  auto* v = static_cast<const ReaderView*>(view_.load(std::memory_order_acquire));
  return v && v->answer(pkt, len, impl_->priorities, id);
}

// demux's other cases: the thread's first section or a nested one, a layered engine's view
// (lock-free unless the answer needs the walk or the fragment state), the mutex.
FilterId Engine::demux_out_of_line(bool in_section, const uint8_t* pkt, size_t len) {
  FilterId id = 0;
  bool answered;
  if (in_section) {
    // An entry answered kOutOfLine in the section demux entered. The entry loaded again is that
    // one or a newer: if the out-of-line entry, its view answers (as the engine after the
    // change, if one came between); if not, the mutex does.
    answered = view_answer(entry_.load(std::memory_order_acquire), pkt, len, &id);
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

}  // namespace exojit::dpf
