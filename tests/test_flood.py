"""A flood of violations costs a count: the reporting shortcuts keep every figure exact.

Past a span's 32-event cap a violation only counts; on a request span the middleware writes
the final count itself, so it is not rewritten per violation. Repeated violations, their masked
fingerprints and event attributes are built once and reused. These tests pin that the telemetry
stays what the contract says.
"""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from shadowguard import AssumptionViolation, _otel, _report, _tallies, assume, configure, guarded
from shadowguard._context import RequestScope, current_request
from shadowguard.testing import capture_violations
from shadowguard.wsgi import GuardMiddleware


@guarded(assume.not_none("user.email"), name="flood.notify")
def notify(user: dict[str, Any]) -> str:
    return "sent"


def request(app: Any, path: str = "/flood") -> bytes:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    body = app(environ, lambda status, headers, exc_info=None: None)
    try:
        return b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _flood_then_one_more(otel: Any, calls: int, during: Any = None) -> Any:
    """``calls`` violations in one WSGI request under OpenTelemetry's server span, then one more
    a minute later (the log limiter's clock moved on); returns the server span. ``during`` runs
    inside the request, after the flood."""
    now = [1000.0]
    _report.log_limiter.clock = lambda: now[0]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        for _ in range(calls):
            notify({"email": None})
        if during is not None:
            during()
        start_response("200 OK", [])
        return [b"ok"]

    served = OpenTelemetryMiddleware(GuardMiddleware(app), tracer_provider=otel.tracer_provider)
    try:
        assert request(served) == b"ok"
        now[0] += 60.0
        notify({"email": None})
    finally:
        _report.log_limiter.clock = time.monotonic
    (span,) = [s for s in otel.spans() if s.kind.name == "SERVER"]
    return span


def test_a_flood_in_one_request_keeps_the_exact_count_on_its_span(otel: Any) -> None:
    """40 violations in a request: 32 events, and the count 40 on the server span."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        for _ in range(40):
            notify({"email": None})
        start_response("200 OK", [])
        return [b"ok"]

    tracer_provider = otel.tracer_provider
    served = OpenTelemetryMiddleware(GuardMiddleware(app), tracer_provider=tracer_provider)
    with capture_violations() as violations:
        assert request(served) == b"ok"
    (span,) = [s for s in otel.spans() if s.kind.name == "SERVER"]
    assert len(violations) == 40
    assert len(span.events) == 32
    assert span.attributes["shadowguard.violations"] == 40
    assert {e.attributes["url.path"] for e in span.events} == {"/flood"}


def test_a_flood_on_a_span_without_a_middleware_counts_each_violation(otel: Any) -> None:
    """With no middleware to write the final count, it is written for each violation."""
    with otel.tracer.start_as_current_span("job"):
        for _ in range(40):
            notify({"email": None})
    (span,) = otel.spans()
    assert len(span.events) == 32
    assert span.attributes["shadowguard.violations"] == 40


def test_a_plain_request_scope_does_not_promise_the_count(otel: Any) -> None:
    """A scope set by hand (no middleware) leaves the span's count to the reporter."""
    with otel.tracer.start_as_current_span("request") as current:
        token = current_request.set(RequestScope("GET", "/x", "/x", current))
        try:
            for _ in range(35):
                notify({"email": None})
        finally:
            current_request.reset(token)
    (span,) = otel.spans()
    assert span.attributes["shadowguard.violations"] == 35
    assert {e.attributes["http.route"] for e in span.events} == {"/x"}


def test_repeated_violations_are_reused_but_never_mixed_up(otel: Any) -> None:
    """The same broken assumption gives the same (immutable) violation; others stay apart."""
    with capture_violations() as violations:
        notify({"email": None})
        notify({"email": None})
        notify({})
    first, second, third = violations
    assert first is second
    assert (third.observed, first.observed) == ("missing", "None")
    configure(capture_values=True)
    with capture_violations() as captured:
        notify({"email": None, "name": "ann"})
        notify({"email": None, "name": "bob"})
    assert captured[0] is not captured[1]
    assert "ann" in (captured[0].value or "") and "bob" in (captured[1].value or "")


