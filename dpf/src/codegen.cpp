// SPDX-License-Identifier: MIT
// The trie compiled to vcode (DPF paper, section 3): one basic block per atom, filter constants
// as immediates, disjunctions as compares, binary search or a hash table, adjacent == atoms
// coalesced into wider loads, constant SHIFTs already folded into offsets (canonical.cpp) and
// one bounds check per SHIFT.
//
// Bounds: each branch knows `must`, the bytes (from its segment's base) that every filter
// accepted below it loads. A branch whose `must` exceeds what is already checked on the path
// checks the packet's remaining length once, and a failing check skips the branch: nothing below
// could accept. A SHIFT checks its amount plus what its child needs, for any amount: one compare
// when amount + need cannot wrap (the amount's upper bound says so), two otherwise.
//
// Registers: the packet, its length and the best filter so far live in registers, and so does
// the first segment after a SHIFT when enough registers remain for anything below it (kReserve);
// deeper segments live in stack slots (one per depth) and are loaded where used. Expressions
// need at most kMaxExprRegs registers (canonical.h, Sethi-Ullman order), hash nodes are used
// only where their registers are free: no filter set runs out of registers.
#include <exojit/vcode/builder.h>

#include <algorithm>
#include <bit>
#include <optional>

#include "codegen_bounds_p.h"
#include "codegen_expr_p.h"
#include "codegen_p.h"
#include "codegen_recorded_p.h"
#include "codegen_registers_p.h"
#include "exojit/error.h"

namespace exojit::dpf::detail {

namespace {

using vcode::Builder;
using vcode::Label;
using vcode::Local;
using vcode::Reg;
using vcode::RegClass;
using vcode::Type;

// Registers that must be free wherever a node's code starts: an expression (kMaxExprRegs, one
// more while widening), the segment's base loaded from its slot, one for a SHIFT's check.
constexpr int kReserve = int(kMaxExprRegs) + 3;

uint32_t compute_must(Node& n);

// Also each subtree's best accept, so that code which sets the best filter of everything that
// can still run returns at once.
uint32_t compute_must(Branch& b) {
  uint32_t own = load_end(b.expr);
  uint32_t below = ~0u;
  b.subtree_best = kNoFilter;
  for (auto& [k, child] : b.children) {
    below = std::min(below, compute_must(*child));
    b.subtree_best = std::min(b.subtree_best, child->subtree_best);
  }
  b.must = b.kind == Atom::Kind::Shift ? own : std::max(own, below);
  return b.must;
}

uint32_t compute_must(Node& n) {
  uint32_t m = ~0u;
  n.subtree_best = n.best_accept();
  for (auto& b : n.branches) {
    m = std::min(m, compute_must(*b));
    n.subtree_best = std::min(n.subtree_best, b->subtree_best);
  }
  n.must = n.accepts.empty() && !n.branches.empty() ? m : 0;
  return n.must;
}

// A big-endian value of `bytes` bytes as a native load of its bytes reads it.
uint64_t in_memory_order(uint64_t v, unsigned bytes) {
  if constexpr (std::endian::native == std::endian::big) return v;
  return bytes == 1 ? v : __builtin_bswap64(v) >> (64 - 8 * bytes);
}

// A segment: the packet from the current base on.
struct Seg {
  Reg base;    // p: the current base of the packet (invalid when spilled)
  Reg rem;     // u64: bytes from base to the end of the packet (invalid when spilled)
  Local slot;  // spilled: base at offset 0, rem at 8
  bool spilled = false;
  uint32_t checked = 0;  // bytes from base known to be inside the packet
  unsigned align = 1;    // known alignment of base (the estimate; informational on x86-64)
  unsigned depth = 0;    // SHIFTs from the packet's start
};

class Gen {
 public:
  Gen(Generated& out, const CodegenOptions& o, bool calls)
      : out_(out),
        options_(o),
        calls_(calls),
        b_(out.module, "dpf_demux", Type::U64, {Type::P, Type::U64},
           calls ? std::vector<RegClass>{RegClass::Var, RegClass::Var} : std::vector<RegClass>{}),
        regs_(b_, calls),
        expr_(b_, regs_),
        bounds_(b_, regs_, o.harden) {
    if (calls) recorded_ = out.module.add_extern("dpf_recorded", options_.recorded);
  }

