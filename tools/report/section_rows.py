# SPDX-License-Identifier: MIT
"""Every benchmark program's rows and printed ratios, as measured: the raw material of the sections
above, and the only place for rows no section uses (bench_kernels, bench_runtime, new rows)."""

from report_text import code, duration, sig, table

# Counters whose values are times in seconds (Google Benchmark's kIsRate | kInvert), shown in ns.
_SECONDS_COUNTERS = {"ns_per_vinsn", "ns_per_packet"}


def _counters(row):
    parts = []
    for key in sorted(row.counters):
        v = row.counters[key]
        if key in _SECONDS_COUNTERS:
            parts.append("%s=%s" % (key, duration(v * 1e9)))
        elif key == "bytes_per_second":
            parts.append("%s GB/s" % sig(v / 1e9))
        else:
            parts.append("%s=%s" % (key, sig(v)))
    return ", ".join(parts)


def render(ctx):
    out = ["## All rows\n",
           "Median real (wall) and CPU time per iteration of every row, the ratios each program "
           "printed (with their targets) and its other notes. Raw JSON: `data/<program>.json`.\n"]
    for name, p in ctx.results.programs.items():
        run = p.run
        how = ""
        if run:
            how = " — %s s, `%s`" % (sig(run.get("seconds", 0), 2), " ".join(run.get("command",
                                                                                   [])))
        out.append("### %s%s\n" % (name, how))
        if p.problem:
            out.append("No results: %s.\n" % p.problem)
            if p.printed:
                out.append("```\n%s\n```\n" % "\n".join(p.printed[-10:]))
            continue
        rows = [[code(r.name), duration(r.real_ns), duration(r.cpu_ns), r.repetitions,
                 _counters(r)] for r in p.rows.values()]
        rows += [[code(n), "error: " + msg, None, None, None] for n, msg in p.errors.items()]
        out.append(table(["row", "real time", "CPU time", "repetitions", "counters"], rows))
        if p.printed:
            out.append("```\n%s\n```\n" % "\n".join(p.printed))
    return "\n".join(out)
