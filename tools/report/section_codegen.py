# SPDX-License-Identifier: MIT
"""VCODE / 'C: the cost of generating code per generated instruction (bench_codegen,
bench_tiers)."""

import plots
import seeds
from report_text import MISSING, code, duration, ratio, sig, table, verdict


def _per_insn_ns(results):
    """Nanoseconds per generated instruction for each way of generating code (None: not run)."""
    def counter(row, key, scale=1.0):
        r = results.row(row)
        v = r.counter(key) if r else None
        return v * scale if v is not None else None
    return [
        ("vcode fast tier", "codegen/vcode_fast",
         counter("codegen/vcode_fast", "ns_per_insn"), "per machine instruction, wall time"),
        ("raw asmjit (same code)", "codegen/asmjit_raw",
         counter("codegen/asmjit_raw", "ns_per_insn"), "per machine instruction, wall time"),
        ("LLVM 14 ORC, O0", "codegen/llvm_O0",
         counter("codegen/llvm_O0", "ns_per_insn"), "per machine instruction of vcode's code"),
        ("vcode fast tier, compile() only", "tiers/compile/vcode_fast",
         counter("tiers/compile/vcode_fast", "ns_per_vinsn", 1e9), "per vcode instruction, CPU"),
        ("vcode LLVM tier, O2", "tiers/compile/vcode_llvm",
         counter("tiers/compile/vcode_llvm", "ns_per_vinsn", 1e9), "per vcode instruction, CPU"),
    ]


def render(ctx):
    out = ["## VCODE / 'C: code generation cost per instruction\n"]
    out.append(
        "**Paper** (%s): tcc, 'C's compiler, generates code at *\"%s\"*: **%d cycles** per "
        "generated instruction with its one-pass run-time system (VCODE's design) and **%d "
        "cycles** with its optimizing one.\n" % (seeds.TCC["source"], seeds.TCC["quote"],
                                                  seeds.TCC["one_pass_cycles"],
                                                  seeds.TCC["optimizing_cycles"]))
    missing = [m for m in (ctx.unavailable("bench_codegen"), ctx.unavailable("bench_tiers")) if m]
    out += missing
    if len(missing) == 2:
        return "\n".join(out)

    mhz = ctx.results.context().get("mhz_per_cpu")
    measured = _per_insn_ns(ctx.results)
    out.append(
        "**Today**: a 1,000-instruction integer function (31 compare-branches) built, verified, "
        "compiled and installed (`bench_codegen`), and the same module compiled on each tier of "
        "vcode (`bench_tiers`, `tiers/compile/*`). Cycles are nanoseconds times the nominal "
        "clock Google Benchmark reports (%s MHz).\n" % (mhz if mhz else MISSING))
    rows = []
    for label, row, ns, basis in measured:
        cycles = ns * mhz / 1e3 if ns is not None and mhz else None
        rows.append([label, code(row), basis, duration(ns), sig(cycles)])
    out.append(table(["generator", "row", "per", "time per instruction",
                      "cycles per instruction"], rows))

    by_row = {row: ns for _, row, ns, _ in measured}
    vf, raw = by_row["codegen/vcode_fast"], by_row["codegen/asmjit_raw"]
    o0 = by_row["codegen/llvm_O0"]
    tf, tl = by_row["tiers/compile/vcode_fast"], by_row["tiers/compile/vcode_llvm"]
    out.append(table(
        ["ratio", "today", "target", "verdict"],
        [["vcode fast tier / raw asmjit", ratio(vf, raw), "≤ 1.5 (goal 1.2)",
          verdict(vf / raw if vf and raw else None, max_=1.5)],
         ["LLVM O0 / vcode fast tier", ratio(o0, vf), "≥ 100",
          verdict(o0 / vf if o0 and vf else None, min_=100)],
         ["LLVM tier (O2) / fast tier, compile per vcode instruction", ratio(tl, tf), "", ""],
         ["vcode fast tier / tcc one-pass (cycles)",
          ratio(vf * mhz / 1e3 if vf and mhz else None, seeds.TCC["one_pass_cycles"]), "", ""]]))

    values = [ns * mhz / 1e3 if ns is not None and mhz else None for _, _, ns, _ in measured]
    if mhz and plots.has_values(values):
        fig, (ax,) = plots.figure(width=8.5)
        plots.bars(ax, ["vcode fast\n(codegen)", "raw asmjit", "LLVM O0", "vcode fast\ncompile()",
                        "LLVM tier O2"], {"today, this machine": values},
                   "Code generation cost (bench_codegen, bench_tiers)", "code generator",
                   "CPU cycles per generated instruction (log)", log=True,
                   references=[(seeds.TCC["one_pass_cycles"], "tcc one-pass, paper: 100"),
                               (seeds.TCC["optimizing_cycles"], "tcc optimizing, paper: 600")])
        plots.save(fig, ctx.plot_path("codegen_cost.png"))
        out.append(ctx.image("codegen_cost.png", "code generation cost per instruction"))
    return "\n".join(out)
