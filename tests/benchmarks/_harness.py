"""Timing helpers for the standalone benchmark scripts: alternate variants, repeat, keep medians.

The machine is shared and noisy, so absolute timings drift within a run. Every variant of a
group is therefore timed in turn, round after round (the order rotates each round), and a
ratio is the median of the per-round ratios against the baseline measured in the same round.
Time is the process's CPU time (:data:`CLOCK`): on a shared box, wall-clock batches also count
the moments another process held the CPU, which CPU time does not.
"""

from __future__ import annotations

import gc
import statistics
import time
import timeit
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CLOCK", "Case", "Result", "measure", "measure_loops", "paired_ratio", "table"]

CLOCK = time.process_time
"""Seconds of CPU time of this process."""


@dataclass
class Case:
    """One variant: a statement timed in a loop with ``namespace`` as its globals."""

    name: str
    stmt: str
    namespace: dict[str, Any]
    setup: str = "pass"


@dataclass
class Result:
    """Nanoseconds per call of one variant, one sample per round."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)


def _calibrate(timer: timeit.Timer, target_s: float) -> int:
    """Loops per batch so that one batch takes about ``target_s``.

    A few untimed loops first: the first call of a guard compiles its checks, and must not
    make a batch of one loop look long enough."""
    timer.timeit(3)
    number = 10
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= target_s / 5 or number >= 10_000_000:
            return max(10, int(number * target_s / max(elapsed, 1e-9)))
        number *= 10


def measure(cases: Sequence[Case], rounds: int = 9, target_s: float = 0.02) -> dict[str, Result]:
    """Time every case ``rounds`` times, alternating (rotating order), ``target_s`` per batch."""
    timers = {
        c.name: timeit.Timer(c.stmt, c.setup, timer=CLOCK, globals=c.namespace) for c in cases
    }
    numbers = {name: _calibrate(timer, target_s) for name, timer in timers.items()}
    return _alternate(
        [c.name for c in cases],
        lambda name: timers[name].timeit(numbers[name]) / numbers[name] * 1e9,
        rounds,
    )


def measure_loops(
    loops: dict[str, Callable[[int], float]], counts: dict[str, int], rounds: int = 9
) -> dict[str, Result]:
    """Like :func:`measure` for hand-written loops: ``loops[name](n)`` returns the seconds its
    ``n`` timed operations took (the loop may do untimed set-up around each one)."""
    for name, loop in loops.items():
        loop(max(1, counts[name] // 10))  # warm up: first calls compile, caches fill

    def sample(name: str) -> float:
        gc.disable()  # as timeit does: a collection lands in whichever batch it happens to
        try:
            return loops[name](counts[name]) / counts[name] * 1e9
        finally:
            gc.enable()

    return _alternate(list(loops), sample, rounds)


def _alternate(names: list[str], sample: Callable[[str], float], rounds: int) -> dict[str, Result]:
    results = {name: Result(name) for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            results[name].samples.append(sample(name))
    return results


def paired_ratio(results: dict[str, Result], name: str, baseline: str) -> float:
    """Median over rounds of ``name / baseline``, both timed in the same round."""
    a, b = results[name].samples, results[baseline].samples
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def fmt_ns(ns: float) -> str:
    """``1,234`` ns, or ``12.3 µs`` style for large values kept as ns with separators."""
    return f"{ns:,.0f}" if ns >= 100 else f"{ns:,.1f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: int = 1) -> str:
    """A markdown table; columns from index ``right`` on are right-aligned."""
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append(
        "| " + " | ".join("---" if i < right else "---:" for i in range(len(headers))) + " |"
    )
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def now() -> str:
    """The local date and time, for the report header."""
    return time.strftime("%Y-%m-%d %H:%M %Z")
