"""Telemetry exactly as the contract's section 3 says: span events, span counts, metrics, logs."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Generator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shadowguard import assume, configure, guarded
from shadowguard._context import RequestScope, current_request
from shadowguard._otel import MAX_EVENTS_PER_SPAN
from shadowguard._report import RateLimiter, fingerprint, log_limiter
from shadowguard._shapes import MAX_VALUE
from shadowguard.testing import capture_violations

CANARY = "CANARY-91c2-never-exported"


@guarded(assume.not_none("user.email"), name="users.notify")
def notify(user: dict[str, Any]) -> str:
    """A guard that lives at a known place in this file."""
    return "sent"


NOTIFY_LINE = inspect.getsourcelines(notify.__wrapped__)[1]


def _sizes(rows: list[int]) -> int:
    return len(rows)


sizes = guarded(assume.size("rows", max=10), name="batch.size")(_sizes)


# -- span events --------------------------------------------------------------------------------


def test_event_attributes_are_exactly_the_contract(otel: Any) -> None:
    """The event carries every documented attribute and nothing else (value capture off)."""
    with otel.tracer.start_as_current_span("request"):
        assert notify({"email": None}) == "sent"
    (event,) = otel.events()
    assert event == {
        "shadowguard.guard": "users.notify",
        "shadowguard.assumption": "not_none(user.email)",
        "shadowguard.kind": "nullability",
        "shadowguard.mode": "observe",
        "shadowguard.expected": "not None",
        "shadowguard.observed": "None",
        "shadowguard.path": "user.email",
        "code.function.name": "notify",
        "code.file.path": __file__,
        "code.line.number": NOTIFY_LINE,
    }


def test_event_name_and_enforce_mode_attribute(otel: Any) -> None:
    """The event is ``shadowguard.violation``; in enforce mode it says ``enforce``."""
    configure(mode="enforce")
    with otel.tracer.start_as_current_span("request"), pytest.raises(AssertionError):
        notify({"email": None})
    (span,) = otel.spans()
    assert [e.name for e in span.events] == ["shadowguard.violation"]
    assert span.events[0].attributes["shadowguard.mode"] == "enforce"


def test_assumption_without_path_has_no_path_attribute(otel: Any) -> None:
    """``shadowguard.path`` is only present where the assumption has a path."""

    @guarded(assume.raises_only(KeyError), name="no.path")
    def f() -> None:
        raise ValueError("x")

    with otel.tracer.start_as_current_span("request"), pytest.raises(ValueError):
        f()
    (event,) = otel.events()
    assert "shadowguard.path" not in event
    assert event["shadowguard.observed"] == "ValueError"
    assert event["shadowguard.expected"] == "KeyError"


def test_event_goes_on_the_current_recording_span(otel: Any) -> None:
    """With a recording span current, the event and count go on it and no span is added."""
    with otel.tracer.start_as_current_span("handler") as span:
        notify({"email": None})
        notify({})
    (finished,) = otel.spans()
    assert finished.context.span_id == span.get_span_context().span_id
    assert [e.attributes["shadowguard.observed"] for e in finished.events] == ["None", "missing"]
    assert finished.attributes["shadowguard.violations"] == 2


def test_own_span_when_nothing_records(otel: Any) -> None:
    """Without a current span the event goes on a span ``shadowguard <guard>`` of its own."""
    notify({"email": None})
    (span,) = otel.spans()
    assert span.name == "shadowguard users.notify"
    assert span.attributes["shadowguard.violations"] == 1
    assert [e.name for e in span.events] == ["shadowguard.violation"]
    assert span.instrumentation_scope.name == "shadowguard"


_COVER_CASES = {
    "argument": assume.not_none("x"),
    "return": assume.not_none("return"),
    "predicate-result": assume.that(lambda result: result, "truthy result"),
    "latency": assume.latency(ms=0.001),
    "exception": assume.raises_only(KeyError),
}


@pytest.mark.parametrize("where", sorted(_COVER_CASES))
def test_own_span_covers_the_call(otel: Any, where: str) -> None:
    """The own span starts before the function body and ends after it, whatever broke."""
    marks: list[int] = []

    @guarded(_COVER_CASES[where], name=f"cover.{where}")
    def f(x: object) -> object:
        marks.append(time.time_ns())
        time.sleep(0.002)
        marks.append(time.time_ns())
        if where == "exception":
            raise ValueError("x")
        return None if where in ("return", "predicate-result") else 1

    with contextlib.suppress(ValueError):
        f(None if where == "argument" else 1)
    spans = otel.spans()
    assert [s.name for s in spans] == [f"shadowguard cover.{where}"]
    (span,) = spans
    assert span.start_time <= marks[0]
    assert span.end_time >= marks[1]


@pytest.mark.parametrize("kind", ["sync", "async", "generator"])
def test_own_span_for_a_return_type_violation_covers_the_call(otel: Any, kind: str) -> None:
    """A bare guard's return-type violation is on a span covering the whole call."""
    marks: list[int] = []

    def body() -> None:
        marks.append(time.time_ns())
        time.sleep(0.002)
        marks.append(time.time_ns())

    @guarded(name="cover.rtype")
    def sync() -> int:
        body()
        return "x"  # type: ignore[return-value]

    @guarded(name="cover.rtype")
    async def coroutine() -> int:
        body()
        return "x"  # type: ignore[return-value]

    @guarded(name="cover.rtype")
    def generator() -> Generator[int, None, int]:
        yield 1
        body()
        return "x"  # type: ignore[return-value]

    if kind == "sync":
        sync()
    elif kind == "async":
        asyncio.run(coroutine())
    else:
        list(generator())
    (span,) = otel.spans()
    assert span.start_time <= marks[0]
    assert span.end_time >= marks[1]


