// SPDX-License-Identifier: MIT
// vdump: compiles a vcode listing and prints, per function, the vcode next to the x86-64 machine
// code it became (addresses and bytes); optionally calls a function natively and in the
// reference interpreter.
//
//   vdump fib.vc                       dump every function
//   vdump fib.vc --run fib 20 --interp call @fib(20), check it against the interpreter
//   cat x.vc | vdump --asm-only        read the listing from stdin
//   vdump --pipes cksum,bswap32        the loop the pipe compiler makes of library pipes
//   vdump cksum.vc --tier llvm         also the LLVM tier: its IR and machine code
//   vdump --dpf filters.txt            the merged DPF trie and the demultiplexer generated for it
//   vdump --ash remote_increment       an example ASH, verified and sandboxed, and its machine code
//   vdump fib.vc --lines               each vcode line followed by the machine code it became
//
// The parts: options.cpp (the command line), sources.cpp (what it dumps: a listing, DPF
// filters, pipes, an ASH), dump.cpp (the printed dump), run.cpp (--run), numbers.cpp.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>

#include "exojit/error.h"
#include "options_p.h"
#include "sources_p.h"

using exojit::Error;
using namespace vdump;

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse_options(argc, argv);
  } catch (const UsageError& e) {
    fmt::print(stderr, "vdump: {}\n{}", e.what(), kShortUsage);
    return 2;
  }
  std::string source = o.file.empty() || o.file == "-" ? "<stdin>" : o.file;
  try {
    if (!o.pipes.empty()) return dump_pipes(o);
    if (!o.ash.empty()) return dump_ash(o);
    std::string text = read_input(o.file);
    if (o.dpf) return dump_dpf(text, source, o);
    return dump_listing(text, source, o);
  } catch (const UsageError& e) {
    std::fflush(stdout);
    fmt::print(stderr, "vdump: {}\n{}", e.what(), kShortUsage);
    return 2;
  } catch (const Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "vdump: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "vdump: {}\n", e.what());
    return 1;
  }
}
