# SPDX-License-Identifier: MIT
"""ASH: Tables 4 and 5 (copies, integrated layer processing; bench_ilp), Tables 6 and 7 and
Figure 5 (handler vs ring round trips, busy environments) and sandboxing overhead (bench_ash)."""

import re

import plots
import seeds
from report_text import code, duration, ratio, sig, table, verdict

_CASES = [("copy_cksum", "hot"), ("copy_cksum", "cold"), ("copy_cksum_bswap", "hot"),
          ("copy_cksum_bswap", "cold")]
_CASE_LABELS = ["copy+cksum\nhot", "copy+cksum\ncold", "copy+cksum+bswap\nhot",
                "copy+cksum+bswap\ncold"]
_METHODS = [("memcpy", "memcpy (glibc)"), ("separate", "separate passes"),
            ("fused_c", "hand-fused C (-O2)"), ("dilp", "DILP (pipes)")]


def _rate(results, row):
    """Bytes per second of wall time. Google Benchmark's bytes_per_second divides by CPU time;
    the ratios the benchmarks print, and this report's, use real time (as the README does)."""
    r = results.row(row)
    bps = r.counter("bytes_per_second") if r else None
    if bps is None or not r.real_ns or not r.cpu_ns:
        return None
    return bps * r.cpu_ns / r.real_ns


def _gbps(v):
    return v / 1e9 if v is not None else None


_COPIES = [("single", "single copy"), ("double", "double copy"),
           ("double_uncached", "double copy (uncached)")]


def _table4(ctx):
    r = ctx.results
    p = seeds.ASH["table4"]
    paper = list(p.values())
    today = [_rate(r, "ilp/copies/" + name) for name, _ in _COPIES]
    out = ["### Table 4: copies of 4096 bytes\n",
           "**Paper** (%s, Table 4, page 8, MB/s; the message not in the cache): %s. A second "
           "copy costs a factor of 1.4 (data in cache) to 1.8 (cache flushed in between).\n"
           % (seeds.ASH["source"], ", ".join("%s %s" % kv for kv in p.items())),
           "**Today** (`ilp/copies/*`: 4 KiB messages of a 256 MiB set walked in order, copied "
           "with glibc's memcpy once, or twice through a 4 KiB intermediate buffer, flushed "
           "with clflush in between for the uncached case; bytes per median real time):\n",
           table(["copy", "row", "paper", "today", "single / this (paper)",
                  "single / this (today)"],
                 [[label, code("ilp/copies/" + name), "%s MB/s" % paper[k], _fmt_rate(today[k]),
                   sig(paper[0] / paper[k]), ratio(today[0], today[k])]
                  for k, (name, label) in enumerate(_COPIES)])]
    if plots.has_values(today):
        fig, (left, right) = plots.figure(panels=2)
        labels = ["single\ncopy", "double\ncopy", "double copy\n(uncached)"]
        plots.bars(left, labels, {"paper (1996)": paper}, "ASH Table 4 (paper)",
                   "copies of 4096 bytes", "throughput (MB/s)")
        plots.bars(right, labels, {"today, memcpy": [_gbps(v) for v in today]},
                   "Today: bench_ilp, ilp/copies/*", "copies of 4 KiB (cold)",
                   "throughput (GB/s)")
        plots.save(fig, ctx.plot_path("ash_copies.png"))
        out.append(ctx.image("ash_copies.png", "ASH Table 4: copy throughput"))
    return out


def _fmt_rate(v):
    return "%s GB/s" % sig(v / 1e9) if v is not None else None


