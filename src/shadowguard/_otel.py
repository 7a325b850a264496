"""The OpenTelemetry sink: span events (on the current span or an own one) and metrics.

Metrics are observable counters fed from in-process tallies, so counting a violation costs a
dict update, not an OTel call. Only the OpenTelemetry *API* is imported: the host chooses the SDK.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from threading import get_ident
from typing import Any

from opentelemetry import context, metrics, trace
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

from shadowguard import _tallies
from shadowguard._config import add_listener, settings
from shadowguard._context import RequestScope
from shadowguard._faults import internal_error
from shadowguard._violation import Violation

__all__ = ["MAX_EVENTS_PER_SPAN", "emit_spans", "ensure_instruments", "sending"]

MAX_EVENTS_PER_SPAN = 32
EVENT_NAME = "shadowguard.violation"
COUNT_ATTRIBUTE = "shadowguard.violations"
_MAX_TRACKED_SPANS = 4096

_span_counts: OrderedDict[tuple[int, int], itertools.count[int]] = OrderedDict()
_lock = threading.Lock()
_tracer: tuple[Any, Any] | None = None
_instrumented: list[Any] = []
VERSION = "0.1.0"


def _after_fork_in_child() -> None:
    """A forked child starts with a fresh lock (another thread may have held it at fork)."""
    global _lock
    _lock = threading.Lock()
    sending.clear()  # the forking thread may have been sending; it is not, in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _get_tracer() -> Any:
    global _tracer
    provider = settings.tracer_provider
    cached = _tracer
    if cached is not None and cached[0] is provider:
        return cached[1]
    if provider is None:
        tracer = trace.get_tracer("shadowguard", VERSION)
    else:
        tracer = provider.get_tracer("shadowguard", VERSION)
    _tracer = (provider, tracer)
    return tracer


def event_attributes(
    violation: Violation, code: dict[str, Any], extra: dict[str, str] | None
) -> dict[str, Any]:
    """The contract's attributes of one ``shadowguard.violation`` event."""
    attributes: dict[str, Any] = {
        "shadowguard.guard": violation.guard,
        "shadowguard.assumption": violation.assumption,
        "shadowguard.kind": violation.kind,
        "shadowguard.mode": violation.mode,
        "shadowguard.expected": violation.expected,
        "shadowguard.observed": violation.observed,
    }
    if violation.path is not None:
        attributes["shadowguard.path"] = violation.path
    attributes.update(code)
    if violation.value is not None:
        attributes["shadowguard.value"] = violation.value
    if extra:
        attributes.update(extra)
    return attributes


_ATTRIBUTES_MAX = 256
_attributes: dict[int, tuple[Violation, dict[str, Any], dict[str, Any]]] = {}
"""Event attributes per violation, remembered (bounded): guards reuse an immutable violation
that repeats, so its attributes are built once; each event still gets its own copy."""


def _attributes_of(
    violation: Violation, code: dict[str, Any], extra: dict[str, str] | None
) -> dict[str, Any]:
    known = _attributes.get(id(violation))
    if known is not None and known[0] is violation and known[1] is code:
        base = known[2]
    else:
        base = event_attributes(violation, code, None)
        if len(_attributes) >= _ATTRIBUTES_MAX:
            _attributes.clear()
        _attributes[id(violation)] = (violation, code, base)
    return {**base, **extra} if extra else dict(base)


def request_attributes(scope: RequestScope | None) -> dict[str, str] | None:
    """The request's attributes for events and logs (``http.route``...), if one is served."""
    if scope is None:
        return None
    try:
        return scope.attributes()
    except Exception as exc:
        internal_error("report.request", exc)
        return None


def _context_reader() -> Callable[[], Context]:
    """``opentelemetry.context.get_current``, or, with OpenTelemetry's default runtime context,
    its context variable's ``get``: the same value, two Python calls fewer (per request, and
    per violation of a flood)."""
    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if type(runtime) is ContextVarsRuntimeContext and isinstance(variable, ContextVar):
        return variable.get  # (a runtime configured by OTEL_PYTHON_CONTEXT is read the API's way)
    return context.get_current


current_context = _context_reader()
"""The current OpenTelemetry context (see ``_context_reader``)."""


sending: set[int] = set()
"""Threads now inside the host's telemetry (adding events, starting spans, logging). A guarded
call made there, by a span processor or a log handler, is counted but not reported again, or
it would recurse; only sending marks a thread, so a flood that sends nothing never does."""


def mark_sending() -> int | None:
    """Mark this thread as sending (see :data:`sending`); ``None`` when it already was, else
    the mark for :func:`unmark_sending`."""
    ident = get_ident()
    if ident in sending:
        return None
    sending.add(ident)
    return ident


def unmark_sending(mark: int | None) -> None:
    if mark is not None:
        sending.discard(mark)


_last_context: tuple[Any, Any] = (None, None)
"""The last OTel context seen and its current span: a flood within one skips the lookup."""


def _current_span(current: Any) -> Any:
    """The span of the OTel context ``current`` (remembered for the next look)."""
    global _last_context
    span = trace.get_current_span(current)
    _last_context = (current, span)
    return span


_last_span: tuple[Any, itertools.count[int]] = (None, itertools.count())
"""The last span counted and its counter: a flood on one span skips the key and the lock."""


