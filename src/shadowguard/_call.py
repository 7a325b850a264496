"""One guarded call as the assumptions see it: arguments bound by name, result, timing."""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Mapping
from typing import Any

from shadowguard._paths import MISSING

__all__ = ["Binder", "Call"]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class Binder:
    """Reads one parameter's value from ``(args, kwargs)`` without ``Signature.bind`` (slow)."""

    __slots__ = ("_slots", "names")

    def __init__(self, signature: inspect.Signature) -> None:
        slots: dict[str, tuple[int, int, Any]] = {}
        position = 0
        for param in signature.parameters.values():
            kind = param.kind
            pos = -1
            if kind in _POSITIONAL or kind is inspect.Parameter.VAR_POSITIONAL:
                pos = position
                position += 1
            default = MISSING if param.default is inspect.Parameter.empty else param.default
            slots[param.name] = (pos, int(kind), default)
        self._slots = slots
        self.names: tuple[str, ...] = tuple(slots)

    def slot(self, name: str) -> tuple[int, inspect._ParameterKind, Any] | None:
        """Where parameter ``name`` is passed: (position or -1, kind, default or ``MISSING``)."""
        found = self._slots.get(name)
        if found is None:
            return None
        pos, kind, default = found
        return pos, inspect._ParameterKind(kind), default

    def get(self, args: tuple[Any, ...], kwargs: Mapping[str, Any], name: str) -> Any:
        """The value bound to parameter ``name`` (its default when not passed)."""
        pos, kind, default = self._slots[name]
        if kind == inspect.Parameter.VAR_POSITIONAL:
            return args[pos:]
        if kind == inspect.Parameter.VAR_KEYWORD:
            return {k: v for k, v in kwargs.items() if k not in self._slots}
        if 0 <= pos < len(args):
            return args[pos]
        if kind != inspect.Parameter.POSITIONAL_ONLY and name in kwargs:
            return kwargs[name]
        return default


class Call:
    """What an :class:`~shadowguard.assume.Assumption` sees of one call.

    ``result`` is :data:`~shadowguard._paths.MISSING` until the function returned; ``exception``
    is set when it raised; ``elapsed_ns`` once it finished (only for guards that time calls);
    ``in_flight`` counts the calls of the same guard in flight when this one was counted, this
    one included (without a lock: two calls counted at the same instant may both see the other).
    """

    __slots__ = (
        "args",
        "binder",
        "checked",
        "elapsed_ns",
        "exception",
        "flight",
        "in_flight",
        "kwargs",
        "result",
        "started_ns",
        "violations",
    )

    def __init__(self, binder: Binder, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        self.binder = binder
        self.args = args
        self.kwargs = kwargs
        self.result: Any = MISSING
        self.exception: BaseException | None = None
        self.elapsed_ns: int | None = None
        self.started_ns = 0
        self.in_flight = 0
        self.flight: deque[None] | None = None
        """The guard's list of calls in flight this call was added to (taken out at its end)."""
        self.violations: list[Any] | None = None
        self.checked = True

    def argument(self, name: str) -> Any:
        """The value of parameter ``name``, or the return value for ``"return"``/``"result"``."""
        if name in ("return", "result"):
            return self.result
        return self.binder.get(self.args, self.kwargs, name)
