// SPDX-License-Identifier: MIT
// Parses the vcode text format (see text.h) back into a Module, then verifies it.
#include <dlfcn.h>

#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "exojit/error.h"
#include "exojit/vcode/text.h"
#include "exojit/vcode/verify.h"

namespace exojit::vcode {

void* resolve_process_symbol(std::string_view name) {
  std::string n(name);
  return dlsym(RTLD_DEFAULT, n.c_str());
}

namespace {

enum class Tok { End, Ident, Reg, Global, Local, Number, Punct };

struct Token {
  Tok kind;
  std::string_view text;  // without the sigil for Reg/Global/Local
  int line, col;
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    for (;;) {
      skip_space();
      Token t{Tok::End, {}, line_, int(pos_ - line_start_) + 1};
      if (pos_ >= s_.size()) {
        out.push_back(t);
        return out;
      }
      char c = s_[pos_];
      size_t start = pos_;
      if (c == '%' || c == '@' || c == '$') {
        ++pos_;
        while (pos_ < s_.size() && is_word(s_[pos_])) ++pos_;
        if (pos_ == start + 1) error(t, fmt::format("'{}' must be followed by a name", c));
        t.kind = c == '%' ? Tok::Reg : c == '@' ? Tok::Global : Tok::Local;
        t.text = s_.substr(start + 1, pos_ - start - 1);
      } else if (std::isdigit(uint8_t(c))) {
        bool hex = c == '0' && pos_ + 1 < s_.size() && (s_[pos_ + 1] == 'x' || s_[pos_ + 1] == 'X');
        ++pos_;
        while (pos_ < s_.size()) {
          char d = s_[pos_];
          bool exp_sign =
              !hex && (d == '+' || d == '-') && (s_[pos_ - 1] == 'e' || s_[pos_ - 1] == 'E');
          if (!is_word(d) && d != '.' && !exp_sign) break;
          ++pos_;
        }
        t.kind = Tok::Number;
        t.text = s_.substr(start, pos_ - start);
      } else if (is_word(c)) {
        while (pos_ < s_.size() && is_word(s_[pos_])) ++pos_;
        t.kind = Tok::Ident;
        t.text = s_.substr(start, pos_ - start);
      } else if (c == '-' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '>') {
        pos_ += 2;
        t.kind = Tok::Punct;
        t.text = s_.substr(start, 2);
      } else if (std::string_view("(){}[],:+-").find(c) != std::string_view::npos) {
        ++pos_;
        t.kind = Tok::Punct;
        t.text = s_.substr(start, 1);
      } else {
        error(t, std::isprint(uint8_t(c)) ? fmt::format("unexpected character '{}'", c)
                                          : fmt::format("unexpected byte 0x{:02x}", uint8_t(c)));
      }
      out.push_back(t);
    }
  }

  [[noreturn]] static void error(const Token& t, const std::string& why) {
    fail("line {}, column {}: {}", t.line, t.col, why);
  }

 private:
  static bool is_word(char c) { return std::isalnum(uint8_t(c)) || c == '_' || c == '.'; }
  void skip_space() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n') {
        ++line_;
        line_start_ = ++pos_;
      } else if (std::isspace(uint8_t(c))) {
        ++pos_;
      } else if (c == ';' || c == '#' ||
                 (c == '/' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '/')) {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else {
        return;
      }
    }
  }
  std::string_view s_;
  size_t pos_ = 0, line_start_ = 0;
  int line_ = 1;
};

struct PendingCall {
  Function* f;
  size_t insn;
  std::string callee;
  Token where;
};

class Parser {
 public:
  Parser(std::string_view text, const SymbolResolver& resolve)
      : toks_(Lexer(text).run()), resolve_(resolve) {}

  Module run() {
    while (peek().kind != Tok::End) {
      Token t = next();
      if (t.kind == Tok::Ident && t.text == "extern")
        parse_extern();
      else if (t.kind == Tok::Ident && t.text == "func")
        parse_function();
      else
        error(t, fmt::format("expected 'func' or 'extern', found '{}'", t.text));
    }
    for (const PendingCall& c : calls_) {
      int e = m_.find_extern(c.callee);
      int fn = m_.find_function(c.callee);
      Insn& in = c.f->code[c.insn];
      if (fn >= 0) {
        in.imm = fn;
      } else if (e >= 0) {
        in.imm = e;
        in.flags |= kExtern;
      } else {
        error(c.where, fmt::format("call of undeclared function @{}", c.callee));
      }
    }
    verify(m_);
    for (auto& f : m_.functions()) {
      f->verified = true;
      for (const Insn& in : f->code) f->op_mask |= uint64_t(1) << unsigned(in.op);
    }
    return std::move(m_);
  }