  void run(Node& root) {
    compute_must(root);
    best_ = get_long(Type::U64);
    b_.name(best_, "best");
    size_t init = b_.function().code.size();
    b_.set(best_, int64_t(kNoFilter));
    b_.own_constant();
    b_.name(b_.arg(0), "pkt");
    b_.name(b_.arg(1), "len");
    Seg root_seg;
    root_seg.base = b_.arg(0), root_seg.rem = b_.arg(1);
    root_seg.align = options_.packet_alignment;
    node(root, root_seg, kNoFilter);
    if (!best_none_) {
      b_.ret(best_);
      b_.finish();
    } else {
      // No path stores to `best` (every accept returned at once): it is never read, and its
      // initialisation goes (the function is verified again when compiled).
      b_.ret(int64_t(kNoFilter));
      b_.own_constant();
      vcode::Function& f = b_.finish();
      f.code.erase(f.code.begin() + long(init));
      f.verified = false;
    }
    out_.instructions = b_.function().code.size();
  }

 private:
  Reg get(Type t) { return regs_.get(t); }
  Reg get_long(Type t) { return regs_.get_long(t); }
  int free_regs() const { return regs_.free(); }
  void put(Reg r) { regs_.put(r); }

  // The segment's base and remaining length in registers: its own, or loaded from its slot for
  // the caller's use (release() gives them back).
  Reg base_of(const Seg& s) {
    if (!s.spilled) return s.base;
    Reg r = get(Type::P);
    b_.ld(r, s.slot, 0);
    return r;
  }
  Reg rem_of(const Seg& s) {
    if (!s.spilled) return s.rem;
    Reg r = get(Type::U64);
    b_.ld(r, s.slot, 8);
    return r;
  }
  void release(const Seg& s, Reg r) {
    if (s.spilled) put(r);
  }
  // The segment's remaining length when `e` reads LEN, else none (release_length gives it back).
  Reg length_for(const Seg& s, const ExprPtr& e) { return reads_length(e) ? rem_of(s) : Reg{}; }
  void release_length(const Seg& s, Reg r) {
    if (r.valid()) release(s, r);
  }

  // Filter `key` accepts. `after`: the best accept of all code that can still run after this
  // point (code is emitted in walk order and jumps only forward). Returns true when nothing
  // after can do better: the code has returned.
  bool accept(uint64_t key, uint64_t after) {
    if (records(key)) needs_mutex(0, std::nullopt);
    bool last = key < after;
    if (best_none_ && last) {
      b_.ret(int64_t(key));
      return true;
    }
    if (best_none_) {
      b_.set(best_, int64_t(key));
    } else {
      Label skip = b_.label();
      b_.ble(best_, int64_t(key), skip);
      b_.set(best_, int64_t(key));
      b_.place(skip);
    }
    best_none_ = false;
    if (last) b_.ret(best_);
    return last;
  }

  void node(Node& n, const Seg& s, uint64_t after) {
    // after_i: the best of what follows branch i (later branches, then `after`).
    std::vector<uint64_t> later(n.branches.size() + 1, after);
    for (size_t i = n.branches.size(); i-- > 0;)
      later[i] = std::min(later[i + 1], n.branches[i]->subtree_best);
    if (uint64_t k = n.best_accept(); k != kNoFilter && accept(k, later[0])) return;
    for (size_t i = 0; i < n.branches.size(); ++i) {
      Label next = b_.label();
      branch(*n.branches[i], s, next, later[i + 1]);
      b_.place(next);
    }
  }

