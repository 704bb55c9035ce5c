// SPDX-License-Identifier: MIT
// The lift: classic BPF to DPF filters by symbolic execution of every path of the program's DAG.
//
// Along a path, A, X and the scratch words hold symbolic values; a conditional jump adds its
// condition (or, on the false edge, its negation) as an atom; a `ret` with a non-zero value ends
// a conjunction. A value is `pos(base) + e`: e an expression whose fields are relative to one
// segment (a header: the packet start, or where a SHIFT moved the base), and `base` a segment
// whose position is added (0 for a plain number). A load at [x + k] with X = core + c creates
// (or finds) the segment SHIFT(core) below X's segment; the field is at c + k in it.
//
// Why the disjunction of the paths' conjunctions accepts exactly what the program accepts.
// libpcap runs one path per packet, π(p), and rejects as soon as a load on it falls past the
// end. Each conjunction C(σ) requires every branch condition of σ and, through its atoms' fields
// and a guard atom where no atom covers a load, every load of σ inside the packet.
//   - libpcap accepts p: π(p) reaches a non-zero ret with all its loads inside, so C(π(p)) holds.
//   - some C(σ) holds on p: all of σ's loads are inside p and its conditions hold, so libpcap,
//     computing the same values from the same bytes, takes σ's edge at every branch: π(p) = σ,
//     which accepts.
// The values must be the same: every plain value is kept to 32 bits (a mask where the 64-bit
// expression could exceed them), a position is used only while it provably stays below 2^32,
// and a SHIFT adds exactly what libpcap adds to X. DPF's SHIFT check (the base inside the
// packet) is implied by the loads after it, so it rejects nothing libpcap accepts.
#include "exojit/dpf/lift.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <set>

#include "bpf_ops_p.h"
#include "canonical_p.h"
#include "exojit/error.h"

namespace exojit::dpf {

using namespace detail::bpf;
using detail::make_binary;
using detail::make_const;
using detail::make_load;
using detail::simplify;
using detail::upper_bound;

namespace {

constexpr uint64_t kU32 = 0xffffffffu;
constexpr size_t kMaxSteps = size_t(1) << 17;  // instructions executed over all paths

// Thrown inside the lift to give up: the program is opaque.
struct Opaque {
  std::string why;
};
[[noreturn]] void opaque(std::string why) {
  throw Opaque{std::move(why)};
}

// pos(base) + e; e's loads (and LEN) are relative to segment `fields` (-1: e is a constant).
struct Val {
  int base = 0;
  int fields = -1;
  ExprPtr e = make_const(0);
};

struct Segment {
  int parent;    // -1: the packet start
  ExprPtr core;  // the SHIFT amount, over the parent's fields
  uint64_t ub;   // the largest position it can have
};

struct Fact {
  int seg;
  Atom atom;
};

// What the atoms so far say about one expression: [lo, hi] minus `excluded`.
struct Range {
  int seg;
  ExprPtr e;
  uint64_t lo, hi;
  std::vector<uint64_t> excluded;
};

struct Path {
  size_t pc = 0;
  Val a, x;
  std::array<Val, kBpfMemWords> m;
  std::vector<Segment> segs{Segment{-1, nullptr, 0}};
  std::vector<Fact> facts;
  std::vector<std::pair<int, uint32_t>> loads;  // (segment, end) of every packet load
  std::vector<Range> ranges;
};

bool is_const(const Val& v) {
  return v.base == 0 && v.e->op == ExprOp::Const;
}
Val constant(uint64_t c) {
  return Val{0, -1, make_const(c)};
}

// A plain value: simplified, kept to 32 bits.
Val plain(int fields, ExprPtr e) {
  e = simplify(e);
  if (upper_bound(e) > kU32) e = simplify(make_binary(ExprOp::And, e, make_const(kU32)));
  return Val{0, e->op == ExprOp::Const ? -1 : fields, e};
}

// e = core + offset (core null when e is a constant).
std::pair<ExprPtr, uint64_t> split(const ExprPtr& e) {
  if (e->op == ExprOp::Const) return {nullptr, e->value};
  if (e->op == ExprOp::Add && e->b->op == ExprOp::Const) return {e->a, e->b->value};
  return {e, 0};
}

uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > ~uint64_t(0) - b ? ~uint64_t(0) : a + b;
}

size_t count_nodes(const ExprPtr& e) {
  return e->a ? 1 + count_nodes(e->a) + count_nodes(e->b) : 1;
}

// Subtracts `delta` from every load offset of `e` (the base moved forward by delta).
ExprPtr rebase(const ExprPtr& e, uint32_t delta) {
  if (delta == 0) return e;
  if (e->op == ExprOp::Load) return make_load(e->offset - delta, e->bits);
  if (!e->a) return e;
  return make_binary(e->op, rebase(e->a, delta), rebase(e->b, delta));
}

uint32_t min_offset(const ExprPtr& e) {
  if (e->op == ExprOp::Load) return e->offset;
  if (!e->a) return ~0u;
  return std::min(min_offset(e->a), min_offset(e->b));
}

class Lift {
 public:
  explicit Lift(std::span<const BpfInsn> p) : p_(p) {}

