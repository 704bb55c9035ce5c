// SPDX-License-Identifier: MIT
#include "ratio_main.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>

namespace exojit::bench {

namespace {

// Forwards everything to the reporter --benchmark_format asks for and keeps each row's
// per-iteration real and CPU times (in nanoseconds).
class CapturingReporter : public benchmark::BenchmarkReporter {
 public:
  explicit CapturingReporter(benchmark::BenchmarkReporter* inner) : inner_(inner) {}

  bool ReportContext(const Context& context) override { return inner_->ReportContext(context); }

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const std::string& name = run.run_name.function_name;
      if (run.run_type == Run::RT_Aggregate) {
        // --benchmark_report_aggregates_only: the runs themselves are not reported.
        if (run.aggregate_name == "median" && run.iterations > 0)
          medians_[name] = per_iteration(run);
      } else if (run.iterations > 0) {
        times_[name].push_back(per_iteration(run));
      }
    }
    inner_->ReportRuns(runs);
  }

  void Finalize() override { inner_->Finalize(); }

  struct Time {
    double real_ns = -1;  // per iteration; < 0: the row did not run
    double cpu_ns = -1;
  };

  // Median over the repetitions of row `name`.
  Time time(const std::string& name) const {
    if (auto m = medians_.find(name); m != medians_.end()) return m->second;
    auto it = times_.find(name);
    if (it == times_.end() || it->second.empty()) return Time{};
    auto median = [&](double Time::*field) {
      std::vector<double> v;
      for (const Time& t : it->second) v.push_back(t.*field);
      std::sort(v.begin(), v.end());
      size_t n = v.size();
      return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    };
    return Time{median(&Time::real_ns), median(&Time::cpu_ns)};
  }

 private:
  static Time per_iteration(const Run& run) {
    double n = double(run.iterations);
    return Time{run.real_accumulated_time * 1e9 / n, run.cpu_accumulated_time * 1e9 / n};
  }

  std::unique_ptr<benchmark::BenchmarkReporter> inner_;
  std::map<std::string, std::vector<Time>> times_;  // per repetition
  std::map<std::string, Time> medians_;             // reported aggregates
};

std::string fmt_verdict(const std::string& target, bool ok) {
  return "   target " + target + ": " + (ok ? "met" : "MISSED");
}

std::string fmt_target(const char* relation, double bound) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s %g", relation, bound);
  return buf;
}

}  // namespace

int run_benchmarks_with_ratios(
    int argc, char** argv, const std::vector<Ratio>& ratios,
    const std::function<void(const RowTime& time, std::FILE* out)>& after) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::BenchmarkReporter* display = benchmark::CreateDefaultDisplayReporter();
  // Only the console format is for people; JSON and CSV on stdout must stay parseable.
  FILE* out = dynamic_cast<benchmark::ConsoleReporter*>(display) ? stdout : stderr;
  CapturingReporter reporter(display);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::fflush(stdout);

  for (const Ratio& r : ratios) {
    auto num = reporter.time(r.numerator), den = reporter.time(r.denominator);
    if (num.real_ns < 0 || den.real_ns <= 0 || den.cpu_ns <= 0) continue;  // filtered out
    double q = num.real_ns / den.real_ns;
    std::string target;
    bool ok = true;
    if (r.max > 0) {
      target = fmt_target("<=", r.max);
      ok = ok && q <= r.max;
    }
    if (r.min > 0) {
      target += (target.empty() ? "" : ", ") + fmt_target(">=", r.min);
      ok = ok && q >= r.min;
    }
    // Real time, as the rows report it; the CPU-time ratio beside it is the steadier one on a
    // loaded machine (it leaves out time the process spent preempted).
    std::string verdict = target.empty() ? "" : fmt_verdict(target, ok);
    std::fprintf(out, "ratio %s / %s = %.3g   (cpu time: %.3g)%s%s%s%s\n", r.numerator.c_str(),
                 r.denominator.c_str(), q, num.cpu_ns / den.cpu_ns, verdict.c_str(),
                 r.note.empty() ? "" : "   (", r.note.c_str(), r.note.empty() ? "" : ")");
  }
  if (after) after([&](const std::string& row) { return reporter.time(row).real_ns; }, out);
  std::fflush(out);
  benchmark::Shutdown();
  return 0;
}

}  // namespace exojit::bench