  void branch(Branch& br, Seg s, Label fail, uint64_t after) {
    if (br.must > s.checked) {
      Reg rem = rem_of(s);
      Reg base = bounds_.hardened() ? base_of(s) : Reg{};  // guarded: in the slot too if spilled
      bounds_.check_length(base, rem, br.must, fail);
      if (base.valid()) {
        if (s.spilled) b_.st(base, s.slot, 0);
        release(s, base);
      }
      release(s, rem);
      s.checked = br.must;
    }
    if (br.kind == Atom::Kind::Shift) return shift(br, s, fail, after);
    if (br.kind == Atom::Kind::Recorded) return recorded(br, s, after);
    if (br.kind != Atom::Kind::Compare) fail_unsupported(br);
    if (br.children.size() == 1) return chain(br, s, fail, after);
    if (br.children.size() > 3 && !records_below(br)) {
      if (auto h = HashNode::plan(br, options_.strict_alignment);
          h && free_regs() >= hash_registers(*h, s) && h->choose(br.hash)) {
        h->set_assumed_best(br.subtree_best);
        HashNode* raw = h.get();
        out_.tables.push_back(std::move(h));
        out_.hashed.emplace_back(&br, raw);
        return hash(*raw, br, s, fail, after);
      }
    }
    std::vector<uint64_t> keys;
    for (auto& [k, child] : br.children) keys.push_back(k);
    disjunction(br, keys, s, fail, after);
  }

  // A disjunction over `keys` (some of br's constants): dispatch on the value (compares, or a
  // binary search over sorted keys), then each child's code. The children exclude each other:
  // each continues at `fail`.
  void disjunction(Branch& br, const std::vector<uint64_t>& keys, const Seg& s, Label fail,
                   uint64_t after) {
    Reg base = base_of(s), rem = length_for(s, br.expr);
    Value v = expr_.eval(br.expr, base, rem);
    release(s, base);
    release_length(s, rem);
    std::vector<std::pair<uint64_t, Label>> targets;
    for (uint64_t k : keys) targets.emplace_back(k, b_.label());
    search(v.reg, targets, 0, targets.size(), fail);
    put(v.reg);
    bool none_before = best_none_;
    bool none_after = best_none_;
    for (size_t i = 0; i < keys.size(); ++i) {
      b_.place(targets[i].second);
      best_none_ = none_before;  // no child runs after another
      node(*br.children.at(keys[i]), s, after);
      none_after = none_after && best_none_;
      if (i + 1 < keys.size()) b_.jmp(fail);
    }
    best_none_ = none_after;
  }

  // RECORDED(e): one call per filter id below (ids do not exclude each other). The value lives
  // in a stack slot across the calls.
  void recorded(Branch& br, const Seg& s, uint64_t after) {
    Reg base = base_of(s), rem = length_for(s, br.expr);
    Value v = expr_.widen(expr_.eval(br.expr, base, rem));
    release(s, base);
    release_length(s, rem);
    Local value = slot(recorded_slots_, recorded_depth_++, 8);
    b_.st(v.reg, value, 0);
    put(v.reg);
    std::vector<uint64_t> later(br.children.size() + 1, after);
    size_t i = br.children.size();
    for (auto it = br.children.rbegin(); it != br.children.rend(); ++it, --i)
      later[i - 1] = std::min(later[i], it->second->subtree_best);
    i = 0;
    for (auto& [id, child] : br.children) {
      Label skip = b_.label();
      needs_mutex(id, value, skip);
      bool none = best_none_;
      node(*child, s, later[++i]);
      best_none_ = best_none_ && none;
      b_.place(skip);
    }
    --recorded_depth_;
  }

  // Calls the engine's lookup for RECORDED(`id`) on the value in `value` (id 0: no lookup, the
  // accept of a recording filter follows): 0 jumps to `fail`, 2 (the engine's mutex is not held)
  // returns kNeedsMutex, 1 goes on.
  void needs_mutex(uint64_t id, std::optional<Local> value, Label fail = {}) {
    call_recorded(b_, regs_, recorded_, options_.recorded_state, id, value, fail);
  }

  bool records(uint64_t key) const {
    return options_.recording && options_.recording->count(uint32_t(key));
  }
  // Does a recording filter accept anywhere below `br`? (then it is not hashed)
  bool records_below(const Branch& br) const {
    if (!options_.recording || options_.recording->empty()) return false;
    for (auto& [k, child] : br.children) {
      for (uint64_t a : child->accepts)
        if (records(a)) return true;
      for (auto& b : child->branches)
        if (records_below(*b)) return true;
    }
    return false;
  }

