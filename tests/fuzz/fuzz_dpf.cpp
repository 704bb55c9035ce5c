// SPDX-License-Identifier: MIT
// libFuzzer target for dpf, as an attacker would drive it: filters of several owners that do
// not trust each other, then packets from the wire.
//
// Input: a program of lines up to the first NUL byte, then packets. Lines (`#` comments):
//   options [bits=N] [filters=N] [atoms=N] [held=N] [bytes=N] [layer=N]   (first line only)
//       the engine's min_key_bits, every owner's limits, the layer threshold (low: the second
//       layer and masked removals with a few filters)
//   [@OWNER] [share=G] [id=N] [broad] FILTER   insert: DPF text, `pcap:` + tcpdump syntax, or
//       `api:` + hex bytes decoded into an expression tree by a stack machine (see decode_api)
//       that may hold null operands, unknown operators and enums, shared subtrees. A line
//       without `@` is inserted as filter files are (insert_all: owner 0, sharing group 1,
//       broad allowed, the line number as id), so that every filter file is an input.
//   @OWNER remove N                           remove filter N as that owner
// A DPF filter may be several, ` ||| ` between them: disjuncts under one id (RECORD and RECORDED
// atoms of one chain need that).
// Packets: [length byte][bytes]...; a length byte 255 is followed by two bytes, the length
// (little-endian, up to 4096). Without packets: twelve generated ones (testsupport/packets.h).
//
// Checks, on every packet placed flush against a PROT_NONE page (after it, then before it) and
// on a few of its prefixes:
// - no read outside the packet (the guard page faults; ASan catches the rest);
// - generated code = trie walk; without stateful filters, both = the model (tests/dpf/model.h:
//   each filter's meaning, fields past the end make an atom false) with the winner rule, and
//   accepting() = the model's set;
// - ownership: two filters of different owners that accept one packet share a nonzero group
//   (else the engine let one take the other's packets without consent);
// - an insertion or removal either completes or throws exojit::Error and changes nothing; an
//   accepted filter's owner may remove it, another owner may not; no "internal" error ever.
// - a `pcap:` line's id accepts exactly the packets libpcap's own program for the expression
//   accepts (bpf_filter): tcpdump expressions through libpcap's compiler and the lift, or run
//   as opaque filters (the model runs their programs with bpf_filter, and computes their
//   specificity itself) -- or, for an expression that accepts nothing, an id that never
//   matches.
// Then every owner removes every other of its filters and the packets are checked again.
#include <pcap/pcap.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exojit/dpf/engine.h"
#include "exojit/dpf/pcap.h"
#include "exojit/error.h"
#include "guarded.h"
#include "model.h"
#include "packets.h"

// Outcome of the last input, for the corpus driver: 0 some insertion refused, 1 all accepted.
int exojit_fuzz_parse_outcome = 0;

