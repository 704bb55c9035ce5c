// SPDX-License-Identifier: MIT
// A main() for the benchmarks that, after the rows have run, prints the ratios between rows the
// issue targets name: "ratio A / B = 1.23". Ratios are taken in the same run: absolute figures
// move with the load of a shared machine (README, "Benchmarks"). With --benchmark_format=json
// (or csv) they go to stderr, so the machine-readable output on stdout stays valid.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace exojit::bench {

struct Ratio {
  std::string numerator;    // row name, e.g. "codegen/vcode_fast"
  std::string denominator;  // row name
  double max = 0;           // target: ratio <= max (0: no upper bound)
  double min = 0;           // target: ratio >= min (0: no lower bound)
  std::string note;         // printed after the target, e.g. "goal 1.2"
};

// Initializes Google Benchmark from argv, runs the selected rows and prints `ratios` whose rows
// both ran (per-iteration real time; the median over repetitions, if any). Returns main's exit
// status (1 on unrecognized arguments; a missed target is reported, not an error).
//
// `after`, if given, is called last with the median real time per iteration (ns) of any row (< 0
// if it did not run) and the stream the ratios went to, to print derived figures.
using RowTime = std::function<double(const std::string& row)>;
int run_benchmarks_with_ratios(
    int argc, char** argv, const std::vector<Ratio>& ratios,
    const std::function<void(const RowTime& time, std::FILE* out)>& after = nullptr);

}  // namespace exojit::bench
