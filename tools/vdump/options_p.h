// SPDX-License-Identifier: MIT
// vdump's command line: what it asks for (Options), read and checked by parse_options.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "exojit/vcode.h"

namespace vdump {

inline constexpr std::string_view kShortUsage =
    "usage: vdump [--run [NAME] [ARG...]] [--interp] [--perf-map] [--target MACHINE]\n"
    "             [--tier fast|llvm] [--harden] [--lines | --listing-only | --asm-only | -q]\n"
    "             [FILE]\n"
    "       vdump --dpf [--harden] [--listing-only | --asm-only] FILTERS\n"
    "       vdump --pipes NAME[,NAME...] [--read-only] [--vector BITS] [--target MACHINE]\n"
    "       vdump --ash NAME [--trusted] [--harden] [--listing-only | --asm-only]\n"
    "       (vdump --help for details)\n";

// Bad command-line usage: exit status 2, with a short usage text.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string file;  // "" or "-": stdin
  bool listing = true;
  bool assembly = true;
  bool run = false;
  bool interp = false;
  bool perf_map = false;
  bool lines = false;  // --lines: vcode lines, each with its machine code
  bool dpf = false;
  std::vector<std::string> run_args;  // [NAME] ARG... as given
  std::string pipes;                  // --pipes: comma-separated library pipe names
  std::string ash;                    // --ash: an example handler's name
  bool trusted = false;               // --trusted (with --ash)
  bool harden = false;                // --harden
  bool read_only = false;
  int vector_bits = -1;
  bool llvm = false;  // --tier llvm
  int llvm_opt = 2;
  exojit::vcode::Target target = exojit::vcode::kHostTarget;
};

// The options of argv, checked against each other (UsageError); -h prints the help and exits.
Options parse_options(int argc, char** argv);

}  // namespace vdump
