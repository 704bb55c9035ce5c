// SPDX-License-Identifier: MIT
// vdump's command line (options_p.h): the help text and the options' parser.
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "numbers_p.h"
#include "options_p.h"

namespace vdump {

using namespace exojit::vcode;

namespace {

constexpr std::string_view kUsage = R"(usage: vdump [options] [FILE]
       vdump --pipes NAME[,NAME...] [--read-only] [--vector BITS] [--target MACHINE]
             [--listing-only | --asm-only]

Parses the vcode listing FILE (stdin when FILE is absent or '-'), compiles it, and prints for
every function a header (name, signature, code address and size), its vcode listing and its
disassembled machine code with addresses and bytes.

options:
  --run [NAME] [ARG...]  call function NAME (default: the first one) with the arguments and print
                         the result; the arguments run up to the next option. Integers are
                         decimal or 0x hex (a leading '-' allowed), floats for f32/f64
                         parameters (also inf, nan). A pointer parameter takes an integer, or
                         str:TEXT (a NUL-terminated copy of TEXT) or hex:BYTES (a buffer holding
                         BYTES, e.g. hex:4500001c); buffers changed by the call are printed.
                         NAME may be written @NAME; a NAME that reads as a number needs the '@'.
  --interp               with --run: also run the call in the vcode interpreter (first, so that
                         a trap it detects is reported instead of crashing) and say whether the
                         two agree
  --dpf                  FILE holds DPF filters, one per line (DPF syntax, or tcpdump syntax
                         after `pcap:`; a filter's id is its line number): print the merged
                         trie, then the demultiplexer generated for it
  --lines                print each function as its vcode lines, each followed by the machine
                         instructions it became (the line table, CompileOptions::line_table; the
                         listing's line numbers on the left)
  --perf-map             append the functions to /tmp/perf-<pid>.map (CompileOptions::perf_map)
  --tier llvm            also compile on the LLVM tier and print, after each function's fast-tier
                         machine code, its optimized LLVM IR and the LLVM tier's machine code;
                         --run then calls the LLVM tier's code
  --llvm-opt N           the LLVM tier's optimization level, 0-3 (default 2)
  --target MACHINE       generate code for x86-64 or aarch64 (default: this host's); another
                         machine's code is disassembled, not run (cross-JIT)
  --listing-only         print the vcode listings, not the machine code
  --asm-only             print the machine code, not the vcode listings
  --harden               the hardened code (README "Hardening"): constants blinded
                         (CompileOptions::blind_constants); with --dpf, the filters inserted as
                         an untrusted owner's (also every packet access masked after its bounds
                         check); with --ash, the handler as installed (also every checked
                         access masked). Without it, the plain code, for comparison.
  -q, --quiet            print neither (with --run: only the results)
  -h, --help             this help

pipes (instead of FILE):
  --pipes NAME,...       compose library pipes (cksum bswap16 bswap32 cipher crc32c copy) in
                         this order, compile them with exojit::pipes and dump the generated
                         function, with the compiler's plan and the main loop's cost
  --read-only            compile for Direction::ReadOnly (default: Write, copying src to dst)
  --vector BITS          vector width: 0 (scalar loops), 128 or 256 (default: the CPU's widest)

ash (instead of FILE):
  --ash NAME             an example ASH (remote_write remote_increment udp_echo cache_server),
                         installed for a simulated server environment: prints the verified,
                         sandboxed vcode the handler became and its machine code
  --trusted              with --ash: the trusted (unsandboxed) version, for comparison

exit status: 0 success; 1 error in the listing, compilation or interpretation; 2 bad usage;
3 the interpreter disagrees with the machine code.
)";

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  bool listing_only = false, asm_only = false, quiet = false, file_set = false;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (!options_done && a == "--") {
      options_done = true;
    } else if (!options_done && (a == "-h" || a == "--help")) {
      fmt::print("{}", kUsage);
      std::exit(0);
    } else if (!options_done && a == "--run") {
      if (o.run) throw UsageError("--run given twice");
      o.run = true;
      // NAME and arguments: up to the next option ("-" for stdin and "--" included; negative
      // numbers are arguments).
      auto is_option = [](std::string_view t) {
        return starts_with(t, "--") || t == "-" || t == "-q" || t == "-h";
      };
      while (i + 1 < argc && !is_option(argv[i + 1])) o.run_args.push_back(argv[++i]);
    } else if (!options_done && a == "--interp") {
      o.interp = true;
    } else if (!options_done && a == "--dpf") {
      o.dpf = true;
    } else if (!options_done && a == "--perf-map") {
      o.perf_map = true;
    } else if (!options_done && a == "--lines") {
      o.lines = true;
    } else if (!options_done && a == "--listing-only") {
      listing_only = true;
    } else if (!options_done && a == "--asm-only") {
      asm_only = true;
    } else if (!options_done && a == "--ash") {
      if (i + 1 >= argc) throw UsageError("--ash needs a handler name");
      o.ash = argv[++i];
    } else if (!options_done && a == "--harden") {
      o.harden = true;
    } else if (!options_done && a == "--trusted") {
      o.trusted = true;
    } else if (!options_done && a == "--pipes") {
      if (i + 1 >= argc) throw UsageError("--pipes needs a list of pipe names");
      o.pipes = argv[++i];
    } else if (!options_done && a == "--tier") {
      if (i + 1 >= argc) throw UsageError("--tier needs a tier: fast or llvm");
      std::string_view t = argv[++i];
      if (t != "fast" && t != "llvm") throw UsageError(fmt::format("--tier {}: fast or llvm", t));
      o.llvm = t == "llvm";
    } else if (!options_done && a == "--llvm-opt") {
      if (i + 1 >= argc) throw UsageError("--llvm-opt needs a level, 0-3");
      std::string_view l = argv[++i];
      if (l.size() != 1 || l[0] < '0' || l[0] > '3')
        throw UsageError(fmt::format("--llvm-opt {}: the level is 0, 1, 2 or 3", l));
      o.llvm_opt = l[0] - '0';
    } else if (!options_done && a == "--read-only") {
      o.read_only = true;
    } else if (!options_done && a == "--target") {
      if (i + 1 >= argc) throw UsageError("--target needs a machine: x86-64 or aarch64");
      std::string_view t = argv[++i];
      if (t == "x86-64" || t == "x86_64")
        o.target = Target::X86_64;
      else if (t == "aarch64" || t == "arm64")
        o.target = Target::AArch64;
      else
        throw UsageError(fmt::format("--target {}: the machines are x86-64 and aarch64", t));
    } else if (!options_done && a == "--vector") {
      if (i + 1 >= argc) throw UsageError("--vector needs a width: 0, 128 or 256");
      std::string_view w = argv[++i];
      if (w != "0" && w != "128" && w != "256")
        throw UsageError(fmt::format("--vector {}: the width is 0, 128 or 256", w));
      o.vector_bits = std::stoi(std::string(w));
    } else if (!options_done && (a == "-q" || a == "--quiet")) {
      quiet = true;
    } else if (!options_done && a.size() > 1 && a[0] == '-') {
      throw UsageError(fmt::format("unknown option '{}'", a));
    } else {
      if (file_set) throw UsageError(fmt::format("more than one FILE ('{}', '{}')", o.file, a));
      o.file = std::string(a);
      file_set = true;
    }
  }
  // `vdump --run fib 10 fib.vc`: the FILE was swallowed by --run; take it back.
  if (!file_set && !o.run_args.empty()) {
    const std::string& last = o.run_args.back();
    std::error_code ec;
    if (!looks_numeric(last) && !starts_with(last, "str:") && !starts_with(last, "hex:") &&
        std::filesystem::is_regular_file(last, ec)) {
      o.file = last;
      o.run_args.pop_back();
    }
  }
  if (listing_only && asm_only)
    throw UsageError("--listing-only and --asm-only exclude each other");
  if (o.lines && (listing_only || asm_only || quiet))
    throw UsageError("--lines excludes --listing-only, --asm-only and --quiet");
  if (o.interp && !o.run) throw UsageError("--interp needs --run");
  if (o.run && o.target != kHostTarget)
    throw UsageError(fmt::format("--run needs code for this {} host, not --target {}",
                                 target_name(kHostTarget), target_name(o.target)));
  if (!o.pipes.empty() && (file_set || o.run))
    throw UsageError("--pipes takes no FILE and no --run");
  if (o.pipes.empty() && (o.read_only || o.vector_bits >= 0))
    throw UsageError("--read-only and --vector go with --pipes");
  if (o.dpf && o.run) throw UsageError("--dpf and --run exclude each other");
  if (!o.ash.empty() && (file_set || o.run || o.dpf || !o.pipes.empty() || o.llvm))
    throw UsageError("--ash takes no FILE, --run, --dpf, --pipes or --tier");
  if (o.trusted && o.ash.empty()) throw UsageError("--trusted goes with --ash");
  if (o.harden && (o.llvm || !o.pipes.empty()))
    throw UsageError("--harden excludes --tier llvm and --pipes (the fast tier blinds constants)");
  if (o.dpf && (!o.pipes.empty() || o.llvm)) throw UsageError("--dpf excludes --pipes and --tier");
  if (o.llvm && o.target != kHostTarget)
    throw UsageError(fmt::format("--tier llvm compiles for this {} host only, not --target {}",
                                 target_name(kHostTarget), target_name(o.target)));
  if (listing_only) o.assembly = false;
  if (asm_only) o.listing = false;
  if (quiet) o.listing = o.assembly = false;
  return o;
}

}  // namespace vdump
