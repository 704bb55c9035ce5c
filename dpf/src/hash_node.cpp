// SPDX-License-Identifier: MIT
// Hash nodes: the key layout (coalesced fields), the choice of the hash function, the table.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <thread>

#include "exojit/error.h"
#include "exojit/grace_period.h"
#include "hash_node_p.h"

namespace exojit::dpf::detail {

namespace {

// The multipliers and shifts the choice tries, cheapest first.
constexpr uint8_t kShifts[] = {32, 16, 24, 8, 40, 20, 12, 48, 28, 36, 44, 56};
constexpr uint64_t kMultipliers[] = {0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full,
                                     0x165667b19e3779f9ull, 0xd6e8feb86659fd93ull,
                                     0xff51afd7ed558ccdull, 0xc4ceb9fe1a85ec53ull};

// Visits every leaf below `b` with the steps leading to it; false (and stops) when the subtree
// is not a hash node's: a node with accepts and branches, a node with several branches, or a
// step other than == or SHIFT. `visit` returns false to stop.
template <typename F>
bool for_each_path(const Branch& b, F&& visit) {
  std::vector<Step> steps;
  auto walk_branch = [&](auto& self_branch, auto& self_node, const Branch& br) -> bool {
    for (auto& [k, child] : br.children) {
      steps.push_back(Step{br.kind, br.cmp, br.expr, k});
      if (!self_node(self_branch, self_node, *child)) return false;
      steps.pop_back();
    }
    return true;
  };
  auto walk_node = [&](auto& self_branch, auto& self_node, const Node& n) -> bool {
    if (!n.accepts.empty()) return n.branches.empty() && visit(n, steps);
    if (n.branches.size() != 1) return false;
    const Branch& br = *n.branches.front();
    bool eq = br.kind == Atom::Kind::Compare && br.cmp == Cmp::Eq;
    bool length = br.children.size() == 1 &&
                  is_length_test(br.kind, br.cmp, br.expr, br.children.begin()->first);
    if (br.kind != Atom::Kind::Shift && !eq && !length) return false;
    return self_branch(self_branch, self_node, br);
  };
  return walk_branch(walk_branch, walk_node, b);
}

}  // namespace

void TableLog::before_write(HashNode* table, size_t slot) {
  Entry e{table, slot, table->count_, {}};
  std::memcpy(e.bytes.data(), table->entry(slot), table->stride_);
  entries_.push_back(e);
}

void TableLog::undo() {
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->table->live()) {  // (count_ and tombstones kept by the live protocol)
      it->table->restore(it->slot, it->bytes.data());
    } else {
      std::memcpy(it->table->entry(it->slot), it->bytes.data(), it->table->stride_);
      it->table->count_ = it->count;
    }
  }
  entries_.clear();
}

bool LiveTables::reusable(uint64_t batch) {
  if (batch < safe) return true;
  if (batch >= closing_upto) {  // a grace period started now covers every batch before
    closing = grace::GracePeriod::start();
    closing_upto = ++open;
  }
  return poll();
}

bool LiveTables::quiesced() {
  closing = grace::GracePeriod::start();
  closing_upto = ++open;
  return poll();
}

bool LiveTables::poll() {
  // Readers' sections last nanoseconds: a few microseconds of polling see them end unless one
  // was preempted inside. Then the CPU is handed over a few times (the preempted reader may be
  // waiting for this one), for at most 200 microseconds: new code costs more than that.
  auto start = std::chrono::steady_clock::now();
  for (auto now = start; now - start < std::chrono::microseconds(200);
       now = std::chrono::steady_clock::now()) {
    if (closing.done()) {
      safe = closing_upto;
      return true;
    }
    if (now - start > std::chrono::microseconds(20)) std::this_thread::yield();
  }
  return false;
}

// The protocol needs loads that see stores in order (x86-64's total store order); elsewhere
// (AArch64: the code's loads are not ordered) a live table is not written: new code instead.
#if defined(__x86_64__)
constexpr bool kOrderedLoads = true;
#else
constexpr bool kOrderedLoads = false;
#endif

