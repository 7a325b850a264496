"""Fan-out of violations to every sink: tallies, capture listeners, request, spans, logs.

Each sink is isolated: a sink that raises is an internal fault (logged once, swallowed) and the
others still run. Logs are rate limited per fingerprint, with a bounded number of fingerprints.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from threading import get_ident
from typing import Any

from shadowguard import _log, _otel, _tallies
from shadowguard._context import RequestScope, get_request
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


class _Fingerprint:
    """The rate limit state of one fingerprint: when it was last logged, and a counter of the
    ones held back since (``next`` is atomic: holding one back takes no lock)."""

    __slots__ = ("held", "last", "taken")

    def __init__(self, now: float) -> None:
        self.last = now
        self.held = itertools.count()
        self.taken = 0  # the counter's value when it was last logged


class RateLimiter:
    """First occurrence of a fingerprint passes at once, then at most one per ``interval``.

    New fingerprints are themselves limited to ``max_new`` per ``interval``: beyond the
    ``max_keys`` remembered, an endless stream of distinct ones (a class made per request) would
    otherwise pass every time. Those held back are counted for :meth:`take_held`.

    Holding a known fingerprint back (the flood) reads a dict and advances a counter, without
    the lock; the lock serialises what changes the state (admitting, remembering, forgetting)."""

    def __init__(self, interval: float = 60.0, max_keys: int = 1024, max_new: int = 256) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self.max_new = max_new
        self._state: dict[tuple[str, ...], _Fingerprint] = {}  # least recently logged first
        self._lock = threading.Lock()
        self._window_start = float("-inf")
        self._window_new = 0  # new fingerprints admitted in the current window
        self._window_held = 0  # new fingerprints held back in it
        self._held = 0  # held back in windows that ended, not yet taken
        self.clock: Callable[[], float] = time.monotonic

    def admit(self, key: tuple[str, ...]) -> int | None:
        """``None`` to hold this one back, else how many were held back since the last one."""
        now = self.clock()
        state = self._state.get(key)
        if state is not None and now - state.last < self.interval:
            next(state.held)
            return None
        with self._lock:
            state = self._state.get(key)
            if state is None:
                return self._admit_new(key, now)
            if now - state.last < self.interval:  # another thread admitted it meanwhile
                next(state.held)
                return None
            held = _tallies.counted(state.held)
            suppressed, state.taken, state.last = held - state.taken, held, now
            del self._state[key]  # to the end: the least recently logged are forgotten first
            self._state[key] = state
            return suppressed

    def _admit_new(self, key: tuple[str, ...], now: float) -> int | None:
        if now - self._window_start >= self.interval:
            self._held += self._window_held
            self._window_start, self._window_new, self._window_held = now, 0, 0
        if self._window_new >= self.max_new:
            self._window_held += 1
            return None
        self._window_new += 1
        self._state[key] = _Fingerprint(now)
        while len(self._state) > self.max_keys:
            del self._state[next(iter(self._state))]
        return 0

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


class _Prepared:
    """What reporting one violation needs, made once: guards reuse a violation that repeats."""

    __slots__ = ("epoch", "fingerprint", "tally", "violation")

    def __init__(self, violation: Violation) -> None:
        self.violation = violation
        self.epoch = _tallies.epoch
        self.tally = _tallies.violation_counter(
            violation.guard, violation.kind, violation.assumption
        )
        self.fingerprint = fingerprint(violation)


_PREPARED_MAX = 1024
_prepared: dict[int, _Prepared] = {}
"""Per violation (by ``id``, checked by identity), bounded: cleared when full."""


def _prepare(violation: Violation) -> _Prepared:
    prepared = _Prepared(violation)
    if len(_prepared) >= _PREPARED_MAX:
        _prepared.clear()
    _prepared[id(violation)] = prepared
    return prepared


def emit(
    guard_name: str,
    violations: Sequence[Violation],
    code: dict[str, Any],
    started_perf_ns: int | None = None,
) -> None:
    """Report ``violations`` of one call everywhere. Never raises.

    A flood (events capped on the span, logs held back) costs counter updates and a look at the
    current span: the request's attributes and the events' are only built for what is sent."""
    if len(violations) == 1 and not _listeners:
        saturated = _saturated
        hit = False
        try:
            if (
                saturated[0] is violations[0]
                and saturated[2] is _otel.current_context()
                and saturated[4].epoch == _tallies.epoch
            ):
                scope: Any = get_request()
                span = saturated[3]
                last = _otel._last_span
                hit = (
                    saturated[1] is scope
                    and last[0] is span
                    and span.is_recording()
                    and span is scope.span
                )
        except Exception as exc:
            internal_error("report.flood", exc)
        if hit:
            # A repeat of the saturated violation: the exact counts (metric tally, request,
            # span, held-back log), nothing built or looked up again; a log line when due.
            known = saturated[4]
            try:
                next(known.tally)
            except Exception as exc:
                internal_error("report.tally", exc)
            try:
                next(scope._tally)  # ``RequestScope.add(1)``, inline
            except Exception as exc:
                internal_error("report.request", exc)
            if _otel.sending and get_ident() in _otel.sending:
                return  # inside the host's telemetry: counted, not re-reported (see below)
            next(last[1])  # past the cap on the request's span: its middleware writes the count
            limiter = log_limiter  # ``_log_admitted`` of one, inline (held back: one call)
            try:
                suppressed = limiter.admit(known.fingerprint)
                if suppressed is not None:
                    _log_violation(known.violation, suppressed, scope)
                if limiter._held or limiter._window_held:
                    held = limiter.take_held()
                    if held:
                        _log_held(held)
            except Exception as exc:
                internal_error("report.log", exc)
            return
    prepared: list[_Prepared] = []
    for violation in violations:
        try:
            known = _prepared.get(id(violation))
            if known is None or known.violation is not violation or known.epoch != _tallies.epoch:
                known = _prepare(violation)
            next(known.tally)
            prepared.append(known)
        except Exception as exc:
            internal_error("report.tally", exc)
    if _listeners:
        _notify(violations)
    scope = get_request()
    synced: Any = None  # the request's span, when its middleware writes the count at the end
    if scope is not None:
        try:
            scope.add(len(violations))
            if scope.syncs_count:
                synced = scope.span
        except Exception as exc:
            internal_error("report.request", exc)
    if _otel.sending and get_ident() in _otel.sending:
        # A guarded call made by the host's own telemetry pipeline while this thread reports
        # (a span processor, a log handler): counted above, not re-reported, or it would recurse.
        return
    try:
        _otel.emit_spans(guard_name, violations, code, scope, started_perf_ns, synced)
    except Exception as exc:
        internal_error("report.span", exc)
    _log_admitted(prepared, scope)
    if synced is not None and len(prepared) == 1 and len(violations) == 1:
        try:
            _remember_saturated(prepared[0], scope, synced)
        except Exception as exc:
            internal_error("report.flood", exc)


_saturated: tuple[Any, Any, Any, Any, Any] = (None, None, None, None, None)
"""A flood's short-cut: (violation, request scope, OTel context, span, its :class:`_Prepared`)
of the last violation that found the request's span past its event cap. The same violation
again, in the same context and request, on the same span still recording, only counts."""


def _remember_saturated(known: _Prepared, scope: Any, synced: Any) -> None:
    """After a violation reported the slow way: remember it when its span is saturated (past
    the event cap, its count written by the request's middleware)."""
    global _saturated
    last_context, last_span = _otel._last_context, _otel._last_span
    if (
        last_span[0] is synced
        and last_context[1] is synced
        and last_context[0] is _otel.current_context()
        and _tallies.counted(last_span[1]) > _otel.MAX_EVENTS_PER_SPAN
    ):
        _saturated = (known.violation, scope, last_context[0], synced, known)


def _log_held(held: int) -> None:
    """One line for a past minute's flood of distinct fingerprints."""
    mark = _otel.mark_sending()
    try:
        _log.diagnostic("assumption_logs_held_back", count=held, seconds=log_limiter.interval)
    finally:
        _otel.unmark_sending(mark)


def _notify(violations: Sequence[Violation]) -> None:
    for listener in _listeners:
        for violation in violations:
            try:
                listener(violation)
            except Exception as exc:
                internal_error("report.listener", exc)


def _log_admitted(prepared: Sequence[_Prepared], scope: Any) -> None:
    """Log each violation the rate limiter lets through, then the held-back summaries due."""
    for known in prepared:
        try:
            suppressed = log_limiter.admit(known.fingerprint)
            if suppressed is not None:
                _log_violation(known.violation, suppressed, scope)
        except Exception as exc:
            internal_error("report.log", exc)
    held = log_limiter.take_held()
    if held:
        _log_held(held)


def _log_violation(violation: Violation, suppressed: int, scope: RequestScope | None) -> None:
    extra = _otel.request_attributes(scope)
    mark = _otel.mark_sending()
    try:
        _log.assumption_violated(
            guard=violation.guard,
            assumption=violation.assumption,
            kind=violation.kind,
            mode=violation.mode,
            expected=violation.expected,
            observed=violation.observed,
            path=violation.path,
            suppressed=suppressed,
            extra=extra,
        )
    finally:
        _otel.unmark_sending(mark)
