// SPDX-License-Identifier: MIT
// The filter text syntax (DPF paper, Figure 1): atoms joined by &&, parentheses, # comments.
//
//   filter  := conj
//   conj    := unit ('&&' unit)*
//   unit    := ('SHIFT' | 'RECORD' | 'RECORDED') '(' expr ')' | expr [cmp expr]
//   expr    := C operators | ^ & << >> + - * with C precedence over primaries
//   primary := number [':' bits] | 'LEN' | '(' conj ')'
//
// A parenthesised group is either an expression or a conjunction of atoms; which one is decided
// by what it contains, so the parser needs no backtracking (linear in the input).
#include <algorithm>
#include <charconv>
#include <cstring>

#include "canonical_p.h"
#include "exojit/dpf/filter.h"
#include "exojit/error.h"

namespace exojit::dpf {

namespace {

constexpr int kMaxNesting = 64;
// Expression trees are at most this deep: a flat `1:8 + 1:8 + ...` of 300,000 terms is refused
// here, before it becomes a chain that every recursive walk (and its destructor) would follow.
// The engine refuses any expression of more than 64 nodes anyway (canonical.h).
constexpr unsigned kMaxExprDepth = 64;

// What a parse step produced: an expression, or atoms (a comparison or a group of them).
struct Value {
  ExprPtr expr;
  std::vector<Atom> atoms;
  unsigned depth = 0;  // of expr
  bool is_expr() const { return expr != nullptr; }
};

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Filter parse() {
    skip();
    if (pos_ == s_.size()) error("empty filter");
    Value v = conj();
    if (pos_ != s_.size()) error(fmt::format("unexpected '{}'", s_[pos_]));
    if (v.is_expr()) error("expected a comparison");
    Filter f;
    f.atoms() = std::move(v.atoms);
    return f;
  }

 private:
  [[noreturn]] void error(const std::string& msg) const {
    fail("dpf filter: column {}: {}", pos_ + 1, msg);
  }

  void skip() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }

  // Consumes `tok` if the input continues with it (and, for "&" or "<", not with "&&" or "<<").
  bool accept(std::string_view tok) {
    if (s_.substr(pos_, tok.size()) != tok) return false;
    size_t after = pos_ + tok.size();
    auto next_is = [&](char c) { return after < s_.size() && s_[after] == c; };
    if ((tok == "&" && next_is('&')) || (tok == "|" && next_is('|')) ||
        (tok == "<" && (next_is('<') || next_is('='))) ||
        (tok == ">" && (next_is('>') || next_is('='))))
      return false;
    pos_ = after;
    skip();
    return true;
  }
  void expect(std::string_view tok) {
    if (!accept(tok)) error(fmt::format("expected '{}'", tok));
  }

  // Consumes the word `w` if the input continues with it as a whole word.
  bool keyword(std::string_view w) {
    size_t after = pos_ + w.size();
    if (s_.substr(pos_, w.size()) != w ||
        (after < s_.size() && (std::isalnum(uint8_t(s_[after])) || s_[after] == '_')))
      return false;
    pos_ = after;
    skip();
    return true;
  }

  void enter() {
    if (++depth_ > kMaxNesting) error("nesting too deep");
  }

  Value conj() {
    enter();
    Value first = unit();
    if (!accept("&&")) {
      --depth_;
      return first;
    }
    if (first.is_expr()) error("expected a comparison before '&&'");
    Value all = std::move(first);
    do {
      Value next = unit();
      if (next.is_expr()) error("expected a comparison after '&&'");
      for (Atom& a : next.atoms) all.atoms.push_back(std::move(a));
    } while (accept("&&"));
    --depth_;
    return all;
  }

  Value unit() {
    static constexpr std::pair<std::string_view, Atom::Kind> keywords[] = {
        {"SHIFT", Atom::Kind::Shift},
        {"RECORDED", Atom::Kind::Recorded},
        {"RECORD", Atom::Kind::Record}};
    for (auto [word, kind] : keywords) {
      if (keyword(word)) {
        expect("(");
        ExprPtr e = expression();
        expect(")");
        Value v;
        v.atoms.push_back(Atom{kind, std::move(e), Cmp::Eq, 0});
        return v;
      }
    }
    Value left = binary(0);
    static constexpr std::pair<std::string_view, Cmp> cmps[] = {{"==", Cmp::Eq}, {"!=", Cmp::Ne},
                                                                {"<=", Cmp::Le}, {">=", Cmp::Ge},
                                                                {"<", Cmp::Lt},  {">", Cmp::Gt}};
    for (auto [text, cmp] : cmps) {
      size_t at = pos_;
      if (!accept(text)) continue;
      if (!left.is_expr()) error("a comparison of a group of atoms");
      Value right = binary(0);
      if (!right.is_expr()) error("a comparison with a group of atoms");
      Value v;
      v.atoms.push_back(comparison(left.expr, cmp, right.expr, at));
      return v;
    }
    return left;
  }