namespace {

using namespace exojit::dpf;
using testing::Bytes;
using testing::Model;

[[noreturn]] void bug(const std::string& what) {
  std::fprintf(stderr, "fuzz_dpf: %s\n", what.c_str());
  std::abort();
}

struct Inserted {
  uint32_t owner;
  uint64_t share;
  std::vector<Filter> disjuncts;
  std::vector<unsigned> specificity;  // the engine's measure, per disjunct (opaque: one)
  std::vector<BpfInsn> opaque;        // an opaque filter's program (the model runs it)
};

// An expression tree from bytes, as a hostile caller of the C++ API could build it. A stack
// machine: 'L' hi lo bits: a field (bits as given); 'C' 8 bytes: a constant; 'Z': LEN; one of & | ^
// + - * < (<<) > (>>): pops b and a (a missing operand is null); 'X' op: a node with that raw
// operator over b and a; 'D': pushes the top again (a shared subtree); 'N': a null. Atoms: 'E'
// cmp 8 bytes: pops an expression, compares it (raw cmp); 'S' 'R' 'Q': pops one, SHIFT, RECORD,
// RECORDED; 'K' kind: pops one, an atom of that raw kind.
Filter decode_api(const std::vector<uint8_t>& b) {
  Filter f;
  std::vector<ExprPtr> stack;
  auto pop = [&]() -> ExprPtr {
    if (stack.empty()) return nullptr;
    ExprPtr e = stack.back();
    stack.pop_back();
    return e;
  };
  auto u64 = [&](size_t& i) {
    uint64_t v = 0;
    for (int k = 0; k < 8 && i < b.size(); ++k) v = v << 8 | b[i++];
    return v;
  };
  static const std::string ops = "&|^+-*<>";
  static const ExprOp op_of[] = {ExprOp::And, ExprOp::Or,  ExprOp::Xor, ExprOp::Add,
                                 ExprOp::Sub, ExprOp::Mul, ExprOp::Lsh, ExprOp::Rsh};
  for (size_t i = 0; i < b.size() && stack.size() < 256 && f.atoms().size() < 300;) {
    char c = char(b[i++]);
    auto node = std::make_shared<ExprNode>();
    if (c == 'L' && i + 3 <= b.size()) {
      node->op = ExprOp::Load, node->offset = uint32_t(b[i] << 8 | b[i + 1]), node->bits = b[i + 2];
      i += 3;
      stack.push_back(node);
    } else if (c == 'C') {
      node->op = ExprOp::Const, node->value = u64(i);
      stack.push_back(node);
    } else if (c == 'Z') {
      node->op = ExprOp::Len;
      stack.push_back(node);
    } else if (size_t k = ops.find(c); k != std::string::npos) {
      node->op = op_of[k], node->b = pop(), node->a = pop();
      stack.push_back(node);
    } else if (c == 'X' && i < b.size()) {
      node->op = ExprOp(b[i++]), node->b = pop(), node->a = pop();
      stack.push_back(node);
    } else if (c == 'D' && !stack.empty()) {
      stack.push_back(stack.back());
    } else if (c == 'N') {
      stack.push_back(nullptr);
    } else if (c == 'E' && i < b.size()) {
      Cmp cmp = Cmp(b[i++]);
      ExprPtr e = pop();
      f.atoms().push_back(Atom{Atom::Kind::Compare, e, cmp, u64(i)});
    } else if (c == 'S' || c == 'R' || c == 'Q') {
      Atom::Kind kind = c == 'S'   ? Atom::Kind::Shift
                        : c == 'R' ? Atom::Kind::Record
                                   : Atom::Kind::Recorded;
      f.atoms().push_back(Atom{kind, pop(), Cmp::Eq, 0});
    } else if (c == 'K' && i < b.size()) {
      Atom::Kind kind = Atom::Kind(b[i++]);
      f.atoms().push_back(Atom{kind, pop(), Cmp::Eq, 1});
    }
  }
  return f;
}

std::vector<uint8_t> unhex(std::string_view s) {
  std::vector<uint8_t> out;
  auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  for (size_t i = 0; i + 1 < s.size(); i += 2) {
    int h = digit(s[i]), l = digit(s[i + 1]);
    if (h < 0 || l < 0) break;
    out.push_back(uint8_t(h << 4 | l));
  }
  return out;
}

// RECORDED atoms depend on the engine's state: the model does not decide those filters.
bool stateful(const std::map<FilterId, Inserted>& filters) {
  for (auto& [id, in] : filters)
    for (const Filter& f : in.disjuncts)
      if (!Model::decides(f)) return true;
  return false;
}

class Run {
 public:
  explicit Run(EngineOptions o) : e_(o) {
    e_.set_clock([] { return uint64_t(1); });  // nothing expires within one input
  }