std::vector<size_t> HashNode::compare_order() const {
  std::vector<size_t> order;
  if (kind_ == HashKind::Window) order.push_back(window_field_);
  for (size_t j = 0; j < fields_.size(); ++j)
    if (kind_ != HashKind::Window || j != window_field_) order.push_back(j);
  return order;
}

bool HashNode::occupied(size_t slot) const {
  const uint8_t* e = table_ + slot * stride_;
  uint32_t id;
  std::memcpy(&id, e + id_offset_, 4);
  if (id == 0) return false;
  if (max_probe_ > 0 || slot >= (size_t(1) << log2_slots_)) return true;
  uint64_t f[kMaxFields] = {};
  read_key(slot, f);
  return slot_of(f) == slot;
}

void HashNode::read_key(size_t slot, uint64_t* fields) const {
  const uint8_t* e = table_ + slot * stride_;
  for (size_t j = 0; j < fields_.size(); ++j) {
    fields[j] = 0;
    std::memcpy(&fields[j], e + fields_[j].offset, fields_[j].bytes);
  }
}

// Release stores: in program order for the compiler (x86-64 keeps stores in order anyway).
void HashNode::store_field(size_t slot, size_t j, uint64_t v) {
  uint8_t* at = entry(slot) + fields_[j].offset;
  if (fields_[j].bytes == 8)
    __atomic_store_n(reinterpret_cast<uint64_t*>(at), v, __ATOMIC_RELEASE);
  else
    __atomic_store_n(reinterpret_cast<uint32_t*>(at), uint32_t(v), __ATOMIC_RELEASE);
}

void HashNode::store_id(size_t slot, uint32_t id) {
  __atomic_store_n(reinterpret_cast<uint32_t*>(entry(slot) + id_offset_), id, __ATOMIC_RELEASE);
}

// Could a packet whose key is `fields` be compared with slot `slot`'s entry?
bool HashNode::reaches(const uint64_t* fields, size_t slot) const {
  uint64_t home = slot_of(fields);
  return home <= slot && slot <= home + max_probe_;
}

bool HashNode::write_live(size_t slot, const uint64_t* fields, uint32_t id) {
  if (!kOrderedLoads) return false;
  if (occupied(slot)) {  // the same key: a new id
    store_id(slot, id);
    return true;
  }
  uint64_t old[kMaxFields] = {}, unused;
  size_t unused_field;
  // Only a key that can be taken out again the same way (its undo, its removal).
  if (!tombstone_key(slot, fields, &unused_field, &unused)) return false;
  read_key(slot, old);
  std::vector<size_t> order = compare_order();
  if (max_probe_ == 0 && mix_reaches(old, fields, slot)) return false;
  if (auto q = emptied_.find(slot); q != emptied_.end()) {
    if (!live_->reusable(q->second)) return false;  // new code instead (LiveTables)
    emptied_.erase(q);
  }
  if (max_probe_ > 0) {
    for (size_t j = 0; j < fields_.size(); ++j) store_field(slot, j, fields[j]);
    store_id(slot, id);
  } else {
    store_id(slot, id);
    for (auto j = order.rbegin(); j != order.rend(); ++j) store_field(slot, *j, fields[*j]);
  }
  ++count_;
  return true;
}

bool HashNode::can_reuse(size_t slot, const uint64_t* fields) const {
  uint64_t old[kMaxFields] = {}, unused;
  size_t unused_field;
  read_key(slot, old);
  return kOrderedLoads && tombstone_key(slot, fields, &unused_field, &unused) &&
         !mix_reaches(old, fields, slot);
}

bool HashNode::reuse_tombstone(size_t slot, const uint64_t* fields, uint32_t id) {
  // The tombstone's key matches no packet that reaches the slot, whatever its id: the new id
  // now, the key once no reader can still hold the old id (a reader returns the id it loaded
  // before comparing) nor fields of the key removed there. Refused (a reader preempted in its
  // section): the id stays, harmless, and the caller makes new code.
  store_id(slot, id);
  if (!live_->quiesced()) return false;
  std::vector<size_t> order = compare_order();
  for (auto j = order.rbegin(); j != order.rend(); ++j) store_field(slot, *j, fields[*j]);
  tombstones_.erase(slot);
  return true;
}

