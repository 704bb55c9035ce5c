// SPDX-License-Identifier: MIT
// --run: one call of a listing's function with arguments from the command line, natively and,
// with --interp, in the reference interpreter first, the two compared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "exojit/vcode.h"
#include "options_p.h"

namespace vdump {

// One argument: a raw value (as Interpreter::call takes it), or a buffer whose address is passed.
struct Arg {
  std::string text;
  uint64_t raw = 0;
  std::optional<std::vector<uint8_t>> buffer;
};

// A --run call, checked against the listing before anything is compiled or printed.
struct Call {
  size_t function = 0;
  std::vector<Arg> args;
  std::string text;  // "@fib(20)"
};

// The call o.run_args ask for in module m (UsageError when they do not fit).
Call prepare_call(const exojit::vcode::Module& m, const Options& o);

// Makes the call c to m compiled as code and prints the results; the exit status (3: the
// interpreter disagrees with the machine code).
int run(const exojit::vcode::Module& m, const exojit::vcode::Code& code, const Options& o,
        const Call& c);

}  // namespace vdump
