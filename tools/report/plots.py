# SPDX-License-Identifier: MIT
"""PNG plots with matplotlib (Debian's python3-matplotlib), off-screen (Agg backend).

Every plot gets a title, labelled axes with units and a legend; missing values (None) are left
out of a plot rather than drawn as zero.
"""

import math

import matplotlib

matplotlib.use("Agg")  # no display: the report is made on build machines and in the tests
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.ticker import FuncFormatter  # noqa: E402

_NUMBER_FORMAT = FuncFormatter(lambda v, _: "{:,g}".format(v))


def figure(panels=1, width=None):
    fig, axes = plt.subplots(1, panels, figsize=(width or 4.8 * panels + 1.2, 4.2), squeeze=False)
    return fig, list(axes[0])


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def bars(ax, categories, series, title, xlabel, ylabel, log=False, references=()):
    """Grouped bars: one group per category, one bar per series (label -> values per category).

    `references` are (value, label) horizontal dashed lines, e.g. a paper's figure."""
    n = max(1, len(series))
    width = 0.8 / n
    for i, (label, values) in enumerate(series.items()):
        xs = [c + (i - (n - 1) / 2) * width for c in range(len(categories))]
        ys = [math.nan if v is None else v for v in values]
        drawn = ax.bar(xs, ys, width, label=label)
        for rect, v in zip(drawn, values):
            if v is not None:
                ax.annotate(_short(v), (rect.get_x() + rect.get_width() / 2, v),
                            ha="center", va="bottom", fontsize=7)
    for (value, label), style in zip(references, ["--", ":", "-."] * 4):
        ax.axhline(value, linestyle=style, linewidth=1.2, color="dimgray", label=label)
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories, fontsize=8)
    _finish(ax, title, xlabel, ylabel, logy=log)


def _short(v):
    return "{:,.0f}".format(v) if abs(v) >= 1000 else "{:.3g}".format(v)


def lines(ax, series, title, xlabel, ylabel, logx=False, logy=False, xticks=None):
    """One line per series (label -> (xs, ys)); points whose y is None are left out."""
    markers = "os^Dvx*+"
    for i, (label, (xs, ys)) in enumerate(series.items()):
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=markers[i % len(markers)],
                    label=label)
    if logx:
        ax.set_xscale("log", base=10 if max(_all_x(series), default=1) > 100 else 2)
    if xticks:
        ax.set_xticks(xticks)
        ax.xaxis.set_major_formatter(_NUMBER_FORMAT)
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    _finish(ax, title, xlabel, ylabel, logy=logy)


def _all_x(series):
    return [x for xs, _ in series.values() for x in xs]


def _finish(ax, title, xlabel, ylabel, logy):
    ax.set_title(title, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_NUMBER_FORMAT)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def has_values(*value_lists):
    return any(v is not None for values in value_lists for v in values)