def _table5(ctx):
    r = ctx.results
    p = seeds.ASH["table5"]
    out = ["### Table 5: integrated layer processing (copy + checksum (+ byte swap))\n",
           "**Paper** (Table 5, page 9, MB/s; messages flushed from the cache every iteration, "
           "so the paper's figures compare with today's *cold* column):\n",
           table(["method", "copy & checksum", "copy & checksum & byteswap"],
                 [[k, v[0], v[1]] for k, v in p.items()])]
    rates = {m: [_rate(r, "ilp/%s/%s/%s" % (case, heat, m)) for case, heat in _CASES]
             for m, _ in _METHODS}
    out.append("**Today** (`ilp/<case>/<hot|cold>/<method>`: 4 KiB messages, bytes per median "
               "real time):\n")
    out.append(table(["method"] + [l.replace("\n", " ") for l in _CASE_LABELS],
                     [[label] + [_fmt_rate(v) for v in rates[m]] for m, label in _METHODS]))
    targets = [(2, None), (1, None), (1, None), (1, None)]
    ratio_rows = [
        ["DILP / hand-fused C"] + [ratio(d, f) for d, f in zip(rates["dilp"], rates["fused_c"])],
        ["target"] + ["≥ %g" % t for t, _ in targets],
        ["verdict"] + [verdict(d / f if d and f else None, min_=t)
                       for (d, f), (t, _) in zip(zip(rates["dilp"], rates["fused_c"]), targets)],
        ["DILP / separate passes"] + [ratio(d, s)
                                      for d, s in zip(rates["dilp"], rates["separate"])],
        ["DILP / memcpy (cold target ≥ 0.6)"] + [ratio(d, m)
                                                 for d, m in zip(rates["dilp"], rates["memcpy"])],
    ]
    out.append(table(["ratio of throughputs"] + [l.replace("\n", " ") for l in _CASE_LABELS],
                     ratio_rows))
    out.append("Paper: DILP / C integrated = %s and %s; DILP / separate (uncached) = %s and %s.\n"
               % (sig(17 / 16), sig(8.2 / 8.3), sig(17 / 10), sig(8.2 / 5.1)))
    if plots.has_values(*rates.values()):
        fig, (left, right) = plots.figure(panels=2, width=12)
        plots.bars(left, ["copy &\nchecksum", "copy & checksum\n& byteswap"],
                   {k: list(v) for k, v in p.items()},
                   "ASH Table 5 (paper, 1996)", "operation on 4096 bytes", "throughput (MB/s)")
        plots.bars(right, _CASE_LABELS,
                   {label: [_gbps(v) for v in rates[m]] for m, label in _METHODS},
                   "Today: bench_ilp, 4 KiB messages", "operation, working set",
                   "throughput (GB/s)")
        plots.save(fig, ctx.plot_path("ash_ilp.png"))
        out.append(ctx.image("ash_ilp.png", "ASH Table 5: integrated layer processing"))
    return out


def _round_trips(ctx):
    r = ctx.results
    t6 = seeds.ASH["table6"]
    t7 = seeds.ASH["table7"]
    inc_h, inc_r = r.real_ns("ash/remote_increment/handler"), r.real_ns("ash/remote_increment/ring")
    srv_h, srv_r = r.real_ns("ash/cache_server/handler"), r.real_ns("ash/cache_server/ring")
    q = inc_r / inc_h if inc_h and inc_r else None
    out = ["### Tables 6 and 7: handler vs the application's own path\n",
           "**Paper** (Tables 6 and 7, page 9): remote increment round trip on AN2 %d µs with an "
           "ASH, %d µs without (%sx); TCP latency %d vs %d µs and throughput %s vs %s MB/s with "
           "and without ASHs. %s\n"
           % (t6["with ASH"], t6["without ASH"], sig(t6["without ASH"] / t6["with ASH"]),
              t7["latency_us"][0], t7["latency_us"][1], t7["throughput_MBps"][0],
              t7["throughput_MBps"][1], seeds.ASH["server_claim"]),
           "**Today** (host time per round trip between two simulated hosts; the ring path "
           "wakes the environment's thread). exojit has no TCP: Table 7 has no counterpart, the "
           "composed cache server stands for section 5.4.\n",
           table(["experiment", "handler", "ring (environment)", "ring / handler", "target",
                  "paper"],
                 [[code("ash/remote_increment/*"), duration(inc_h), duration(inc_r),
                   ratio(inc_r, inc_h), "≥ 3: %s" % verdict(q, min_=3),
                   sig(t6["without ASH"] / t6["with ASH"]) + "x"],
                  [code("ash/cache_server/*") + " (hit)", duration(srv_h), duration(srv_r),
                   ratio(srv_r, srv_h), "", "1x (660 µs both)"]])]
    values = {"handler (ASH)": [_us(inc_h), _us(srv_h)], "ring (environment)": [_us(inc_r),
                                                                               _us(srv_r)]}
    if plots.has_values(*values.values()):
        fig, (ax,) = plots.figure(width=6.5)
        plots.bars(ax, ["remote increment\n(Table 6)", "cache server hit\n(section 5.4)"], values,
                   "Round trip: handler vs ring (bench_ash)", "experiment",
                   "time per round trip (µs)")
        plots.save(fig, ctx.plot_path("ash_round_trips.png"))
        out.append(ctx.image("ash_round_trips.png", "ASH round trips"))
    return out


def _us(ns):
    return ns / 1e3 if ns is not None else None