  Lifted run() {
    for (size_t pc = 0; pc < p_.size(); ++pc)
      if (p_[pc].code == (kJmp | kJa) && ja_target(p_[pc], pc) <= int64_t(pc))
        opaque("a backward jump (a loop, as protochain compiles to)");
    std::vector<Path> work(1);
    while (!work.empty()) {
      Path path = std::move(work.back());
      work.pop_back();
      follow(std::move(path), work);
    }
    Lifted out;
    out.disjuncts = std::move(disjuncts_);
    for (const Filter& f : out.disjuncts) {
      try {
        detail::canonicalize(f);
      } catch (const Error& e) {  // a limit of the engine's: keep the program whole
        opaque(fmt::format("a path the engine refuses ({})", e.what()));
      }
    }
    return out;
  }

 private:
  // Runs one path until it ends or branches (pushing the other edge onto `work`).
  void follow(Path path, std::vector<Path>& work) {
    for (;;) {
      if (++steps_ > kMaxSteps) opaque("too many paths to explore");
      const BpfInsn& in = p_[path.pc];
      const uint16_t c = in.code;
      switch (cls(c)) {
        case kRet: {
          if (c == (kRet | kK)) {
            if (in.k != 0) accept(path);
            return;
          }
          Test t = nonzero(path.a, "ret a");
          if (t.decided ? t.value : add(path, t.seg, t.atom)) accept(path);
          return;
        }
        case kJmp:
          if (op(c) == kJa) {
            path.pc = size_t(ja_target(in, path.pc));
            continue;
          }
          if (!branch(path, in, work)) return;
          continue;
        case kLd:
          path.a = load(path, in);
          break;
        case kLdx:
          path.x = load(path, in);
          break;
        case kSt:
          path.m[in.k] = path.a;
          break;
        case kStx:
          path.m[in.k] = path.x;
          break;
        case kAlu:
          if (!alu(path, in)) return;  // division by X = 0: the packet is rejected
          break;
        case kMisc:
          if (c == (kMisc | kTax))
            path.x = path.a;
          else
            path.a = path.x;
          break;
      }
      ++path.pc;
    }
  }

  // --- values ---------------------------------------------------------------------------------

  // A field of `bytes` at `offset` in segment `seg`; the load is remembered for the guards.
  ExprPtr field_at(Path& path, int seg, uint64_t offset, unsigned bytes) {
    if (offset + bytes > detail::kMaxOffset)
      opaque(fmt::format("a load at byte {} (DPF fields end at {})", offset, detail::kMaxOffset));
    if (sat_add(path.segs[size_t(seg)].ub, offset + bytes) > kU32)
      opaque("a header offset that may exceed 32 bits");
    path.loads.emplace_back(seg, uint32_t(offset + bytes));
    return make_load(uint32_t(offset), bytes * 8);
  }

  // The segment SHIFT(core) below `parent`.
  static int segment(Path& path, int parent, const ExprPtr& core) {
    for (size_t s = 1; s < path.segs.size(); ++s)
      if (path.segs[s].parent == parent && same_expr(path.segs[s].core, core)) return int(s);
    uint64_t ub = sat_add(path.segs[size_t(parent)].ub, upper_bound(core));
    path.segs.push_back(Segment{parent, core, ub});
    return int(path.segs.size() - 1);
  }

