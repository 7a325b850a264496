"""Helpers for users' own tests: capture violations, fail on shadowguard's internal faults.

``with capture_violations() as violations:`` collects every :class:`~shadowguard.Violation`
reported in the block, so a test can assert on what production would have reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from shadowguard import _config, _faults, _report
from shadowguard._violation import Violation

__all__ = ["InternalError", "capture_violations", "configured", "strict_internal_errors"]


class InternalError(AssertionError):
    """A fault of shadowguard itself, raised instead of swallowed under strict mode."""


@contextlib.contextmanager
def capture_violations() -> Iterator[list[Violation]]:
    """Collect every violation reported inside the block (unthrottled, any thread)."""
    captured: list[Violation] = []
    listener = captured.append  # one bound method: removal is by identity
    _report.add_listener(listener)
    try:
        yield captured
    finally:
        _report.remove_listener(listener)


@contextlib.contextmanager
def strict_internal_errors() -> Iterator[list[tuple[str, BaseException]]]:
    """Record shadowguard's swallowed internal faults so a test can fail on them."""
    seen: list[tuple[str, BaseException]] = []

    def hook(site: str, exc: BaseException) -> None:
        seen.append((site, exc))

    previous = _faults.set_strict_hook(hook)
    try:
        yield seen
    finally:
        _faults.set_strict_hook(previous)


@contextlib.contextmanager
def configured(**settings: Any) -> Iterator[None]:
    """``shadowguard.configure(**settings)`` for the block, then the previous settings back."""
    saved = _config.snapshot()
    _config.configure(**settings)
    try:
        yield
    finally:
        _config.restore(saved)
