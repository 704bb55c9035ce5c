// The tcpdump-syntax front end: tokens, a recursive-descent parser into a formula of libpcap's
// primitive tests, then disjunctive normal form (De Morgan for `not`, absorption to keep it
// small), one DPF filter per conjunction.
#include "exojit/dpf/pcap.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <tuple>

#include "exojit/error.h"

namespace exojit::dpf {

namespace {

constexpr size_t kMaxTerms = 512;

// An atom, possibly after the SHIFT past a variable-size IPv4 header (`l4`).
struct Lit {
  bool l4 = false;
  uint32_t offset = 0;  // of its field, for ordering
  std::string expr;     // its expression as text, for ordering and equality
  Atom atom;
};

auto lit_key(const Lit& l) {
  return std::tie(l.l4, l.offset, l.expr, l.atom.cmp, l.atom.value);
}
bool operator<(const Lit& a, const Lit& b) {
  return lit_key(a) < lit_key(b);
}
bool operator==(const Lit& a, const Lit& b) {
  return lit_key(a) == lit_key(b);
}

Lit lit(Expr e, uint32_t offset, uint64_t value, bool l4 = false) {
  Lit l;
  l.l4 = l4;
  l.offset = offset;
  l.atom = Atom{Atom::Kind::Compare, e.node(), Cmp::Eq, value};
  l.expr = to_string(l.atom.expr);
  return l;
}
Lit field_eq(uint32_t offset, unsigned bits, uint64_t value, bool l4 = false) {
  return lit(field(offset, bits), offset, value, l4);
}
Lit masked_eq(uint32_t offset, unsigned bits, uint64_t mask, uint64_t value, bool l4 = false) {
  return lit(field(offset, bits) & mask, offset, value, l4);
}

Lit negate(Lit l) {
  static constexpr Cmp opposite[] = {Cmp::Ne, Cmp::Eq, Cmp::Ge, Cmp::Gt, Cmp::Le, Cmp::Lt};
  l.atom.cmp = opposite[unsigned(l.atom.cmp)];
  return l;
}

using Term = std::vector<Lit>;  // sorted, unique: a conjunction
using Dnf = std::vector<Term>;  // a disjunction of conjunctions

// A conjunction that no packet satisfies: one field == two values, or == and != one value.
bool contradictory(const Term& t) {
  for (size_t i = 0; i < t.size(); ++i)
    for (size_t j = i + 1; j < t.size() && t[j].l4 == t[i].l4 && t[j].expr == t[i].expr; ++j) {
      Cmp a = t[i].atom.cmp, b = t[j].atom.cmp;
      uint64_t va = t[i].atom.value, vb = t[j].atom.value;
      if (a == Cmp::Eq && b == Cmp::Eq && va != vb) return true;
      if (((a == Cmp::Eq && b == Cmp::Ne) || (a == Cmp::Ne && b == Cmp::Eq)) && va == vb)
        return true;
    }
  return false;
}

// Drops terms that contain another term (A or (A and B) = A) and duplicates.
void absorb(Dnf& d) {
  std::sort(d.begin(), d.end(), [](const Term& a, const Term& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  Dnf kept;
  for (Term& t : d) {
    bool redundant = false;
    for (const Term& k : kept)
      if (std::includes(t.begin(), t.end(), k.begin(), k.end())) {
        redundant = true;
        break;
      }
    if (!redundant) kept.push_back(std::move(t));
  }
  d = std::move(kept);
}

// Two literals on one field whose disjunction always holds: x == a or x != a; x != a or x != b.
bool complementary(const Lit& a, const Lit& b) {
  if (a.l4 != b.l4 || a.expr != b.expr) return false;
  Cmp x = a.atom.cmp, y = b.atom.cmp;
  if ((x == Cmp::Eq && y == Cmp::Ne) || (x == Cmp::Ne && y == Cmp::Eq))
    return a.atom.value == b.atom.value;
  return x == Cmp::Ne && y == Cmp::Ne && a.atom.value != b.atom.value;
}

// Adds consensus terms ((A and l) or (B and m) with l or m always true implies A and B), then
// absorbs, until nothing changes: tautologies such as `not ip or ip` become the empty term
// (always true), as libpcap's optimizer finds them.
void simplify(Dnf& d) {
  for (int round = 0; round < 8; ++round) {
    Dnf added;
    for (size_t i = 0; i < d.size(); ++i)
      for (size_t j = i + 1; j < d.size(); ++j)
        for (const Lit& l : d[i])
          for (const Lit& m : d[j]) {
            if (!complementary(l, m)) continue;
            Term a, b, c;
            std::copy_if(d[i].begin(), d[i].end(), std::back_inserter(a),
                         [&](const Lit& x) { return !(x == l); });
            std::copy_if(d[j].begin(), d[j].end(), std::back_inserter(b),
                         [&](const Lit& x) { return !(x == m); });
            std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(c));
            bool known = contradictory(c);
            for (size_t k = 0; k < d.size() && !known; ++k)
              known = std::includes(c.begin(), c.end(), d[k].begin(), d[k].end());
            if (!known) added.push_back(std::move(c));
          }
    if (added.empty()) return;
    for (Term& t : added) d.push_back(std::move(t));
    absorb(d);
    if (d.size() > kMaxTerms)
      fail("pcap filter: the expression expands to more than {} filters", kMaxTerms);
  }
}

struct Formula {
  enum Kind { Leaf, And, Or, Not } kind = Leaf;
  Lit leaf;
  std::vector<Formula> kids;
};

Formula leaf(Lit l) {
  return Formula{Formula::Leaf, std::move(l), {}};
}
Formula all(std::vector<Formula> k) {
  return Formula{Formula::And, {}, std::move(k)};
}
Formula any(std::vector<Formula> k) {
  return Formula{Formula::Or, {}, std::move(k)};
}

Dnf product(const Dnf& a, const Dnf& b) {
  Dnf out;
  for (const Term& x : a)
    for (const Term& y : b) {
      Term t;
      std::set_union(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(t));
      if (!contradictory(t)) out.push_back(std::move(t));
    }
  absorb(out);
  if (out.size() > kMaxTerms)
    fail("pcap filter: the expression expands to more than {} filters", kMaxTerms);
  return out;
}

// Not is applied to the operand's normal form, simplified first (as libpcap's optimizer drops
// impossible branches before `not` inverts the result): not (t1 or t2) = not t1 and not t2, and
// not (a and b) = not a or not b.
Dnf to_dnf(const Formula& f) {
  switch (f.kind) {
    case Formula::Leaf:
      return Dnf{Term{f.leaf}};
    case Formula::Not: {
      Dnf acc{Term{}};
      for (const Term& t : to_dnf(f.kids[0])) {
        Dnf alternatives;
        for (const Lit& l : t) alternatives.push_back(Term{negate(l)});
        acc = product(acc, alternatives);
      }
      simplify(acc);
      return acc;
    }
    case Formula::And: {
      Dnf acc{Term{}};
      for (const Formula& k : f.kids) acc = product(acc, to_dnf(k));
      return acc;
    }
    case Formula::Or:
      break;
  }
  Dnf acc;
  for (const Formula& k : f.kids)
    for (Term& t : to_dnf(k)) acc.push_back(std::move(t));
  absorb(acc);
  simplify(acc);
  if (acc.size() > kMaxTerms)
    fail("pcap filter: the expression expands to more than {} filters", kMaxTerms);
  return acc;
}

Filter to_filter(const Term& t) {
  Filter f;
  bool shifted = false;
  for (const Lit& l : t) {  // sorted: the Ethernet/IP atoms first, then the transport ones
    if (l.l4 && !shifted) {
      f.shift(14).shift((field(0, 8) & 0xf) << 2);
      shifted = true;
    }
    f.atoms().push_back(l.atom);
  }
  return f;
}

// --- the primitives, as libpcap's code generator tests them ---------------------------------

constexpr uint32_t kEtherIp = 0x0800, kEtherIp6 = 0x86dd, kEtherArp = 0x0806, kEtherRarp = 0x8035;

Formula ether_is(uint32_t type) {
  return leaf(field_eq(12, 16, type));
}

// tcp/udp: the IPv4 protocol, the IPv6 next header, or an IPv6 fragment header's next header.
Formula transport(uint8_t proto) {
  return any({all({ether_is(kEtherIp), leaf(field_eq(23, 8, proto))}),
              all({ether_is(kEtherIp6), leaf(field_eq(20, 8, proto))}),
              all({ether_is(kEtherIp6), leaf(field_eq(20, 8, 44)), leaf(field_eq(54, 8, proto))})});
}

enum class Dir { Any, Src, Dst };

Formula host(Dir dir, uint32_t addr, uint32_t mask) {
  auto eq = [&](uint32_t offset) {
    return leaf(mask == 0xffffffffu ? field_eq(offset, 32, addr)
                                    : masked_eq(offset, 32, mask, addr));
  };
  std::vector<Formula> alts;
  for (uint32_t type : {kEtherIp, kEtherArp, kEtherRarp}) {
    uint32_t src = type == kEtherIp ? 26 : 28, dst = type == kEtherIp ? 30 : 38;
    std::vector<Formula> where;
    if (dir != Dir::Dst) where.push_back(eq(src));
    if (dir != Dir::Src) where.push_back(eq(dst));
    alts.push_back(all({ether_is(type), any(std::move(where))}));
  }
  return any(std::move(alts));
}

// Ports: TCP, UDP or SCTP (or the one named), over IPv6 (fixed offsets, no extension headers,
// as libpcap) or over IPv4 (first fragments, after the variable header).
Formula port(Dir dir, std::vector<uint8_t> protos, uint16_t port) {
  std::vector<Formula> v6p, v4p, v6port, v4port;
  for (uint8_t p : protos) {
    v6p.push_back(leaf(field_eq(20, 8, p)));
    v4p.push_back(leaf(field_eq(23, 8, p)));
  }
  if (dir != Dir::Dst) {
    v6port.push_back(leaf(field_eq(54, 16, port)));
    v4port.push_back(leaf(field_eq(0, 16, port, true)));
  }
  if (dir != Dir::Src) {
    v6port.push_back(leaf(field_eq(56, 16, port)));
    v4port.push_back(leaf(field_eq(2, 16, port, true)));
  }
  return any({all({ether_is(kEtherIp6), any(std::move(v6p)), any(std::move(v6port))}),
              all({ether_is(kEtherIp), any(std::move(v4p)), leaf(masked_eq(20, 16, 0x1fff, 0)),
                   any(std::move(v4port))})});
}

// --- tokens and the parser ----------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
      char c = s[i];
      if (std::isspace(uint8_t(c))) {
        ++i;
      } else if (c == '(' || c == ')' || c == '!') {
        tokens_.emplace_back(1, c);
        ++i;
      } else if ((c == '&' || c == '|') && i + 1 < s.size() && s[i + 1] == c) {
        tokens_.emplace_back(2, c);
        i += 2;
      } else if (std::isalnum(uint8_t(c)) || c == '\\' || c == '.' || c == '/' || c == '_' ||
                 c == ':' || c == '-') {
        size_t j = i;
        while (j < s.size() && (std::isalnum(uint8_t(s[j])) || s[j] == '\\' || s[j] == '.' ||
                                s[j] == '/' || s[j] == '_' || s[j] == ':' || s[j] == '-'))
          ++j;
        tokens_.emplace_back(s.substr(i, j - i));
        i = j;
      } else {
        fail("pcap filter: unsupported token '{}'", c);
      }
    }
  }