def test_the_mode_is_part_of_a_reused_violation() -> None:
    """A violation remembered in observe mode is not reported as such in enforce mode."""
    with capture_violations() as violations:
        notify({"email": None})
        configure(mode="enforce")
        with pytest.raises(AssumptionViolation):
            notify({"email": None})
    assert [v.mode for v in violations] == ["observe", "enforce"]


def test_each_event_gets_its_own_attributes(otel: Any) -> None:
    """Remembered event attributes are copied: one span's route never leaks into another."""
    for route in ("/a", "/b"):
        with otel.tracer.start_as_current_span(route) as span:
            token = current_request.set(RequestScope("GET", route, route, span))
            try:
                notify({"email": None})
            finally:
                current_request.reset(token)
    with otel.tracer.start_as_current_span("plain"):
        notify({"email": None})
    routes = [e.get("http.route") for e in otel.events()]
    assert routes == ["/a", "/b", None]


def test_remembered_shapes_and_attributes_stay_bounded(otel: Any) -> None:
    """Masked fingerprints and event attributes are caches with a fixed size."""

    @guarded(assume.size("items", max=0), name="flood.sizes")
    def take(items: list[int]) -> None:
        return None

    with otel.tracer.start_as_current_span("many"):
        for n in range(1, 1_100):
            take([0] * n)
    assert len(_report._masked) <= _report._MASKED_MAX
    assert len(_otel._attributes) <= _otel._ATTRIBUTES_MAX
    assert len(take.__shadowguard__.made) <= 64
    _otel.reset()
    assert not _otel._attributes


def test_a_flood_past_the_cap_and_the_rate_limit_counts_every_violation(
    otel: Any, logs: list[dict[str, Any]]
) -> None:
    """Past the event cap and with its log held back a violation writes nothing, yet every one
    is in the metric, the request span's count and the next log line's ``suppressed``."""
    span = _flood_then_one_more(otel, 100)
    assert (len(span.events), span.attributes["shadowguard.violations"]) == (32, 100)
    key = (
        ("shadowguard.assumption", "not_none(user.email)"),
        ("shadowguard.guard", "flood.notify"),
        ("shadowguard.kind", "nullability"),
    )
    assert otel.metric("shadowguard.violations")[key] == 101
    entries = [e for e in logs if e["event"] == "assumption_violated"]
    assert [e["suppressed"] for e in entries] == [0, 99]


def test_a_reset_forgets_the_series_a_repeated_violation_counted_into() -> None:
    """Reporting keeps each repeated violation's counter; a reset of the tallies (tests) still
    starts every series again from zero, and only the ones reported since are listed."""
    key = ("flood.notify", "nullability", "not_none(user.email)")
    notify({"email": None})
    notify({"email": None})
    assert _tallies.violation_counts()[key] == 2
    _tallies.reset()
    assert _tallies.violation_counts() == {}
    notify({"email": None})
    assert _tallies.violation_counts() == {key: 1}


_KEY = ("flood.notify", "nullability", "not_none(user.email)")


class _SyncedScope(RequestScope):
    """A scope whose owner writes the span's count (as the middleware's does)."""

    syncs_count = True


def test_a_saturated_flood_takes_the_short_cut_and_counts_exactly(
    otel: Any, logs: list[dict[str, Any]]
) -> None:
    """Past the cap, with the log held back, a repeat only counts: the metric, the request's
    count and the held-back logs stay exact."""
    seen: list[Any] = []
    span = _flood_then_one_more(otel, 300, lambda: seen.append(_report._saturated[1]))
    assert seen[0] is not None  # the short-cut was armed during the request
    assert (len(span.events), span.attributes["shadowguard.violations"]) == (32, 300)
    assert _tallies.violation_counts()[_KEY] == 301
    entries = [e for e in logs if e["event"] == "assumption_violated"]
    assert [e["suppressed"] for e in entries] == [0, 299]


