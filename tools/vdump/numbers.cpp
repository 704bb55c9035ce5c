// SPDX-License-Identifier: MIT
// Numbers as vdump reads them (numbers_p.h).
#include <cctype>
#include <cstdlib>
#include <string>

#include "numbers_p.h"

namespace vdump {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

bool parse_integer(std::string_view s, bool* negative, uint64_t* magnitude) {
  *negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    *negative = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return false;
    if (v > (UINT64_MAX - uint64_t(d)) / uint64_t(base)) return false;  // overflow
    v = v * uint64_t(base) + uint64_t(d);
  }
  *magnitude = v;
  return true;
}

bool parse_double(std::string_view s, double* out) {
  if (s.empty() || std::isspace(uint8_t(s[0]))) return false;
  std::string text(s);
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

bool looks_numeric(std::string_view s) {
  bool neg;
  uint64_t mag;
  double d;
  return parse_integer(s, &neg, &mag) || parse_double(s, &d);
}

}  // namespace vdump
