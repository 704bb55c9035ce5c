// libFuzzer target for dpf: filters and packets, both from the input.
//
// Input: a filter file (one filter per line, DPF syntax or `pcap:` tcpdump syntax) up to the
// first NUL byte, then packets as [length byte][bytes]...; without packets in the input, eight
// generated ones (every protocol of tests/dpf/packets.h, seeded by the input's size). Filters are
// inserted (malformed ones must be refused with exojit::Error, nothing else), then every packet,
// copied to a buffer of exactly its length (AddressSanitizer catches any read past it), must get
// the same answer from the generated code, the trie walk and the filters evaluated one by one
// with the most-specific rule; the same again after removing every other filter. (With RECORD or
// RECORDED atoms, whose answers depend on earlier packets, the code is checked against the walk.)
// A `pcap:` line's id must accept exactly the packets libpcap's own program for the expression
// accepts (bpf_filter): the fuzzer feeds tcpdump expressions to libpcap's compiler and the lift.
#include <pcap/pcap.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string_view>
#include <vector>

#include "exojit/dpf/engine.h"
#include "exojit/dpf/filter_file.h"
#include "exojit/error.h"
#include "packets.h"

// Outcome of the last input, for the corpus driver: 0 some filter refused, 1 all inserted.
int exojit_fuzz_parse_outcome = 0;

namespace {

using namespace exojit::dpf;

[[noreturn]] void bug(const char* what, FilterId got, FilterId want) {
  std::fprintf(stderr, "fuzz_dpf: %s: got filter %u, expected %u\n", what, got, want);
  std::abort();
}

bool stateful(const std::map<FilterId, std::vector<Filter>>& filters) {
  for (auto& [id, disjuncts] : filters)
    for (const Filter& f : disjuncts)
      for (const Atom& a : f.atoms())
        if (a.kind == Atom::Kind::Record || a.kind == Atom::Kind::Recorded) return true;
  return false;
}

void check(Engine& e, const std::map<FilterId, std::vector<Filter>>& filters,
           const std::map<FilterId, std::vector<BpfInsn>>& programs,
           const std::vector<testing::Bytes>& packets) {
  bool remembers = stateful(filters);
  for (const testing::Bytes& p : packets) {
    auto exact = testing::exact_copy(p);
    std::vector<FilterId> accepting = e.accepting(exact.get(), p.size());
    for (auto& [id, program] : programs) {
      if (!filters.count(id)) continue;
      bool want = bpf_filter(reinterpret_cast<const bpf_insn*>(program.data()), exact.get(),
                             u_int(p.size()), u_int(p.size())) != 0;
      bool got = std::count(accepting.begin(), accepting.end(), id) != 0;
      if (got != want) bug("tcpdump expression vs libpcap", got ? id : 0, want ? id : 0);
    }
    if (remembers) {  // the walk first: demux may remember a value afterwards
      FilterId walked = e.demux_reference(exact.get(), p.size());
      FilterId got = e.demux(exact.get(), p.size());
      if (got != walked) bug("generated code vs trie walk (stateful filters)", got, walked);
      continue;
    }
    FilterId want = 0;
    unsigned best = 0;
    for (auto& [id, disjuncts] : filters) {
      std::vector<unsigned> spec = e.specificity(id);
      for (size_t i = 0; i < disjuncts.size(); ++i)
        if (matches(disjuncts[i], exact.get(), p.size()) && (want == 0 || spec[i] > best))
          want = id, best = spec[i];
    }
    FilterId walked = e.demux_reference(exact.get(), p.size());
    if (walked != want) bug("trie walk vs filters one by one", walked, want);
    FilterId got = e.demux(exact.get(), p.size());
    if (got != want) bug("generated code vs filters one by one", got, want);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  exojit_fuzz_parse_outcome = 0;
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t nul = all.find('\0');
  std::string_view text = all.substr(0, nul);
  std::vector<testing::Bytes> packets;
  if (nul != std::string_view::npos) {
    for (size_t at = nul + 1; at < size;) {
      size_t len = std::min<size_t>(data[at], size - at - 1);
      packets.emplace_back(data + at + 1, data + at + 1 + len);
      at += 1 + len;
    }
  } else {
    std::mt19937_64 rng(size);
    for (int i = 0; i < 8; ++i) packets.push_back(testing::random_packet(rng));
  }
  std::vector<FilterLine> lines;
  Engine e;
  e.set_clock([] { return uint64_t(1); });  // nothing expires within one input
  std::map<FilterId, std::vector<Filter>> filters;
  bool refused = false;
  try {
    lines = parse_filter_file(text);
    if (lines.size() > 64) return 0;  // keep each input fast
    for (const FilterLine& l : lines) {
      try {
        insert_all(e, {l});
        filters[l.line] = l.disjuncts;
      } catch (const exojit::Error&) {  // e.g. an atom that can never be true: skip it
        refused = true;
      }
    }
  } catch (const exojit::Error&) {
    return 0;
  }
  exojit_fuzz_parse_outcome = !refused;
  // libpcap's programs for the `pcap:` lines that went in.
  std::map<FilterId, std::vector<BpfInsn>> programs;
  unsigned number = 0;
  for (std::string_view rest = text; !rest.empty();) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++number;
    size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line.substr(first, 5) != "pcap:") continue;
    if (filters.count(number)) programs[number] = compile_pcap_bpf(line.substr(first + 5));
  }
  check(e, filters, programs, packets);
  bool drop = false;
  for (auto it = filters.begin(); it != filters.end();) {
    if ((drop = !drop)) {
      e.remove(it->first);
      it = filters.erase(it);
    } else {
      ++it;
    }
  }
  check(e, filters, programs, packets);
  return 0;
}
