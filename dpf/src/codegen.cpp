// The trie compiled to vcode (DPF paper, section 3): one basic block per atom, filter constants
// as immediates, disjunctions as compares, binary search or a hash table, adjacent == atoms
// coalesced into wider loads, constant SHIFTs already folded into offsets (canonical.cpp) and
// one bounds check per SHIFT.
//
// Bounds: each branch knows `must`, the bytes (from its segment's base) that every filter
// accepted below it loads. A branch whose `must` exceeds what is already checked on the path
// checks the packet's remaining length once, and a failing check skips the branch: nothing below
// could accept. A SHIFT checks its amount plus what its child needs in one compare.
#include "codegen.h"

#include <exojit/vcode/builder.h>

#include <algorithm>
#include <bit>

#include "exojit/error.h"

namespace exojit::dpf::detail {

namespace {

using vcode::Builder;
using vcode::Label;
using vcode::Reg;
using vcode::RegClass;
using vcode::Type;

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

Type load_type(unsigned bits) {
  return bits == 8 ? Type::U8 : bits == 16 ? Type::U16 : bits == 32 ? Type::U32 : Type::U64;
}

uint64_t ones(unsigned bits) {
  return bits >= 64 ? ~uint64_t(0) : (uint64_t(1) << bits) - 1;
}

struct Seg {
  Reg base;          // p: the current base of the packet
  Reg rem;           // u64: bytes from base to the end of the packet
  uint32_t checked;  // bytes from base known to be inside the packet
  unsigned align;    // known alignment of base (the estimate; informational on x86-64)
};

struct Value {
  Reg reg;
  Type type;
};

class Gen {
 public:
  Gen(Generated& out, const CodegenOptions& o, bool calls)
      : out_(out),
        options_(o),
        calls_(calls),
        b_(out.module, "dpf_demux", Type::U64, {Type::P, Type::U64},
           calls ? std::vector<RegClass>{RegClass::Var, RegClass::Var} : std::vector<RegClass>{}) {
    if (calls) {
      temps_ = 0, vars_ = 2;
      recorded_ = out.module.add_extern("dpf_recorded", options_.recorded);
    }
  }

  void run(Node& root) {
    compute_must(root);
    best_ = get_long(Type::U64);
    b_.name(best_, "best");
    size_t init = b_.function().code.size();
    b_.set(best_, int64_t(kNoFilter));
    b_.name(b_.arg(0), "pkt");
    b_.name(b_.arg(1), "len");
    node(root, Seg{b_.arg(0), b_.arg(1), 0, options_.packet_alignment}, kNoFilter);
    if (!best_none_) {
      b_.ret(best_);
      b_.finish();
      return;
    }
    // No path stores to `best` (every accept returned at once): it is never read, and its
    // initialisation goes (the function is verified again when compiled).
    b_.ret(int64_t(kNoFilter));
    vcode::Function& f = b_.finish();
    f.code.erase(f.code.begin() + long(init));
    f.verified = false;
  }

 private:
  // Registers: temporaries first (caller-saved, free to use in a leaf), then variables.
  Reg get(Type t) {
    if (temps_ < vcode::kIntTemps) return ++temps_, b_.getreg(t, RegClass::Temp);
    if (vars_ < vcode::kIntVars) return ++vars_, b_.getreg(t, RegClass::Var);
    fail("dpf: the filters need more than {} live values (too many nested SHIFTs or fields)",
         vcode::kIntTemps + vcode::kIntVars);
  }
  // A value that lives across calls when the code makes calls (RECORDED atoms).
  Reg get_long(Type t) {
    if (calls_ && vars_ < vcode::kIntVars) return ++vars_, b_.getreg(t, RegClass::Var);
    if (calls_) fail("dpf: too many nested SHIFTs around RECORDED atoms");
    return get(t);
  }

  void put(Reg r) {
    if (b_.function().reg(r.id).cls == RegClass::Temp)
      --temps_;
    else
      --vars_;
    b_.putreg(r);
  }

  Value widen(Value v) {
    if (v.type == Type::U64) return v;
    Reg w = get(Type::U64);
    b_.cvt(w, v.reg);
    put(v.reg);
    return Value{w, Type::U64};
  }