  Formula parse() {
    if (tokens_.empty()) fail("pcap filter: empty expression");
    Formula f = disjunction();
    if (pos_ < tokens_.size()) unsupported();
    return f;
  }

 private:
  bool at(std::string_view t) const { return pos_ < tokens_.size() && tokens_[pos_] == t; }
  bool accept(std::string_view t) {
    if (!at(t)) return false;
    ++pos_;
    return true;
  }
  [[noreturn]] void unsupported() const {
    if (pos_ >= tokens_.size()) fail("pcap filter: unexpected end of expression");
    fail("pcap filter: unsupported token '{}'", tokens_[pos_]);
  }
  const std::string& next() {
    if (pos_ >= tokens_.size()) unsupported();
    return tokens_[pos_++];
  }

  Formula disjunction() {
    std::vector<Formula> k{conjunction()};
    while (accept("or") || accept("||")) k.push_back(conjunction());
    return k.size() == 1 ? std::move(k[0]) : any(std::move(k));
  }
  Formula conjunction() {
    std::vector<Formula> k{unary()};
    while (accept("and") || accept("&&")) k.push_back(unary());
    return k.size() == 1 ? std::move(k[0]) : all(std::move(k));
  }
  Formula unary() {
    if (accept("not") || accept("!")) {
      if (++depth_ > 64) fail("pcap filter: nesting too deep");
      Formula f{Formula::Not, {}, {unary()}};
      --depth_;
      return f;
    }
    if (accept("(")) {
      if (++depth_ > 64) fail("pcap filter: nesting too deep");
      Formula f = disjunction();
      if (!accept(")")) unsupported();
      --depth_;
      return f;
    }
    return primitive();
  }

