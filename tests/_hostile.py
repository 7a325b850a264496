"""Hostile values shared by the tests: user objects whose methods raise, and faults injected
into shadowguard itself."""

from __future__ import annotations

from typing import Any

import pytest


class Unorderable:
    """Compares, hashes and prints by raising."""

    def __lt__(self, other: object) -> bool:
        raise TypeError("no order")

    def __eq__(self, other: object) -> bool:
        raise TypeError("no equality")

    def __hash__(self) -> int:
        raise TypeError("no hash")

    def __repr__(self) -> str:
        raise TypeError("no repr")


REQUEST_STATE_FAULTS = ("mode", "clock")
"""Where :func:`break_request_state` can make a request's state fail."""


def break_request_state(guard: Any, broken: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every request state of ``guard`` (an ``HttpGuard``) raise as it is made: its mode
    lookup (``"mode"``) or the clock that times the request (``"clock"``)."""
    from shadowguard import _http

    def fail(*args: Any) -> Any:
        raise RuntimeError("injected")

    if broken == "mode":
        monkeypatch.setattr(guard, "_mode_generation", -2)
        monkeypatch.setattr(guard, "mode", fail)
    else:
        monkeypatch.setattr(_http, "_perf_ns", fail)
