#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Tests of the benchmark report generator (tools/report/) on canned Google Benchmark JSON.

canned/ holds real output of the existing benchmarks (a quick run on 2026-11-23) and hand-made
output of bench_ash and bench_spec in Google Benchmark's format (repetitions, aggregates, the
`/real_time` and `_median` suffixes, other time units), so the expected tables below are exact.
Run one group: report_test.py CannedTest (ctest does, one test per group). Exit status 77 (ctest
SKIP_RETURN_CODE) when matplotlib is not installed.
"""

import json
import os
import shutil
import stat
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CANNED = os.path.join(HERE, "canned")
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "report"))

try:
    import matplotlib.image  # noqa: F401
except ImportError:
    print("matplotlib is not installed (Debian: python3-matplotlib): skipped")
    sys.exit(77)

import bench_runs  # noqa: E402
import exo_report  # noqa: E402
import report_text  # noqa: E402
from results import Results, plain_name  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ReportCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="exojit-report-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, results_dir, quick=True):
        out = os.path.join(self.tmp, "out")
        path, plots = exo_report.write_report(Results(results_dir), out, quick)
        with open(path) as f:
            return f.read(), out, plots

    def assert_valid_png(self, path):
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), PNG_SIGNATURE, path)
        self.assertGreater(os.path.getsize(path), 10000, path)  # axes, labels, data
        image = matplotlib.image.imread(path)
        self.assertGreaterEqual(image.shape[0], 300, path)
        self.assertGreaterEqual(image.shape[1], 500, path)
        self.assertGreater(image.std(), 0.05, path)  # not a blank canvas


class CannedTest(ReportCase):
    """Every benchmark present: every section's tables and plots."""

    def test_tables_and_plots(self):
        text, out, plots = self.write(CANNED)
        expected = [
            # the machine
            "## The machine", "| logical CPUs |", "| libbenchmark-dev |",
            # VCODE / 'C
            "| vcode fast tier | `codegen/vcode_fast` | per machine instruction, wall time | "
            "71.7 ns | 186 |",
            "| vcode fast tier / raw asmjit | 1.59x | ≤ 1.5 (goal 1.2) | **missed** |",
            "| LLVM O0 / vcode fast tier | 119x | ≥ 100 | met |",
            "| vcode LLVM tier, O2 | `tiers/compile/vcode_llvm` | per vcode instruction, CPU | "
            "41.1 µs | 106,679 |",
            # DPF
            "| MPF | 71 | 35 | 47.3 |",
            "| `demux/table3/fixed/last/*` | 213 ns | 29.8 ns | 10.4 ns | 20.5x | 0.348x |",
            "| fixed | 1.14 | 1.23 | 1.39 | 1.22 |",
            "| 8 | 179 ns | 40.6 ns | 10.6 ns | 16.9x |",
            "| 10,000 | 222 µs | 29.2 ns | 18.5 ns | 12,018x |",
            "DPF with 10,000 filters / 10 filters: **2.13x** (target ≤ 2.5: met).",
            "| `demux/insert/regen` (a filter that needs new code) | 14.8 ms | 67.1x |",
            # ASH Tables 4 and 5 (throughput from real time: the ratios the benchmark printed)
            "| double copy (uncached) | `ilp/copies/double_uncached` | 11 MB/s | 1.05 GB/s | "
            "1.82 | 4.41x |",
            "| DILP / hand-fused C | 4.21x | 1.37x | 6.52x | 1.79x |",
            "| ASH (DILP) | 17 | 8.2 |",
            # ASH Tables 6/7, Figure 5, sandboxing (bench_ash, hand-made)
            "| `ash/remote_increment/*` | 20.0 µs | 80.0 µs | 4.00x | ≥ 3: met | 1.24x |",
            "| `ash/cache_server/*` (hit) | 25.0 µs | 90.0 µs | 3.60x |  | 1x (660 µs both) |",
            "| 16 | 21.8 µs | 760 µs | 34.9x |",
            "Handler 16 / 1 environments: **1.09x** (target ≤ 1.1: met); ring: 9.50x.",
            "| 40 | 100 ns | 108 ns | 8.0% | met | 0-13% |",
            "| 128 | 200 ns | 230 ns | 15% | **missed** | 3-7% |",
            # Tempo (bench_spec, hand-made)
            "| 64 | 400 ns | 150 ns | 2.67x | met | 24,000 | 900 | 26.7x | met |",
            "| 1024 | 900 ns | 420 ns | 2.14x | met | 24,000 | 1,100 | 21.8x | met |",
            "| specialize and compile one context | `spec/specialize/cold` | 8.00 ms | "
            "≤ 20 ms: met |",
            # all rows, with the printed ratio lines
            "| `ash/envs/4/ring` | 200 µs | 100 µs | 5 |  |",
            "ratio ash/remote_increment/ring / ash/remote_increment/handler = 4",
        ]
        for line in expected:
            self.assertIn(line, text)
        self.assertNotIn("Not measured", text)
        self.assertEqual(sorted(plots), sorted([
            "codegen_cost.png", "dpf_depth.png", "dpf_scaling.png", "ash_copies.png",
            "ash_ilp.png", "ash_round_trips.png", "ash_envs.png", "ash_sandboxing.png",
            "tempo_send.png"]))
        for name in plots:
            self.assertIn("](%s)" % name, text)
            self.assert_valid_png(os.path.join(out, name))