  // X as a place in the packet: (segment, offset) for a load at [x + k].
  std::pair<int, uint64_t> place(Path& path, const Val& x) {
    if (x.base == 0 && x.fields > 0)  // a field of a variable header as an absolute offset
      opaque("an offset read from a variable-length header used from the packet start");
    if (x.base > 0 && sat_add(path.segs[size_t(x.base)].ub, upper_bound(x.e)) > kU32)
      opaque("a header offset that may exceed 32 bits");
    auto [core, off] = split(x.e);
    if (!core) return {x.base, off};
    int parent = x.base > 0 ? x.base : 0;
    if (detail::reads_length(core)) opaque("an offset computed from the packet length");
    return {segment(path, parent, core), off};
  }

  Val load(Path& path, const BpfInsn& in) {
    const uint16_t c = in.code;
    const uint32_t k = in.k;
    switch (mode(c)) {
      case kImm:
        return constant(k);
      case kLen:  // the wire length: LEN (see lift.h)
        return Val{0, 0, length().node()};
      case kMem:
        return path.m[k];
      case kAbs:
        return Val{0, 0, field_at(path, 0, k, load_bytes(c))};
      case kMsh: {
        ExprPtr byte = field_at(path, 0, k, 1);
        return plain(0, make_binary(ExprOp::Lsh, make_binary(ExprOp::And, byte, make_const(0xf)),
                                    make_const(2)));
      }
      default: {  // kInd
        auto [seg, off] = place(path, path.x);
        return Val{0, seg, field_at(path, seg, off + k, load_bytes(c))};
      }
    }
  }

  // `v` as a position in segment `below`: v = pos(P) + core + c where SHIFT(core) made `below`
  // from P (P: v's base, or the packet start for a plain value of the first segment's fields).
  static bool as_position(const Path& path, const Val& v, int below, Val* out) {
    if (below <= 0 || (v.fields >= 0 && v.fields != v.base)) return false;
    auto [core, off] = split(v.e);
    if (!core) return false;
    const Segment& s = path.segs[size_t(below)];
    if (s.parent != v.base || !same_expr(s.core, core)) return false;
    *out = Val{below, -1, make_const(off)};
    return true;
  }

  // The segment both operands' fields are in (-1: both constant).
  static int same_fields(const Val& a, const Val& b) {
    if (a.fields < 0 || b.fields < 0 || a.fields == b.fields) return std::max(a.fields, b.fields);
    opaque("a value computed from two different headers");
  }

  // A sum may add a header's offset to a value of that header (then it is a position in it).
  Val sum(const Path& path, Val a, Val b) {
    if (a.fields >= 0 && b.fields >= 0 && a.fields != b.fields) {
      Val pos;
      if (as_position(path, b, a.fields, &pos))
        b = pos;
      else if (as_position(path, a, b.fields, &pos))
        a = pos;
    }
    int fields = same_fields(a, b);
    if (a.base && b.base) opaque("a sum of two header offsets");
    int base = a.base + b.base;
    if (base == 0) return plain(fields, make_binary(ExprOp::Add, a.e, b.e));
    if (fields >= 0 && fields != base) opaque("a value computed from two different headers");
    return Val{base, fields, simplify(make_binary(ExprOp::Add, a.e, b.e))};
  }

  // A - c for a constant c: a position stays one while its constant part covers c.
  static Val difference(Val a, uint64_t c) {
    auto [core, off] = split(a.e);
    if (a.base && (!core || off >= c))
      return Val{a.base, a.fields,
                 core ? simplify(make_binary(ExprOp::Add, core, make_const(off - c)))
                      : make_const(off - c)};
    if (a.base) opaque("an offset moved backwards");
    if (core && off >= c)
      return plain(a.fields, make_binary(ExprOp::Add, core, make_const(off - c)));
    return plain(a.fields, make_binary(ExprOp::Sub, a.e, make_const(c)));
  }

