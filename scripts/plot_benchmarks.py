#!/usr/bin/env python3
"""Draws criterion results as PNG charts for docs/benchmarks.md.

For each criterion group given, reads every benchmark of the group from
criterion's output (target/criterion/<group>/<function>/<parameter>/new/,
files benchmark.json and estimates.json), turns each mean into elements
per second with the benchmark's declared throughput, and draws one line per
function (for example `courier_sled`, `raw_sled`) against the parameter
(for example the number of senders), on a log scale when the parameters
span more than a decade. Functions whose names start with `raw` are drawn
dashed: they are the limit the others are compared with.

With --bars, each group is drawn as grouped bars instead: one cluster per
function (for example `one_actor`, `100_actors`), one bar per parameter
(for example `courier`, `raw_sled_batch_100`), raw ones hatched; for groups
whose parameters are contenders rather than sizes (`persist`).

usage: scripts/plot_benchmarks.py [--criterion DIR] [--out DIR] [--bars] GROUP[:TITLE]...

Needs matplotlib (`pip install matplotlib`); says so and exits 2 without it.
"""

import argparse
import json
import os
import sys
from collections import defaultdict


def read_group(criterion_dir, group):
    """{function: [(parameter, elements_per_second)]} of one group."""
    lines = defaultdict(list)
    root = os.path.join(criterion_dir, group)
    if not os.path.isdir(root):
        raise SystemExit(f"no criterion output for group {group!r} under {criterion_dir}")
    for dirpath, _dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in filenames:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            estimates = json.load(f)
        throughput = bench.get("throughput") or {}
        elements = throughput.get("Elements") or throughput.get("Bytes")
        if not elements:
            continue
        mean_ns = estimates["mean"]["point_estimate"]
        per_second = elements / (mean_ns / 1e9)
        function = bench.get("function_id") or bench["title"]
        parameter = bench.get("value_str") or ""
        lines[function].append((parameter, per_second))
    if not lines:
        raise SystemExit(f"group {group!r} has no benchmark with a throughput")
    return lines


def as_number(parameter):
    digits = "".join(c for c in parameter if c.isdigit())
    return int(digits) if digits else None


def save(figure, axes, group, out_dir, plt):
    """Writes the chart as <out_dir>/<group>.png; its path."""
    axes.legend(fontsize=8)
    figure.tight_layout()
    path = os.path.join(out_dir, f"{group.replace('/', '_')}.png")
    figure.savefig(path)
    plt.close(figure)
    return path


def plot(group, title, lines, out_dir, plt):
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    numeric = all(
        as_number(p) is not None for points in lines.values() for p, _ in points
    )
    for function in sorted(lines):
        points = sorted(lines[function], key=lambda p: as_number(p[0]) if numeric else p[0])
        xs = [as_number(p) if numeric else p for p, _ in points]
        ys = [v for _, v in points]
        style = "--" if function.startswith("raw") else "-"
        axes.plot(xs, ys, style, marker="o", label=function)
    if numeric:
        values = [as_number(p) for points in lines.values() for p, _ in points]
        if max(values) > 10 * max(1, min(values)):
            axes.set_xscale("log")
        axes.set_xticks(sorted(set(values)))
        axes.get_xaxis().set_major_formatter(plt.ScalarFormatter())
    axes.set_ylabel("per second")
    axes.set_ylim(bottom=0)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    return save(figure, axes, group, out_dir, plt)


def plot_bars(group, title, lines, out_dir, plt):
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    functions = sorted(lines)
    contenders = sorted({p for points in lines.values() for p, _ in points})
    colors = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(contenders)}
    widest = max(len(lines[f]) for f in functions)
    width = 0.8 / max(1, widest)
    labelled = set()
    for j, function in enumerate(functions):
        points = sorted(lines[function])
        for i, (contender, value) in enumerate(points):
            x = j + (i - (len(points) - 1) / 2) * width
            label = None if contender in labelled else contender
            labelled.add(contender)
            hatch = "//" if contender.startswith("raw") else None
            axes.bar(x, value, width, color=colors[contender], hatch=hatch, label=label)
    axes.set_xticks(range(len(functions)))
    axes.set_xticklabels(functions)
    axes.set_ylabel("per second (log scale)")
    axes.set_yscale("log")
    axes.set_title(title, fontsize=10)
    axes.grid(True, axis="y", alpha=0.3)
    return save(figure, axes, group, out_dir, plt)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criterion", default="target/criterion")
    parser.add_argument("--out", default="docs/img")
    parser.add_argument("--bars", action="store_true", help="grouped bars, one per parameter")
    parser.add_argument("groups", nargs="+", metavar="GROUP[:TITLE]")
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_benchmarks.py needs matplotlib: pip install matplotlib", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    for spec in args.groups:
        group, _, title = spec.partition(":")
        draw = plot_bars if args.bars else plot
        path = draw(group, title or group, read_group(args.criterion, group), args.out, plt)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