class MissingTest(ReportCase):
    """Some programs absent, one failed, one with broken JSON: sections say so, no crash."""

    def test_not_measured_sections(self):
        data = os.path.join(self.tmp, "data")
        os.makedirs(data)
        for f in ("bench_ilp.json", "bench_runtime.json", "bench_runtime.stderr.txt"):
            shutil.copy(os.path.join(CANNED, f), data)
        with open(os.path.join(data, "bench_codegen.json"), "w") as f:
            f.write('{"context": {}, "benchmarks": [{"name": "codegen/vc')  # killed mid-write
        with open(os.path.join(data, "bench_demux.stderr.txt"), "w") as f:
            f.write("bench_demux: something went wrong\n")
        with open(os.path.join(data, "runs.json"), "w") as f:
            json.dump({"mode": "quick", "programs": {
                "bench_demux": {"command": ["build/bench/bench_demux"], "status": 1,
                                "seconds": 0.1},
                "bench_ilp": {"command": ["build/bench/bench_ilp"], "status": 0, "seconds": 2}}},
                f)
        text, out, plots = self.write(data)
        for line in [
                "**Not measured:** `bench_ash` is not in the build tree's `bench/` folder. "
                "Build it with `cmake --build build --target bench_ash`",
                "**Not measured:** `bench_spec` is not in the build tree's `bench/` folder.",
                "**Not measured:** `bench_tiers` is not in the build tree's `bench/` folder.",
                "**Not measured:** `bench_codegen` did not produce results (no valid JSON "
                "output (JSONDecodeError))",
                "**Not measured:** `bench_demux` did not produce results (exit status 1)",
                "bench_demux: something went wrong",
                "Not in this build (their sections say so): `bench_kernels`, `bench_tiers`, "
                "`bench_ash`, `bench_spec`.",
                "| DILP / hand-fused C | 4.21x | 1.37x | 6.52x | 1.79x |",
                "| `runtime/udp_pingpong/sim` |"]:
            self.assertIn(line, text)
        for heading in ("## The machine", "## VCODE / 'C", "## DPF", "## ASH", "## Tempo",
                        "## All rows"):
            self.assertIn(heading, text)
        self.assertEqual(sorted(plots), ["ash_copies.png", "ash_ilp.png"])
        for name in plots:
            self.assert_valid_png(os.path.join(out, name))

    def test_nothing_at_all(self):
        text, _, plots = self.write(os.path.join(self.tmp, "no-such-folder"))
        self.assertIn("Benchmark programs measured: none.", text)
        self.assertEqual(plots, [])


class RunnerTest(ReportCase):
    """bench_runs: every bench_* executable runs with JSON output; failures are recorded."""

    def fake_program(self, bench, name, script):
        path = os.path.join(bench, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + script)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)

    def test_runs_every_program(self):
        build = os.path.join(self.tmp, "build")
        bench = os.path.join(build, "bench")
        os.makedirs(bench)
        self.fake_program(bench, "bench_spec", 'echo "$@" >&2\ncat "%s"\n'
                          % os.path.join(CANNED, "bench_spec.json"))
        self.fake_program(bench, "bench_ash", "echo crashed >&2\nexit 3\n")
        with open(os.path.join(bench, "bench_notes.txt"), "w") as f:
            f.write("not a program\n")
        data = os.path.join(self.tmp, "data")
        record = bench_runs.run_all(build, data, True, self.tmp, log=lambda _: None)
        self.assertEqual(list(record["programs"]), ["bench_ash", "bench_spec"])
        self.assertEqual(record["programs"]["bench_ash"]["status"], 3)
        self.assertEqual(record["programs"]["bench_spec"]["status"], 0)
        with open(os.path.join(data, "bench_spec.stderr.txt")) as f:
            self.assertEqual(f.read().split(), ["--benchmark_format=json"] +
                             bench_runs.QUICK_FLAGS)
        text, _, plots = self.write(data)
        self.assertIn("| 64 | 400 ns | 150 ns | 2.67x | met |", text)
        self.assertIn("**Not measured:** `bench_ash` did not produce results (exit status 3)",
                      text)
        self.assertIn("crashed", text)
        self.assertEqual(plots, ["tempo_send.png"])


class NamesTest(unittest.TestCase):
    """Row names and numbers as the report prints them."""

    def test_plain_names(self):
        for entry, plain in [
                ({"name": "a/b/real_time", "run_name": "a/b/real_time"}, "a/b"),
                ({"name": "a/b/real_time_median", "run_name": "a/b/real_time",
                  "aggregate_name": "median"}, "a/b"),
                ({"name": "a/b_median", "run_type": "aggregate"}, "a/b"),
                ({"name": "a/b/iterations:10/repeats:3/real_time"}, "a/b"),
                ({"name": "a/b/threads:2"}, "a/b"),
                ({"name": "spec/udp_send/64/generic"}, "spec/udp_send/64/generic")]:
            self.assertEqual(plain_name(entry), plain)

    def test_numbers(self):
        self.assertEqual(report_text.duration(12.345), "12.3 ns")
        self.assertEqual(report_text.duration(4567), "4.57 µs")
        self.assertEqual(report_text.duration(8e6), "8.00 ms")
        self.assertEqual(report_text.sig(106679.4), "106,679")
        self.assertEqual(report_text.sig(0.0123), "0.0123")
        self.assertEqual(report_text.ratio(3, None), report_text.MISSING)
        self.assertEqual(report_text.table(["a", "b"], [[1, None]]),
                         "| a | b |\n|---|---|\n| 1 | — |\n")


if __name__ == "__main__":
    unittest.main()