def test_own_span_is_a_child_of_nothing_and_not_left_current(otel: Any) -> None:
    """The own span ends with the report; the current span afterwards is unchanged."""
    before = trace.get_current_span()
    notify({"email": None})
    assert trace.get_current_span() is before
    (span,) = otel.spans()
    assert span.end_time is not None


def test_no_span_when_the_trace_is_sampled_out(otel: Any) -> None:
    """A current non-recording, unsampled span: no own span, but metrics still count."""
    context = SpanContext(
        trace_id=0x1234, span_id=0x5678, is_remote=False, trace_flags=TraceFlags(0)
    )
    with trace.use_span(NonRecordingSpan(context)):
        notify({"email": None})
    assert otel.spans() == []
    assert otel.metric("shadowguard.violations") == {
        (
            ("shadowguard.assumption", "not_none(user.email)"),
            ("shadowguard.guard", "users.notify"),
            ("shadowguard.kind", "nullability"),
        ): 1
    }


def test_always_off_sampler_gives_no_spans_and_no_errors() -> None:
    """A tracer provider that samples nothing: no spans, no internal errors."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    configure(tracer_provider=provider)
    try:
        with capture_violations() as violations:
            notify({"email": None})
        assert len(violations) == 1
        assert exporter.get_finished_spans() == ()
    finally:
        configure(tracer_provider=None)
        provider.shutdown()


def test_api_only_without_an_sdk_is_silent() -> None:
    """With no tracer or meter provider configured (the API's no-op), reporting just works."""
    configure(tracer_provider=None, meter_provider=None)
    with capture_violations() as violations:
        assert notify({"email": None}) == "sent"
    assert len(violations) == 1


def test_span_event_cap_of_32_while_the_count_goes_on(otel: Any) -> None:
    """At most 32 events per span; ``shadowguard.violations`` counts all of them."""
    with otel.tracer.start_as_current_span("flood"):
        for _ in range(50):
            notify({"email": None})
    (span,) = otel.spans()
    assert MAX_EVENTS_PER_SPAN == 32
    assert len(span.events) == 32
    assert span.attributes["shadowguard.violations"] == 50


def test_cap_applies_to_one_call_with_many_violations(otel: Any) -> None:
    """One call breaking more assumptions than the cap still adds at most 32 events."""
    assumptions = [assume.that(lambda x: False, f"rule {i}") for i in range(40)]

    @guarded(*assumptions, name="many")
    def f(x: int) -> None:
        return None

    with otel.tracer.start_as_current_span("one"):
        f(1)
    (span,) = otel.spans()
    assert len(span.events) == 32
    assert span.attributes["shadowguard.violations"] == 40


def test_separate_spans_have_separate_counts(otel: Any) -> None:
    """Each span counts only its own violations."""
    for _ in range(2):
        with otel.tracer.start_as_current_span("request"):
            notify({"email": None})
    assert [s.attributes["shadowguard.violations"] for s in otel.spans()] == [1, 1]


def test_request_scope_adds_route_attributes_and_counts(otel: Any) -> None:
    """While a request is served, events carry its route and the request counts violations."""
    scope = RequestScope(method="GET", route="/users/{id}", path="/users/7")
    token = current_request.set(scope)
    try:
        with otel.tracer.start_as_current_span("GET /users/{id}"):
            notify({"email": None})
            notify({})
    finally:
        current_request.reset(token)
    events = otel.events()
    assert [(e["http.route"], e["http.request.method"]) for e in events] == [
        ("/users/{id}", "GET"),
        ("/users/{id}", "GET"),
    ]
    assert all("url.path" not in e for e in events)
    assert scope.violations == 2


def test_request_scope_without_route_uses_the_path(otel: Any) -> None:
    """Without a route template the event carries ``url.path``."""
    token = current_request.set(RequestScope(path="/raw"))
    try:
        with otel.tracer.start_as_current_span("request"):
            notify({"email": None})
    finally:
        current_request.reset(token)
    (event,) = otel.events()
    assert event["url.path"] == "/raw"
    assert "http.route" not in event


# -- metrics ------------------------------------------------------------------------------------


def test_violation_metric_by_guard_kind_and_assumption(otel: Any) -> None:
    """``shadowguard.violations`` counts exactly, per guard, kind and assumption."""
    for _ in range(3):
        notify({"email": None})
    sizes(list(range(11)))
    assert otel.metric("shadowguard.violations") == {
        (
            ("shadowguard.assumption", "not_none(user.email)"),
            ("shadowguard.guard", "users.notify"),
            ("shadowguard.kind", "nullability"),
        ): 3,
        (
            ("shadowguard.assumption", "size(rows, max=10)"),
            ("shadowguard.guard", "batch.size"),
            ("shadowguard.kind", "volume"),
        ): 1,
    }


def test_checks_metric_counts_checked_calls(otel: Any) -> None:
    """``shadowguard.checks`` counts calls whose data was checked, per guard."""
    for _ in range(4):
        notify({"email": "a@b"})
    sizes([1])
    assert otel.metric("shadowguard.checks") == {
        (("shadowguard.guard", "users.notify"),): 4,
        (("shadowguard.guard", "batch.size"),): 1,
    }


def test_checks_metric_skips_sampled_out_calls(otel: Any) -> None:
    """Calls not sampled for data checks are not counted as checked."""
    configure(sample_rate=0.0)
    for _ in range(4):
        notify({"email": None})
    assert otel.metric("shadowguard.checks") == {}
    assert otel.metric("shadowguard.violations") == {}


def test_metrics_use_the_shadowguard_meter(otel: Any) -> None:
    """Both counters come from the meter named ``shadowguard`` and are monotonic sums."""
    notify({"email": None})
    data = otel.reader.get_metrics_data()
    scopes = {
        scope.scope.name: {m.name: m for m in scope.metrics}
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
    }
    metrics = scopes["shadowguard"]
    assert {"shadowguard.violations", "shadowguard.checks"} <= set(metrics)
    for name in ("shadowguard.violations", "shadowguard.checks"):
        assert metrics[name].data.is_monotonic


# -- logs ---------------------------------------------------------------------------------------


def _violation_logs(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "assumption_violated"]


def test_log_event_has_the_contract_keys(logs: list[dict[str, Any]]) -> None:
    """``assumption_violated`` at warning level with every documented key."""
    notify({"email": None})
    (entry,) = _violation_logs(logs)
    assert entry == {
        "event": "assumption_violated",
        "log_level": "warning",
        "guard": "users.notify",
        "assumption": "not_none(user.email)",
        "kind": "nullability",
        "mode": "observe",
        "expected": "not None",
        "observed": "None",
        "path": "user.email",
        "suppressed": 0,
    }


def test_logs_are_rate_limited_per_fingerprint(logs: list[dict[str, Any]]) -> None:
    """The first is logged at once, then at most one a minute carrying the suppressed count."""
    now = [1000.0]
    log_limiter.clock = lambda: now[0]
    try:
        for _ in range(10):
            notify({"email": None})
        assert [e["suppressed"] for e in _violation_logs(logs)] == [0]
        now[0] += 59.0
        notify({"email": None})
        assert len(_violation_logs(logs)) == 1
        now[0] += 1.0
        notify({"email": None})
        assert [e["suppressed"] for e in _violation_logs(logs)] == [0, 10]
        now[0] += 120.0
        notify({"email": None})
        assert [e["suppressed"] for e in _violation_logs(logs)] == [0, 10, 0]
    finally:
        log_limiter.clock = time.monotonic


def test_distinct_fingerprints_are_limited_separately(logs: list[dict[str, Any]]) -> None:
    """``None`` and ``missing`` are different fingerprints, each logged once at first."""
    log_limiter.clock = lambda: 5.0
    try:
        for _ in range(3):
            notify({"email": None})
            notify({})
    finally:
        log_limiter.clock = time.monotonic
    assert [e["observed"] for e in _violation_logs(logs)] == ["None", "missing"]


def test_fingerprint_masks_numbers(logs: list[dict[str, Any]]) -> None:
    """``len=12001`` and ``len=9`` share a fingerprint: only the first is logged."""
    sizes(list(range(12_001)))
    sizes(list(range(19)))
    assert [e["observed"] for e in _violation_logs(logs)] == ["len=12001"]


def test_fingerprint_is_guard_assumption_and_masked_observed() -> None:
    """The fingerprint ignores everything but guard, assumption and observed (numbers masked)."""
    from shadowguard import Violation

    a = Violation("g", "size(x, max=1)", "volume", "observe", "len <= 1", "len=12001", "x")
    b = Violation("g", "size(x, max=1)", "volume", "enforce", "len <= 1", "len=9 at x[3]", "x")
    assert fingerprint(a) == ("g", "size(x, max=1)", "len=#")
    assert fingerprint(b) == ("g", "size(x, max=1)", "len=# at x[#]")


def test_rate_limiter_keeps_a_bounded_number_of_fingerprints() -> None:
    """Beyond ``max_keys`` fingerprints the least recently seen are forgotten."""
    limiter = RateLimiter(interval=60.0, max_keys=100, max_new=10_000)
    limiter.clock = lambda: 0.0
    for i in range(5_000):
        assert limiter.admit(("guard", f"assumption {i}")) == 0
    assert len(limiter._state) == 100
    assert limiter.admit(("guard", "assumption 4999")) is None
    assert limiter.admit(("guard", "assumption 0")) == 0


def test_global_log_limiter_is_bounded() -> None:
    """The shared limiter holds a bounded number of fingerprints."""
    assert 0 < log_limiter.max_keys <= 10_000
    assert log_limiter.interval == 60.0


def test_log_carries_request_route(logs: list[dict[str, Any]]) -> None:
    """A log emitted while a request is served names the route."""
    token = current_request.set(RequestScope(method="POST", route="/orders"))
    try:
        notify({"email": None})
    finally:
        current_request.reset(token)
    (entry,) = _violation_logs(logs)
    assert entry["http.route"] == "/orders"


# -- value capture ------------------------------------------------------------------------------


def test_values_are_not_captured_by_default(otel: Any, logs: list[dict[str, Any]]) -> None:
    """Off by default: no ``shadowguard.value``, and the canary is nowhere in telemetry."""

    @guarded(assume.not_none("user.email"), assume.size("user.name", max=3), name="cap.off")
    def f(user: dict[str, Any]) -> None:
        return None

    with otel.tracer.start_as_current_span("request"), capture_violations() as violations:
        f({"email": None, "name": CANARY, CANARY: CANARY})
    assert len(violations) == 2
    assert all(v.value is None for v in violations)
    assert all("shadowguard.value" not in e for e in otel.events())
    exported = repr([(s.attributes, [e.attributes for e in s.events]) for s in otel.spans()])
    assert CANARY not in exported
    assert CANARY not in repr(logs)
    assert CANARY not in repr(otel.reader.get_metrics_data())


def test_captured_values_are_redacted(otel: Any) -> None:
    """With capture on, secrets (also compound names) are redacted from the value."""
    configure(capture_values=True)

    @guarded(assume.not_none("payload.user"), name="cap.on")
    def f(payload: dict[str, Any]) -> None:
        return None

    payload = {
        "visible": "hello",
        "user": None,
        "password": CANARY,
        "api_token": CANARY,
        "client_secret": CANARY,
        "Authorization": CANARY,
        "cookie": CANARY,
        "api_key": CANARY,
        "card_number": CANARY,
        "ssn": CANARY,
        "refresh_token": CANARY,
    }
    with otel.tracer.start_as_current_span("request"):
        f(payload)
    (event,) = otel.events()
    value = event["shadowguard.value"]
    assert CANARY not in value
    assert "'visible': 'hello'" in value
    for key in ("password", "api_token", "client_secret", "Authorization", "cookie", "api_key"):
        assert f"'{key}': [REDACTED]" in value
    assert len(value) <= MAX_VALUE


def test_captured_value_of_a_secret_path_is_redacted_whole() -> None:
    """A path whose last name looks secret captures only ``[REDACTED]``."""
    configure(capture_values=True)

    @guarded(assume.size("api_token", max=3), name="cap.secret")
    def f(api_token: str) -> None:
        return None

    with capture_violations() as violations:
        f(CANARY)
    assert [v.value for v in violations] == ["[REDACTED]"]


def test_captured_values_are_truncated_to_256_characters(otel: Any) -> None:
    """A huge value is cut to at most 256 characters."""
    configure(capture_values=True)

    @guarded(assume.size("rows", max=1), name="cap.long")
    def f(rows: list[str]) -> None:
        return None

    with otel.tracer.start_as_current_span("request"):
        f(["x" * 10_000] * 1_000)
    (event,) = otel.events()
    assert 0 < len(event["shadowguard.value"]) <= 256


def test_capture_never_calls_a_raising_repr() -> None:
    """A value whose ``__repr__`` raises is captured by its type name, never crashing."""
    configure(capture_values=True)

    class Ugly:
        def __repr__(self) -> str:
            raise RuntimeError("repr")

    @guarded(assume.that(lambda x: False, "never"), name="cap.ugly")
    def f(x: Any) -> None:
        return None

    @guarded(assume.not_none("x.missing"), name="cap.ugly.path")
    def g(x: Any) -> None:
        return None

    with capture_violations() as violations:
        f(Ugly())
        g(Ugly())
    assert [v.value for v in violations][1:] == [
        "<test_capture_never_calls_a_raising_repr.<locals>.Ugly>"
    ]


def test_span_count_memory_is_bounded(otel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-span counts are kept for a bounded number of spans."""
    from shadowguard import _otel

    monkeypatch.setattr(_otel, "_MAX_TRACKED_SPANS", 3)
    for _ in range(10):
        with otel.tracer.start_as_current_span("request"):
            notify({"email": None})
    assert len(_otel._span_counts) == 3
    assert [s.attributes["shadowguard.violations"] for s in otel.spans()] == [1] * 10


def test_violation_series_are_bounded(otel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the series cap, new assumptions are counted under ``other``."""
    from shadowguard import _tallies

    monkeypatch.setattr(_tallies, "_MAX_KEYS", 2)
    rules = [assume.that(lambda x: False, f"rule {i}") for i in range(5)]

    @guarded(*rules, name="series")
    def f(x: int) -> None:
        return None

    f(1)
    f(1)
    points = otel.metric("shadowguard.violations")
    assert sorted(dict(key)["shadowguard.assumption"] for key in points) == [
        "other",
        "that(rule 0)",
        "that(rule 1)",
    ]
    assert sum(points.values()) == 10
    assert (
        points[
            (
                ("shadowguard.assumption", "other"),
                ("shadowguard.guard", "series"),
                ("shadowguard.kind", "predicate"),
            )
        ]
        == 6
    )


def test_request_scope_with_only_a_method() -> None:
    """A scope that knows neither route nor path adds just the method."""
    assert RequestScope(method="GET").attributes() == {"http.request.method": "GET"}
    assert RequestScope().attributes() == {}


@pytest.mark.internal_errors
def test_a_broken_request_scope_is_an_internal_fault(otel: Any) -> None:
    """A request scope that raises does not stop the span event or the log."""

    class Broken:
        def add(self, count: int) -> None:
            raise RuntimeError("scope")

    token = current_request.set(Broken())  # type: ignore[arg-type]
    try:
        with otel.tracer.start_as_current_span("request"), capture_violations() as violations:
            notify({"email": None})
    finally:
        current_request.reset(token)
    assert len(violations) == 1
    assert len(otel.events()) == 1


@pytest.mark.internal_errors
def test_an_unresolvable_annotation_with_a_broken_logger_is_swallowed() -> None:
    """Even the diagnostic about an unresolvable annotation cannot break the call."""
    import structlog

    saved = structlog.get_config()

    def explode(logger: Any, method: str, event: Any) -> Any:
        raise RuntimeError("processor")

    structlog.configure(processors=[explode])
    try:

        @guarded(name="diag.broken")
        def f(x: NoSuchName) -> int:  # type: ignore[name-defined]  # noqa: F821
            return 1

        assert f(1) == 1
    finally:
        structlog.configure(**saved)
