// SPDX-License-Identifier: MIT
// Files of tcpdump expressions for the tests (tests/dpf/data/*.txt): one expression per line,
// as written, the blanks around it dropped; lines starting with '#' and blank lines skipped; a
// line in double quotes read with C escapes (\t \n \\ \"), for an expression whose blanks
// matter (`" "`, `"tcp port 80\n"`). Anything else on a line is the expression, backslashes
// included (`ip proto \tcp`).
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace exojit::dpf::testing {

inline std::vector<std::string> read_expressions(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<std::string> out;
  size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    size_t first = line.find_first_not_of(" \t\r"), last = line.find_last_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    std::string x = line.substr(first, last - first + 1);
    if (x.size() >= 2 && x.front() == '"' && x.back() == '"') {
      std::string raw = x.substr(1, x.size() - 2);
      x.clear();
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '\\') {
          x += raw[i];
          continue;
        }
        char e = i + 1 < raw.size() ? raw[++i] : '\0';
        if (e == 't')
          x += '\t';
        else if (e == 'n')
          x += '\n';
        else if (e == '\\' || e == '"')
          x += e;
        else
          throw std::runtime_error(path + ":" + std::to_string(number) + ": bad escape");
      }
    }
    out.push_back(std::move(x));
  }
  return out;
}

}  // namespace exojit::dpf::testing
