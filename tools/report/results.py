# SPDX-License-Identifier: MIT
"""Benchmark results: Google Benchmark JSON files and the ratio lines the programs print.

A results directory holds, per benchmark program, `<program>.json` (its --benchmark_format=json
output), `<program>.stderr.txt` (the ratio lines: with JSON on stdout they go to stderr) and
`runs.json` (how each program was run: command, seconds, exit status; written by bench_runs.py).
Rows are looked up by their plain name ("demux/scale/10/dpf"): Google Benchmark's suffixes
(`/real_time`, `/iterations:N`, `_median`, ...) are stripped, and a row repeated without
aggregates is reduced to its median here, so every row has one figure whatever the settings.
"""

import json
import os
import re
import statistics

_TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

# Keys of a Google Benchmark JSON row that are not user counters.
_STANDARD_KEYS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
    "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "label",
}

# Options Google Benchmark appends to a row's name (`->UseRealTime()`, `->Iterations(n)`, ...).
_OPTION_SUFFIX = re.compile(
    r"/(real_time|manual_time|process_time|iterations:\d+|repeats:\d+|threads:\d+|"
    r"min_time:[^/]+|min_warmup_time:[^/]+)$")
_AGGREGATE_SUFFIX = re.compile(r"_(mean|median|stddev|cv)$")


def plain_name(entry):
    """The row's name without Google Benchmark's aggregate and option suffixes."""
    name = entry.get("run_name") or entry.get("name", "")
    if not entry.get("run_name"):
        name = _AGGREGATE_SUFFIX.sub("", name)
    while True:
        stripped = _OPTION_SUFFIX.sub("", name)
        if stripped == name:
            return name
        name = stripped


def _aggregate_kind(entry):
    """'median', 'mean', ... for an aggregate row, None for a measured repetition."""
    if entry.get("aggregate_name"):
        return entry["aggregate_name"]
    if entry.get("run_type") == "aggregate" or (
            "run_type" not in entry and _AGGREGATE_SUFFIX.search(entry.get("name", ""))):
        m = _AGGREGATE_SUFFIX.search(entry.get("name", ""))
        return m.group(1) if m else "unknown"
    return None


class Row:
    """One benchmark row: median real and CPU time per iteration (ns) and median counters."""

    def __init__(self, name, real_ns, cpu_ns, counters, repetitions):
        self.name = name
        self.real_ns = real_ns
        self.cpu_ns = cpu_ns
        self.counters = counters
        self.repetitions = repetitions

    def counter(self, key):
        return self.counters.get(key)


def _rows_from(entries):
    """Rows by plain name; errors by plain name (a row that reported SkipWithError)."""
    medians, runs, errors = {}, {}, {}
    for e in entries:
        name = plain_name(e)
        if e.get("error_occurred"):
            errors[name] = e.get("error_message", "error")
            continue
        unit = _TIME_UNIT_NS.get(e.get("time_unit", "ns"), 1.0)
        counters = {k: v for k, v in e.items()
                    if k not in _STANDARD_KEYS and isinstance(v, (int, float))}
        sample = (e.get("real_time", 0.0) * unit, e.get("cpu_time", 0.0) * unit, counters)
        kind = _aggregate_kind(e)
        if kind == "median":
            medians[name] = (sample, e.get("repetitions", 1))
        elif kind is None:
            runs.setdefault(name, []).append(sample)
    rows = {}
    for name, samples in runs.items():
        keys = set().union(*(s[2].keys() for s in samples))
        counters = {k: statistics.median([s[2][k] for s in samples if k in s[2]]) for k in keys}
        rows[name] = Row(name, statistics.median([s[0] for s in samples]),
                         statistics.median([s[1] for s in samples]), counters, len(samples))
    for name, (sample, reps) in medians.items():  # a reported median wins over our own
        rows[name] = Row(name, sample[0], sample[1], sample[2], reps)
    return rows, errors


class Program:
    """One benchmark program's results, or why there are none (`problem`)."""

    def __init__(self, name):
        self.name = name
        self.rows = {}
        self.errors = {}
        self.context = {}
        self.printed = []       # stderr: the ratio lines (bench/ratio_main.cpp) and notes
        self.run = {}           # from runs.json: command, seconds, status
        self.problem = None     # None: ran and produced JSON


class Results:
    """Every program's results in a directory, and lookups across them."""

    def __init__(self, directory):
        self.directory = directory
        self.programs = {}
        self.runs = {}
        path = os.path.join(directory, "runs.json")
        if os.path.exists(path):
            with open(path) as f:
                self.runs = json.load(f)
        names = list(self.runs.get("programs", {}).keys())  # in the order they ran
        if os.path.isdir(directory):
            names += sorted(f[:-5] for f in os.listdir(directory)
                            if f.startswith("bench_") and f.endswith(".json")
                            and f[:-5] not in names)
        for name in names:
            self.programs[name] = self._load(name)

    def _load(self, name):
        p = Program(name)
        p.run = self.runs.get("programs", {}).get(name, {})
        stderr_path = os.path.join(self.directory, name + ".stderr.txt")
        if os.path.exists(stderr_path):
            with open(stderr_path, errors="replace") as f:
                text = f.read()
            p.printed = [line.rstrip() for line in text.splitlines() if line.strip()]
        json_path = os.path.join(self.directory, name + ".json")
        if p.run.get("status", 0) != 0:
            p.problem = p.run.get("problem") or "exit status %s" % p.run.get("status")
            return p
        try:
            with open(json_path) as f:
                data = json.load(f)
            p.context = data.get("context", {})
            p.rows, p.errors = _rows_from(data.get("benchmarks", []))
        except (OSError, ValueError) as e:
            p.problem = "no valid JSON output (%s)" % e.__class__.__name__
        return p

    def program(self, name):
        """The program's results if it ran and produced JSON, else None."""
        p = self.programs.get(name)
        return p if p is not None and p.problem is None else None

    def row(self, name):
        for p in self.programs.values():
            if p.problem is None and name in p.rows:
                return p.rows[name]
        return None

    def real_ns(self, name):
        r = self.row(name)
        return r.real_ns if r else None

    def names(self, prefix):
        """Plain names of every row starting with `prefix`, in the programs' order."""
        out = []
        for p in self.programs.values():
            out += [n for n in p.rows if n.startswith(prefix)]
        return out

    def context(self):
        """The first program's Google Benchmark context (CPU count, MHz, caches, load)."""
        for p in self.programs.values():
            if p.context:
                return p.context
        return {}
