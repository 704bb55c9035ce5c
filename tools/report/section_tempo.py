# SPDX-License-Identifier: MIT
"""Tempo: Figures 3 and 4, specialized vs generic UDP send time and code size (bench_spec)."""

import re

import plots
import seeds
from report_text import code, duration, ratio, sig, table, verdict


def _sends(results):
    """{bytes: {"generic"|"specialized": Row}} from spec/udp_send/<bytes>/<kind>."""
    pattern = re.compile(r"^spec/udp_send/(\d+)/(generic|specialized)$")
    out = {}
    for name in results.names("spec/udp_send/"):
        m = pattern.match(name)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = results.row(name)
    return out


def render(ctx):
    out = ["## Tempo: specialized protocol code\n",
           "**Paper** (%s): Figure 3(a): %s; Figure 3(b): %s; Figure 4: %s. Figure 6 (time to "
           "specialize, Pentium III) is a plot whose values the text does not print.\n"
           % (seeds.TEMPO["source"], seeds.TEMPO["figure3a"], seeds.TEMPO["figure3b"],
              seeds.TEMPO["figure4"])]
    missing = ctx.unavailable("bench_spec")
    if missing:
        return "\n".join(out + [missing])
    r = ctx.results
    sends = _sends(r)
    sizes = sorted(sends)
    rows = []
    for size in sizes:
        g, s = sends[size].get("generic"), sends[size].get("specialized")
        gt, st = (g.real_ns if g else None), (s.real_ns if s else None)
        gb, sb = (g.counter("code_bytes") if g else None), (s.counter("code_bytes") if s else None)
        rows.append([size, duration(gt), duration(st), ratio(gt, st),
                     verdict(gt / st if gt and st else None, min_=2),
                     sig(gb), sig(sb), ratio(gb, sb),
                     verdict(gb / sb if gb and sb else None, min_=20)])
    out.append("**Today** (`spec/udp_send/<bytes>/*`: one UDP send through the libOS and the NIC "
               "model, host time; `code_bytes`: machine code of the send path, generic = every "
               "function reachable):\n")
    out.append(table(["payload bytes", "generic", "specialized", "speed-up",
                      "target ≥ 2 (paper 1.25)", "generic code bytes", "specialized code bytes",
                      "smaller by", "target ≥ 20 (paper: up to 20)"], rows))
    cold, cached = r.real_ns("spec/specialize/cold"), r.real_ns("spec/specialize/cached")
    out.append(table(["specialization", "row", "time", "target"],
                     [["specialize and compile one context", code("spec/specialize/cold"),
                       duration(cold), "≤ 20 ms: %s" % verdict(
                           cold / 1e6 if cold is not None else None, max_=20)],
                      ["cache hit", code("spec/specialize/cached"), duration(cached), ""]]))
    if sizes:
        fig, (left, right) = plots.figure(panels=2)
        labels = ["%d B" % s for s in sizes]
        plots.bars(left, labels,
                   {k: [sends[s][k].real_ns if sends[s].get(k) else None for s in sizes]
                    for k in ("generic", "specialized")},
                   "Tempo Fig. 3(a)/4 today: UDP send time", "UDP payload",
                   "time per send (ns)")
        plots.bars(right, labels,
                   {k: [sends[s][k].counter("code_bytes") if sends[s].get(k) else None
                        for s in sizes] for k in ("generic", "specialized")},
                   "Tempo Fig. 3(b) today: send path code size", "UDP payload",
                   "machine code (bytes, log)",
                   log=True)
        plots.save(fig, ctx.plot_path("tempo_send.png"))
        out.append(ctx.image("tempo_send.png", "Tempo: specialized vs generic send"))
    return "\n".join(out)