void HashNode::clear_tombstones(size_t slot, TableLog* log) {
  size_t end = slot;  // the cluster's end: its first empty slot after `slot`
  while (end < total_slots() && occupied(end)) ++end;
  uint64_t first_home = UINT64_MAX;  // the earliest home slot of the keys after s
  for (size_t s = end; s-- > 0 && occupied(s);) {
    if (!tombstones_.count(s)) {
      uint64_t f[kMaxFields] = {};
      read_key(s, f);
      first_home = std::min(first_home, slot_of(f));
    } else if (first_home > s) {  // no key's run passes s: id 0 ends the runs there
      if (log) log->before_write(this, s);
      store_id(s, 0);
      tombstones_.erase(s);
      --count_;
      emptied_[s] = live_->open;
    }
  }
}

bool HashNode::mix_reaches(const uint64_t* from, const uint64_t* to, size_t slot) const {
  std::vector<size_t> order = compare_order();
  for (size_t k = 1; k < order.size(); ++k) {  // what a reader may see: old, then new fields
    uint64_t mixed[kMaxFields] = {};
    for (size_t i = 0; i < order.size(); ++i)
      mixed[order[i]] = i < k ? from[order[i]] : to[order[i]];
    if (reaches(mixed, slot)) return true;
  }
  return false;
}

bool HashNode::tombstone_key(size_t slot, const uint64_t* key, size_t* field,
                             uint64_t* value) const {
  uint64_t k[kMaxFields] = {};
  std::copy(key, key + fields_.size(), k);
  size_t j = kind_ == HashKind::Window ? window_field_ : 0;
  uint64_t width = ones(fields_[j].bytes * 8);
  for (uint64_t c = 1; c <= 4096; ++c) {
    k[j] = kind_ == HashKind::Window ? (key[j] & ~(ones(log2_slots_) << param_)) |
                                           (((slot + max_probe_ + c) & ones(log2_slots_)) << param_)
                                     : (key[j] + c * 0x9e3779b97f4a7c15ull) & width;
    if (k[j] == key[j] || reaches(k, slot)) continue;
    *field = j, *value = k[j];
    return true;
  }
  return false;  // every key reaches the slot (a small table probed far)
}

bool HashNode::erasable_live(size_t slot) const {
  uint64_t key[kMaxFields] = {}, v;
  size_t j;
  read_key(slot, key);
  return kOrderedLoads && tombstone_key(slot, key, &j, &v);
}

bool HashNode::erase_live(size_t slot) {
  if (!kOrderedLoads) return false;
  // One field changes (the window field for a window hash): the key becomes one no packet that
  // reaches the slot can have.
  uint64_t key[kMaxFields] = {}, value;
  size_t j;
  read_key(slot, key);
  if (!tombstone_key(slot, key, &j, &value)) return false;
  store_field(slot, j, value);
  if (max_probe_ > 0) {
    tombstones_.insert(slot);  // still a key for the runs through it, until a key is written there
  } else {
    --count_;
    emptied_[slot] = live_->open;
  }
  return true;
}