def _figure5(ctx):
    r = ctx.results
    pattern = re.compile(r"^ash/envs/(\d+)/(handler|ring)$")
    pts = {"handler": {}, "ring": {}}
    for name in r.names("ash/envs/"):
        m = pattern.match(name)
        if m:
            pts[m.group(2)][int(m.group(1))] = r.real_ns(name)
    ns = sorted(set(pts["handler"]) | set(pts["ring"]))
    out = ["### Figure 5: round trip vs number of busy environments\n",
           "**Paper** (Figure 5, section 5.3): %s.\n" % seeds.ASH["figure5_claim"]]
    if not ns:
        return out + ["No `ash/envs/*` rows in this run.\n"]
    out.append("**Today** (`ash/envs/<N>/*`: N other runnable, busy environments as real threads "
               "on this machine's cores):\n")
    out.append(table(["busy environments", "handler", "ring", "ring / handler"],
                     [[n, duration(pts["handler"].get(n)), duration(pts["ring"].get(n)),
                       ratio(pts["ring"].get(n), pts["handler"].get(n))] for n in ns]))
    lo, hi = ns[0], ns[-1]
    h = pts["handler"]
    if h.get(lo) and h.get(hi):
        q = h[hi] / h[lo]
        out.append("Handler %d / %d environments: **%sx** (target ≤ 1.1: %s); ring: %s.\n"
                   % (hi, lo, sig(q), verdict(q, max_=1.1),
                      ratio(pts["ring"].get(hi), pts["ring"].get(lo))))
    fig, (ax,) = plots.figure(width=7)
    plots.lines(ax, {"handler (ASH)": (ns, [_us(h.get(n)) for n in ns]),
                     "ring (environment thread)": (ns, [_us(pts["ring"].get(n)) for n in ns])},
                "ASH Figure 5: remote increment vs busy environments (bench_ash)",
                "busy environments (log)", "time per round trip (µs)", logx=True, xticks=ns)
    plots.save(fig, ctx.plot_path("ash_envs.png"))
    out.append(ctx.image("ash_envs.png", "ASH Figure 5: round trip vs busy environments"))
    return out


def _sandboxing(ctx):
    r = ctx.results
    pattern = re.compile(r"^ash/remote_write/(\d+)/(sandboxed|trusted)$")
    pts = {}
    for name in r.names("ash/remote_write/"):
        m = pattern.match(name)
        if m:
            pts.setdefault(int(m.group(1)), {})[m.group(2)] = r.real_ns(name)
    out = ["### Sandboxing overhead\n",
           "**Paper** (section 5.2, page 9): sandboxing a remote write costs %s for 40-byte writes "
           "and %s for 128 bytes (every load and store sandboxed).\n"
           % (seeds.ASH["sandbox"]["40"], seeds.ASH["sandbox"]["128"])]
    if not pts:
        return out + ["No `ash/remote_write/*` rows in this run.\n"]
    rows = []
    for size in sorted(pts):
        s, t = pts[size].get("sandboxed"), pts[size].get("trusted")
        over = (s / t - 1) * 100 if s and t else None
        rows.append([size, duration(t), duration(s),
                     "%s%%" % sig(over, 2) if over is not None else None,
                     verdict(over, max_=10), seeds.ASH["sandbox"].get(str(size))])
    out.append(table(["bytes", "trusted", "sandboxed", "overhead", "target ≤ 10%", "paper"],
                     rows))
    sizes = sorted(pts)
    fig, (ax,) = plots.figure(width=6)
    plots.bars(ax, ["%d bytes" % s for s in sizes],
               {"trusted": [pts[s].get("trusted") for s in sizes],
                "sandboxed": [pts[s].get("sandboxed") for s in sizes]},
               "Remote write: sandboxed vs trusted (bench_ash)", "bytes written",
               "time per write (ns)")
    plots.save(fig, ctx.plot_path("ash_sandboxing.png"))
    out.append(ctx.image("ash_sandboxing.png", "ASH sandboxing overhead"))
    return out


def render(ctx):
    out = ["## ASH: application-specific safe message handlers\n"]
    missing = ctx.unavailable("bench_ilp")
    if missing:
        out += ["### Tables 4 and 5: copies and integrated layer processing\n", missing]
    else:
        out += _table4(ctx) + _table5(ctx)
    missing = ctx.unavailable("bench_ash")
    if missing:
        out += ["### Tables 6 and 7, Figure 5, sandboxing\n",
                "**Paper** (%s): remote increment round trip %d µs with an ASH, %d µs without "
                "(Table 6); sandboxing overhead %s (40 bytes) and %s (128 bytes).\n"
                % (seeds.ASH["source"], seeds.ASH["table6"]["with ASH"],
                   seeds.ASH["table6"]["without ASH"], seeds.ASH["sandbox"]["40"],
                   seeds.ASH["sandbox"]["128"]), missing]
    else:
        out += _round_trips(ctx) + _figure5(ctx) + _sandboxing(ctx)
    return "\n".join(out)
