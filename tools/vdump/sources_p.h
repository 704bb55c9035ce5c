// SPDX-License-Identifier: MIT
// What vdump dumps, one function each: a vcode listing, DPF filters, library pipes, an example
// ASH. Each returns the exit status; errors are exojit::Error (1) or UsageError (2).
#pragma once

#include <string>

#include "options_p.h"

namespace vdump {

// The text of FILE ("" or "-": stdin).
std::string read_input(const std::string& file);

// A vcode listing (text, named source): parsed, compiled (and on the LLVM tier), dumped, and
// the --run call made.
int dump_listing(const std::string& text, const std::string& source, const Options& o);

// --dpf: the filters of text merged into one engine; its trie and its demultiplexer.
int dump_dpf(const std::string& text, const std::string& source, const Options& o);

// --pipes: the library pipes, composed and compiled; the dump of the generated function.
int dump_pipes(const Options& o);

// --ash: an example handler installed for a testbed's server environment; the dump of the
// sandboxed function it became.
int dump_ash(const Options& o);

}  // namespace vdump
