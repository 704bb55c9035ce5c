// SPDX-License-Identifier: MIT
// Files of filters, one per line (dpf-match, vdump --dpf): DPF syntax, or the tcpdump syntax
// after a `pcap:` prefix. A filter's id is its line number (from 1); blank lines and lines
// starting with '#' hold no filter but are counted.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "exojit/dpf/engine.h"
#include "exojit/dpf/filter.h"
#include "exojit/dpf/pcap.h"

namespace exojit::dpf {

struct FilterLine {
  unsigned line;                   // 1-based: the filter's id
  std::vector<Filter> disjuncts;   // a DPF line: its filter
  std::optional<PcapFilter> pcap;  // a `pcap:` line: libpcap's program and its lift (or opaque)
};

// Parses every line; an error names the line ("line 3: ...").
std::vector<FilterLine> parse_filter_file(std::string_view text);

// Inserts every filter under its line number, as one owner's (owner 0, sharing group 1, with the
// right to broad filters: a file of filters is one user's choice, like tcpdump's expression),
// untrusted unless `trusted` (hardened code: README "Threat model").
void insert_all(Engine& e, const std::vector<FilterLine>& filters, bool trusted = false);

}  // namespace exojit::dpf