def _span_counter(span: Any) -> itertools.count[int]:
    """The counter of the violations reported on ``span`` (``next`` gives how many came
    before: atomic, so that exactly the first 32 get events, whatever the threads)."""
    global _last_span
    last = _last_span
    if last[0] is span:
        return last[1]
    span_context = span.get_span_context()
    key = (span_context.trace_id, span_context.span_id)
    with _lock:
        counter = _span_counts.get(key)
        if counter is None:
            counter = _span_counts[key] = itertools.count()
            if len(_span_counts) > _MAX_TRACKED_SPANS:
                _span_counts.popitem(last=False)
        else:
            _span_counts.move_to_end(key)
    _last_span = (span, counter)
    return counter


def add_events(
    span: Any,
    violations: Sequence[Violation],
    code: dict[str, Any],
    scope: RequestScope | None = None,
    synced: Any = None,
) -> None:
    """Add events to ``span`` (at most 32 per span; the rest only count) and update its count.

    Past the cap a violation costs a count: ``synced`` is the span whose owner (the request's
    middleware) writes the final count itself, so nothing is written for it then."""
    last = _last_span
    counter = last[1] if last[0] is span else _span_counter(span)
    if len(violations) == 1:
        before = next(counter)
        if before >= MAX_EVENTS_PER_SPAN and span is synced:
            return  # a flood on the request's span: counted, nothing to write
        room, total = (1 if before < MAX_EVENTS_PER_SPAN else 0), before + 1
    else:
        taken = [next(counter) for _ in violations]
        room, total = sum(1 for n in taken if n < MAX_EVENTS_PER_SPAN), max(taken) + 1
    mark = mark_sending()
    try:
        if room:
            extra = request_attributes(scope)
            for violation in violations[:room]:
                span.add_event(EVENT_NAME, attributes=_attributes_of(violation, code, extra))
            span.set_attribute(COUNT_ATTRIBUTE, total)
        elif span is not synced:
            span.set_attribute(COUNT_ATTRIBUTE, total)
    finally:
        unmark_sending(mark)


def emit_spans(
    guard_name: str,
    violations: Sequence[Violation],
    code: dict[str, Any],
    scope: RequestScope | None = None,
    started_perf_ns: int | None = None,
    synced: Any = None,
) -> None:
    """Put the events on the current recording span, else on an own span covering the call."""
    now_context = current_context()
    last = _last_context
    # contexts are immutable: the same one as last time has the same span
    current = last[1] if last[0] is now_context else _current_span(now_context)
    if current.is_recording():
        add_events(current, violations, code, scope, synced)
        return
    if current.get_span_context().is_valid and not current.get_span_context().trace_flags.sampled:
        return  # the trace was sampled out: the host asked for no spans here; metrics still count
    now = time.time_ns()
    start = now
    if started_perf_ns:
        start = now - max(0, time.perf_counter_ns() - started_perf_ns)
    mark = mark_sending()
    try:
        span = _get_tracer().start_span(f"shadowguard {guard_name}", start_time=start)
        try:
            if span.is_recording():
                add_events(span, violations, code, scope)
        finally:
            span.end(end_time=now)
    finally:
        unmark_sending(mark)


# -- metrics ------------------------------------------------------------------------------------


def _observe_violations(options: Any) -> Iterable[Any]:
    try:
        return [
            metrics.Observation(
                count,
                {"shadowguard.guard": g, "shadowguard.kind": k, "shadowguard.assumption": a},
            )
            for (g, k, a), count in _tallies.violation_counts().items()
        ]
    except Exception as exc:  # the SDK would log a traceback at every collection instead
        internal_error("otel.metrics", exc)
        return []


def _observe_checks(options: Any) -> Iterable[Any]:
    try:
        return [
            metrics.Observation(count, {"shadowguard.guard": guard})
            for guard, count in _tallies.check_counts().items()
        ]
    except Exception as exc:
        internal_error("otel.metrics", exc)
        return []


def _observe_dropped(options: Any) -> Iterable[Any]:
    try:
        return [metrics.Observation(_tallies.internal_errors())]
    except Exception as exc:
        internal_error("otel.metrics", exc)
        return []


def ensure_instruments() -> None:
    """Create the observable counters once per meter provider (global or configured)."""
    provider = settings.meter_provider
    with _lock:
        if any(p is provider for p in _instrumented):
            return
        _instrumented.append(provider)
    meter = (
        metrics.get_meter("shadowguard", VERSION)
        if provider is None
        else provider.get_meter("shadowguard", VERSION)
    )
    meter.create_observable_counter(
        "shadowguard.violations",
        callbacks=[_observe_violations],
        unit="{violation}",
        description="Assumption violations observed, by guard, kind and assumption.",
    )
    meter.create_observable_counter(
        "shadowguard.checks",
        callbacks=[_observe_checks],
        unit="{call}",
        description="Calls whose data was checked, by guard.",
    )
    meter.create_observable_counter(
        "shadowguard.internal_errors",
        callbacks=[_observe_dropped],
        unit="{error}",
        description="Faults of shadowguard itself, swallowed so the host never sees them.",
    )


def _on_settings_changed(_settings: Any) -> None:
    ensure_instruments()  # the counters exist for the global provider and for each configured one


add_listener(_on_settings_changed)


def reset() -> None:
    """Forget span counts and instrumented providers (tests)."""
    global _tracer, _last_context, _last_span
    _last_context = (None, None)
    _last_span = (None, itertools.count())
    _attributes.clear()
    with _lock:
        _span_counts.clear()
        _instrumented.clear()
    _tracer = None
