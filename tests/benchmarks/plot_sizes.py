"""Plot the cost of checking ``total(items: list[int])`` against the size of the list.

    python tests/benchmarks/plot_sizes.py                     # writes docs/cost-vs-size.png
    python tests/benchmarks/plot_sizes.py --out /tmp/sizes.png --rounds 3

shadowguard, typeguard's ``@typechecked``, beartype and pydantic's ``validate_call`` (with
``validate_return``), 10 to 100,000 items, timed alternately (CPU time, median of rounds). Needs
matplotlib (the ``bench`` dependency group); prints the figures as a markdown table too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import Case, fmt_ns, measure, table  # noqa: E402
from _workloads import sized_variants  # noqa: E402

SIZES = (10, 100, 1_000, 10_000, 100_000)
STYLE = {
    "shadowguard": ("#1b7837", "o"),
    "typeguard @typechecked": ("#762a83", "s"),
    "beartype": ("#e08214", "^"),
    "pydantic validate_call": ("#2166ac", "D"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(HERE.parent.parent / "docs" / "cost-vs-size.png"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    variants = {name: func for name, func in sized_variants().items() if func is not None}
    lists = {size: list(range(size)) for size in SIZES}
    cases = [
        Case(f"{name}|{size}", "f(items)", {"f": func, "items": lists[size]})
        for name, func in variants.items()
        for size in SIZES
    ]
    results = measure(cases, args.rounds, args.batch_ms / 1000)
    figures = {name: [results[f"{name}|{size}"].median for size in SIZES] for name in variants}

    rows = [[name, *(fmt_ns(ns) for ns in values)] for name, values in figures.items()]
    print(table(["ns/call", *(f"{size:,} items" for size in SIZES)], rows))

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name, values in figures.items():
        color, marker = STYLE.get(name, ("gray", "x"))
        ax.plot(SIZES, values, label=name, color=color, marker=marker, linewidth=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("items in the list[int] argument")
    ax.set_ylabel("time per call (ns, log scale)")
    ax.set_title("Cost of checking total(items: list[int]) by list size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.text(
        0.01,
        0.01,
        "Median CPU time per call. typeguard checks the first item, beartype one random item,\n"
        "shadowguard all of 32 items or fewer, else the first, the last and one random item;"
        " pydantic validates (and copies) every item.",
        ha="left",
        fontsize=7,
        color="#555555",
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
