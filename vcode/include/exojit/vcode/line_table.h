// SPDX-License-Identifier: MIT
// Which vcode line each machine instruction came from: the line table of a Code compiled with
// CompileOptions::line_table (or debug_info, or jitdump). The same table feeds `vdump --lines`,
// the DWARF line information gdb gets through the GDB JIT interface, and the debug-info records
// of perf's jitdump.
//
//   Code code = compile(m, {.line_table = true});
//   const LineTable& t = *code.line_table();
//   for (const LineTable::Row& r : t.functions[0].rows)
//     printf("+%u: line %u: %s\n", r.offset, t.line_of(0, r), t.line_text(t.line_of(0,
//     r)).c_str());
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace exojit::vcode {

struct LineTable {
  struct Row {
    uint32_t offset;  // from the function's first byte: where this record's machine code starts
    uint32_t record;  // index into Function::code
  };
  struct Function {
    // One row per record, in order; a record that emits no code (a label) has the offset of the
    // next one. The code before the first row (the prologue) belongs to the `func` line.
    std::vector<Row> rows;
    uint32_t size = 0;               // bytes of machine code
    uint32_t header_line = 0;        // the listing's line of `func @name(...)`
    uint32_t first_record_line = 0;  // the line of record 0; record i is on this line + i
  };

  // The module's listing (print(m)) when it was compiled: the text the line numbers (from 1)
  // refer to.
  std::string listing;
  std::vector<uint32_t> line_starts;  // where each line of the listing begins
  std::vector<Function> functions;    // in the module's order (Code::symbols())

  uint32_t line_of(size_t function, const Row& row) const {
    return functions[function].first_record_line + row.record;
  }
  // The listing line of the machine code at `offset` of a function: the last row at or before
  // it, or the `func` line for the prologue.
  uint32_t line_at(size_t function, uint32_t offset) const;
  // The text of listing line `line` (1-based), without its newline; "" past the end.
  std::string_view line_text(uint32_t line) const;
};

}  // namespace exojit::vcode
