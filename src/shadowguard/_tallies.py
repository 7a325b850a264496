"""Exact in-process counts behind the metrics: checks per guard, violations per assumption."""

from __future__ import annotations

import itertools
import os
import threading

__all__ = ["check_counter", "check_counts", "count_violation", "violation_counts"]

_MAX_KEYS = 10_000
_violations: dict[tuple[str, str, str], int] = {}
_checks: dict[str, itertools.count[int]] = {}
_baseline: dict[str, int] = {}
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
    key = (guard, kind, assumption)
    with _lock:
        if key in _violations:
            _violations[key] += 1
        elif len(_violations) < _MAX_KEYS:
            _violations[key] = 1
        else:
            other = (guard, kind, "other")
            _violations[other] = _violations.get(other, 0) + 1


def check_counter(guard: str) -> itertools.count[int]:
    """The counter a guard advances (``next``) once per checked call: atomic, no lock."""
    with _lock:
        counter = _checks.get(guard)
        if counter is None:
            counter = _checks[guard] = itertools.count(1)
        return counter


def _value(counter: itertools.count[int]) -> int:
    text = repr(counter)  # "count(N)": N is the next value; one less were taken
    return int(text[6:-1]) - 1


def check_counts() -> dict[str, int]:
    """Checked calls per guard since start (or the last reset)."""
    with _lock:
        counts = {
            guard: _value(counter) - _baseline.get(guard, 0) for guard, counter in _checks.items()
        }
    return {guard: count for guard, count in counts.items() if count}


def violation_counts() -> dict[tuple[str, str, str], int]:
    """Violations per (guard, kind, assumption) since start (or the last reset)."""
    with _lock:
        return dict(_violations)


def internal_errors() -> int:
    """Faults of shadowguard itself, swallowed."""
    from shadowguard._faults import internal_errors_total

    return internal_errors_total()


def reset() -> None:
    """Zero every count (tests): checks restart from a baseline, guards keep their counters."""
    with _lock:
        _violations.clear()
        for guard, counter in _checks.items():
            _baseline[guard] = _value(counter)
