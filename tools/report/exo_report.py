#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""exojit's benchmark report: runs every bench_* program of a build tree (JSON output) and writes
OUT/index.md, the seed papers' experiments next to today's measurements, with PNG plots.

  exo_report.py [--quick] [--build build] [--out report]   run the benchmarks, then write
  exo_report.py --results DIR [--out report]               write from results already in DIR

`./exo report [--quick] [--out DIR]` builds the tree and calls the first form. Results go to
OUT/data/ (Google Benchmark JSON, the printed ratio lines, runs.json).
"""

import argparse
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_runs  # noqa: E402
import section_ash  # noqa: E402
import section_codegen  # noqa: E402
import section_dpf  # noqa: E402
import section_machine  # noqa: E402
import section_rows  # noqa: E402
import section_tempo  # noqa: E402
from context import Context  # noqa: E402
from results import Results  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SECTIONS = [section_machine, section_codegen, section_dpf, section_ash, section_tempo,
            section_rows]


def _header(results, quick):
    runs = results.runs
    mode = runs.get("mode", "quick" if quick else "full")
    flags = " ".join(runs.get("flags", []))
    lines = ["# exojit benchmark report\n",
             "The experiments of the seed papers (VCODE/'C, DPF, ASH, Tempo; `../shared/seeds/`) "
             "next to what this machine measures today, against the live peers, in one run. "
             "Written by `./exo report%s` (%s mode: `%s`)%s.\n" % (
                 " --quick" if mode == "quick" else "", mode, flags or "flags not recorded",
                 "; the benchmarks took %s s" % runs["seconds_total"]
                 if "seconds_total" in runs else "")]
    if mode == "quick":
        lines.append("*Quick mode*: one short repetition per row; the figures are indicative. "
                     "The full mode (`./exo report`) repeats each row 10 times after a warm-up "
                     "and reports medians.\n")
    found = [n for n, p in results.programs.items() if p.problem is None]
    failed = [n for n, p in results.programs.items() if p.problem is not None]
    absent = [n for n in bench_runs.ORDER if n not in results.programs]
    status = ["Benchmark programs measured: %s." % (", ".join("`%s`" % n for n in found)
                                                    or "none")]
    if failed:
        status.append("Failed: %s." % ", ".join("`%s` (%s)" % (n, results.programs[n].problem)
                                               for n in failed))
    if absent:
        status.append("Not in this build (their sections say so): %s."
                      % ", ".join("`%s`" % n for n in absent))
    for name, extra in sorted(runs.get("quick_extra", {}).items()):
        status.append("Quick mode runs `%s` with `%s`." % (name, " ".join(extra)))
    lines.append(" ".join(status) + "\n")
    lines.append("Contents: [the machine](#the-machine) · [VCODE / 'C]"
                 "(#vcode--c-code-generation-cost-per-instruction) · "
                 "[DPF](#dpf-dynamic-packet-filters) · "
                 "[ASH](#ash-application-specific-safe-message-handlers) · "
                 "[Tempo](#tempo-specialized-protocol-code) · [all rows](#all-rows)\n")
    return "\n".join(lines)


def write_report(results, out_dir, quick):
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, "*.png")):
        os.remove(old)
    ctx = Context(results, out_dir, quick)
    parts = [_header(results, quick)] + [s.render(ctx) for s in SECTIONS]
    path = os.path.join(out_dir, "index.md")
    with open(path, "w") as f:
        f.write("\n".join(p.rstrip("\n") + "\n" for p in parts))
    return path, ctx.plots


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short runs (one repetition, 10 ms per row): under two minutes")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"),
                        help="build tree whose bench/ folder holds the programs (default: build)")
    parser.add_argument("--out", default=os.path.join(ROOT, "report"),
                        help="output folder (default: report)")
    parser.add_argument("--results", help="write the report from this results folder instead "
                        "of running the benchmarks")
    args = parser.parse_args(argv)
    start = time.monotonic()
    data_dir = args.results
    if data_dir is None:
        data_dir = os.path.join(args.out, "data")
        bench_runs.run_all(args.build, data_dir, args.quick, ROOT)
    results = Results(data_dir)
    quick = args.quick or results.runs.get("mode") == "quick"
    path, written = write_report(results, args.out, quick)
    print("report: wrote %s and %d plots in %.0f s" % (os.path.relpath(path), len(written),
                                                       time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