void HashNode::restore(size_t slot, const uint8_t* bytes) {
  uint32_t id;
  std::memcpy(&id, bytes + id_offset_, 4);
  uint64_t f[kMaxFields] = {};
  for (size_t j = 0; j < fields_.size(); ++j)
    std::memcpy(&f[j], bytes + fields_[j].offset, fields_[j].bytes);
  bool was = id != 0 && (max_probe_ > 0 || slot_of(f) == slot);
  if (!was) {  // an empty slot: a key written there is taken out again
    if (occupied(slot) && !erase_live(slot))
      fail("dpf: internal error: a table write could not be undone");
    return;
  }
  // A key or a tombstone was there (live writes never move keys).
  uint64_t now[kMaxFields] = {};
  read_key(slot, now);
  size_t changed = 0, field = 0;
  for (size_t j = 0; j < fields_.size(); ++j)
    if (now[j] != f[j]) ++changed, field = j;
  if (changed == 0) {  // its id changed (a cleared tombstone's, from 0: a tombstone again)
    uint32_t now_id;
    std::memcpy(&now_id, entry(slot) + id_offset_, 4);
    store_id(slot, id);
    if (max_probe_ > 0 && now_id == 0 && emptied_.erase(slot)) {
      tombstones_.insert(slot);
      ++count_;
    }
    return;
  }
  if (tombstones_.count(slot) || emptied_.count(slot)) {
    // A removal undone: the one field it changed, back (the id never changed).
    if (changed != 1) fail("dpf: internal error: a table write could not be undone");
    store_field(slot, field, f[field]);
    if (max_probe_ > 0) {
      tombstones_.erase(slot);
    } else {
      emptied_.erase(slot);
      ++count_;
    }
    return;
  }
  // A tombstone given a key: a tombstone again (one field store: no packet reaching the slot
  // has its key any more), then its id.
  uint64_t value;
  if (!tombstone_key(slot, now, &field, &value))
    fail("dpf: internal error: a table write could not be undone");
  store_field(slot, field, value);
  store_id(slot, id);
  tombstones_.insert(slot);
}

std::unique_ptr<HashNode> HashNode::plan(const Branch& b, bool strict_alignment) {
  if (b.kind != Atom::Kind::Compare || b.cmp != Cmp::Eq || b.children.size() < 2) return nullptr;
  std::unique_ptr<HashNode> h(new HashNode(b));
  // The shape: the first path's; every path below the branch must follow it exactly.
  bool first = true, uniform = true;
  bool walked = for_each_path(b, [&](const Node& leaf, const std::vector<Step>& steps) {
    if (first) {
      h->shape_ = steps;
      h->high_ = leaf.best_accept() >> 32;
      first = false;
    }
    uniform = uniform && h->same_shape(leaf, steps);
    return uniform;
  });
  if (first || !uniform || !walked) return nullptr;
  // The code holds up to kMaxFields values while it computes the next one: each must take one
  // register (a field, a masked field, a shifted one; canonical.h bounds the others).
  for (const Step& st : h->shape_)
    if (register_need(st.expr) > 1) return nullptr;

  // Fields, segment by segment: coalesce adjacent plain fields into one load of 2, 4 or 8
  // bytes within the bytes the segment loads anyway (its bounds check covers them).
  h->members_.resize(h->shape_.size());
  unsigned segment = 0;
  for (size_t begin = 0; begin <= h->shape_.size();) {
    size_t end = begin;
    uint32_t seg_end = 0;
    while (end < h->shape_.size() && h->shape_[end].kind != Atom::Kind::Shift)
      seg_end = std::max(seg_end, load_end(h->shape_[end++].expr));
    if (end < h->shape_.size()) seg_end = std::max(seg_end, load_end(h->shape_[end].expr));
    h->segment_need_.push_back(seg_end);
    struct Plain {
      size_t step;
      uint32_t offset;
      unsigned bytes;
      uint64_t mask;
    };
    std::vector<Plain> plain;
    std::vector<size_t> other;
    for (size_t i = begin; i < end; ++i) {
      const Step& st = h->shape_[i];
      if (st.cmp != Cmp::Eq) continue;  // a length test: no key, its bytes are in seg_end
      Plain p{i, 0, 0, 0};
      if (!strict_alignment && plain_field(st.expr, &p.offset, &p.bytes, &p.mask))
        plain.push_back(p);
      else
        other.push_back(i);
    }
    std::sort(plain.begin(), plain.end(), [](auto& x, auto& y) { return x.offset < y.offset; });
    auto add_field = [&](ExprPtr expr, unsigned bytes) {
      h->fields_.push_back(Field{std::move(expr), segment, bytes, 0});
      return unsigned(h->fields_.size() - 1);
    };
    for (size_t g = 0; g < plain.size();) {
      uint32_t start, stop;
      size_t last = coalesce_run(plain, g, &start, &stop);
      unsigned width = std::bit_ceil(stop - start);
      uint32_t wstart = start;
      if (wstart + width > seg_end) wstart = stop >= width ? stop - width : 0;
      bool ok = last > g && width <= 8 && wstart + width <= seg_end && wstart + width >= stop;
      if (!ok) {  // one field per atom
        for (size_t i = g; i <= last; ++i) {
          const ExprPtr& e = h->shape_[plain[i].step].expr;
          unsigned f = add_field(e, upper_bound(e) > 0xffffffffu ? 8 : 4);
          h->members_[plain[i].step].push_back(Member{f, 0});
        }
        g = last + 1;
        continue;
      }
      uint64_t mask = 0;
      unsigned f = add_field(nullptr, width > 4 ? 8 : 4);
      for (size_t i = g; i <= last; ++i) {
        unsigned shift = (wstart + width - plain[i].offset - plain[i].bytes) * 8;
        mask |= (plain[i].mask & ones(plain[i].bytes * 8)) << shift;
        h->members_[plain[i].step].push_back(Member{f, shift});
      }
      ExprPtr load = make_load(wstart, width * 8);
      h->fields_[f].expr =
          mask == ones(width * 8) ? load : make_binary(ExprOp::And, load, make_const(mask));
      g = last + 1;
    }
    for (size_t i : other) {
      const ExprPtr& e = h->shape_[i].expr;
      unsigned f = add_field(e, upper_bound(e) > 0xffffffffu ? 8 : 4);
      h->members_[i].push_back(Member{f, 0});
    }
    if (end == h->shape_.size()) break;
    ++segment;  // the SHIFT step
    begin = end + 1;
  }
  h->segments_ = segment + 1;
  if (h->fields_.empty() || h->fields_.size() > kMaxFields) return nullptr;
  // Entry layout: 8-byte fields, then 4-byte fields, then the 32-bit filter id.
  unsigned at = 0;
  for (unsigned want : {8u, 4u})
    for (Field& f : h->fields_)
      if (f.bytes == want) f.offset = at, at += want;
  h->id_offset_ = at;
  h->stride_ = std::max(8u, std::bit_ceil(at + 4));
  return h;
}