  Value eval(const ExprPtr& e, const Seg& s) {
    switch (e->op) {
      case ExprOp::Const: {
        Reg r = get(Type::U64);
        b_.set(r, int64_t(e->value));
        return Value{r, Type::U64};
      }
      case ExprOp::Load: {
        Type t = load_type(e->bits);
        Reg r = get(t);
        if (t == Type::U8)
          b_.ld(r, s.base, e->offset);
        else
          b_.ldbe(r, s.base, e->offset);
        return Value{r, t};
      }
      case ExprOp::Len: {  // the bytes from the base to the end: the segment's `rem`
        Reg r = get(Type::U64);
        b_.mov(r, s.rem);
        return Value{r, Type::U64};
      }
      default:
        break;
    }
    Value a = eval(e->a, s);
    bool narrow_ok =
        e->op == ExprOp::And || e->op == ExprOp::Or || e->op == ExprOp::Xor || e->op == ExprOp::Rsh;
    if (e->b->op == ExprOp::Const) {
      uint64_t c = e->b->value;
      if (!narrow_ok || c > ones(vcode::type_bits(a.type))) a = widen(a);
      binary(e->op, a.reg, a.reg, int64_t(c));
      return a;
    }
    Value b = eval(e->b, s);
    if (!narrow_ok || a.type != b.type) a = widen(a), b = widen(b);
    binary(e->op, a.reg, a.reg, b.reg);
    put(b.reg);
    return a;
  }

  template <typename B>
  void binary(ExprOp op, Reg d, Reg a, B b) {
    switch (op) {
      case ExprOp::And:
        return b_.and_(d, a, b);
      case ExprOp::Or:
        return b_.or_(d, a, b);
      case ExprOp::Xor:
        return b_.xor_(d, a, b);
      case ExprOp::Add:
        return b_.add(d, a, b);
      case ExprOp::Sub:
        return b_.sub(d, a, b);
      case ExprOp::Mul:
        return b_.mul(d, a, b);
      case ExprOp::Lsh:
        return b_.lsh(d, a, b);
      case ExprOp::Rsh:
        return b_.rsh(d, a, b);
      default:
        fail("dpf: internal: not a binary operator");
    }
  }

  // Branches to `target` when `v cmp k` does not hold.
  void branch_unless(Cmp cmp, Reg v, uint64_t k, Label target) {
    if (k > ones(vcode::type_bits(b_.function().reg(v.id).type))) {
      // A constant above every value of v's width: decided here (an immediate of that width
      // would be truncated).
      if (cmp == Cmp::Eq || cmp == Cmp::Gt || cmp == Cmp::Ge) b_.jmp(target);
      return;
    }
    int64_t i = int64_t(k);
    switch (cmp) {
      case Cmp::Eq:
        return b_.bne(v, i, target);
      case Cmp::Ne:
        return b_.beq(v, i, target);
      case Cmp::Lt:
        return b_.bge(v, i, target);
      case Cmp::Le:
        return b_.bgt(v, i, target);
      case Cmp::Gt:
        return b_.ble(v, i, target);
      case Cmp::Ge:
        return b_.blt(v, i, target);
    }
  }

  // Filter `key` accepts. `after`: the best accept of all code that can still run after this
  // point (code is emitted in walk order and jumps only forward). Returns true when nothing
  // after can do better: the code has returned.
  bool accept(uint64_t key, uint64_t after) {
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
      b_.blt(s.rem, int64_t(br.must), fail);
      s.checked = br.must;
    }
    if (br.kind == Atom::Kind::Shift) return shift(br, s, fail, after);
    if (br.kind == Atom::Kind::Recorded) return recorded(br, s, after);
    if (br.kind != Atom::Kind::Compare) fail_unsupported(br);
    if (br.children.size() == 1) return chain(br, s, fail, after);
    if (br.children.size() > 3) {
      if (auto h = HashNode::plan(br, options_.strict_alignment)) {
        h->choose(br.hash);  // br.hash: this branch's node in the code being replaced
        HashNode* raw = h.get();
        out_.tables.push_back(std::move(h));
        out_.hashed.emplace_back(&br, raw);
        return hash(*raw, s, fail, after);
      }
    }
    // A disjunction: dispatch on the value (compares, or a binary search over sorted keys),
    // then each child's code. The children exclude each other: each continues at `fail`.
    Value v = eval(br.expr, s);
    std::vector<std::pair<uint64_t, Label>> keys;
    for (auto& [k, child] : br.children) keys.emplace_back(k, b_.label());
    search(v.reg, keys, 0, keys.size(), fail);
    put(v.reg);
    size_t i = 0;
    bool none_before = best_none_;
    bool none_after = best_none_;
    for (auto& [k, child] : br.children) {
      b_.place(keys[i++].second);
      best_none_ = none_before;  // no child runs after another
      node(*child, s, after);
      none_after = none_after && best_none_;
      if (i < keys.size()) b_.jmp(fail);
    }
    best_none_ = none_after;
  }

