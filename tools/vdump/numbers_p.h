// SPDX-License-Identifier: MIT
// Numbers as vdump reads them: on the command line (--run's arguments, telling a function's
// name from an argument) and in the disassembler's operands.
#pragma once

#include <cstdint>
#include <string_view>

namespace vdump {

bool starts_with(std::string_view s, std::string_view p);

// An integer: optional sign, then decimal or 0x hex. Returns false if `s` is not one.
bool parse_integer(std::string_view s, bool* negative, uint64_t* magnitude);

// A floating-point number, all of `s` (strtod's syntax: also inf, nan).
bool parse_double(std::string_view s, double* out);

// An integer or a floating-point number.
bool looks_numeric(std::string_view s);

}  // namespace vdump