uint64_t HashNode::mix(const uint64_t* fields, size_t n) {
  uint64_t x = fields[0];
  for (size_t j = 1; j < n; ++j) x ^= j % 2 ? fields[j] << 32 : fields[j];
  return x;
}

uint64_t HashNode::slot_of(const uint64_t* fields) const {
  if (kind_ == HashKind::Window) return (fields[window_field_] >> param_) & ones(log2_slots_);
  uint64_t x = mix(fields, fields_.size());
  if (kind_ == HashKind::XorShift) return (x ^ (x >> param_)) & ones(log2_slots_);
  return (x * param_) >> (64 - log2_slots_);
}

bool HashNode::same_shape(const Node& leaf, const std::vector<Step>& steps) const {
  if (steps.size() != shape_.size() || (leaf.best_accept() >> 32) != high_) return false;
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i].kind != shape_[i].kind || steps[i].cmp != shape_[i].cmp ||
        !same_expr(steps[i].expr, shape_[i].expr))
      return false;
  return true;
}

void HashNode::key_of(const std::vector<Step>& steps, uint64_t* fields) const {
  std::fill(fields, fields + fields_.size(), 0);
  for (size_t i = 0; i < steps.size(); ++i)
    for (const Member& m : members_[i]) fields[m.field] |= steps[i].value << m.shift;
}

bool HashNode::path_of(const Node& leaf, std::vector<Step>* steps) const {
  steps->clear();
  for (const Node* n = &leaf;; n = n->parent->parent) {
    if (!n->parent) return false;  // not below this branch
    const Branch& b = *n->parent;
    steps->push_back(Step{b.kind, b.cmp, b.expr, n->key});
    if (&b == branch_) break;
  }
  std::reverse(steps->begin(), steps->end());
  if (!leaf.branches.empty() || leaf.accepts.empty() || !leaf.dead.empty()) return false;
  // Every node on the path must still have one branch and no accept (else the code differs).
  for (const Node* n = leaf.parent->parent; n && n->parent; n = n->parent->parent) {
    if (!n->accepts.empty() || !n->dead.empty() || n->branches.size() != 1) return false;
    if (n->parent == branch_) break;
  }
  return same_shape(leaf, *steps);
}