  uint64_t number(uint64_t max) {
    size_t at = pos_;
    const std::string& t = next();
    uint64_t v = 0;
    int base = t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') ? 16 : 10;
    const char* b = t.data() + (base == 16 ? 2 : 0);
    auto [p, ec] = std::from_chars(b, t.data() + t.size(), v, base);
    if (ec != std::errc() || p != t.data() + t.size() || v > max) {
      pos_ = at;
      unsupported();
    }
    return v;
  }

  static bool ipv4(std::string_view t, uint32_t* out, int* bytes) {
    uint32_t a = 0;
    int n = 0;
    while (!t.empty()) {
      unsigned v;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec != std::errc() || v > 255 || n == 4) return false;
      a = a << 8 | v;
      ++n;
      t.remove_prefix(size_t(p - t.data()));
      if (!t.empty()) {
        if (t[0] != '.' || t.size() == 1) return false;
        t.remove_prefix(1);
      }
    }
    if (n == 0) return false;
    *out = a << (8 * (4 - n));
    *bytes = n;
    return true;
  }

  uint32_t address() {
    size_t at = pos_;
    uint32_t a;
    int n;
    if (!ipv4(next(), &a, &n) || n != 4) {
      pos_ = at;
      unsupported();
    }
    return a;
  }

  uint8_t protocol_number() {
    if (accept("\\tcp") || accept("tcp")) return 6;
    if (accept("\\udp") || accept("udp")) return 17;
    if (accept("\\icmp") || accept("icmp")) return 1;
    return uint8_t(number(255));
  }

  Formula primitive() {
    if (accept("ether")) {
      if (!accept("proto")) unsupported();
      uint64_t type;
      if (accept("\\ip") || accept("ip"))
        type = kEtherIp;
      else if (accept("\\ip6") || accept("ip6"))
        type = kEtherIp6;
      else if (accept("\\arp") || accept("arp"))
        type = kEtherArp;
      else {
        size_t at = pos_;
        type = number(0xffff);
        if (type <= 1500) {  // an 802.3 length: libpcap tests LLC headers then
          pos_ = at;
          unsupported();
        }
      }
      return ether_is(uint32_t(type));
    }
    if (accept("ip")) {
      if (accept("proto"))
        return all({ether_is(kEtherIp), leaf(field_eq(23, 8, protocol_number()))});
      return ether_is(kEtherIp);
    }
    if (accept("ip6")) return ether_is(kEtherIp6);
    if (accept("arp")) return ether_is(kEtherArp);
    if (accept("icmp")) return all({ether_is(kEtherIp), leaf(field_eq(23, 8, 1))});
    for (auto [name, proto] : {std::pair<const char*, uint8_t>{"tcp", 6}, {"udp", 17}}) {
      if (!accept(name)) continue;
      if (at("port") || at("src") || at("dst")) {
        Dir dir = accept("src") ? Dir::Src : accept("dst") ? Dir::Dst : Dir::Any;
        if (!accept("port")) unsupported();
        return port(dir, {proto}, uint16_t(number(0xffff)));
      }
      return transport(proto);
    }
    Dir dir = accept("src") ? Dir::Src : accept("dst") ? Dir::Dst : Dir::Any;
    if (accept("host")) return host(dir, address(), 0xffffffffu);
    if (accept("port")) return port(dir, {132, 6, 17}, uint16_t(number(0xffff)));
    if (accept("net")) {
      size_t at = pos_;
      std::string t = next();
      size_t slash = t.find('/');
      uint32_t a, mask;
      int n;
      if (!ipv4(std::string_view(t).substr(0, slash), &a, &n)) {
        pos_ = at;
        unsupported();
      }
      if (slash != std::string::npos) {
        unsigned len;
        auto [p, ec] = std::from_chars(t.data() + slash + 1, t.data() + t.size(), len);
        if (ec != std::errc() || p != t.data() + t.size() || len > 32) {
          pos_ = at;
          unsupported();
        }
        mask = len == 0 ? 0 : ~0u << (32 - len);
      } else if (accept("mask")) {
        mask = address();
      } else {
        mask = n == 4 ? ~0u : ~0u << (32 - 8 * n);  // 10.1 means 10.1.0.0/16
      }
      if (a & ~mask) fail("pcap filter: '{}' has bits set outside its netmask", t);
      return host(dir, a, mask);
    }
    unsupported();
  }

  std::vector<std::string> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

std::vector<Filter> compile_pcap(std::string_view expression) {
  Dnf d = to_dnf(Parser(expression).parse());
  if (d.empty()) fail("pcap filter: `{}` can never be true", expression);
  std::vector<Filter> out;
  for (const Term& t : d) out.push_back(to_filter(t));
  return out;
}

}  // namespace exojit::dpf
