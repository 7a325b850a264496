"""Fan-out of violations to every sink: tallies, capture listeners, request, spans, logs.

Each sink is isolated: a sink that raises is an internal fault (logged once, swallowed) and the
others still run. Logs are rate limited per fingerprint, with a bounded number of fingerprints.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from shadowguard import _log, _otel, _tallies
from shadowguard._context import RequestScope, current_request
from shadowguard._faults import internal_error
from shadowguard._shapes import mask_numbers
from shadowguard._violation import Violation

__all__ = ["RateLimiter", "add_listener", "emit", "remove_listener"]

Listener = Callable[[Violation], None]
_listeners: tuple[Listener, ...] = ()
_listeners_lock = threading.Lock()


def add_listener(listener: Listener) -> None:
    """Receive every violation, unthrottled (``shadowguard.testing`` uses it)."""
    global _listeners
    with _listeners_lock:
        _listeners = (*_listeners, listener)


def remove_listener(listener: Listener) -> None:
    """Stop receiving violations."""
    global _listeners
    with _listeners_lock:
        _listeners = tuple(item for item in _listeners if item is not listener)


class RateLimiter:
    """First occurrence of a fingerprint passes at once, then at most one per ``interval``.

    New fingerprints are themselves limited to ``max_new`` per ``interval``: beyond the
    ``max_keys`` remembered, an endless stream of distinct ones (a class made per request) would
    otherwise pass every time. Those held back are counted for :meth:`take_held`."""

    def __init__(self, interval: float = 60.0, max_keys: int = 1024, max_new: int = 256) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self.max_new = max_new
        self._state: OrderedDict[tuple[str, ...], list[float]] = OrderedDict()
        self._lock = threading.Lock()
        self._window_start = float("-inf")
        self._window_new = 0  # new fingerprints admitted in the current window
        self._window_held = 0  # new fingerprints held back in it
        self._held = 0  # held back in windows that ended, not yet taken
        self.clock: Callable[[], float] = time.monotonic

    def admit(self, key: tuple[str, ...]) -> int | None:
        """``None`` to hold this one back, else how many were held back since the last one."""
        now = self.clock()
        with self._lock:
            state = self._state.get(key)
            if state is None:
                if now - self._window_start >= self.interval:
                    self._held += self._window_held
                    self._window_start, self._window_new, self._window_held = now, 0, 0
                if self._window_new >= self.max_new:
                    self._window_held += 1
                    return None
                self._window_new += 1
                self._state[key] = [now, 0.0]
                while len(self._state) > self.max_keys:
                    self._state.popitem(last=False)
                return 0
            self._state.move_to_end(key)
            if now - state[0] >= self.interval:
                suppressed = int(state[1])
                state[0], state[1] = now, 0.0
                return suppressed
            state[1] += 1
            return None

    def take_held(self) -> int:
        """New fingerprints held back in windows that have ended, since the last call."""
        if not (self._held or self._window_held):
            return 0  # the common case, without the lock
        with self._lock:
            if self._window_held and self.clock() - self._window_start >= self.interval:
                self._held += self._window_held
                self._window_held = 0
            held, self._held = self._held, 0
        return held

    def reset(self) -> None:
        """Forget every fingerprint (tests)."""
        with self._lock:
            self._state.clear()
            self._window_start = float("-inf")
            self._window_new = self._window_held = self._held = 0


log_limiter = RateLimiter()


def _after_fork_in_child() -> None:
    """A forked child starts with fresh locks: one that another thread of the parent held at
    fork time would never be released in the child, and its first report would hang."""
    global _listeners_lock
    _listeners_lock = threading.Lock()
    log_limiter._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
_reporting = threading.local()
"""``active`` while this thread is inside the span and log sinks."""


_MASKED_MAX = 1024
_masked: dict[str, str] = {}
"""Observed shapes with their numbers masked, remembered (bounded): a flood repeats a few."""


def fingerprint(violation: Violation) -> tuple[str, str, str]:
    """Guard, assumption and observed with numbers masked: ``len=12001`` ~ ``len=9``."""
    observed = violation.observed
    masked = _masked.get(observed)
    if masked is None:
        if len(_masked) >= _MASKED_MAX:
            _masked.clear()
        masked = _masked[observed] = mask_numbers(observed)
    return (violation.guard, violation.assumption, masked)


class _Extra:
    """The request's attributes for events and logs, read on first need: a flood past the
    span's event cap and the log rate limit never needs them."""

    __slots__ = ("scope", "value")

    def __init__(self, scope: RequestScope) -> None:
        self.scope: RequestScope | None = scope
        self.value: dict[str, str] | None = None

    def __call__(self) -> dict[str, str] | None:
        scope = self.scope
        if scope is not None:
            self.scope = None
            try:
                self.value = scope.attributes()
            except Exception as exc:
                internal_error("report.request", exc)
        return self.value


def _no_extra() -> None:
    return None


def emit(
    guard_name: str,
    violations: Sequence[Violation],
    code: dict[str, Any],
    started_perf_ns: int | None = None,
) -> None:
    """Report ``violations`` of one call everywhere. Never raises."""
    for violation in violations:
        try:
            _tallies.count_violation(violation.guard, violation.kind, violation.assumption)
        except Exception as exc:  # pragma: no cover - a dict update
            internal_error("report.tally", exc)
    for listener in _listeners:
        for violation in violations:
            try:
                listener(violation)
            except Exception as exc:
                internal_error("report.listener", exc)
    scope = current_request.get()
    synced: Any = None  # the request's span, when its middleware writes the count at the end
    if scope is not None:
        try:
            scope.add(len(violations))
            if scope.syncs_count:
                synced = scope.span
        except Exception as exc:
            internal_error("report.request", exc)
    extra: _otel.Extra = _no_extra if scope is None else _Extra(scope)
    if getattr(_reporting, "active", False):
        # A guarded call made by the host's own telemetry pipeline while this thread reports
        # (a span processor, a log handler): counted above, not re-reported, or it would recurse.
        return
    _reporting.active = True
    try:
        _emit_spans_and_logs(guard_name, violations, code, started_perf_ns, extra, synced)
    finally:
        _reporting.active = False


def _emit_spans_and_logs(
    guard_name: str,
    violations: Sequence[Violation],
    code: dict[str, Any],
    started_perf_ns: int | None,
    extra: _otel.Extra,
    synced: Any,
) -> None:
    try:
        _otel.emit_spans(guard_name, violations, code, extra, started_perf_ns, synced)
    except Exception as exc:
        internal_error("report.span", exc)
    for violation in violations:
        try:
            suppressed = log_limiter.admit(fingerprint(violation))
            if suppressed is not None:
                _log.assumption_violated(
                    guard=violation.guard,
                    assumption=violation.assumption,
                    kind=violation.kind,
                    mode=violation.mode,
                    expected=violation.expected,
                    observed=violation.observed,
                    path=violation.path,
                    suppressed=suppressed,
                    extra=extra(),
                )
        except Exception as exc:
            internal_error("report.log", exc)
    held = log_limiter.take_held()
    if held:  # one line for a past minute's flood of distinct fingerprints
        _log.diagnostic("assumption_logs_held_back", count=held, seconds=log_limiter.interval)