 private:
  [[noreturn]] void error(const Token& t, const std::string& why) { Lexer::error(t, why); }
  const Token& peek(size_t k = 0) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  Token next() {
    Token t = peek();
    if (pos_ < toks_.size() - 1) ++pos_;
    return t;
  }
  bool accept(std::string_view punct) {
    if (peek().kind == Tok::Punct && peek().text == punct) {
      ++pos_;
      return true;
    }
    return false;
  }
  Token expect(std::string_view punct) {
    Token t = next();
    if (t.kind != Tok::Punct || t.text != punct)
      error(t, fmt::format("expected '{}', found '{}'", punct, describe(t)));
    return t;
  }
  Token expect(Tok kind, const char* what) {
    Token t = next();
    if (t.kind != kind) error(t, fmt::format("expected {}, found '{}'", what, describe(t)));
    return t;
  }
  static std::string describe(const Token& t) {
    if (t.kind == Tok::End) return "end of input";
    const char* sigil = t.kind == Tok::Reg      ? "%"
                        : t.kind == Tok::Global ? "@"
                        : t.kind == Tok::Local  ? "$"
                                                : "";
    return std::string(sigil) + std::string(t.text);
  }

  Type parse_type_tok() {
    Token t = expect(Tok::Ident, "a type");
    Type ty;
    if (!parse_type(t.text, &ty)) error(t, fmt::format("unknown type '{}'", t.text));
    return ty;
  }

