// SPDX-License-Identifier: MIT
// The line table: LineTable's lookups, and building it from a back end's notes (code_debug_p.h).
#include <algorithm>

#include "code_debug_p.h"
#include "exojit/error.h"
#include "exojit/vcode/text.h"

namespace exojit::vcode {

uint32_t LineTable::line_at(size_t function, uint32_t offset) const {
  const Function& f = functions.at(function);
  // The last row at or before `offset`: among rows at one offset (records that emit no code
  // before one that does) the last is the one whose code it is.
  auto after = std::upper_bound(f.rows.begin(), f.rows.end(), offset,
                                [](uint32_t o, const Row& r) { return o < r.offset; });
  if (after == f.rows.begin()) return f.header_line;  // the prologue
  return line_of(function, *(after - 1));
}

std::string_view LineTable::line_text(uint32_t line) const {
  if (line == 0 || line > line_starts.size()) return {};
  std::string_view text = std::string_view(listing).substr(line_starts[line - 1]);
  return text.substr(0, text.find('\n'));
}

namespace detail {

LineTable make_line_table(const Module& m, const CodeNotes& notes,
                          const std::vector<Code::Symbol>& symbols) {
  LineTable t;
  t.listing = print(m);
  t.line_starts.push_back(0);
  for (size_t i = 0; i + 1 < t.listing.size(); ++i)
    if (t.listing[i] == '\n') t.line_starts.push_back(uint32_t(i + 1));
  if (notes.functions.size() != m.functions().size())
    fail("line table: the back end noted {} functions of {}", notes.functions.size(),
         m.functions().size());
  // print(m): externs, then each function's listing in order: its `func` line, a line per
  // register that is not a parameter, one per local, one per record, and `}`
  // (tests/debug/line_table_test.cpp checks every record's line against print_insn).
  size_t cursor = 0;
  for (size_t i = 0; i < m.functions().size(); ++i) {
    const Function& f = *m.functions()[i];
    const CodeNotes::Function& n = notes.functions[i];
    const std::string header = "func @" + f.name + "(";
    size_t at = cursor;
    while (at < t.listing.size() && t.listing.compare(at, header.size(), header) != 0) {
      size_t newline = t.listing.find('\n', at);
      at = newline == std::string::npos ? t.listing.size() : newline + 1;
    }
    if (at >= t.listing.size()) fail("line table: @{} is not in the module's listing", f.name);
    cursor = at + header.size();
    LineTable::Function lf;
    lf.header_line =
        uint32_t(std::upper_bound(t.line_starts.begin(), t.line_starts.end(), uint32_t(at)) -
                 t.line_starts.begin());
    const size_t declarations = f.regs.size() - f.params.size() + f.locals.size();
    lf.first_record_line = lf.header_line + 1 + uint32_t(declarations);
    lf.size = uint32_t(symbols[i].size);
    for (const CodeNotes::Row& r : n.rows)
      lf.rows.push_back(LineTable::Row{r.offset - n.begin, r.record});
    t.functions.push_back(std::move(lf));
  }
  return t;
}

}  // namespace detail

}  // namespace exojit::vcode
