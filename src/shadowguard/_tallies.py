"""Exact in-process counts behind the metrics: checks per guard, violations per assumption."""

from __future__ import annotations

import itertools
import os
import threading

__all__ = [
    "check_counter",
    "check_counts",
    "count_violation",
    "counted",
    "violation_counter",
    "violation_counts",
]

_MAX_KEYS = 10_000
_violations: dict[tuple[str, str, str], itertools.count[int]] = {}
_checks: dict[str, itertools.count[int]] = {}
_baseline: dict[str, int] = {}
"""Check counts at the last :func:`reset`: guards keep their counters."""
epoch = 0
"""Advanced by :func:`reset`, which forgets the violation series: a counter taken from
:func:`violation_counter` in an earlier epoch counts nowhere."""
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child starts with a fresh lock: one that another thread of the parent held at
    fork time would never be released in the child, and its first report would hang."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def count_violation(guard: str, kind: str, assumption: str) -> None:
    """Add one violation (exact under threads; bounded number of series)."""
    counter = _violations.get((guard, kind, assumption))
    if counter is None:
        counter = violation_counter(guard, kind, assumption)
    next(counter)  # atomic: no lock on the hot path


def violation_counter(guard: str, kind: str, assumption: str) -> itertools.count[int]:
    """The counter of one violation series (``next`` adds one) for this :data:`epoch`; past the
    bound on series, the guard and kind's ``other`` one."""
    key = (guard, kind, assumption)
    with _lock:
        counter = _violations.get(key)
        if counter is None:
            if len(_violations) >= _MAX_KEYS:
                key = (guard, kind, "other")
                counter = _violations.get(key)
            if counter is None:
                counter = _violations[key] = itertools.count()
        return counter


def check_counter(guard: str) -> itertools.count[int]:
    """The counter a guard advances (``next``) once per checked call: atomic, no lock. It
    starts at 1 (one less than its next value were taken)."""
    with _lock:
        counter = _checks.get(guard)
        if counter is None:
            counter = _checks[guard] = itertools.count(1)
        return counter


def counted(counter: itertools.count[int]) -> int:
    """The next value of a counter: how many it gave, for one that started at 0. Counters
    count without a lock (``next`` is atomic), and this reads one without changing it."""
    text = repr(counter)  # "count(N)"
    return int(text[6:-1])


def check_counts() -> dict[str, int]:
    """Checked calls per guard since start (or the last reset)."""
    with _lock:
        counts = {
            guard: counted(counter) - 1 - _baseline.get(guard, 0)
            for guard, counter in _checks.items()
        }
    return {guard: count for guard, count in counts.items() if count}


def violation_counts() -> dict[tuple[str, str, str], int]:
    """Violations per (guard, kind, assumption) since start (or the last reset)."""
    with _lock:
        counts = {key: counted(counter) for key, counter in _violations.items()}
    return {key: count for key, count in counts.items() if count}


def internal_errors() -> int:
    """Faults of shadowguard itself, swallowed."""
    from shadowguard._faults import internal_errors_total

    return internal_errors_total()


def reset() -> None:
    """Zero every count (tests): checks restart from a baseline, guards keep their counters;
    violation series are forgotten (a new :data:`epoch`)."""
    global epoch
    with _lock:
        _violations.clear()
        epoch += 1
        for guard, counter in _checks.items():
            _baseline[guard] = counted(counter) - 1
