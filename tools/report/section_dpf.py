# SPDX-License-Identifier: MIT
"""DPF: Tables 2 and 3, Figure 3 (time vs protocol depth) and scaling with the number of filters
(bench_demux)."""

import re

import plots
import seeds
from report_text import MISSING, code, duration, ratio, sig, table, verdict

# Implementations bench_demux may have, in the order plots and tables show them. Others found
# in the results (a new peer) are shown after these under their row name.
IMPLS = {
    "bpf_interp": "libpcap bpf_filter (interpreter)",
    "rte_bpf_jit": "DPDK rte_bpf (JIT)",
    "hand_c": "hand-coded C",
    "dpf": "DPF (exojit)",
}


def _impls(results, prefix):
    """Implementations present under `prefix` (e.g. demux/scale/), known ones first."""
    found = []
    for name in results.names(prefix):
        impl = name.rsplit("/", 1)[-1]
        if impl not in found:
            found.append(impl)
    return [i for i in IMPLS if i in found] + [i for i in found if i not in IMPLS]


def _label(impl):
    return IMPLS.get(impl, impl)


def _series(results, kind):
    """{impl: (xs, ns)} for demux/<kind>/<x>/<impl> rows, x ascending."""
    pattern = re.compile(r"^demux/%s/(\d+)/([^/]+)$" % kind)
    points = {}
    for name in results.names("demux/%s/" % kind):
        m = pattern.match(name)
        if m:
            points.setdefault(m.group(2), {})[int(m.group(1))] = results.real_ns(name)
    out = {}
    for impl in _impls(results, "demux/%s/" % kind):
        if impl in points:
            xs = sorted(points[impl])
            out[impl] = (xs, [points[impl][x] for x in xs])
    return out


def _table3(ctx):
    r = ctx.results
    p = seeds.DPF["table3"]
    out = ["### Table 3: ten TCP/IP connection filters\n",
           "**Paper** (%s, Table 3, µs; MIPS R3000 DECstation): %s.\n"
           % (seeds.DPF["source"], seeds.DPF["table3_claim"]),
           table(["filter engine", "unexpected (µs)", "expected (µs)", "unexpected / DPF"],
                 [[k, v["unexpected"], v["expected"], sig(v["unexpected"] / p["DPF"]["unexpected"])]
                  for k, v in p.items()])]
    impls = _impls(r, "demux/table3/")
    rows = []
    for header in ("fixed", "variable"):
        for which in ("first", "last"):
            base = "demux/table3/%s/%s/" % (header, which)
            t = {i: r.real_ns(base + i) for i in impls}
            rows.append([code(base + "*")] + [duration(t[i]) for i in impls] +
                        [ratio(t.get("bpf_interp"), t.get("dpf")),
                         ratio(t.get("dpf"), t.get("hand_c"))])
    out.append("**Today**: ten TCP/IP connection filters (fixed or variable IP header length), "
               "the packet matching the first or the last one; libpcap runs the filters in turn "
               "(median real time per packet):\n")
    out.append(table(["rows"] + [_label(i) for i in impls] +
                     ["bpf / DPF (paper's MPF/DPF: 23-47x)", "DPF / hand C (target ≤ 1)"], rows))
    return out


def _table2(ctx):
    r = ctx.results
    p = seeds.DPF["table2"]
    one, ten = r.real_ns("demux/scale/1/dpf"), r.real_ns("demux/scale/10/dpf")
    fixed, variable = r.real_ns("demux/table3/fixed/last/dpf"), r.real_ns(
        "demux/table3/variable/last/dpf")
    return [
        "### Table 2: disjunctions and header kinds\n",
        "**Paper** (Table 2, µs): filters identical but for the destination port; from three "
        "filters on, DPF hashes the disjunction.\n",
        table(["header"] + p["columns"] + [">= 3 / 1"],
              [["fixed"] + p["fixed"] + [sig(p["fixed"][2] / p["fixed"][0])],
               ["variable"] + p["variable"] + [sig(p["variable"][2] / p["variable"][0])]]),
        "**Today** (DPF only; median real time per packet):\n",
        table(["measurement", "rows", "time", "ratio", "paper"],
              [["1 vs 10 connection filters (variable header, hashed)",
                code("demux/scale/{1,10}/dpf"), "%s / %s" % (duration(one), duration(ten)),
                ratio(ten, one), "1.22 (fixed), 1.19 (variable)"],
               ["variable vs fixed IP header (10 filters, last)",
                code("demux/table3/{variable,fixed}/last/dpf"),
                "%s / %s" % (duration(variable), duration(fixed)), ratio(variable, fixed),
                sig(p["variable"][2] / p["fixed"][2])]]),
    ]


