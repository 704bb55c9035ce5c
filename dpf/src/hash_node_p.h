// SPDX-License-Identifier: MIT
// A disjunction compiled as a hash table (DPF paper, "Fast disjunctions").
//
// Used for an == branch with more than three constants below which every path continues the same
// way: the same sequence of == atoms and SHIFTs (with different constants) ending in filters of
// the same specificity, which is what connection filters look like. Each path becomes one key,
// a tuple of fields (adjacent fields coalesced into wider loads); the table maps the key to the
// filter id. The hash function is chosen when the code is generated, among cheap candidates, for
// the actual keys; when it maps no two keys to one slot, the code checks one slot and no chain
// (the collision check is elided), else it probes at most `max_probe` more slots (unrolled).
// A filter that only adds a key is written into the table: the code is not regenerated.
//
// Keys no candidate function places within kMaxProbe slots (keys chosen to collide) do not make
// the table fail: their constants of the branch ("overflow" children) are compiled as ordinary
// code that runs after a miss, so only packets of those keys pay for them. A table whose keys
// mostly overflow is not built (the branch is compiled as a binary search instead).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "exojit/grace_period.h"
#include "trie_p.h"

namespace exojit::dpf::detail {

class HashNode;

// The engine's side of writing tables that running code reads (a published layer's): slots
// emptied while readers may be inside the code are quarantined, in batches, until a grace period
// has passed, so that no reader that loaded a slot's old id (or key) can meet a new key there.
// A batch's grace period starts when one of its slots is wanted again (one membarrier for every
// slot emptied since the previous one).
struct LiveTables {
  uint64_t open = 0;          // the batch slots emptied now join
  uint64_t safe = 0;          // batches below this are past their grace period
  uint64_t closing_upto = 0;  // batches below this are covered by `closing`
  grace::GracePeriod closing;
  // Whether slots emptied in `batch` may be written now. A grace period in progress is polled
  // for 20 microseconds, then the CPU handed over for up to 200 (a reader preempted inside the
  // code may be waiting for this thread's CPU), not waited for longer: false then, and the
  // caller makes new code instead.
  bool reusable(uint64_t batch);
  // Whether every read section in progress now has ended, polled in the same way (a grace
  // period started now: it also covers every batch emptied so far).
  bool quiesced();

 private:
  bool poll();
};

// The table writes of one engine operation, undone in reverse order when the operation is
// refused after some of them (so the tables are exactly as before).
class TableLog {
 public:
  void before_write(HashNode* table, size_t slot);
  // Restores the logged slots, newest first (through the live protocol for a live table).
  void undo();
  void clear() { entries_.clear(); }

 private:
  struct Entry {
    HashNode* table;
    size_t slot;
    size_t count;
    std::array<uint8_t, 64> bytes;
  };
  std::vector<Entry> entries_;
};

class HashNode {
 public:
  static constexpr unsigned kMaxProbe = 15;
  // Up to this many keys, choose() searches for a collision-free function (one slot checked);
  // beyond, it keeps a working function across regenerations and compiles the longest probe
  // bound so that later insertions fit the table without new code.
  static constexpr size_t kSearchedKeys = 256;
  static constexpr size_t kMaxFields = 4;

  // One value of the key, loaded by the generated code.
  struct Field {
    ExprPtr expr;      // what to load/compute, relative to its segment's base
    unsigned segment;  // how many SHIFTs of the chain come before it
    unsigned bytes;    // width in the table entry: 4 or 8
    unsigned offset;   // byte offset in the entry
  };
  // Where a chain atom's constant goes: field, and bit position in it.
  struct Member {
    unsigned field;
    unsigned shift;
  };
  // The hash functions the choice tries, cheapest first: a window of one field's bits,
  // (fields mixed) ^ (mixed >> param), (mixed * param) >> (64 - log2 slots).
  enum class HashKind : uint8_t { Window, XorShift, Multiply };

  // Plans a hash node for `b`, or returns nullptr when its children do not all continue the same
  // way (or would need more fields than kMaxFields, or an expression needing more than one
  // register). Does not fill the table (see choose).
  static std::unique_ptr<HashNode> plan(const Branch& b, bool strict_alignment);

  // Chooses the hash function and table size for the branch's current keys and fills the table;
  // false when most keys would overflow (then the branch is better compiled without a table).
  // `previous` (the node this branch had in the code being replaced, or nullptr): its function
  // and size are tried first for large tables, so a regeneration costs one pass over the keys.
  // The search is bounded: three table sizes, a fixed list of candidates.
  bool choose(const HashNode* previous = nullptr);
  // Writes the key of the path to `leaf` (after an insertion). Otherwise nothing is written and
  // the caller needs new code: Full when the table is too full (new code doubles it, so these
  // regenerations are amortized over the keys); Crowded when the key's probe run is longer than
  // the code probes; NoFit when the path is not of the node's shape or goes through an overflow
  // constant.
  enum class Write : uint8_t { Done, Full, Crowded, NoFit };
  Write insert(const Node& leaf, TableLog* log);