def test_a_saturated_flood_from_many_threads_counts_exactly(otel: Any) -> None:
    """Threads sharing the request's context all take the short-cut: no count is lost."""
    import contextvars
    import sys
    import threading

    threads, each = 8, 400
    with otel.tracer.start_as_current_span("request") as span:
        scope = _SyncedScope("GET", "/t", "/t", span)
        token = current_request.set(scope)
        try:
            for _ in range(40):
                notify({"email": None})
            barrier = threading.Barrier(threads)

            def work() -> None:
                barrier.wait()
                for _ in range(each):
                    notify({"email": None})

            interval = sys.getswitchinterval()
            sys.setswitchinterval(1e-6)
            try:
                workers = [
                    threading.Thread(target=contextvars.copy_context().run, args=(work,))
                    for _ in range(threads)
                ]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
            finally:
                sys.setswitchinterval(interval)
        finally:
            current_request.reset(token)
    total = 40 + threads * each
    assert scope.violations == total
    assert _tallies.violation_counts()[_KEY] == total
    assert _tallies.counted(_otel._span_counter(span)) == total
    (ended,) = otel.spans()
    assert len(ended.events) == 32


def test_the_short_cut_ends_with_its_span(otel: Any) -> None:
    """Once the saturated span has ended, a repeat goes the full way again (an own span)."""
    span = otel.tracer.start_span("request")
    scope = _SyncedScope("GET", "/e", "/e", span)
    from opentelemetry import trace

    with trace.use_span(span, end_on_exit=False):
        token = current_request.set(scope)
        try:
            for _ in range(40):
                notify({"email": None})
            assert _report._saturated[3] is span
            span.end()
            for _ in range(3):
                notify({"email": None})
        finally:
            current_request.reset(token)
    assert scope.violations == 43
    assert _tallies.violation_counts()[_KEY] == 43
    own = [s for s in otel.spans() if s.name == "shadowguard flood.notify"]
    assert len(own) == 3
    assert all(len(s.events) == 1 for s in own)


def test_the_short_cut_leaves_listeners_and_other_violations_alone(
    otel: Any, logs: list[dict[str, Any]]
) -> None:
    """A listener sees every violation, and a different violation is never taken for the
    saturated one."""
    with otel.tracer.start_as_current_span("request") as span:
        scope = _SyncedScope("GET", "/l", "/l", span)
        token = current_request.set(scope)
        try:
            for _ in range(40):
                notify({"email": None})
            with capture_violations() as violations:
                for _ in range(5):
                    notify({"email": None})
            for _ in range(5):
                notify({})
        finally:
            current_request.reset(token)
    assert len(violations) == 5
    assert scope.violations == 50
    assert _tallies.violation_counts()[_KEY] == 50
    entries = [e for e in logs if e["event"] == "assumption_violated"]
    assert [e["observed"] for e in entries] == ["None", "missing"]


@pytest.mark.internal_errors
def test_a_failing_log_limiter_in_the_short_cut_is_swallowed(
    otel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log limiter stays the seam it was: a fault there, on the short-cut, is an internal
    error, and every count is still exact."""
    calls = [0]
    admit = _report.log_limiter.admit

    def broken(key: Any) -> Any:
        calls[0] += 1
        if calls[0] > 40:
            raise RuntimeError("limiter down")
        return admit(key)

    monkeypatch.setattr(_report.log_limiter, "admit", broken)
    errors = _tallies.internal_errors()
    with otel.tracer.start_as_current_span("request") as span:
        scope = _SyncedScope("GET", "/f", "/f", span)
        token = current_request.set(scope)
        try:
            for _ in range(60):
                assert notify({"email": None}) == "sent"
        finally:
            current_request.reset(token)
    assert calls[0] == 60
    assert _report._saturated[1] is scope
    assert scope.violations == 60
    assert _tallies.violation_counts()[_KEY] == 60
    assert _tallies.internal_errors() > errors
