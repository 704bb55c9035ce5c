// SPDX-License-Identifier: MIT
// A minimal ELF64 relocatable object (private header): what gdb reads through the GDB JIT
// interface. The code itself is not copied: `.text` is a NOBITS section whose address is the
// code's, so gdb reads the instructions from the process; the object carries symbols and the
// DWARF sections.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exojit/vcode/code.h"

namespace exojit::vcode::detail {

struct ElfSymbol {
  std::string name;
  uint64_t offset;  // from the start of .text
  uint64_t size;
};

struct ElfObject {
  Target target = kHostTarget;
  uint64_t text_address = 0;
  uint64_t text_size = 0;
  std::vector<ElfSymbol> functions;
  // Extra sections (e.g. .debug_info), in this order after .text.
  std::vector<std::pair<std::string, std::vector<uint8_t>>> sections;
};

std::vector<uint8_t> write_elf(const ElfObject& object);

}  // namespace exojit::vcode::detail