  // RECORDED(e): one call per filter id below (ids do not exclude each other).
  void recorded(Branch& br, const Seg& s, uint64_t after) {
    Value v = widen(eval(br.expr, s));
    Reg value = get_long(Type::U64);
    b_.mov(value, v.reg);
    put(v.reg);
    std::vector<uint64_t> later(br.children.size() + 1, after);
    size_t i = br.children.size();
    for (auto it = br.children.rbegin(); it != br.children.rend(); ++it, --i)
      later[i - 1] = std::min(later[i], it->second->subtree_best);
    i = 0;
    for (auto& [id, child] : br.children) {
      Reg state = get(Type::P), idr = get(Type::U64), r = get(Type::U64);
      b_.set(state, int64_t(reinterpret_cast<uintptr_t>(options_.recorded_state)));
      b_.set(idr, int64_t(id));
      b_.ccall(r, recorded_, {state, idr, value});
      put(state), put(idr);
      Label skip = b_.label();
      b_.beq(r, 0, skip);
      put(r);
      bool none = best_none_;
      node(*child, s, later[++i]);
      best_none_ = best_none_ && none;
      b_.place(skip);
    }
    put(value);
  }

  [[noreturn]] void fail_unsupported(const Branch& br) {
    fail("dpf: atom `{}` is not supported by the code generator", to_string(br.expr));
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

  // A run of single-constant compares in one segment, adjacent == fields coalesced.
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
      const ExprPtr& e = steps[i].expr;
      Plain p{i, 0, 0, ~uint64_t(0)};
      bool is_plain = false;
      if (steps[i].cmp == Cmp::Eq) {
        if (e->op == ExprOp::Load)
          p.offset = e->offset, p.bytes = e->bits / 8u, is_plain = true;
        else if (e->op == ExprOp::And && e->a->op == ExprOp::Load && e->b->op == ExprOp::Const)
          p.offset = e->a->offset, p.bytes = e->a->bits / 8u, p.mask = e->b->value, is_plain = true;
      }
      if (is_plain)
        plain.push_back(p);
      else
        other.push_back(i);
    }
    std::sort(plain.begin(), plain.end(), [](auto& x, auto& y) { return x.offset < y.offset; });
    for (size_t g = 0; g < plain.size();) {
      uint32_t start, stop;
      size_t last = coalesce_run(plain, g, &start, &stop);
      unsigned width = std::bit_ceil(stop - start);
      uint32_t wstart = start + width <= s.checked ? start : stop >= width ? stop - width : 0;
      // On targets that trap on unaligned loads, only a load the alignment estimate proves
      // aligned (the base's known alignment, through the SHIFTs, and the offset).
      bool aligned = !options_.strict_alignment || (s.align >= width && wstart % width == 0);
      if (last == g || !aligned || wstart + width > s.checked || wstart + width < stop) {
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
      Type t = load_type(width * 8);
      Reg r = get(t);
      if (t == Type::U8)
        b_.ld(r, s.base, wstart);
      else
        b_.ldbe(r, s.base, wstart);
      if (mask != ones(width * 8)) b_.and_(r, r, int64_t(mask));
      b_.bne(r, int64_t(value), fail);
      put(r);
      g = last + 1;
    }
    std::sort(other.begin(), other.end());
    for (size_t i : other) {
      Value v = eval(steps[i].expr, s);
      branch_unless(steps[i].cmp, v.reg, steps[i].value, fail);
      put(v.reg);
    }
    node(*end, s, after);
  }

  // SHIFT: one check covers the amount and the bytes the child needs after it.
  // `with_rem`: the new segment needs its remaining length (the hash path does not).
  Seg shift_base(const ExprPtr& amount_expr, uint32_t next_need, const Seg& s, Label fail,
                 bool with_rem = true) {
    Value amount = widen(eval(amount_expr, s));
    uint64_t ub = upper_bound(amount_expr);
    Seg n{};
    if (next_need > 0 && ub < (uint64_t(1) << 40)) {
      Reg t = get(Type::U64);
      b_.add(t, amount.reg, int64_t(next_need));
      b_.bgt(t, s.rem, fail);
      put(t);
      n.checked = next_need;
    } else {
      b_.bgt(amount.reg, s.rem, fail);
      n.checked = 0;
    }
    n.base = with_rem ? get_long(Type::P) : get(Type::P);
    b_.add(n.base, s.base, amount.reg);
    if (with_rem) {
      n.rem = get_long(Type::U64);
      b_.sub(n.rem, s.rem, amount.reg);
    }
    put(amount.reg);
    n.align = std::min(s.align, known_alignment(amount_expr));
    return n;
  }

  void shift(Branch& br, const Seg& s, Label fail, uint64_t after) {
    Node& child = *br.children.begin()->second;
    Seg n = shift_base(br.expr, child.must, s, fail);
    node(child, n, after);
    put(n.base);
    put(n.rem);
  }

