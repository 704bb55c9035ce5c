// SPDX-License-Identifier: MIT
// What vdump dumps (sources_p.h): each kind of input read, compiled the way its library
// compiles it, and handed to the dump.
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "dump_p.h"
#include "example_set.h"
#include "exojit/ash/handler.h"
#include "exojit/dpf/engine.h"
#include "exojit/dpf/filter_file.h"
#include "exojit/pipes.h"
#include "run_p.h"
#include "sources_p.h"

namespace vdump {

using namespace exojit;
using namespace exojit::vcode;

std::string read_input(const std::string& file) {
  std::ostringstream text;
  if (file.empty() || file == "-") {
    text << std::cin.rdbuf();
    if (std::cin.bad()) throw std::runtime_error("cannot read stdin");
    return text.str();
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot open {}: {}", file, std::strerror(errno)));
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error(fmt::format("cannot read {}", file));
  return text.str();
}

int dump_listing(const std::string& text, const std::string& source, const Options& o) {
  Module m;
  try {
    m = parse(text);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", source, e.what()));  // "FILE: line L, column C: ..."
  }
  std::optional<Call> call;
  if (o.run) call = prepare_call(m, o);
  CompileOptions copts;
  copts.perf_map = o.perf_map;
  copts.target = o.target;
  copts.line_table = o.lines;
  copts.blind_constants = o.harden;
  Code code;  // a listing of externs only parses, and has nothing to compile
  if (!m.functions().empty()) code = compile(m, copts);
  Code llvm;
  std::string ir;
  if (o.llvm && !m.functions().empty()) {
    CompileOptions lopts = copts;
    lopts.tier = Tier::Llvm;
    lopts.llvm_opt_level = o.llvm_opt;
    llvm = compile(m, lopts);
    if (o.listing) ir = llvm_ir(m, o.llvm_opt);
  }
  if (o.listing || o.assembly) dump(m, code, o, source, o.llvm ? &llvm : nullptr, ir);
  std::fflush(stdout);
  return call ? run(m, o.llvm ? llvm : code, o, *call) : 0;
}

int dump_dpf(const std::string& text, const std::string& source, const Options& o) {
  std::vector<dpf::FilterLine> filters;
  dpf::Engine engine;
  try {
    filters = dpf::parse_filter_file(text);
    dpf::insert_all(engine, filters, !o.harden);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", source, e.what()));
  }
  fmt::print("; {}: {} filter{}, merged trie:\n{}\n", source, filters.size(),
             filters.size() == 1 ? "" : "s", engine.dump_trie());
  if (!(o.listing || o.assembly)) return 0;
  if (o.target == kHostTarget) {
    dump(engine.module(), engine.code(), o, source);
  } else {  // the engine's code is this host's: its module compiled for the other machine
    CompileOptions copts;
    copts.target = o.target;
    copts.line_table = o.lines;
    copts.blind_constants = o.harden;  // as the engine compiles an untrusted owner's filters
    dump(engine.module(), compile(engine.module(), copts), o, source);
  }
  return 0;
}

// --pipes: the library pipes, composed and compiled; the dump of the generated function.
int dump_pipes(const Options& o) {
  pipes::PipeList pl;
  std::string_view list = o.pipes;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    if (name.empty()) throw UsageError(fmt::format("--pipes {}: an empty pipe name", o.pipes));
    pipes::library::add(pl, name);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  pipes::CompileOptions options;
  options.vector_bits = o.vector_bits;
  options.codegen.target = o.target;
  options.codegen.line_table = o.lines;
  pipes::CompiledPipes c = pipes::compile(
      pl, o.read_only ? pipes::Direction::ReadOnly : pipes::Direction::Write, options);
  fmt::print("; pipes {} ({})\n", o.pipes, o.read_only ? "read-only" : "write");
  std::string plan = c.plan();
  for (size_t at = 0; at < plan.size();) {
    size_t end = plan.find('\n', at);
    fmt::print(";   {}\n", plan.substr(at, end - at));
    at = end + 1;
  }
  const pipes::PipeCost& cost = c.cost();
  fmt::print("; main loop: {} vcode instructions per {} bytes ({})\n", cost.insns_per_iteration,
             cost.bytes_per_iteration,
             cost.vector_bits ? fmt::format("{}-bit vectors", cost.vector_bits) : "scalar");
  if (o.listing || o.assembly) dump(c.module(), c.code(), o, "pipes");
  return 0;
}

// --ash: an example handler installed for a testbed's server environment; the dump of the
// sandboxed function it became.
int dump_ash(const Options& o) {
  ash::examples::Testbed t(runtime::Mode::Scheduler, 9);
  std::unique_ptr<ash::Handler> h = ash::examples::make_example(
      o.ash, t, o.trusted ? ash::Sandbox::Trusted : ash::Sandbox::Checked, o.harden);
  fmt::print("; ash handler {} ({}{}), region 0x{:x}+{}, straight-line cost {} instructions\n",
             o.ash, o.trusted ? "trusted: no memory checks" : "verified and sandboxed",
             o.harden ? ", hardened" : "", ash::examples::Testbed::kApp,
             ash::examples::Testbed::kAppPages * runtime::kPageSize, h->static_cost());
  if (o.listing || o.assembly) dump(h->lowered(), h->code(), o, o.ash);
  return 0;
}

}  // namespace vdump
