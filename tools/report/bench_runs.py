# SPDX-License-Identifier: MIT
"""Runs every bench_* program of a build tree with JSON output and records how each run went.

Writes into the data directory, per program, `<program>.json` (stdout) and
`<program>.stderr.txt` (the ratio lines), and `runs.json` (mode, flags, command, seconds and exit
status of each program). A program that fails or times out is recorded as such; the report then
says so in its section.
"""

import datetime
import json
import os
import subprocess
import time

# The settings of `./exo bench`, which the README's figures come from: warm-up, 10 repetitions
# interleaved across rows, medians (shared machines are noisy).
FULL_FLAGS = ["--benchmark_min_time=0.2", "--benchmark_min_warmup_time=0.2",
              "--benchmark_repetitions=10", "--benchmark_enable_random_interleaving=true",
              "--benchmark_report_aggregates_only=true"]
QUICK_FLAGS = ["--benchmark_min_time=0.01", "--benchmark_repetitions=1"]
# Extra flags per program in quick mode (rows too slow for its two minutes); none today.
QUICK_EXTRA = {}
TIMEOUT_SECONDS = {True: 110, False: 3600}

# The order of the report's sections; programs not listed here run after these.
ORDER = ["bench_codegen", "bench_kernels", "bench_ilp", "bench_tiers", "bench_demux",
         "bench_runtime", "bench_ash", "bench_spec"]


def programs(bench_dir):
    """Paths of the bench_* executables in `bench_dir`, in ORDER first."""
    if not os.path.isdir(bench_dir):
        return []
    found = [f for f in os.listdir(bench_dir)
             if f.startswith("bench_") and os.path.isfile(os.path.join(bench_dir, f))
             and os.access(os.path.join(bench_dir, f), os.X_OK)]
    rank = {name: i for i, name in enumerate(ORDER)}
    found.sort(key=lambda f: (rank.get(f, len(ORDER)), f))
    return [os.path.join(bench_dir, f) for f in found]


def _commit(root):
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + (" with uncommitted changes" if dirty else "")) if head else None


def run_all(build_dir, data_dir, quick, root, log=print):
    os.makedirs(data_dir, exist_ok=True)
    for f in os.listdir(data_dir):  # no stale results of a program that is gone
        if f.startswith("bench_") or f == "runs.json":
            os.remove(os.path.join(data_dir, f))
    flags = QUICK_FLAGS if quick else FULL_FLAGS
    record = {
        "mode": "quick" if quick else "full",
        "flags": flags,
        "quick_extra": QUICK_EXTRA if quick else {},
        "build_dir": os.path.abspath(build_dir),
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(root),
        "programs": {},
    }
    start_all = time.monotonic()
    for path in programs(os.path.join(build_dir, "bench")):
        name = os.path.basename(path)
        command = [path, "--benchmark_format=json"] + flags + (
            QUICK_EXTRA.get(name, []) if quick else [])
        shown = [os.path.relpath(path, root)] + command[1:]
        log("report: running %s" % " ".join(shown))
        entry = {"command": shown}
        start = time.monotonic()
        with open(os.path.join(data_dir, name + ".json"), "w") as out, \
                open(os.path.join(data_dir, name + ".stderr.txt"), "w") as err:
            try:
                entry["status"] = subprocess.run(command, stdout=out, stderr=err,
                                                 timeout=TIMEOUT_SECONDS[quick]).returncode
            except subprocess.TimeoutExpired:
                entry["status"] = "timeout"
                entry["problem"] = "timed out after %d s" % TIMEOUT_SECONDS[quick]
            except OSError as e:
                entry["status"] = "not run"
                entry["problem"] = "could not run it: %s" % e
        entry["seconds"] = round(time.monotonic() - start, 1)
        log("report:   %s s, exit status %s" % (entry["seconds"], entry["status"]))
        record["programs"][name] = entry
    record["seconds_total"] = round(time.monotonic() - start_all, 1)
    with open(os.path.join(data_dir, "runs.json"), "w") as f:
        json.dump(record, f, indent=2)
    return record