  // Before `leaf`'s accept `key` is removed from the trie: remembers the key of its path.
  // After: `forget` removes that key from the table (moving later entries of its probe run
  // back, so the table is as if the key had never been inserted), or writes the leaf's new best
  // id when the leaf stays. False: not found (the caller needs new code).
  bool key_of_leaf(const Node& leaf, std::vector<uint64_t>* fields) const;
  bool forget(const std::vector<uint64_t>& fields, const Node* surviving_leaf, TableLog* log);
  bool contains(const std::vector<uint64_t>& fields) const {
    return find(fields.data()) != SIZE_MAX;
  }
  // Whether forget() can take the key out (found; in a live table, a tombstone key exists).
  bool can_forget(const std::vector<uint64_t>& fields, bool surviving) const {
    size_t slot = find(fields.data());
    return slot != SIZE_MAX && (!live_ || surviving || erasable_live(slot));
  }

  const Branch& branch() const { return *branch_; }
  const std::vector<Step>& shape() const { return shape_; }  // the chain; values unused
  const std::vector<Field>& fields() const { return fields_; }
  unsigned segments() const { return segments_; }
  // The bytes segment `s` of the chain loads (its fields, length tests and the SHIFT ending it):
  // what the SHIFT into it checks together with its amount.
  uint32_t segment_need(unsigned s) const { return segment_need_[s]; }
  unsigned stride() const { return stride_; }
  unsigned id_offset() const { return id_offset_; }
  unsigned log2_slots() const { return log2_slots_; }
  HashKind kind() const { return kind_; }
  uint64_t param() const { return param_; }  // Window, XorShift: the shift; Multiply: multiplier
  unsigned window_field() const { return window_field_; }
  // The order the code compares the fields in: the window field first (see set_live).
  std::vector<size_t> compare_order() const;
  unsigned max_probe() const { return max_probe_; }
  uint64_t priority_high() const { return high_; }
  const uint8_t* table() const { return table_; }
  size_t keys() const { return count_; }
  // At least an eighth more keys than the table was built with: new code for it (to place a
  // crowded key) is paid for by the keys written since, however the keys were chosen.
  bool grown() const {
    return count_ - std::min(count_, built_) >= std::max<size_t>(1, built_ / 8);
  }
  // The branch's constants compiled as code after a miss (sorted).
  const std::vector<uint64_t>& overflow() const { return overflow_; }
  // The best accept below the branch the code was generated with: early returns before the
  // table assume nothing better is in it, so a key written later must not be better.
  uint64_t assumed_best() const { return assumed_best_; }
  void set_assumed_best(uint64_t k) { assumed_best_ = k; }

  // From now on the table is read by running code (its layer is published or about to be):
  // writes follow the protocol below instead of rewriting entries freely.
  //
  // Readers (the generated code, hash() in codegen.cpp) load an entry's fields one by one and
  // its id (first with probing, where id 0 ends the run; last without), with plain loads on a
  // total-store-order machine: each load sees the writer's stores as a prefix in program order.
  // So a write never lets a reader assemble a key that is neither the old one nor the new one
  // and still matches a packet that reaches the slot:
  // - a key written into an empty slot: with probing, the fields, then the id (a reader that sees
  //   the id sees the whole key); without probing (no empty check), the id first, then the
  //   fields in the reverse of the order the code compares them (compare_order: the window
  //   field first), so a reader sees the old fields up to some point and the new ones after:
  //   every such mix must hash to another slot (always true for a window hash, checked for the
  //   others; else the write is refused: Crowded, new code);
  // - a key removed: one field store makes it a key no packet reaching the slot can have (with
  //   probing: no key whose run passes the slot), the id kept. With probing the slot stays a
  //   tombstone (its id not 0: the runs through it go on) until a key is written there: the new
  //   id first, then a grace period (no reader still holds the old id, nor fields of the key
  //   removed), then the fields in the reverse of the compare order, each mix of the tombstone's
  //   key and the new one checked as for an empty slot without probing; or until no key's run
  //   passes it any more: then its id becomes 0 (an empty slot, reused after a grace period,
  //   as below); without probing, the
  //   slot is empty again, reused only after a grace period (LiveTables), so no reader still
  //   holding its old id meets a new key;
  // - a new id for a key: one aligned 32-bit store.
  // Tombstones count as keys (fullness regenerates the table) until a key is written there.
  void set_live(LiveTables* live) { live_ = live; }
  bool live() const { return live_ != nullptr; }
  size_t tombstones() const { return tombstones_.size(); }

