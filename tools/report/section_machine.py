# SPDX-License-Identifier: MIT
"""The machine the figures come from: CPU, features the code generators use, compiler, library
versions (Debian packages), date and load."""

import datetime
import os
import platform
import subprocess

from report_text import MISSING, table

PACKAGES = ["g++", "clang", "llvm-dev", "libasmjit-dev", "libfmt-dev", "libbenchmark-dev",
            "libpcap-dev", "python3-matplotlib"]

# CPU features exojit's code generators choose between at run time.
FEATURES = [("avx2", "256-bit vector loops (pipes, vcode vectors)"),
            ("sse4_2", "crc32 instruction (vcode crc32c)"),
            ("movbe", "big-endian loads/stores"),
            ("bmi2", "shifts without flags (shlx/shrx)"),
            ("avx512f", "present but not used by exojit")]


def _cpuinfo():
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def _run(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _package_versions():
    out = []
    for p in PACKAGES:
        # One line per installed architecture (amd64, and arm64 after `./exo cross`).
        lines = _run(["dpkg-query", "-W", "-f=${Version} ${Architecture}\n", p]).splitlines()
        out.append([p, ", ".join(lines) or "not installed"])
    return out


def _cmake_cache(build_dir):
    values = {}
    path = os.path.join(build_dir or "", "CMakeCache.txt")
    if build_dir and os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                name, _, value = line.rstrip("\n").partition("=")
                key = name.split(":")[0]
                if key in ("CMAKE_CXX_COMPILER", "CMAKE_BUILD_TYPE", "CMAKE_CXX_FLAGS",
                           "EXOJIT_WERROR") or key.startswith("CMAKE_CXX_FLAGS_"):
                    values[key] = value
    return values


def _build_flags(cache):
    """The build type and the compiler flags it means (generic x86-64 code: no -march)."""
    if not cache:
        return MISSING
    build_type = cache.get("CMAKE_BUILD_TYPE") or ""
    flags = " ".join(x for x in (cache.get("CMAKE_CXX_FLAGS", ""),
                                 cache.get("CMAKE_CXX_FLAGS_" + build_type.upper(), "")) if x)
    return "%s: `%s`; warnings as errors: %s" % (build_type or "no build type", flags or "",
                                                 cache.get("EXOJIT_WERROR", MISSING))


def render(ctx):
    runs = ctx.results.runs
    context = ctx.results.context()
    model, flags = _cpuinfo()
    cache = _cmake_cache(runs.get("build_dir"))
    compiler = cache.get("CMAKE_CXX_COMPILER") or "c++"
    compiler_version = _run([compiler, "--version"]).splitlines()
    caches = ", ".join("L%d %s %d KiB" % (c.get("level", 0), c.get("type", ""),
                                          c.get("size", 0) // 1024)
                       for c in context.get("caches", []))
    load = context.get("load_avg")
    rows = [
        ["CPU", model or MISSING],
        ["logical CPUs", "%s (Google Benchmark: %s at %s MHz)" % (
            os.cpu_count(), context.get("num_cpus", MISSING), context.get("mhz_per_cpu",
                                                                          MISSING))],
        ["caches", caches or MISSING],
        ["CPU features used", "; ".join(
            "%s %s (%s)" % (name, "yes" if name in flags else "no", why)
            for name, why in FEATURES)],
        ["kernel", "%s %s" % (platform.system(), platform.release())],
        ["compiler", compiler_version[0] if compiler_version else compiler],
        ["build", _build_flags(cache)],
        ["Google Benchmark library", "built as %s (Debian's package)" % context.get(
            "library_build_type", MISSING)],
        ["benchmarks run", runs.get("started", context.get("date", MISSING))],
        ["load average at the first benchmark", ", ".join("%.2f" % x for x in load)
         if load else MISSING],
        ["report written", datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC")],
    ]
    commit = runs.get("commit")
    if commit:
        rows.append(["source", "git %s" % commit])
    return "\n".join([
        "## The machine\n",
        table(["", ""], rows),
        "Debian packages (`dpkg-query`):\n",
        table(["package", "version"], _package_versions()),
    ])