  // `a cmp b` with one side constant (folded); the constant goes to the right.
  Atom comparison(const ExprPtr& a, Cmp cmp, const ExprPtr& b, size_t at) {
    uint64_t v;
    if (fold(b, &v)) return Atom{Atom::Kind::Compare, a, cmp, v};
    if (fold(a, &v)) {
      static constexpr Cmp mirrored[] = {Cmp::Eq, Cmp::Ne, Cmp::Gt, Cmp::Ge, Cmp::Lt, Cmp::Le};
      return Atom{Atom::Kind::Compare, b, mirrored[unsigned(cmp)], v};
    }
    pos_ = at;
    error("a comparison needs a constant on one side");
  }

  static bool fold(const ExprPtr& e, uint64_t* out) {
    if (e->op == ExprOp::Const) {
      *out = e->value;
      return true;
    }
    if (e->op == ExprOp::Load || e->op == ExprOp::Len) return false;
    uint64_t a, b;
    if (!fold(e->a, &a) || !fold(e->b, &b)) return false;
    *out = detail::apply(e->op, a, b);
    return true;
  }

  ExprPtr expression() {
    Value v = binary(0);
    if (!v.is_expr()) error("expected an expression, not a comparison");
    return v.expr;
  }

  // Precedence climbing over C's levels: | ^ & (<< >>) (+ -) *.
  Value binary(int level) {
    static constexpr std::pair<std::string_view, ExprOp> levels[][2] = {
        {{"|", ExprOp::Or}, {"", ExprOp::Or}},    {{"^", ExprOp::Xor}, {"", ExprOp::Xor}},
        {{"&", ExprOp::And}, {"", ExprOp::And}},  {{"<<", ExprOp::Lsh}, {">>", ExprOp::Rsh}},
        {{"+", ExprOp::Add}, {"-", ExprOp::Sub}}, {{"*", ExprOp::Mul}, {"", ExprOp::Mul}}};
    constexpr int kLevels = 6;
    if (level == kLevels) return primary();
    Value left = binary(level + 1);
    for (;;) {
      const auto* op = &levels[level][0];
      bool matched = false;
      for (int i = 0; i < 2 && !matched; ++i)
        if (!levels[level][i].first.empty() && accept(levels[level][i].first)) {
          op = &levels[level][i];
          matched = true;
        }
      if (!matched) return left;
      if (!left.is_expr()) error(fmt::format("'{}' applied to a comparison", op->first));
      Value right = binary(level + 1);
      if (!right.is_expr()) error(fmt::format("'{}' applied to a comparison", op->first));
      left.depth = 1 + std::max(left.depth, right.depth);
      if (left.depth > kMaxExprDepth)
        error(fmt::format("expression deeper than {} operators", kMaxExprDepth));
      auto n = std::make_shared<ExprNode>();
      n->op = op->second;
      n->a = left.expr;
      n->b = right.expr;
      left.expr = std::move(n);
    }
  }

  Value primary() {
    if (accept("(")) {
      Value v = conj();
      expect(")");
      return v;
    }
    if (keyword("LEN")) {
      Value v;
      v.expr = length().node();
      return v;
    }
    uint64_t n = number();
    Value v;
    v.depth = 1;
    if (accept(":")) {
      uint64_t bits = number();
      if (n > 0xffffffffu) error("field offset out of range");
      if (bits > 255) error("field size out of range");
      v.expr = field(uint32_t(n), unsigned(bits)).node();
    } else {
      v.expr = Expr(n).node();
    }
    return v;
  }

  // Decimal, 0x hexadecimal, or a dotted IPv4 address (a 32-bit constant).
  uint64_t number() {
    size_t start = pos_;
    auto digits = [&](int base, uint64_t* out) {
      const char* b = s_.data() + pos_;
      const char* e = s_.data() + s_.size();
      auto [p, ec] = std::from_chars(b, e, *out, base);
      if (ec == std::errc::result_out_of_range) error("number out of range");
      if (ec != std::errc() || p == b) return false;
      pos_ += size_t(p - b);
      return true;
    };
    uint64_t v = 0;
    if (s_.substr(pos_, 2) == "0x" || s_.substr(pos_, 2) == "0X") {
      pos_ += 2;
      if (!digits(16, &v)) error("expected hexadecimal digits");
    } else if (!digits(10, &v)) {
      if (pos_ >= s_.size()) error("unexpected end of filter");
      error(fmt::format("unexpected '{}'", s_[pos_]));
    }
    if (pos_ < s_.size() && s_[pos_] == '.' && pos_ + 1 < s_.size() &&
        std::isdigit(uint8_t(s_[pos_ + 1]))) {
      uint64_t addr = v;
      if (v > 255) error("IPv4 address byte out of range");
      for (int i = 0; i < 3; ++i) {
        if (pos_ >= s_.size() || s_[pos_] != '.') error("an IPv4 address has four bytes");
        ++pos_;
        uint64_t byte;
        if (!digits(10, &byte) || byte > 255) error("IPv4 address byte out of range");
        addr = addr << 8 | byte;
      }
      v = addr;
    }
    if (pos_ < s_.size() && (std::isalnum(uint8_t(s_[pos_])) || s_[pos_] == '_')) {
      pos_ = start;
      error("malformed number");
    }
    skip();
    return v;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Filter parse_filter(std::string_view text) {
  return Parser(text).parse();
}

}  // namespace exojit::dpf