  // The mixing of the fields before the hash, as the generated code does it.
  static uint64_t mix(const uint64_t* fields, size_t n);
  uint64_t slot_of(const uint64_t* fields) const;

 private:
  friend class TableLog;
  explicit HashNode(const Branch& b) : branch_(&b) {}
  bool same_shape(const Node& leaf, const std::vector<Step>& steps) const;
  void key_of(const std::vector<Step>& steps, uint64_t* fields) const;
  // The steps from the branch to `leaf`; false if `leaf` is not below it in the node's shape.
  bool path_of(const Node& leaf, std::vector<Step>* steps) const;
  bool place(const uint64_t* fields, uint32_t id, TableLog* log);
  void allocate(unsigned log2_slots);
  // Empties the table. Without collisions (one slot checked, no probing) an empty slot holds a
  // key that hashes elsewhere, so no packet's key can equal it: the code needs no empty check.
  void clear();
  void empty_slot(size_t slot);
  size_t find(const uint64_t* fields) const;  // slot, or SIZE_MAX
  // Whether the slot holds a key (or a tombstone): with probing its id is not 0; without, its
  // key hashes to it (empty slots hold keys that hash elsewhere; a removed key's id may stay).
  bool occupied(size_t slot) const;
  void read_key(size_t slot, uint64_t* fields) const;
  // The live protocol (set_live): writes into a slot readers may be probing.
  void store_field(size_t slot, size_t j, uint64_t v);
  void store_id(size_t slot, uint32_t id);
  bool write_live(size_t slot, const uint64_t* fields, uint32_t id);
  // Whether a key may be written into the tombstone at `slot` (checked before anything is).
  bool can_reuse(size_t slot, const uint64_t* fields) const;
  bool reuse_tombstone(size_t slot, const uint64_t* fields, uint32_t id);
  // The tombstones of `slot`'s cluster that no key's probe run passes any more become empty
  // slots (id 0), quarantined until a grace period (emptied_) like the slots of a table
  // without probing; the others wait for a key to take them.
  void clear_tombstones(size_t slot, TableLog* log);
  // Whether a reader comparing in compare_order() while the writer stores `to`'s fields over
  // `from`'s in the reverse order could assemble a key (neither whole one) that reaches `slot`.
  bool mix_reaches(const uint64_t* from, const uint64_t* to, size_t slot) const;
  bool erase_live(size_t slot);
  // A key for slot `slot` to hold instead of `old` that no packet reaching the slot can match,
  // nor any mix of its fields with old's (probing reaches `slot` from the window before it).
  bool reaches(const uint64_t* fields, size_t slot) const;
  // The one-field change (field, value) that makes `key` in `slot` a key no packet reaching the
  // slot can have; false when there is none (a small table probed far: every key reaches).
  bool tombstone_key(size_t slot, const uint64_t* key, size_t* field, uint64_t* value) const;
  bool erasable_live(size_t slot) const;
  void restore(size_t slot, const uint8_t* bytes);
  uint8_t* entry(size_t slot) { return table_ + slot * stride_; }
  size_t total_slots() const { return (size_t(1) << log2_slots_) + kMaxProbe; }

  const Branch* branch_;
  std::vector<Step> shape_;
  std::vector<std::vector<Member>> members_;  // per Eq step of the shape (else empty)
  std::vector<Field> fields_;
  std::vector<uint32_t> segment_need_;  // per segment: the bytes its steps load
  unsigned segments_ = 1;
  unsigned stride_ = 16, id_offset_ = 0;
  unsigned log2_slots_ = 3;
  HashKind kind_ = HashKind::Multiply;
  uint64_t param_ = 0;
  unsigned window_field_ = 0;
  unsigned max_probe_ = 0;
  uint64_t high_ = 0;
  uint64_t assumed_best_ = 0;
  size_t count_ = 0;
  size_t built_ = 0;  // keys placed when the table was built
  std::vector<uint64_t> overflow_;
  LiveTables* live_ = nullptr;
  std::unordered_map<size_t, uint64_t> emptied_;  // live slots emptied: their batch
  std::unordered_set<size_t> tombstones_;         // live slots whose key was removed (with probing)
  std::unique_ptr<uint8_t[]> storage_;
  uint8_t* table_ = nullptr;  // 64-byte aligned, (slots + kMaxProbe) entries
};

}  // namespace exojit::dpf::detail
