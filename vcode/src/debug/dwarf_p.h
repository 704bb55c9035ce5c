// SPDX-License-Identifier: MIT
// DWARF 4 for generated code (private header): one compilation unit per Code, named after the
// listing file; a subprogram per function; a line program mapping machine addresses to listing
// lines; and call frame information (.debug_frame) from the back end's frame notes, so that gdb
// unwinds through generated frames.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exojit/vcode/code.h"
#include "notes_p.h"

namespace exojit::vcode::detail {

struct DwarfFunction {
  std::string name;
  uint64_t address = 0;
  uint64_t size = 0;
  uint32_t line = 0;  // the `func` line
  struct Line {
    uint32_t offset;  // from the function's start
    uint32_t line;
  };
  std::vector<Line> lines;              // ascending offsets, one per distinct offset
  std::vector<CodeNotes::Frame> frame;  // offsets from the function's start
};

struct DwarfSections {
  std::vector<uint8_t> abbrev, info, line, frame;
};

// `file`: the listing's absolute path; [low, high): the code's address range.
DwarfSections make_dwarf(Target target, const std::string& file, uint64_t low, uint64_t high,
                         const std::vector<DwarfFunction>& functions);

}  // namespace exojit::vcode::detail
