// SPDX-License-Identifier: MIT
// exojit::Error: the one exception type for every error a user can cause.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace exojit {

// Thrown for bad IR, malformed text, exhausted registers, unsupported targets and the like.
// The message names the cause (and the instruction, where there is one).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Formats and throws an Error in one call: `fail("bad label {}", n)`.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace exojit