  // A stack slot of `bytes` per depth, reused by every subtree at that depth (they run one after
  // the other).
  Local slot(std::vector<Local>& slots, size_t depth, uint32_t bytes) {
    while (slots.size() <= depth) slots.push_back(b_.local(bytes, 8));
    return slots[depth];
  }

  [[noreturn]] void fail_unsupported(const Branch& br) {
    fail("dpf: internal: atom `{}` is not supported by the code generator", to_string(br.expr));
  }

  void search(Reg v, const std::vector<std::pair<uint64_t, Label>>& keys, size_t lo, size_t hi,
              Label miss) {
    if (hi - lo <= 3) {
      for (size_t i = lo; i < hi; ++i) b_.beq(v, int64_t(keys[i].first), keys[i].second);
      b_.jmp(miss);
      return;
    }
    size_t mid = (lo + hi) / 2;
    Label right = b_.label();
    b_.bge(v, int64_t(keys[mid].first), right);
    search(v, keys, lo, mid, miss);
    b_.place(right);
    search(v, keys, mid, hi, miss);
  }

  // A run of single-constant compares in one segment, adjacent == fields coalesced. Length
  // atoms need no code: the branch's bounds check covers every load of the chain.
  void chain(Branch& br, const Seg& s, Label fail, uint64_t after) {
    std::vector<Step> steps{Step{Atom::Kind::Compare, br.cmp, br.expr, br.children.begin()->first}};
    Node* end = const_cast<Node*>(follow_chain(br.children.begin()->second.get(), false, &steps));
    struct Plain {
      size_t step;
      uint32_t offset;
      unsigned bytes;
      uint64_t mask;
    };
    std::vector<Plain> plain;
    std::vector<size_t> other;
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& st = steps[i];
      if (is_length_test(st.kind, st.cmp, st.expr, st.value)) continue;
      Plain p{i, 0, 0, ~uint64_t(0)};
      if (st.cmp == Cmp::Eq && plain_field(st.expr, &p.offset, &p.bytes, &p.mask))
        plain.push_back(p);
      else
        other.push_back(i);
    }
    Reg base = base_of(s);
    std::sort(plain.begin(), plain.end(), [](auto& x, auto& y) { return x.offset < y.offset; });
    for (size_t g = 0; g < plain.size();) {
      uint32_t start, stop;
      size_t last = coalesce_run(plain, g, &start, &stop);
      unsigned width = std::bit_ceil(stop - start);
      uint32_t wstart = start + width <= s.checked ? start : stop >= width ? stop - width : 0;
      // On targets that trap on unaligned loads, only a load the alignment estimate proves
      // aligned (the base's known alignment, through the SHIFTs, and the offset).
      bool aligned = !options_.strict_alignment || (s.align >= width && wstart % width == 0);
      bool fits = true;  // (a constant wider than its field: left to branch_unless)
      for (size_t i = g; i <= last; ++i)
        fits = fits && steps[plain[i].step].value <= ones(plain[i].bytes * 8);
      if (!fits || !aligned || wstart + width > s.checked || wstart + width < stop) {
        for (size_t i = g; i <= last; ++i) other.push_back(plain[i].step);
        g = last + 1;
        continue;
      }
      uint64_t mask = 0, value = 0;
      for (size_t i = g; i <= last; ++i) {
        unsigned shift = (wstart + width - plain[i].offset - plain[i].bytes) * 8;
        mask |= (plain[i].mask & ones(plain[i].bytes * 8)) << shift;
        value |= steps[plain[i].step].value << shift;
      }
      // Equality needs no byte order: the bytes loaded as they are (no byte swap), compared with
      // the constant in the same order. (Hardened, that also puts fewer constants beyond a byte
      // into the code: the EtherType 0x0800 is compared as 8.)
      Reg r = get(load_type(width * 8));
      if (width == 1)
        b_.ld(r, base, wstart);
      else
        b_.ldu(r, base, wstart);
      if (mask != ones(width * 8)) b_.and_(r, r, int64_t(in_memory_order(mask, width)));
      b_.bne(r, int64_t(in_memory_order(value, width)), fail);
      put(r);
      g = last + 1;
    }
    std::sort(other.begin(), other.end());
    bool length = false;
    for (size_t i : other) length = length || reads_length(steps[i].expr);
    Reg rem = length ? rem_of(s) : Reg{};
    for (size_t i : other) {
      Value v = expr_.eval(steps[i].expr, base, rem);
      expr_.branch_unless(steps[i].cmp, v.reg, steps[i].value, fail);
      put(v.reg);
    }
    release_length(s, rem);
    release(s, base);
    node(*end, s, after);
  }