  void line(std::string_view s, unsigned number) {
    size_t first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || s[first] == '#') return;
    s = s.substr(first);
    InsertOptions o;
    if (s[0] != '@') o = InsertOptions{.share = 1, .id = number, .broad = true};
    for (;;) {  // prefixes
      size_t sp = s.find(' ');
      std::string_view tok = s.substr(0, sp);
      if (sp == std::string_view::npos) break;
      if (tok.size() > 1 && tok[0] == '@')
        o.owner = uint32_t(std::strtoul(std::string(tok.substr(1)).c_str(), nullptr, 10));
      else if (tok.substr(0, 6) == "share=")
        o.share = std::strtoull(std::string(tok.substr(6)).c_str(), nullptr, 10);
      else if (tok.substr(0, 3) == "id=")
        o.id = FilterId(std::strtoul(std::string(tok.substr(3)).c_str(), nullptr, 10));
      else if (tok == "broad")
        o.broad = true;
      else
        break;
      s = s.substr(sp + 1);
    }
    if (s.substr(0, 7) == "remove ") {
      remove(FilterId(std::strtoul(std::string(s.substr(7)).c_str(), nullptr, 10)), o.owner);
      return;
    }
    std::vector<Filter> disjuncts;
    std::optional<PcapFilter> pcap;  // a `pcap:` line: libpcap's program and its lift
    try {
      if (s.substr(0, 4) == "api:") {
        disjuncts.push_back(decode_api(unhex(s.substr(4))));
      } else if (s.substr(0, 5) == "pcap:") {
        pcap = compile_pcap(s.substr(5));
      } else {
        for (size_t at = 0; at <= s.size();) {
          size_t bar = s.find(" ||| ", at);
          disjuncts.push_back(parse_filter(s.substr(at, bar - at)));
          at = bar == std::string_view::npos ? s.size() + 1 : bar + 5;
        }
      }
    } catch (const exojit::Error& x) {
      refused_ = true;
      if (std::getenv("FUZZ_DPF_VERBOSE")) std::fprintf(stderr, "not parsed: %s\n", x.what());
      return;
    }
    if (!pcap) {
      insert(disjuncts, {}, o, [&] { return e_.insert(std::span<const Filter>(disjuncts), o); });
      return;
    }
    std::vector<BpfInsn> opaque = pcap->lifted.opaque ? pcap->program : std::vector<BpfInsn>();
    if (std::optional<FilterId> id =
            insert(pcap->lifted.disjuncts, opaque, o, [&] { return e_.insert(*pcap, o); }))
      programs_[*id] = pcap->program;
  }

  template <typename Insert>
  std::optional<FilterId> insert(const std::vector<Filter>& disjuncts,
                                 const std::vector<BpfInsn>& opaque, InsertOptions o,
                                 Insert insert) {
    std::string before = e_.dump_trie();
    size_t size = e_.size();
    try {
      FilterId id = insert();
      if (filters_.count(id)) bug("an id given twice");
      if (e_.opaque(id) != !opaque.empty()) bug("opaque() differs from the lift");
      filters_[id] = Inserted{o.owner, o.share, disjuncts, e_.specificity(id), opaque};
      if (!opaque.empty() &&
          filters_[id].specificity != std::vector<unsigned>{Model::specificity(opaque)})
        bug("an opaque filter's specificity differs from the model's");
      return id;
    } catch (const exojit::Error& x) {
      refused_ = true;
      if (std::getenv("FUZZ_DPF_VERBOSE")) std::fprintf(stderr, "refused: %s\n", x.what());
      if (std::string_view(x.what()).find("internal") != std::string_view::npos)
        bug(std::string("internal error: ") + x.what());
      if (e_.size() != size || e_.dump_trie() != before)
        bug(std::string("refused insertion changed the engine: ") + x.what());
    }
    return std::nullopt;
  }

  void remove(FilterId id, uint32_t owner) {
    auto it = filters_.find(id);
    bool may = it != filters_.end() && it->second.owner == owner;
    std::string before = e_.dump_trie();
    try {
      e_.remove(id, owner);
      if (!may) bug("removed a filter that is not the owner's");
      filters_.erase(it);
      programs_.erase(id);
    } catch (const exojit::Error& x) {
      if (may) bug(std::string("the owner could not remove its filter: ") + x.what());
      if (e_.dump_trie() != before) bug("refused removal changed the engine");
    }
  }

  // Every owner removes every other of its filters.
  void thin_out() {
    std::vector<std::pair<FilterId, uint32_t>> drop;
    bool odd = false;
    for (auto& [id, in] : filters_)
      if ((odd = !odd)) drop.emplace_back(id, in.owner);
    for (auto [id, owner] : drop) remove(id, owner);
  }

  void check(const Bytes& p) {
    static testing::GuardedPages pages(8192);
    bool remembers = stateful(filters_);
    std::vector<size_t> lengths{p.size()};
    if (!p.empty()) lengths.push_back(p.size() - 1), lengths.push_back(p.size() / 2);
    for (size_t n : lengths)
      for (bool at_end : {true, false}) {
        const uint8_t* at = pages.place(p.data(), n, at_end);
        FilterId walked = e_.demux_reference(at, n);  // before demux, which may remember
        FilterId got = e_.demux(at, n);
        if (got != walked)
          bug("generated code " + std::to_string(got) + " vs trie walk " + std::to_string(walked));
        for (auto& [id, program] : programs_) {
          bool want = bpf_filter(reinterpret_cast<const bpf_insn*>(program.data()), at, u_int(n),
                                 u_int(n)) != 0;
          std::vector<FilterId> accepting = e_.accepting(at, n);
          if (want != std::count(accepting.begin(), accepting.end(), id))
            bug("filter " + std::to_string(id) + " vs libpcap's program for its expression");
        }
        if (remembers) continue;
        FilterId want = winner(at, n);
        if (walked != want)
          bug("trie walk " + std::to_string(walked) + " vs model " + std::to_string(want));
      }
    for (const Released& r : e_.take_released())
      if (!filters_.count(r.id)) bug("a packet released to a filter that is gone");
  }