void HashNode::allocate(unsigned log2_slots) {
  log2_slots_ = log2_slots;
  size_t bytes = total_slots() * stride_ + 8;
  storage_.reset(new uint8_t[bytes + 64]());
  table_ = storage_.get() + (64 - reinterpret_cast<uintptr_t>(storage_.get()) % 64) % 64;
  count_ = 0;
}

void HashNode::clear() {
  count_ = 0;
  for (size_t s = 0; s < total_slots(); ++s) empty_slot(s);
}

void HashNode::empty_slot(size_t s) {
  uint8_t* e = entry(s);
  std::memset(e, 0, stride_);
  if (max_probe_ > 0 || s >= (size_t(1) << log2_slots_)) return;
  uint64_t f[kMaxFields] = {};
  for (uint64_t c = 1; slot_of(f) == s; ++c) {
    if (kind_ == HashKind::Window)
      f[window_field_] = ((s + c) & ones(log2_slots_)) << param_;
    else
      f[0] = c;
  }
  for (size_t j = 0; j < fields_.size(); ++j)
    std::memcpy(e + fields_[j].offset, &f[j], fields_[j].bytes);
}

size_t HashNode::find(const uint64_t* fields) const {
  uint64_t slot = slot_of(fields);
  for (unsigned d = 0; d <= max_probe_; ++d) {
    const uint8_t* e = table_ + (slot + d) * stride_;
    uint32_t id;
    std::memcpy(&id, e + id_offset_, 4);
    if (id == 0) return SIZE_MAX;
    bool same = true;
    for (size_t j = 0; j < fields_.size() && same; ++j) {
      uint64_t v = 0;
      std::memcpy(&v, e + fields_[j].offset, fields_[j].bytes);
      same = v == fields[j];
    }
    if (same) return slot + d;
  }
  return SIZE_MAX;
}

bool HashNode::key_of_leaf(const Node& leaf, std::vector<uint64_t>* fields) const {
  std::vector<Step> steps;
  if (!path_of(leaf, &steps)) return false;
  if (std::binary_search(overflow_.begin(), overflow_.end(), steps.front().value)) return false;
  fields->assign(fields_.size(), 0);
  key_of(steps, fields->data());
  return true;
}

bool HashNode::forget(const std::vector<uint64_t>& fields, const Node* surviving_leaf,
                      TableLog* log) {
  size_t hole = find(fields.data());
  if (hole == SIZE_MAX) return false;
  if (surviving_leaf) {  // another filter still ends there: its id
    uint32_t id = uint32_t(surviving_leaf->best_accept());
    if (log) log->before_write(this, hole);
    if (live_)
      store_id(hole, id);
    else
      std::memcpy(entry(hole) + id_offset_, &id, 4);
    return true;
  }
  if (live_) {  // keys do not move under readers (set_live)
    if (!erasable_live(hole)) return false;
    if (log) log->before_write(this, hole);
    if (!erase_live(hole)) return false;
    if (max_probe_ > 0) clear_tombstones(hole, log);
    return true;
  }
  // Backward-shift deletion: a later entry of the run whose home slot is at or before the hole
  // moves into it (the table does not wrap: it has kMaxProbe spare entries at the end).
  for (size_t k = hole + 1; max_probe_ > 0 && k < total_slots(); ++k) {
    uint8_t* e = entry(k);
    uint32_t id;
    std::memcpy(&id, e + id_offset_, 4);
    if (id == 0) break;
    uint64_t f[kMaxFields] = {};
    for (size_t j = 0; j < fields_.size(); ++j)
      std::memcpy(&f[j], e + fields_[j].offset, fields_[j].bytes);
    if (slot_of(f) <= hole) {
      if (log) log->before_write(this, hole);
      std::memcpy(entry(hole), e, stride_);
      hole = k;
    }
  }
  if (log) log->before_write(this, hole);
  empty_slot(hole);
  --count_;
  return true;
}

