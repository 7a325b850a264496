"""The assumption catalogue: what ``@guarded(...)`` takes.

Each function returns an :class:`Assumption`. Paths use the path language
``name ( .field | [int] | ['key'] | [*] )*`` where the first segment is a parameter name or
``return``. Mistakes (bad syntax, a negative budget) are raised when the guard is decorated,
with a message naming the guard.

To write a kind of your own, subclass :class:`Assumption` (see its docstring).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shadowguard._assumptions import (
    Assumption,
    GuardInfo,
    Latency,
    MaxConcurrency,
    Monotonic,
    NotNone,
    Ordered,
    Predicate,
    Present,
    RaisesOnly,
    Size,
)
from shadowguard._call import Call

__all__ = [
    "Assumption",
    "Call",
    "GuardInfo",
    "latency",
    "max_concurrency",
    "monotonic",
    "not_none",
    "ordered",
    "present",
    "raises_only",
    "size",
    "that",
]


def present(path: str) -> Assumption:
    """The key or attribute at ``path`` exists (``None`` is allowed; *missing* is not)."""
    return Present(path)


def not_none(path: str) -> Assumption:
    """The key or attribute at ``path`` exists and is not ``None``."""
    return NotNone(path)


def ordered(
    path: str, key: str | Callable[[Any], Any] | None = None, *, descending: bool = False
) -> Assumption:
    """The sequence at ``path`` is sorted (non-decreasing) by ``key`` (a field name or callable)."""
    return Ordered(path, key, descending)


def monotonic(path: str, per: str | None = None, *, max_keys: int = 10_000) -> Assumption:
    """Across calls, the value at ``path`` never goes back (per value of ``per``, if given).

    The last value of at most ``max_keys`` keys is remembered (least recently used evicted).
    """
    return Monotonic(path, per, max_keys)


def latency(ms: float) -> Assumption:
    """The call finishes within ``ms`` milliseconds (generators: the whole iteration)."""
    return Latency(ms)


def max_concurrency(limit: int) -> Assumption:
    """Never more than ``limit`` calls of this function in flight at once."""
    return MaxConcurrency(limit)


def size(path: str, max: int | None = None, min: int | None = None) -> Assumption:
    """``min <= len(value at path) <= max``."""
    return Size(path, max=max, min=min)


def raises_only(*types: type[BaseException]) -> Assumption:
    """The function raises no ``Exception`` other than these types."""
    return RaisesOnly(*types)


def that(predicate: Callable[..., Any], description: str | None = None) -> Assumption:
    """``predicate`` returns something truthy; its parameters are bound by name to the
    function's parameters, and ``result`` to the return value."""
    return Predicate(predicate, description)