  // SHIFT: one check covers the amount and the bytes the child needs after it.
  void shift(Branch& br, const Seg& s, Label fail, uint64_t after) {
    Node& child = *br.children.begin()->second;
    Reg base = base_of(s);
    Reg rem = rem_of(s);
    Value amount = expr_.widen(expr_.eval(br.expr, base, rem));
    Reg nb = bounds_.shifted_base(base, amount.reg, upper_bound(br.expr), child.must, rem, fail);
    Seg n;
    n.checked = child.must;
    n.depth = s.depth + 1;
    n.align = std::min(s.align, known_alignment(br.expr));
    // The new segment stays in registers while enough remain for anything below it: what is
    // free once the amount (and the parent's base and length loaded from its slot) are given
    // back and the new length taken (without calls, get_long is get).
    bool resident = !calls_ && free_regs() + (s.spilled ? 2 : 0) >= kReserve;
    Reg nr = resident ? get_long(Type::U64) : get(Type::U64);
    b_.sub(nr, rem, amount.reg);
    put(amount.reg);
    release(s, base);
    release(s, rem);
    if (resident) {
      n.base = nb, n.rem = nr;
    } else {
      n.spilled = true;
      n.slot = slot(segment_slots_, n.depth, 16);
      b_.st(nb, n.slot, 0);
      b_.st(nr, n.slot, 8);
      put(nb), put(nr);
    }
    node(child, n, after);
    if (resident) put(n.base), put(n.rem);
  }

  // The registers hash() holds at its peak, beyond what is live around it.
  static int hash_registers(const HashNode& h, const Seg& s) {
    int peak = int(h.fields().size()) + 3;  // mixing: the fields, x, a temporary; probe: id, v
    unsigned segment = 0;
    int held = 0;
    for (const Step& step : h.shape()) {
      if (step.kind != Atom::Kind::Shift) continue;
      for (const auto& f : h.fields())
        if (f.segment == segment) ++held;
      // fields held, the chain segment's base and rem, amount (and its widening), the check's
      // temporary, the new base and rem (hardened: the check's registers and one more while the
      // new base is guarded, before its rem is taken: as many)
      peak = std::max(peak, held + 7);
      ++segment;
    }
    // A field on LEN holds its segment's length while the fields load.
    for (const auto& f : h.fields())
      if (reads_length(f.expr)) {
        ++peak;
        break;
      }
    return peak + (s.spilled ? 2 : 0);
  }