bool HashNode::place(const uint64_t* fields, uint32_t id, TableLog* log) {
  uint64_t slot = slot_of(fields);
  // A live table's first tombstone in the run that can take the key: where it goes when it is
  // not in the run already.
  size_t tomb = SIZE_MAX;
  auto into_tombstone = [&] {
    if (log) log->before_write(this, tomb);
    return reuse_tombstone(tomb, fields, id);
  };
  for (unsigned d = 0; d <= max_probe_; ++d) {
    uint8_t* e = entry(slot + d);
    bool have = occupied(slot + d);
    bool same = have;
    for (size_t j = 0; j < fields_.size() && same; ++j) {
      uint64_t v = 0;
      std::memcpy(&v, e + fields_[j].offset, fields_[j].bytes);
      same = v == fields[j];
    }
    if (have && !same) {
      if (tomb == SIZE_MAX && tombstones_.count(slot + d) && can_reuse(slot + d, fields))
        tomb = slot + d;
      continue;
    }
    if (!have && tomb != SIZE_MAX) return into_tombstone();
    if (log) log->before_write(this, slot + d);
    if (live_) return write_live(slot + d, fields, id);
    if (!have) ++count_;
    for (size_t j = 0; j < fields_.size(); ++j)
      std::memcpy(e + fields_[j].offset, &fields[j], fields_[j].bytes);  // little-endian host
    std::memcpy(e + id_offset_, &id, 4);
    return true;
  }
  return tomb != SIZE_MAX && into_tombstone();
}

