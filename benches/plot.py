"""Plots the latency distribution of each plugin kind from the timed calls
benches/myplugin.rs writes: python3 plot.py LATENCY.csv OUT.png

Left: the share of calls answered within a time (an ECDF, log time axis), so
medians, tails and outliers of every plugin show on one chart. Right: the same
calls as box plots (whiskers at p1 and p99), ordered by median.
"""

import csv
import statistics
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(csv_path, png_path):
    samples = OrderedDict()
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            samples.setdefault(row["plugin"], []).append(float(row["latency_us"]))
    if not samples:
        sys.exit(f"{csv_path}: no timed calls")

    fig, (ecdf, boxes) = plt.subplots(
        1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [3, 2]}
    )
    for label, times in samples.items():
        times = sorted(times)
        n = len(times)
        p50 = statistics.median(times)
        ecdf.step(
            times,
            [(i + 1) / n for i in range(n)],
            where="post",
            label=f"{label} (p50 {p50:.0f} µs, n={n})",
        )
    ecdf.set_xscale("log")
    ecdf.set_xlabel("latency per call, µs (log scale)")
    ecdf.set_ylabel("share of calls answered within")
    ecdf.axhline(0.5, color="grey", linewidth=0.5, linestyle=":")
    ecdf.axhline(0.99, color="grey", linewidth=0.5, linestyle=":")
    ecdf.grid(True, which="both", linewidth=0.3)
    ecdf.legend(fontsize="small", loc="lower right")
    ecdf.set_title("myplugin, sequential calls: distribution of latency")

    ordered = sorted(samples.items(), key=lambda kv: statistics.median(kv[1]))
    boxes.boxplot(
        [times for _, times in ordered],
        vert=False,
        whis=(1, 99),
        showfliers=False,
    )
    boxes.set_yticks(range(1, len(ordered) + 1))
    boxes.set_yticklabels([label for label, _ in ordered], fontsize="small")
    boxes.set_xscale("log")
    boxes.set_xlabel("latency per call, µs (log scale); whiskers p1–p99")
    boxes.grid(True, axis="x", which="both", linewidth=0.3)
    boxes.set_title("by median")

    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py LATENCY.csv OUT.png")
    main(sys.argv[1], sys.argv[2])
