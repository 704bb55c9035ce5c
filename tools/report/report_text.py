# SPDX-License-Identifier: MIT
"""Markdown pieces of the report: tables and human-readable numbers ("—" for what is missing)."""

MISSING = "—"


def table(header, rows):
    """A GitHub-flavoured Markdown table; None cells print as MISSING."""
    def cell(v):
        return MISSING if v is None else str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def sig(x, digits=3):
    """x with `digits` significant digits, thousands separated, no exponent for usual values."""
    if x is None:
        return MISSING
    if x == 0:
        return "0"
    mag = abs(x)
    if mag >= 10 ** digits:
        return "{:,.0f}".format(x)
    decimals = max(0, digits - 1 - int(_floor_log10(mag)))
    return "{:,.{}f}".format(x, decimals)


def _floor_log10(x):
    n = 0
    while x >= 10:
        x /= 10
        n += 1
    while x < 1:
        x *= 10
        n -= 1
    return n


def duration(ns):
    """A time in ns as '12.3 ns', '4.56 µs', '7.89 ms' or '1.23 s'."""
    if ns is None:
        return MISSING
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            return "%s %s" % (sig(ns / scale), unit)
    return "%s ns" % sig(ns)


def ratio(a, b):
    """a / b as '1.23x', MISSING if either is missing."""
    if a is None or b is None or b == 0:
        return MISSING
    return sig(a / b) + "x"


def rate(bytes_per_second):
    if bytes_per_second is None:
        return MISSING
    return "%s GB/s" % sig(bytes_per_second / 1e9)


def code(text):
    return "`%s`" % text


def not_measured(program, build_hint, problem=None):
    """The paragraph a section shows instead of its measurements."""
    if problem:
        return ("**Not measured:** `%s` did not produce results (%s); see its output under "
                "the report's `data/` folder.\n" % (program, problem))
    return ("**Not measured:** `%s` is not in the build tree's `bench/` folder. %s\n"
            % (program, build_hint))


def verdict(value, max_=None, min_=None):
    """'met' / 'missed' for a ratio against a target (None when there is no value)."""
    if value is None:
        return MISSING
    ok = (max_ is None or value <= max_) and (min_ is None or value >= min_)
    return "met" if ok else "**missed**"