def _depth(ctx):
    series = _series(ctx.results, "depth")
    out = ["### Figure 3: time vs depth of the protocol stack\n",
           "**Paper** (Figure 3, a plot; values not printed): %s.\n" % seeds.DPF["figure3_claim"]]
    if not series:
        return out + ["No `demux/depth/*` rows in this run.\n"]
    depths = sorted({x for xs, _ in series.values() for x in xs})
    rows = []
    for d in depths:
        t = {i: dict(zip(*series[i])).get(d) for i in series}
        rows.append([d] + [duration(t[i]) for i in series] +
                    [ratio(t.get("bpf_interp"), t.get("dpf"))])
    out.append("**Today**: one filter of D levels, two 16-bit atoms each (`demux/depth/<D>/*`):\n")
    out.append(table(["depth"] + [_label(i) for i in series] + ["bpf / DPF"], rows))
    fig, (ax,) = plots.figure(width=7)
    plots.lines(ax, {_label(i): series[i] for i in series},
                "DPF Figure 3: time vs protocol depth (bench_demux)",
                "protocol depth (levels of 2 atoms)", "time per packet (ns)", xticks=depths)
    plots.save(fig, ctx.plot_path("dpf_depth.png"))
    out.append(ctx.image("dpf_depth.png", "DPF time vs protocol depth"))
    return out


def _scaling(ctx):
    series = _series(ctx.results, "scale")
    out = ["### Scaling with the number of filters\n",
           "Not in the paper's figures: its claim is that DPF hashes disjunctions from three "
           "filters on. Packets drawn at random among N TCP/IP connections (`demux/scale/<N>/*`); "
           "libpcap runs the N filters in turn, hand-coded C uses a hash table.\n"]
    if not series:
        return out + ["No `demux/scale/*` rows in this run.\n"]
    if "rte_bpf_jit" not in series:
        out.append("DPDK's rte_bpf JIT is not a peer in this build of `bench_demux` (no "
                   "`demux/scale/<N>/rte_bpf_jit` rows: `./exo bench` or `./exo report` installs "
                   "libdpdk-dev and rebuilds with it).\n")
    ns = sorted({x for xs, _ in series.values() for x in xs})
    rows = []
    for n in ns:
        t = {i: dict(zip(*series[i])).get(n) for i in series}
        rows.append(["{:,}".format(n)] + [duration(t[i]) for i in series] +
                    [ratio(t.get("bpf_interp"), t.get("dpf"))])
    out.append(table(["filters"] + [_label(i) for i in series] + ["bpf / DPF"], rows))
    dpf = dict(zip(*series["dpf"])) if "dpf" in series else {}
    if dpf.get(10) and dpf.get(10000):
        q = dpf[10000] / dpf[10]
        out.append("DPF with 10,000 filters / 10 filters: **%sx** (target ≤ 2.5: %s).\n"
                   % (sig(q), verdict(q, max_=2.5)))
    fig, (ax,) = plots.figure(width=7)
    plots.lines(ax, {_label(i): series[i] for i in series},
                "Demultiplexing time vs number of filters (bench_demux)",
                "number of connection filters (log)", "time per packet (ns, log)",
                logx=True, logy=True, xticks=ns)
    plots.save(fig, ctx.plot_path("dpf_scaling.png"))
    out.append(ctx.image("dpf_scaling.png", "demultiplexing time vs number of filters"))
    return out


def _insert(ctx):
    r = ctx.results
    nocode, regen = r.real_ns("demux/insert/nocode"), r.real_ns("demux/insert/regen")
    return ["### Insertion\n",
            "**Paper**: %s.\n" % seeds.DPF["insert_claim"],
            table(["row", "time", "vs paper's 220 µs"],
                  [[code("demux/insert/nocode") + " (one more connection into 1,000: a hash "
                    "table entry)", duration(nocode), ratio(nocode, 220e3)],
                   [code("demux/insert/regen") + " (a filter that needs new code)",
                    duration(regen), ratio(regen, 220e3)]])]


def render(ctx):
    out = ["## DPF: dynamic packet filters\n"]
    missing = ctx.unavailable("bench_demux")
    if missing:
        out += ["**Paper** (%s): Table 3 (µs): MPF 71 / 35, PATHFINDER 39 / 19, DPF 1.5 / 1.5 "
                "(unexpected / expected).\n" % seeds.DPF["source"], missing]
        return "\n".join(out)
    for part in (_table3, _table2, _depth, _scaling, _insert):
        out += part(ctx)
    return "\n".join(x for x in out if x != MISSING)