bool HashNode::choose(const HashNode* previous) {
  // The keys, grouped by the branch's constant (the child they go through).
  std::vector<std::vector<uint64_t>> keys;
  std::vector<uint32_t> ids;
  std::vector<uint64_t> group;  // the branch's constant of each key
  for_each_path(*branch_, [&](const Node& leaf, const std::vector<Step>& steps) {
    std::vector<uint64_t> f(fields_.size());
    key_of(steps, f.data());  // plan() checked every path
    keys.push_back(std::move(f));
    ids.push_back(uint32_t(leaf.best_accept()));
    group.push_back(steps.front().value);
    return true;
  });
  size_t n = keys.size();
  std::vector<uint8_t> used;
  struct Choice {
    size_t overflow = SIZE_MAX;  // keys no slot within kMaxProbe takes
    unsigned probe = kMaxProbe + 1;
    HashKind kind = HashKind::Multiply;
    uint64_t param = 0;
    unsigned field = 0;
    unsigned log2 = 0;
    bool perfect() const { return overflow == 0 && probe == 0; }
  };
  // Places every key with one function into 2^log2 slots; `best` becomes it if it leaves fewer
  // keys out, or as many with a shorter longest probe (given up as soon as it cannot).
  auto evaluate = [&](Choice& best, HashKind kind, uint64_t param, unsigned field, unsigned log2) {
    kind_ = kind, param_ = param, window_field_ = field, log2_slots_ = log2;
    used.assign((size_t(1) << log2) + kMaxProbe + 1, 0);
    unsigned worst = 0;
    size_t over = 0;
    for (const auto& f : keys) {
      uint64_t at = slot_of(f.data());
      unsigned d = 0;
      while (d <= kMaxProbe && used[at + d]) ++d;
      if (d > kMaxProbe) {
        if (++over > best.overflow) return;
        continue;
      }
      worst = std::max(worst, d);
      if (over == best.overflow && worst >= best.probe) return;
      used[at + d] = 1;
    }
    best = Choice{over, worst, kind, param, field, log2};
  };
  // The best function for 2^log2 slots: the first without collisions in cost order, else the
  // one with the fewest keys left out and then the shortest longest probe.
  // Large tables take a multiplicative hash: a window of key bits that suits the keys present
  // can leave later keys in long probe runs (structured bits: ports, a network's addresses).
  const bool large = n > kSearchedKeys;
  auto search = [&](unsigned log2) {
    Choice best;
    // Windows inside one byte first (the code can load that byte from the packet), then any
    // window, then the mixing hashes.
    for (int inside = 1; inside >= 0 && !large; --inside)
      for (unsigned j = 0; j < fields_.size(); ++j)
        for (unsigned sh = 0; sh + log2 <= fields_[j].bytes * 8u && !best.perfect(); ++sh)
          if ((sh % 8 + log2 <= 8) == bool(inside)) evaluate(best, HashKind::Window, sh, j, log2);
    for (uint8_t sh : kShifts)
      if (sh >= log2 && !best.perfect() && !large) evaluate(best, HashKind::XorShift, sh, 0, log2);
    for (uint64_t m : kMultipliers)
      if (!best.perfect()) evaluate(best, HashKind::Multiply, m, 0, log2);
    return best;
  };
  auto better = [](const Choice& a, const Choice& b) {
    return a.overflow < b.overflow || (a.overflow == b.overflow && a.probe < b.probe);
  };
  unsigned log2 = std::max(3u, unsigned(std::bit_width(n + n / 2)));
  Choice c;
  // A large table regenerated because a key did not fit (insert() returned false): the keys
  // are those of the previous table plus a few, so its function and size are tried first, with
  // the probe bound the keys now need. One pass over the keys instead of a search over every
  // candidate (which made inserting 10,000 connection filters take minutes).
  if (previous && large && previous->fields_.size() == fields_.size() &&
      previous->log2_slots_ >= log2 && previous->log2_slots_ <= log2 + 1 &&
      previous->window_field_ < fields_.size() &&
      (previous->kind_ != HashKind::Window ||
       previous->param_ + previous->log2_slots_ <= fields_[previous->window_field_].bytes * 8u))
    evaluate(c, previous->kind_, previous->param_, previous->window_field_, previous->log2_slots_);
  if (c.overflow > 0) {
    c = search(log2);
    // Small tables: a little more room for no collisions at all (one slot checked). Keys that
    // collide whatever the function (chosen so, or a weak mix): two more sizes, no more.
    for (unsigned extra = 1; extra <= 2; ++extra) {
      if (c.perfect() || (large && c.overflow == 0)) break;
      Choice wider = search(log2 + extra);
      if (c.overflow > 0 ? better(wider, c) : wider.perfect()) c = wider;
    }
  }
  kind_ = c.kind, param_ = c.param, window_field_ = c.field;
  allocate(c.log2);
  // Large tables are compiled with the longest probe sequence allowed, so that keys inserted
  // later fit without new code: the probe stops at the key or at an empty slot, so a lookup
  // costs no more than the key's own probe length (only the unrolled code is longer).
  max_probe_ = large || c.overflow > 0 ? kMaxProbe : c.probe;
  clear();
  // Place the keys group by group; a group with a key that does not fit goes out of the table
  // whole (its code follows a miss), its keys taken back last-in first-out (which restores the
  // table exactly).
  overflow_.clear();
  size_t groups = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && group[j] == group[i]) ++j;
    ++groups;
    size_t placed = i;
    while (placed < j && place(keys[placed].data(), ids[placed], nullptr)) ++placed;
    if (placed < j) {
      while (placed-- > i) forget(keys[placed], nullptr, nullptr);
      overflow_.push_back(group[i]);
    }
    i = j;
  }
  built_ = count_;
  return overflow_.size() * 2 <= groups;
}

HashNode::Write HashNode::insert(const Node& leaf, TableLog* log) {
  std::vector<Step> steps;
  if (!path_of(leaf, &steps)) return Write::NoFit;
  if (std::binary_search(overflow_.begin(), overflow_.end(), steps.front().value))
    return Write::NoFit;
  uint64_t f[kMaxFields];
  key_of(steps, f);
  if ((count_ + 1) * 4 > (size_t(1) << log2_slots_) * 3 && find(f) == SIZE_MAX) return Write::Full;
  return place(f, uint32_t(leaf.best_accept()), log) ? Write::Done : Write::Crowded;
}

}  // namespace exojit::dpf::detail