  // A hash node: load the key's fields (through the chain's SHIFTs), hash, probe, compare. A
  // miss continues with the overflow constants' code, if any.
  void hash(HashNode& h, Branch& br, const Seg& s0, Label fail, uint64_t after) {
    const auto& fields = h.fields();
    std::vector<Value> f(fields.size());
    auto reads_length_in = [&](unsigned seg) {
      for (const auto& fld : fields)
        if (fld.segment == seg && reads_length(fld.expr)) return true;
      return false;
    };
    auto load_segment = [&](unsigned seg, Reg base, Reg rem) {
      for (size_t j = 0; j < fields.size(); ++j)
        if (fields[j].segment == seg) {
          Value v = expr_.eval(fields[j].expr, base, rem);
          Type want = fields[j].bytes == 8 ? Type::U64 : Type::U32;
          if (v.type != want) {
            Reg w = get(want);
            b_.cvt(w, v.reg);
            put(v.reg);
            v = Value{w, want};
          }
          f[j] = v;
        }
    };
    Label miss = h.overflow().empty() ? fail : b_.label();
    Reg base0 = base_of(s0);
    // The first segment's length: for its fields on LEN, then for the first SHIFT.
    Reg rem0 = reads_length_in(0) || h.segments() > 1 ? rem_of(s0) : Reg{};
    load_segment(0, base0, rem0);
    // The chain's segments: base and rem in registers while their fields load.
    Reg base = base0, rem = rem0;
    bool owned = false;  // base/rem are this chain's (not s0's)
    unsigned segment = 0;
    for (const Step& step : h.shape()) {
      if (step.kind != Atom::Kind::Shift) continue;
      Value amount = expr_.widen(expr_.eval(step.expr, base, rem));
      Reg nb = bounds_.shifted_base(base, amount.reg, upper_bound(step.expr),
                                    h.segment_need(segment + 1), rem, miss);
      // The next segment's length, for a SHIFT after it or a field on LEN in it (the last
      // segment's bounds check is done).
      Reg nr{};
      if (segment + 2 < h.segments() || reads_length_in(segment + 1)) {
        nr = get(Type::U64);
        b_.sub(nr, rem, amount.reg);
      }
      put(amount.reg);
      if (owned) {
        put(base);
        if (rem.valid()) put(rem);
      } else {
        release_length(s0, rem);
      }
      base = nb, rem = nr, owned = true;
      load_segment(++segment, base, rem);
    }
    if (owned) {
      put(base);
      if (rem.valid()) put(rem);
    } else {
      release_length(s0, rem);
    }
    release(s0, base0);
    // The slot's byte offset: the hash chosen for the keys, times the entry size.
    // x becomes the entry's address (a pointer register from the start: one register less).
    unsigned stride_bits = unsigned(std::countr_zero(h.stride()));
    Reg x = get(Type::P);
    if (h.kind() == HashNode::HashKind::Window) {
      // A window inside one byte of a plain field in the first segment: load that byte from the
      // packet (off the dependency chain of the wide field load).
      const HashNode::Field& wf = fields[h.window_field()];
      unsigned sh = unsigned(h.param());
      uint32_t offset = 0;
      unsigned bytes = 0;
      uint64_t mask = 0;
      uint64_t window = ones(h.log2_slots()) << sh;
      bool byte = wf.segment == 0 && plain_field(wf.expr, &offset, &bytes, &mask) &&
                  sh % 8 + h.log2_slots() <= 8 && (mask & window) == window && sh / 8 < bytes;
      if (byte) {
        Reg v = get(Type::U8);
        Reg b0 = base_of(s0);
        b_.ld(v, b0, int64_t(offset + bytes - 1 - sh / 8));
        release(s0, b0);
        b_.cvt(x, v);
        put(v);
        sh %= 8;
      } else {
        b_.cvt(x, f[h.window_field()].reg);
      }
      int64_t shift = int64_t(sh) - int64_t(stride_bits);
      if (shift > 0) b_.rsh(x, x, shift);
      if (shift < 0) b_.lsh(x, x, -shift);
      b_.and_(x, x, int64_t(ones(h.log2_slots()) << stride_bits));
      b_.own_constant();
    } else {
      b_.cvt(x, f[0].reg);
      for (size_t j = 1; j < f.size(); ++j) {
        Reg t = get(Type::P);
        b_.cvt(t, f[j].reg);
        if (j % 2) b_.lsh(t, t, 32);
        b_.xor_(x, x, t);
        put(t);
      }
      if (h.kind() == HashNode::HashKind::XorShift) {
        Reg t = get(Type::P);
        b_.rsh(t, x, int64_t(h.param()));
        b_.xor_(x, x, t);
        put(t);
        b_.and_(x, x, int64_t(ones(h.log2_slots())));
      } else {
        b_.mul(x, x, int64_t(h.param()));  // one of HashNode's fixed multipliers
      }
      b_.own_constant();
      if (h.kind() == HashNode::HashKind::Multiply) b_.rsh(x, x, int64_t(64 - h.log2_slots()));
      b_.lsh(x, x, int64_t(stride_bits));
    }
    b_.add(x, x, int64_t(reinterpret_cast<uintptr_t>(h.table())));
    b_.own_constant();
    // Probe. With probing, an empty slot (id 0) ends the sequence. Without collisions among
    // the keys there is one slot to check and no empty check (see HashNode::clear).
    Reg id = h.max_probe() > 0 ? get(Type::U32) : Reg{};
    Label hit = b_.label();
    for (unsigned d = 0; d <= h.max_probe(); ++d) {
      int64_t at = int64_t(d) * h.stride();
      bool last = d == h.max_probe();
      Label next = last ? miss : b_.label();
      if (h.max_probe() > 0) {
        b_.ld(id, x, at + h.id_offset());
        b_.own_constant();
        b_.beq(id, 0, miss);
      }
      // In the order the table's writers rely on (HashNode::set_live).
      for (size_t j : h.compare_order()) {
        Reg v = get(f[j].type);
        b_.ld(v, x, at + fields[j].offset);
        b_.own_constant();
        b_.bne(v, f[j].reg, next);
        put(v);
      }
      if (last) {
        if (!id.valid()) {
          id = get(Type::U32);
          b_.ld(id, x, at + h.id_offset());
          b_.own_constant();
        }
      } else {
        b_.jmp(hit);
        b_.place(next);
      }
    }
    b_.place(hit);
    for (Value& v : f) put(v.reg);
    put(x);
    Reg k = get(Type::U64);
    b_.cvt(k, id);
    put(id);
    // The function's result is the filter id in the low half (the high half orders accepts
    // inside the code and is not needed once the code returns).
    uint64_t worst = h.priority_high() << 32 | 0xffffffffu;
    bool none_before = best_none_;
    bool returned = false;
    if (best_none_ && worst < after) {
      b_.ret(k);  // `best` untouched: the miss path still has none
      returned = true;
    } else {
      b_.or_(k, k, int64_t(h.priority_high() << 32));
      if (best_none_) {
        b_.mov(best_, k);
      } else {
        Label skip = b_.label();
        b_.ble(best_, k, skip);
        b_.mov(best_, k);
        b_.place(skip);
      }
      if (worst < after) {
        b_.ret(best_);
        returned = true;
      }
      best_none_ = false;
    }
    put(k);
    if (h.overflow().empty()) return;
    // A key the table could not take: its constant's code, after a miss.
    if (!returned) b_.jmp(fail);
    bool none_hit = best_none_;
    best_none_ = none_before;
    b_.place(miss);
    disjunction(br, h.overflow(), s0, fail, after);
    best_none_ = best_none_ && none_hit;
  }

  Generated& out_;
  const CodegenOptions& options_;
  bool calls_;
  uint32_t recorded_ = 0;  // extern index of the RECORDED lookup
  Builder b_;
  RegisterBudget regs_;
  ExprLowering expr_;
  BoundsChecks bounds_;
  Reg best_;
  bool best_none_ = true;              // no accept emitted yet: `best` still holds kNoFilter
  std::vector<Local> segment_slots_;   // per depth
  std::vector<Local> recorded_slots_;  // per nesting of RECORDED atoms
  size_t recorded_depth_ = 0;
};

bool has_recorded(const Node& n) {
  for (auto& b : n.branches) {
    if (b->kind == Atom::Kind::Recorded) return true;
    for (auto& [k, child] : b->children)
      if (has_recorded(*child)) return true;
  }
  return false;
}

}  // namespace

Generated generate(Trie& trie, const CodegenOptions& options) {
  Generated out;
  bool calls = has_recorded(trie.root()) || (options.recording && !options.recording->empty());
  if (calls && !options.recorded) fail("dpf: RECORDED atoms need the engine's state");
  Gen(out, options, calls).run(trie.root());
  return out;
}

}  // namespace exojit::dpf::detail