  // Returns false when the operation rejects the packet (division by X = 0).
  bool alu(Path& path, const BpfInsn& in) {
    const uint16_t o = op(in.code);
    Val& a = path.a;
    if (o == kNeg) {
      if (a.base) opaque("arithmetic on a header offset");
      a = plain(a.fields, make_binary(ExprOp::Sub, make_const(0), a.e));
      return true;
    }
    Val b = src(in.code) == kX ? path.x : constant(in.k);
    if (o == kAdd) {
      a = sum(path, a, b);
      return true;
    }
    if (o == kSub && is_const(b)) {
      a = difference(a, b.e->value);
      return true;
    }
    if (a.base || b.base) opaque("arithmetic on a header offset");
    int fields = same_fields(a, b);
    if (o == kDiv || o == kMod || o == kLsh || o == kRsh) {
      if (!is_const(b))
        opaque(fmt::format("{} by a variable", o == kLsh || o == kRsh ? "a shift" : "a division"));
      uint64_t k = b.e->value;
      if (o == kDiv || o == kMod) {
        if (k == 0) return false;  // only X can be 0 here: libpcap rejects
        if (k & (k - 1)) opaque(fmt::format("a division by {} (not a power of two)", k));
        unsigned log = unsigned(std::countr_zero(k));
        a = o == kDiv ? plain(fields, make_binary(ExprOp::Rsh, a.e, make_const(log)))
                      : plain(fields, make_binary(ExprOp::And, a.e, make_const(k - 1)));
        return true;
      }
      if (k >= 32) {  // only by X: libpcap gives 0
        a = constant(0);
        return true;
      }
    }
    static constexpr std::pair<uint16_t, ExprOp> ops[] = {
        {kSub, ExprOp::Sub}, {kMul, ExprOp::Mul}, {kAnd, ExprOp::And}, {kOr, ExprOp::Or},
        {kXor, ExprOp::Xor}, {kLsh, ExprOp::Lsh}, {kRsh, ExprOp::Rsh}};
    for (auto [bpf_op, e] : ops)
      if (bpf_op == o) a = plain(fields, make_binary(e, a.e, b.e));
    return true;
  }

  // --- conditions ----------------------------------------------------------------------------

  // A jump's condition: decided, or an atom in a segment (its negation is the false edge).
  struct Test {
    bool decided = false, value = false;
    int seg = 0;
    Atom atom;
  };

  static Test decided(bool v) {
    Test t;
    t.decided = true, t.value = v;
    return t;
  }
  static Test atom(int seg, ExprPtr e, Cmp cmp, uint64_t k) {
    Test t;
    e = simplify(e);
    if (e->op == ExprOp::Const) {
      uint64_t v = e->value;
      return decided(cmp == Cmp::Eq   ? v == k
                     : cmp == Cmp::Ne ? v != k
                     : cmp == Cmp::Lt ? v < k
                     : cmp == Cmp::Le ? v <= k
                     : cmp == Cmp::Gt ? v > k
                                      : v >= k);
    }
    t.seg = seg;
    t.atom = Atom{Atom::Kind::Compare, std::move(e), cmp, k};
    return t;
  }

  static Test nonzero(const Val& v, std::string_view what) {
    if (v.base) opaque(fmt::format("{} on a header offset", what));
    return atom(std::max(v.fields, 0), v.e, Cmp::Ne, 0);
  }

  Test condition(const Path& path, const BpfInsn& in) {
    const uint16_t o = op(in.code);
    Val a = path.a, b = src(in.code) == kX ? path.x : constant(in.k);
    if (a.base != b.base) {
      if (!b.base && as_position(path, b, a.base, &b)) {
      } else if (!a.base && as_position(path, a, b.base, &a)) {
      } else {
        opaque("a comparison of values from different headers");
      }
    }
    if (a.base) {  // two positions in one header: compare what is added to its base
      for (const Val* v : {&a, &b})
        if (sat_add(path.segs[size_t(a.base)].ub, upper_bound(v->e)) > kU32)
          opaque("a header offset that may exceed 32 bits");
      if (o == kJset) opaque("jset on header offsets");
    }
    int seg = std::max(same_fields(a, b), 0);
    if (same_expr(a.e, b.e)) {
      if (o == kJset) return nonzero(Val{0, seg, a.e}, "jset");
      return decided(o != kJgt);
    }
    if (o == kJset) return atom(seg, make_binary(ExprOp::And, a.e, b.e), Cmp::Ne, 0);
    Cmp cmp = o == kJeq ? Cmp::Eq : o == kJgt ? Cmp::Gt : Cmp::Ge;
    if (b.e->op == ExprOp::Const) return atom(seg, a.e, cmp, b.e->value);
    if (a.e->op == ExprOp::Const) {  // c op X: X's comparison mirrored
      static constexpr Cmp mirrored[] = {Cmp::Eq, Cmp::Ne, Cmp::Gt, Cmp::Ge, Cmp::Lt, Cmp::Le};
      return atom(seg, b.e, mirrored[unsigned(cmp)], a.e->value);
    }
    // Both vary (each below 2^32): A == X as (A ^ X) == 0; A > X as the borrow of X - A in
    // 64 bits; A >= X as no borrow of A - X.
    auto borrow = [](const ExprPtr& x, const ExprPtr& y) {
      return make_binary(ExprOp::Rsh, make_binary(ExprOp::Sub, x, y), make_const(32));
    };
    if (cmp == Cmp::Eq) return atom(seg, make_binary(ExprOp::Xor, a.e, b.e), Cmp::Eq, 0);
    if (cmp == Cmp::Gt) return atom(seg, borrow(b.e, a.e), Cmp::Ne, 0);
    return atom(seg, borrow(a.e, b.e), Cmp::Eq, 0);
  }

