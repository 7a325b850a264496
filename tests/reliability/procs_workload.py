"""Module-level workloads for the process-model tests: guarded functions that pickle by reference
and run in ``multiprocessing`` children (fork, spawn, forkserver)."""

from __future__ import annotations

import os
from typing import Any

from shadowguard import _tallies, assume, guarded
from shadowguard.testing import capture_violations


@guarded(assume.not_none("user.email"), assume.max_concurrency(1), name="procs.notify")
def notify(user: dict[str, Any]) -> str:
    """Breaks ``not_none(user.email)`` for users without an email."""
    return f"sent to {user.get('id')}"


def in_child(users: list[dict[str, Any]]) -> dict[str, Any]:
    """Call the guard in this (child) process; what it returned and reported there."""
    with capture_violations() as violations:
        results = [notify(user) for user in users]
    return {
        "pid": os.getpid(),
        "results": results,
        "violations": [(v.guard, v.assumption, v.observed) for v in violations],
        "tallied": _tallies.violation_counts().get(
            ("procs.notify", "nullability", "not_none(user.email)"), 0
        ),
        "in_flight": notify.__shadowguard__.in_flight,  # type: ignore[attr-defined]
    }


def call_guard(user: dict[str, Any]) -> str:
    """``notify`` itself, as a pool task (the guarded function travels by reference)."""
    return notify(user)