  // A hash node: load the key's fields (through the chain's SHIFTs), hash, probe, compare.
  void hash(HashNode& h, const Seg& s0, Label fail, uint64_t after) {
    const auto& fields = h.fields();
    std::vector<Value> f(fields.size());
    auto load_segment = [&](unsigned seg, const Seg& s) {
      for (size_t j = 0; j < fields.size(); ++j)
        if (fields[j].segment == seg) {
          Value v = eval(fields[j].expr, s);
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
    load_segment(0, s0);
    Seg s = s0;
    bool owned = false;
    unsigned segment = 0;
    // A segment needs its remaining length for a SHIFT after it or a field on LEN.
    unsigned shifts = 0;
    for (const Step& step : h.shape()) shifts += step.kind == Atom::Kind::Shift;
    for (const Step& step : h.shape()) {
      if (step.kind != Atom::Kind::Shift) continue;
      uint32_t need = 0;
      bool rem = segment + 1 < shifts;
      for (const auto& fld : fields)
        if (fld.segment == segment + 1) {
          need = std::max(need, load_end(fld.expr));
          rem = rem || reads_length(fld.expr);
        }
      Seg n = shift_base(step.expr, need, s, fail, rem);
      if (owned) {
        put(s.base);
        if (s.rem.valid()) put(s.rem);
      }
      s = n;
      owned = true;
      load_segment(++segment, s);
    }
    if (owned) {
      put(s.base);
      if (s.rem.valid()) put(s.rem);
    }
    // The slot's byte offset: the hash chosen for the keys, times the entry size.
    // x becomes the entry's address (a pointer register from the start: one register less).
    unsigned stride_bits = unsigned(std::countr_zero(h.stride()));
    Reg x = get(Type::P);
    if (h.kind() == HashNode::HashKind::Window) {
      // A window inside one byte of a plain field in the first segment: load that byte from the
      // packet (off the dependency chain of the wide field load).
      const HashNode::Field& wf = fields[h.window_field()];
      unsigned sh = unsigned(h.param());
      const ExprPtr& load = wf.expr->op == ExprOp::And ? wf.expr->a : wf.expr;
      uint64_t mask = wf.expr->op == ExprOp::And && wf.expr->b->op == ExprOp::Const
                          ? wf.expr->b->value
                          : ~uint64_t(0);
      uint64_t window = ones(h.log2_slots()) << sh;
      bool byte = wf.segment == 0 && load->op == ExprOp::Load && sh % 8 + h.log2_slots() <= 8 &&
                  (mask & window) == window && sh / 8 < load->bits / 8u;
      if (byte) {
        Reg v = get(Type::U8);
        b_.ld(v, s0.base, int64_t(load->offset + load->bits / 8u - 1 - sh / 8));
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
        b_.mul(x, x, int64_t(h.param()));
        b_.rsh(x, x, int64_t(64 - h.log2_slots()));
      }
      b_.lsh(x, x, int64_t(stride_bits));
    }
    b_.add(x, x, int64_t(reinterpret_cast<uintptr_t>(h.table())));
    // Probe. With probing, an empty slot (id 0) ends the sequence. Without collisions among
    // the keys there is one slot to check and no empty check (see HashNode::clear).
    Reg id = h.max_probe() > 0 ? get(Type::U32) : Reg{};
    Label hit = b_.label();
    for (unsigned d = 0; d <= h.max_probe(); ++d) {
      int64_t at = int64_t(d) * h.stride();
      bool last = d == h.max_probe();
      Label next = last ? fail : b_.label();
      if (h.max_probe() > 0) {
        b_.ld(id, x, at + h.id_offset());
        b_.beq(id, 0, fail);
      }
      for (size_t j = 0; j < fields.size(); ++j) {
        Reg v = get(f[j].type);
        b_.ld(v, x, at + fields[j].offset);
        b_.bne(v, f[j].reg, next);
        put(v);
      }
      if (last) {
        if (!id.valid()) {
          id = get(Type::U32);
          b_.ld(id, x, at + h.id_offset());
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
    if (best_none_ && worst < after) {
      b_.ret(k);  // `best` untouched: the miss path still has none
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
      if (worst < after) b_.ret(best_);
      best_none_ = false;
    }
    put(k);
  }

  Generated& out_;
  const CodegenOptions& options_;
  bool calls_;
  uint32_t recorded_ = 0;  // extern index of the RECORDED lookup
  Builder b_;
  Reg best_;
  bool best_none_ = true;  // no accept emitted yet: `best` still holds kNoFilter
  int temps_ = 2;          // the two parameters
  int vars_ = 0;
};

}  // namespace

namespace {

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
  bool calls = has_recorded(trie.root());
  if (calls && !options.recorded) fail("dpf: RECORDED atoms need the engine's state");
  Gen(out, options, calls).run(trie.root());
  return out;
}

}  // namespace exojit::dpf::detail