  static Atom negated(Atom a) {
    static constexpr Cmp opposite[] = {Cmp::Ne, Cmp::Eq, Cmp::Ge, Cmp::Gt, Cmp::Le, Cmp::Lt};
    a.cmp = opposite[unsigned(a.cmp)];
    return a;
  }

  // Follows the jump: continues `path` on one edge, pushes the other if it can be taken.
  // Returns false when neither edge can.
  bool branch(Path& path, const BpfInsn& in, std::vector<Path>& work) {
    size_t t = path.pc + 1 + in.jt, f = path.pc + 1 + in.jf;
    if (t == f) {
      path.pc = t;
      return true;
    }
    Test test = condition(path, in);
    if (test.decided) {
      path.pc = test.value ? t : f;
      return true;
    }
    Path other = path;
    if (add(other, test.seg, negated(test.atom))) {
      other.pc = f;
      work.push_back(std::move(other));
    }
    if (!add(path, test.seg, test.atom)) return false;
    path.pc = t;
    return true;
  }

  // Adds an atom unless the path's atoms already imply it; false if they contradict it.
  static bool add(Path& path, int seg, const Atom& a) {
    Range* r = nullptr;
    for (Range& x : path.ranges)
      if (x.seg == seg && same_expr(x.e, a.expr)) r = &x;
    if (!r) {
      path.ranges.push_back(Range{seg, a.expr, 0, upper_bound(a.expr), {}});
      r = &path.ranges.back();
    }
    const uint64_t k = a.value;
    const ExprPtr& e = a.expr;
    bool masked = e->op == ExprOp::And && e->b->op == ExprOp::Const;
    auto excluded = [&](uint64_t v) {
      return std::find(r->excluded.begin(), r->excluded.end(), v) != r->excluded.end();
    };
    uint64_t lo = r->lo, hi = r->hi;
    switch (a.cmp) {
      case Cmp::Eq:  // implies every earlier atom on the expression: they go
        if (k < lo || k > hi || excluded(k) || (masked && (k & ~e->b->value))) return false;
        if (lo == hi) return true;
        r->lo = r->hi = k;
        std::erase_if(path.facts,
                      [&](const Fact& f) { return f.seg == seg && same_expr(f.atom.expr, e); });
        path.facts.push_back(Fact{seg, a});
        return true;
      case Cmp::Ne:
        if (k < lo || k > hi || excluded(k)) return true;
        if (lo == hi) return false;
        r->excluded.push_back(k);
        path.facts.push_back(Fact{seg, a});
        return true;
      case Cmp::Lt:
        if (k == 0 || lo >= k) return false;
        if (hi < k) return true;
        hi = k - 1;
        break;
      case Cmp::Le:
        if (lo > k) return false;
        if (hi <= k) return true;
        hi = k;
        break;
      case Cmp::Gt:
        if (k == ~uint64_t(0) || hi <= k) return false;
        if (lo > k) return true;
        lo = k + 1;
        break;
      case Cmp::Ge:
        if (hi < k) return false;
        if (lo >= k) return true;
        lo = k;
        break;
    }
    while (lo <= hi && excluded(lo) && lo < hi) ++lo;
    while (lo <= hi && excluded(hi) && hi > lo) --hi;
    if (lo == hi && excluded(lo)) return false;
    r->lo = lo, r->hi = hi;
    path.facts.push_back(Fact{seg, a});
    return true;
  }

  // --- the conjunction of an accepting path ----------------------------------------------------

