// SPDX-License-Identifier: MIT
// Filter files: one filter per line, ids are line numbers.
#include "exojit/dpf/filter_file.h"

#include "exojit/error.h"

namespace exojit::dpf {

std::vector<FilterLine> parse_filter_file(std::string_view text) {
  std::vector<FilterLine> out;
  unsigned line = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view s = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line;
    size_t first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || s[first] == '#') continue;
    s = s.substr(first);
    try {
      FilterLine f{line, {}, {}};
      if (s.substr(0, 5) == "pcap:")
        f.pcap = compile_pcap(s.substr(5));
      else
        f.disjuncts.push_back(parse_filter(s));
      out.push_back(std::move(f));
    } catch (const Error& e) {
      fail("line {}: {}", line, e.what());
    }
  }
  return out;
}

void insert_all(Engine& e, const std::vector<FilterLine>& filters, bool trusted) {
  for (const FilterLine& f : filters) {
    try {
      InsertOptions o{.share = 1, .id = f.line, .broad = true, .trusted = trusted};
      if (f.pcap)
        e.insert(*f.pcap, o);
      else
        e.insert(std::span<const Filter>(f.disjuncts), o);
    } catch (const Error& x) {
      fail("line {}: {}", f.line, x.what());
    }
  }
}

}  // namespace exojit::dpf