  bool refused() const { return refused_; }

 private:
  // The model's winner (most specific, then lowest id); also checks accepting() and the
  // ownership rule on the way.
  FilterId winner(const uint8_t* pkt, size_t len) {
    std::vector<FilterId> accepting;
    FilterId best = 0;
    unsigned best_spec = 0;
    for (auto& [id, in] : filters_) {
      bool any = false;
      if (!in.opaque.empty() && Model::accepts(in.opaque, pkt, len)) {
        any = true;
        if (best == 0 || in.specificity[0] > best_spec) best = id, best_spec = in.specificity[0];
      }
      for (size_t i = 0; i < in.disjuncts.size(); ++i)
        if (Model::accepts(in.disjuncts[i], pkt, len)) {
          any = true;
          if (best == 0 || in.specificity[i] > best_spec) best = id, best_spec = in.specificity[i];
        }
      if (any) accepting.push_back(id);
    }
    if (e_.accepting(pkt, len) != accepting) bug("accepting() differs from the model");
    for (FilterId a : accepting)
      for (FilterId b : accepting) {
        const Inserted &x = filters_.at(a), &y = filters_.at(b);
        if (x.owner != y.owner && (x.share == 0 || x.share != y.share))
          bug("filters " + std::to_string(a) + " and " + std::to_string(b) +
              " of different owners accept one packet without sharing");
      }
    return best;
  }

  Engine e_;
  std::map<FilterId, Inserted> filters_;
  std::map<FilterId, std::vector<BpfInsn>> programs_;  // libpcap's, for `pcap:` filters
  bool refused_ = false;
};

EngineOptions options_from(std::string_view& text) {
  EngineOptions o;
  if (text.substr(0, 8) != "options ") return o;
  size_t nl = text.find('\n');
  std::string line(text.substr(8, nl == std::string_view::npos ? std::string_view::npos : nl - 8));
  text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  for (size_t at = 0; at < line.size();) {
    size_t sp = line.find(' ', at);
    std::string tok = line.substr(at, sp == std::string::npos ? std::string::npos : sp - at);
    at = sp == std::string::npos ? line.size() : sp + 1;
    size_t eq = tok.find('=');
    if (eq == std::string::npos) continue;
    size_t v = std::strtoull(tok.c_str() + eq + 1, nullptr, 10);
    std::string key = tok.substr(0, eq);
    if (key == "bits") o.min_key_bits = unsigned(std::min<size_t>(v, 255));
    if (key == "filters") o.owner_limits.filters = v;
    if (key == "atoms") o.owner_limits.atoms = v;
    if (key == "held") o.owner_limits.held_packets = v;
    if (key == "bytes") o.owner_limits.held_bytes = v;
    if (key == "layer") o.layer_threshold = v;
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  exojit_fuzz_parse_outcome = 0;
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t nul = all.find('\0');
  std::string_view text = all.substr(0, nul);
  std::vector<Bytes> packets;
  if (nul != std::string_view::npos) {
    for (size_t at = nul + 1; at < size;) {
      size_t len = data[at++];
      if (len == 255 && at + 2 <= size)
        len = std::min<size_t>(data[at] | data[at + 1] << 8, 4096), at += 2;
      len = std::min(len, size - at);
      packets.emplace_back(data + at, data + at + len);
      at += len;
    }
  } else {
    std::mt19937_64 rng(size);
    for (int i = 0; i < 12; ++i) packets.push_back(testing::random_packet(rng));
  }
  Run run(options_from(text));
  size_t lines = 0;
  while (!text.empty() && lines < 96) {  // keep each input fast
    size_t nl = text.find('\n');
    run.line(text.substr(0, nl), unsigned(lines + 1));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++lines;
  }
  exojit_fuzz_parse_outcome = !run.refused();
  for (const Bytes& p : packets) run.check(p);
  run.thin_out();
  for (const Bytes& p : packets) run.check(p);
  return 0;
}