  void accept(const Path& path) {
    // The segments the filter needs, and their ancestors: they must form one chain.
    std::set<int> used{0};
    for (const Fact& f : path.facts) used.insert(f.seg);
    for (auto [seg, end] : path.loads) used.insert(seg);
    for (int s : std::set<int>(used))
      for (int p = path.segs[size_t(s)].parent; p > 0; p = path.segs[size_t(p)].parent)
        used.insert(p);
    std::vector<int> chain{0};
    for (size_t n = 1; n < used.size(); ++n) {
      int next = -1;
      for (int s : used)
        if (path.segs[size_t(s)].parent == chain.back()) {
          if (next >= 0) opaque("loads from two variable-length headers side by side");
          next = s;
        }
      if (next < 0) opaque("loads from two variable-length headers side by side");
      chain.push_back(next);
    }
    // Per segment: its atoms, and a guard for a load no atom covers.
    struct Piece {
      ExprPtr shift;
      std::vector<Atom> atoms;
    };
    std::vector<Piece> pieces(chain.size());
    std::vector<ExprPtr> cores(chain.size());
    for (size_t i = 0; i < chain.size(); ++i) {
      int s = chain[i];
      cores[i] = path.segs[size_t(s)].core;
      uint32_t loaded = 0, covered = 0;
      for (auto [seg, end] : path.loads)
        if (seg == s) loaded = std::max(loaded, end);
      for (const Fact& f : path.facts)
        if (f.seg == s) {
          pieces[i].atoms.push_back(f.atom);
          covered = std::max(covered, detail::load_end(f.atom.expr));
        }
      if (i + 1 < chain.size())
        covered = std::max(covered, detail::load_end(path.segs[size_t(chain[i + 1])].core));
      if (loaded > covered)  // the load is on the path: the packet must hold its bytes
        pieces[i].atoms.push_back(
            Atom{Atom::Kind::Compare, make_load(loaded - 1, 8), Cmp::Le, 255});
    }
    // Normalisation, as hand-written filters read: segment i's base moves forward by d[i] bytes
    // (its loads' offsets shrink by d[i]), so SHIFT i adds core + d[i] - d[i-1]. d[i] is at
    // most the segment's first loaded byte m[i] (offsets stay >= 0; the SHIFT's own check stays
    // implied by its loads) and at least d[i-1] (no negative amount): d[i] = min(m[i], d[i+1]).
    std::vector<uint32_t> d(chain.size() + 1, ~0u);
    d[0] = 0;
    for (size_t i = chain.size(); i-- > 1;) {
      uint32_t m = ~0u;
      for (const Atom& a : pieces[i].atoms) {
        if (detail::reads_length(a.expr)) opaque("LEN inside a variable-length header");
        m = std::min(m, min_offset(a.expr));
      }
      if (i + 1 < chain.size()) m = std::min(m, min_offset(cores[i + 1]));
      d[i] = std::min(m == ~0u ? 0 : m, d[i + 1]);
    }
    for (size_t i = 1; i < chain.size(); ++i) {
      for (Atom& a : pieces[i].atoms) a.expr = rebase(a.expr, d[i]);
      if (i + 1 < chain.size()) cores[i + 1] = rebase(cores[i + 1], d[i]);
      pieces[i].shift = simplify(make_binary(ExprOp::Add, cores[i], make_const(d[i] - d[i - 1])));
    }
    Filter f;
    for (size_t i = 0; i < chain.size(); ++i) {
      if (i > 0) f.atoms().push_back(Atom{Atom::Kind::Shift, pieces[i].shift, Cmp::Eq, 0});
      for (Atom& a : pieces[i].atoms) f.atoms().push_back(std::move(a));
    }
    if (f.atoms().size() > detail::kMaxAtoms)
      opaque("a path of more atoms than a DPF filter holds");
    for (const Atom& a : f.atoms())
      if (count_nodes(a.expr) > detail::kMaxExprNodes) opaque("an expression too large for DPF");
    std::string text = to_string(f);
    if (!seen_.insert(text).second) return;
    if (disjuncts_.size() == kMaxLiftedDisjuncts)
      opaque(fmt::format("more than {} paths", kMaxLiftedDisjuncts));
    disjuncts_.push_back(std::move(f));
  }

  std::span<const BpfInsn> p_;
  size_t steps_ = 0;
  std::vector<Filter> disjuncts_;
  std::set<std::string> seen_;
};

}  // namespace

Lifted lift_bpf(std::span<const BpfInsn> program) {
  validate_bpf(program);
  if (program.size() > kMaxLiftedInsns)
    return Lifted{
        true,
        {},
        fmt::format("{} instructions (the lift takes {})", program.size(), kMaxLiftedInsns)};
  try {
    return Lift(program).run();
  } catch (const Opaque& o) {
    return Lifted{true, {}, o.why};
  }
}

}  // namespace exojit::dpf