  uint64_t parse_uint(const Token& t) {
    uint64_t v = 0;
    std::string_view s = t.text;
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
      s.remove_prefix(2);
      base = 16;
    }
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc() || p != s.data() + s.size())
      error(t, fmt::format("bad integer '{}'", t.text));
    return v;
  }

  // An immediate of type `t`: integers (decimal/hex, optional '-'), or float literals.
  int64_t parse_imm(Type t) {
    bool neg = accept("-");
    Token tok = next();
    if (is_float(t)) {
      double d;
      if (tok.kind == Tok::Ident && tok.text == "inf") {
        d = std::numeric_limits<double>::infinity();
      } else if (tok.kind == Tok::Ident && tok.text == "nan") {
        if (neg) error(tok, "write a NaN's sign in its bits: nan:0x...");
        expect(":");
        Token bits = expect(Tok::Number, "NaN bits");
        return int64_t(parse_uint(bits));
      } else if (tok.kind == Tok::Number) {
        std::string s(tok.text);
        char* end = nullptr;
        d = std::strtod(s.c_str(), &end);
        if (end != s.c_str() + s.size()) error(tok, fmt::format("bad float '{}'", tok.text));
      } else {
        error(tok, fmt::format("expected a float immediate, found '{}'", describe(tok)));
      }
      if (neg) d = -d;
      if (t == Type::F32) {
        if (std::isfinite(d) && std::abs(d) > double(std::numeric_limits<float>::max()))
          error(tok, fmt::format("{} does not fit in f32", tok.text));
        d = double(float(d));
      }
      return std::bit_cast<int64_t>(d);
    }
    if (tok.kind != Tok::Number)
      error(tok, fmt::format("expected an integer immediate, found '{}'", describe(tok)));
    uint64_t v = parse_uint(tok);
    return normalize_imm(t, int64_t(neg ? uint64_t(0) - v : v));
  }

  void parse_extern() {
    Token name = expect(Tok::Global, "an @name");
    Signature sig;
    expect("(");
    if (!accept(")")) {
      do {
        Token at = peek();
        sig.params.push_back(parse_type_tok());
        if (sig.params.back() == Type::Void) error(at, "a parameter cannot be void");
      } while (accept(","));
      expect(")");
    }
    expect("->");
    sig.ret = parse_type_tok();
    void* addr = resolve_(name.text);
    if (!addr) error(name, fmt::format("cannot resolve extern @{}", name.text));
    if (m_.find_function(name.text) >= 0)
      error(name, fmt::format("@{} is already a function", name.text));
    try {
      m_.add_extern(std::string(name.text), std::move(sig), addr);
    } catch (const Error& e) {
      error(name, e.what());
    }
  }

  // --- one function -------------------------------------------------------------------------
  struct FnState {
    Function* f;
    std::unordered_map<std::string_view, uint32_t> regs;
    std::unordered_map<std::string_view, uint32_t> labels;  // name -> provisional id
    std::vector<std::string_view> label_order;
    std::vector<Token> label_first;
    uint32_t used[2][2] = {};
  };

  uint32_t declare_reg(FnState& st, const Token& name, Type t, int param_pos) {
    if (st.regs.count(name.text))
      error(name, fmt::format("register %{} declared twice", name.text));
    if (t == Type::Void) error(name, "a register cannot be void");
    Token slot_tok = expect(Tok::Ident, "a slot (temp, var, t<N> or v<N>)");
    std::string_view s = slot_tok.text;
    bool fl = in_float_file(t);
    RegClass cls;
    int slot = -1;
    if (s == "temp" || s == "var") {
      cls = s == "temp" ? RegClass::Temp : RegClass::Var;
    } else if (s.size() >= 2 && (s[0] == 't' || s[0] == 'v')) {
      cls = s[0] == 't' ? RegClass::Temp : RegClass::Var;
      auto [p, ec] = std::from_chars(s.data() + 1, s.data() + s.size(), slot);
      if (ec != std::errc() || p != s.data() + s.size()) error(slot_tok, "bad slot");
    } else {
      error(slot_tok, fmt::format("bad slot '{}': temp, var, t<N> or v<N>", s));
    }
    int pool = fl ? (cls == RegClass::Temp ? kFloatTemps : kFloatVars)
                  : (cls == RegClass::Temp ? kIntTemps : kIntVars);
    uint32_t& used = st.used[fl][size_t(cls)];
    if (param_pos >= 0 && cls == RegClass::Temp) {
      if (slot >= 0 && slot != param_pos)
        error(slot_tok,
              fmt::format("temporary parameter {} lives in slot t{}", param_pos, param_pos));
      slot = param_pos;
    }
    if (slot < 0) {
      for (int k = 0; k < pool; ++k)
        if (!(used >> k & 1)) {
          slot = k;
          break;
        }
      if (slot < 0) error(slot_tok, "out of registers in that pool");
    }
    if (slot >= pool) error(slot_tok, fmt::format("slot {} out of range (pool of {})", slot, pool));
    used |= 1u << slot;
    Function& f = *st.f;
    uint32_t id = uint32_t(f.regs.size());
    f.regs.push_back(RegInfo{t, cls, uint8_t(slot)});
    f.reg_names.push_back(name.text == fmt::format("r{}", id) ? std::string()
                                                              : std::string(name.text));
    st.regs.emplace(name.text, id);
    return id;
  }

  uint32_t reg_ref(FnState& st) {
    Token t = expect(Tok::Reg, "a %register");
    auto it = st.regs.find(t.text);
    if (it == st.regs.end()) error(t, fmt::format("register %{} is not declared", t.text));
    return it->second;
  }

  uint32_t label_ref(FnState& st, const Token& t) {
    auto [it, fresh] = st.labels.emplace(t.text, uint32_t(st.label_order.size()));
    if (fresh) {
      st.label_order.push_back(t.text);
      st.label_first.push_back(t);
    }
    return it->second;
  }
  uint32_t label_ref(FnState& st) { return label_ref(st, expect(Tok::Ident, "a label")); }

  uint32_t local_ref(const Token& l) {
    uint64_t n = parse_uint(Token{Tok::Number, l.text, l.line, l.col});
    if (n > UINT32_MAX) error(l, fmt::format("local ${} does not exist", l.text));
    return uint32_t(n);
  }

  // Memory operand: [%base (+ %index)? (+|- disp)?] or [$local (+|- disp)?]; `owned` may
  // precede the displacement.
  void parse_mem(FnState& st, Insn& in) {
    expect("[");
    if (peek().kind == Tok::Local) {
      in.a = local_ref(next());
      in.flags |= kLocalBase;
    } else {
      in.a = reg_ref(st);
    }
    in.imm = 0;
    while (!accept("]")) {
      bool minus = accept("-");
      if (!minus) expect("+");
      if (!minus && peek().kind == Tok::Reg) {
        if (in.flags & kIndex) error(peek(), "a memory operand has at most one index register");
        in.b = reg_ref(st);
        in.flags |= kIndex;
      } else {
        accept_owned(in);
        Token n = expect(Tok::Number, "a displacement");
        uint64_t v = parse_uint(n);
        in.imm = int64_t(minus ? uint64_t(in.imm) - v : uint64_t(in.imm) + v);
      }
    }
  }

  Type type_of_reg(FnState& st, uint32_t id) { return st.f->regs[id].type; }

  // `owned` before a record's constant: kOwnedImm (ir.h).
  void accept_owned(Insn& in) {
    if (peek().kind == Tok::Ident && peek().text == "owned") {
      next();
      in.flags |= kOwnedImm;
    }
  }

  void parse_insn(FnState& st, const Token& op_tok) {
    Op op;
    if (!parse_op(op_tok.text, &op) || op == Op::Place)
      error(op_tok, fmt::format("unknown instruction '{}'", op_tok.text));
    Function& f = *st.f;
    Insn in{op, Type::Void, 0, 0, 0, 0, 0, 0};
    auto operand_or_imm = [&](Type t) {
      if (peek().kind == Tok::Reg) {
        in.b = reg_ref(st);
      } else {
        accept_owned(in);
        in.imm = parse_imm(t);
        in.flags |= kImm;
      }
    };
    auto dst_reg = [&] {  // the defined (or stored) register, which gives the type
      in.dst = reg_ref(st);
      in.type = type_of_reg(st, in.dst);
    };
    switch (form_of(op)) {  // the syntax of each form is in ops.h
      case Form::Binary:
        dst_reg();
        expect(",");
        in.a = reg_ref(st);
        expect(",");
        operand_or_imm(in.type);
        break;
      case Form::Unary:
        dst_reg();
        expect(",");
        in.a = reg_ref(st);
        break;
      case Form::UnaryImm:
        dst_reg();
        expect(",");
        in.a = reg_ref(st);
        expect(",");
        in.imm = parse_imm(Type::U64);
        break;
      case Form::SetImm:
        dst_reg();
        expect(",");
        accept_owned(in);
        in.imm = parse_imm(in.type);
        in.flags |= kImm;
        break;
      case Form::Load:
        dst_reg();
        expect(",");
        parse_mem(st, in);
        break;
      case Form::Store:
        parse_mem(st, in);
        expect(",");
        dst_reg();
        break;
      case Form::LocalAddr:
        dst_reg();
        expect(",");
        in.a = local_ref(expect(Tok::Local, "a $local"));
        in.flags |= kLocalBase;
        break;
      case Form::Branch:
        in.a = reg_ref(st);
        in.type = type_of_reg(st, in.a);
        expect(",");
        operand_or_imm(in.type);
        expect(",");
        in.dst = label_ref(st);
        break;
      case Form::Jump:
        in.dst = label_ref(st);
        break;
      case Form::JumpReg:
        in.a = reg_ref(st);
        in.type = type_of_reg(st, in.a);
        break;
      case Form::LabelAddr:
        in.a = reg_ref(st);
        in.type = type_of_reg(st, in.a);
        expect(",");
        in.dst = label_ref(st);
        break;
      case Form::Call: {
        if (peek().kind == Tok::Reg) {
          dst_reg();
          expect(",");
        } else {
          in.flags |= kVoid;
        }
        Token callee = expect(Tok::Global, "an @function");
        expect("(");
        in.a = uint32_t(f.call_args.size());
        if (!accept(")")) {
          do f.call_args.push_back(reg_ref(st));
          while (accept(","));
          expect(")");
        }
        in.b = uint32_t(f.call_args.size() - in.a);
        calls_.push_back(PendingCall{&f, f.code.size(), std::string(callee.text), callee});
        break;
      }
      case Form::Return:
        // An operand belongs to the ret only when it is on the same line.
        if (peek().line != op_tok.line || peek().kind == Tok::End ||
            (peek().kind == Tok::Punct && peek().text == "}")) {
          in.flags |= kVoid;
        } else if (peek().kind == Tok::Reg) {
          in.a = reg_ref(st);
          in.type = type_of_reg(st, in.a);
        } else {
          in.type = f.sig.ret;
          if (in.type == Type::Void) error(peek(), "a void function returns no value");
          accept_owned(in);
          in.imm = parse_imm(in.type);
          in.flags |= kImm;
        }
        break;
      case Form::Place:  // `label:` is parsed by parse_function
        error(op_tok, fmt::format("unknown instruction '{}'", op_tok.text));
    }
    f.code.push_back(in);
  }

  void parse_function() {
    Token name = expect(Tok::Global, "an @name");
    if (m_.find_function(name.text) >= 0 || m_.find_extern(name.text) >= 0)
      error(name, fmt::format("@{} is defined twice", name.text));
    Function& f = m_.add_function(std::string(name.text), Signature{});
    FnState st{&f};
    expect("(");
    int pos[2] = {0, 0};
    if (!accept(")")) {
      do {
        Token r = expect(Tok::Reg, "a %parameter");
        expect(":");
        Type t = parse_type_tok();
        bool fl = is_float(t);
        if (is_vector(t)) error(r, "a parameter cannot be a vector; pass a pointer to it");
        if (pos[fl] >= (fl ? 8 : kMaxIntArgs)) error(r, "too many parameters");
        uint32_t id = declare_reg(st, r, t, pos[fl]++);
        f.params.push_back(Reg{id});
        f.sig.params.push_back(t);
      } while (accept(","));
      expect(")");
    }
    expect("->");
    f.sig.ret = parse_type_tok();
    expect("{");
    while (!accept("}")) {
      Token t = next();
      if (t.kind == Tok::Reg) {
        expect(":");
        declare_reg(st, t, parse_type_tok(), -1);
      } else if (t.kind == Tok::Local) {
        uint64_t id = parse_uint(Token{Tok::Number, t.text, t.line, t.col});
        if (id != f.locals.size()) error(t, fmt::format("expected local ${}", f.locals.size()));
        expect(":");
        Token kw = expect(Tok::Ident, "'local'");
        if (kw.text != "local") error(kw, "expected 'local'");
        uint64_t size = parse_uint(expect(Tok::Number, "a size"));
        Token al = expect(Tok::Ident, "'align'");
        if (al.text != "align") error(al, "expected 'align'");
        uint64_t align = parse_uint(expect(Tok::Number, "an alignment"));
        if (size == 0 || size > (1u << 24) || align == 0 || align > 16 || (align & (align - 1)))
          error(t, "bad local: size 1..16M, align a power of two <= 16");
        f.locals.push_back(LocalInfo{uint32_t(size), uint32_t(align)});
      } else if (t.kind == Tok::Ident && peek().kind == Tok::Punct && peek().text == ":") {
        next();
        f.code.push_back(Insn{Op::Place, Type::Void, 0, 0, label_ref(st, t), 0, 0, 0});
      } else if (t.kind == Tok::Ident) {
        parse_insn(st, t);
      } else {
        error(t, fmt::format("expected an instruction, found '{}'", describe(t)));
      }
    }
    number_labels(st);
  }

  // Labels named L<n> keep number n, so that print(parse(print(f))) keeps the IR identical;
  // other names get the numbers after them.
  void number_labels(FnState& st) {
    Function& f = *st.f;
    std::vector<uint32_t> final_id(st.label_order.size(), UINT32_MAX);
    std::vector<uint8_t> taken;
    auto numeric = [](std::string_view s, uint32_t* out) {
      if (s.size() < 2 || s[0] != 'L' || (s.size() > 2 && s[1] == '0')) return false;
      auto [p, ec] = std::from_chars(s.data() + 1, s.data() + s.size(), *out);
      return ec == std::errc() && p == s.data() + s.size() && *out < (1u << 16);
    };
    uint32_t next_id = 0;
    for (size_t i = 0; i < st.label_order.size(); ++i) {
      uint32_t n;
      if (numeric(st.label_order[i], &n)) {
        final_id[i] = n;
        next_id = std::max(next_id, n + 1);
      }
    }
    for (size_t i = 0; i < st.label_order.size(); ++i)
      if (final_id[i] == UINT32_MAX) final_id[i] = next_id++;
    f.num_labels = next_id;
    f.label_names.assign(next_id, std::string());
    for (size_t i = 0; i < st.label_order.size(); ++i) {
      uint32_t n;
      if (!numeric(st.label_order[i], &n))
        f.label_names[final_id[i]] = std::string(st.label_order[i]);
    }
    for (Insn& in : f.code)
      if (refers_to_label(in.op)) in.dst = final_id[in.dst];
    bool any_name = false;
    for (auto& n : f.label_names) any_name |= !n.empty();
    if (!any_name) f.label_names.clear();
    any_name = false;
    for (auto& n : f.reg_names) any_name |= !n.empty();
    if (!any_name) f.reg_names.clear();
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  const SymbolResolver& resolve_;
  Module m_;
  std::vector<PendingCall> calls_;
};

}  // namespace

Module parse(std::string_view text, const SymbolResolver& resolve) {
  return Parser(text, resolve).run();
}

}  // namespace exojit::vcode
