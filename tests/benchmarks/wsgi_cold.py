"""What the WSGI middleware costs per request with its caches warm and cold, against a
hand-written floor middleware measured in the same run.

A server's own work between requests evicts the middleware's code and data from the CPU
caches, so over the socket it costs more than the same instructions cost in a tight loop. Here
each request to the tiny app (bare, behind the floor, behind shadowguard) is timed alone: cold
right after a Flask hello request, warm right after another request to itself. The figure is
the median of single-request times, then the median over alternating rounds, so a neighbour
holding the CPU for a moment moves no figure.

    python tests/benchmarks/wsgi_cold.py                 # about 20 s
    python tests/benchmarks/wsgi_cold.py --lines         # and distinct cache lines (valgrind)

``--lines`` runs each variant under cachegrind with the caches flushed (a 2 MiB copy) before
and after each request to it: the last-level misses per request are then the distinct cache
lines it touches, code and data, a count that does not move with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _web_apps import tiny_wsgi, wsgi_app, wsgi_requests  # noqa: E402

VARIANTS = ("bare", "floor", "shadowguard")
_clock = time.perf_counter_ns


def one_request(app: Any) -> None:
    wsgi_requests(app, 1)


def timings(requests: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Per variant: (cold, warm) median ns per request, over ``rounds`` alternating rounds."""
    flask = wsgi_app("bare")
    apps = {variant: tiny_wsgi(variant) for variant in VARIANTS}
    cold: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    warm: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for round_ in range(rounds + 1):  # round 0 warms up and is not counted
        order = VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]
        for variant in order:
            app = apps[variant]
            times = []
            for _ in range(requests):
                one_request(flask)
                start = _clock()
                one_request(app)
                times.append(_clock() - start)
            alone = []
            for _ in range(requests):
                start = _clock()
                one_request(app)
                alone.append(_clock() - start)
            if round_:
                cold[variant].append(statistics.median(times))
                warm[variant].append(statistics.median(alone))
    return {
        variant: (statistics.median(cold[variant]), statistics.median(warm[variant]))
        for variant in VARIANTS
    }


def flushed_requests(variant: str, requests: int) -> None:
    """The loop cachegrind runs: a Flask request, a flush, a request to ``variant``, a flush."""
    flask = wsgi_app("bare")
    app = tiny_wsgi(variant)
    buffer = bytearray(2 << 20)
    for _ in range(requests):
        one_request(flask)
        bytes(buffer)
        one_request(app)
        bytes(buffer)


def _summary(path: Path) -> dict[str, int]:
    events: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            return dict(zip(events, map(int, line.split()[1:]), strict=True))
    raise RuntimeError(f"no summary in {path}")


def lines(variant: str, low: int, high: int) -> tuple[float, float]:
    """(instructions, distinct last-level lines) per request to ``variant``: two cachegrind runs
    that differ only in the number of requests, differenced."""
    counts = []
    with tempfile.TemporaryDirectory() as folder:
        for requests in (low, high):
            out = Path(folder) / f"cg.{requests}.out"
            subprocess.run(
                [
                    "valgrind",
                    "--tool=cachegrind",
                    "--cache-sim=yes",
                    "--LL=1048576,8,64",
                    f"--cachegrind-out-file={out}",
                    sys.executable,
                    __file__,
                    "--flushed",
                    variant,
                    "--requests",
                    str(requests),
                ],
                check=True,
                capture_output=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
                timeout=1200,
            )
            counts.append(_summary(out))
    small, large = counts
    per = {key: (large[key] - small[key]) / (high - low) for key in large}
    return per["Ir"], per["ILmr"] + per["DLmr"] + per["DLmw"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests timed per round")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds")
    parser.add_argument("--lines", action="store_true", help="count cache lines (valgrind)")
    parser.add_argument("--flushed", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flushed:
        flushed_requests(args.flushed, args.requests)
        return 0
    figures = timings(args.requests, args.rounds)
    bare_cold, bare_warm = figures["bare"]
    print("### The WSGI middleware alone, in front of an app doing next to nothing\n")
    print("| variant | cold ns/request | added | warm ns/request | added |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for variant in VARIANTS:
        cold, warm = figures[variant]
        added = "" if variant == "bare" else f"+{cold - bare_cold:,.0f}"
        added_warm = "" if variant == "bare" else f"+{warm - bare_warm:,.0f}"
        print(f"| {variant} | {cold:,.0f} | {added} | {warm:,.0f} | {added_warm} |")
    floor_cold, floor_warm = figures["floor"]
    sg_cold, sg_warm = figures["shadowguard"]
    print(
        f"\nshadowguard beyond the floor: +{sg_cold - floor_cold:,.0f} ns cold, "
        f"+{sg_warm - floor_warm:,.0f} ns warm ({args.rounds} rounds of {args.requests})."
    )
    if args.lines:
        if shutil.which("valgrind") is None:
            print("\n(valgrind is not installed: no line counts)")
            return 0
        low, high = 100, 400
        print("\n| variant | instructions/request | last-level misses/request (distinct lines) |")
        print("| --- | ---: | ---: |")
        base = lines("bare", low, high)
        print(f"| bare | {base[0]:,.0f} | {base[1]:,.0f} |")
        for variant in VARIANTS[1:]:
            count = lines(variant, low, high)
            print(
                f"| {variant} | {count[0]:,.0f} (+{count[0] - base[0]:,.0f}) "
                f"| {count[1]:,.0f} (+{count[1] - base[1]:,.0f}) |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
