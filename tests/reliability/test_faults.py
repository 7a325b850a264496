"""O2 and E3 by fault injection: every internal seam of shadowguard raising, running out of
memory, recursing until ``RecursionError`` or hanging briefly, in turn.

For each seam and fault the guarded call must behave exactly like its unguarded twin in observe
mode (same object returned, same exception object raised), enforce mode may only add
:class:`~shadowguard.AssumptionViolation`, and the fault must be *reported once*: one
``internal_error`` log line per fault site, while the ``shadowguard.internal_errors`` counter
counts every occurrence. A hang only slows the call down: nothing is reported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shadowguard import (
    AssumptionViolation,
    _assumptions,
    _faults,
    _guard,
    _http,
    _log,
    _otel,
    _paths,
    _report,
    _tallies,
    assume,
    configure,
    guarded,
)
from shadowguard._context import RequestScope, current_request
from shadowguard.asgi import GuardMiddleware
from shadowguard.testing import capture_violations

from .conftest import Reported
from .oracle import (
    CALL_KINDS,
    POOL,
    GenRecord,
    Record,
    Token,
    drive_generator,
    generator_body,
    guard_generator,
    make_callable,
)

HANG_SECONDS = 0.02
FAULTS = ("raise", "memory", "recurse", "hang")


def inject(fault: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for ``original`` that raises, runs out of memory, recurses until
    ``RecursionError`` or sleeps briefly and then does the real work."""

    def raising(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected fault")

    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    def recursing(*args: Any, **kwargs: Any) -> Any:
        return recursing(*args, **kwargs)

    def hanging(*args: Any, **kwargs: Any) -> Any:
        time.sleep(HANG_SECONDS)
        return original(*args, **kwargs)

    return {"raise": raising, "memory": out_of_memory, "recurse": recursing, "hang": hanging}[fault]


class _FaultyExporter(SpanExporter):
    def __init__(self, fault: str) -> None:
        self._export = inject(fault, lambda spans: SpanExportResult.SUCCESS)

    def export(self, spans: Any) -> SpanExportResult:
        result: SpanExportResult = self._export(spans)
        return result

    def shutdown(self) -> None:
        return None


class _FaultyProcessor(SpanProcessor):
    def __init__(self, fault: str) -> None:
        self._on_start = inject(fault, lambda span, parent_context=None: None)
        self._on_end = inject(fault, lambda span: None)

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self._on_start(span, parent_context)

    def on_end(self, span: Any) -> None:
        self._on_end(span)


class _FaultyScope(RequestScope):
    """The request scope a middleware would set, whose counting is broken."""

    fault = "raise"

    def add(self, count: int) -> None:
        inject(self.fault, super().add)(count)


@dataclass(frozen=True)
class Seam:
    """An internal seam: how to break it, and which fault sites its faults may be logged at
    (``None``: the fault is not shadowguard's own and must not be logged as one)."""

    name: str
    install: Callable[[pytest.MonkeyPatch, str, Any], None]
    sites: tuple[str, ...] | None


def _type_checker(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    real = _guard.compile_annotation

    def compile_broken(tp: object) -> Any:
        check = real(tp)
        if check is None:
            return None
        return type(check)(check.text, check.outer, inject(fault, check.deep or (lambda v: None)))

    mp.setattr(_guard, "compile_annotation", compile_broken)


def _path_reader(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_paths, "_walk", inject(fault, _paths._walk))


def _predicate(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_assumptions.Predicate, "check", inject(fault, _assumptions.Predicate.check))


def _clock(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_guard, "_perf_ns", inject(fault, time.perf_counter_ns))
    mp.setattr(_http, "_perf_ns", inject(fault, time.perf_counter_ns))
    mp.setattr(time, "perf_counter_ns", inject(fault, time.perf_counter_ns))
    mp.setattr(time, "time_ns", inject(fault, time.time_ns))


def _reporter(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_report, "emit", inject(fault, _report.emit))


def _span(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_otel, "emit_spans", inject(fault, _otel.emit_spans))


def _tally(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_tallies, "violation_counter", inject(fault, _tallies.violation_counter))


def _metric_callback(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_tallies, "violation_counts", inject(fault, _tallies.violation_counts))
    mp.setattr(_tallies, "check_counts", inject(fault, _tallies.check_counts))
    mp.setattr(_tallies, "internal_errors", inject(fault, _tallies.internal_errors))


def _log_seam(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_log, "assumption_violated", inject(fault, _log.assumption_violated))


def _rate_limiter(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_report.log_limiter, "admit", inject(fault, _report.log_limiter.admit))


def _request_scope(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    mp.setattr(_FaultyScope, "fault", fault)
    token = current_request.set(_FaultyScope("GET", "/faulty"))
    pipeline.cleanups.append(lambda: current_request.reset(token))


def _span_processor(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    pipeline.tracer_provider.add_span_processor(_FaultyProcessor(fault))


def _exporter(mp: pytest.MonkeyPatch, fault: str, pipeline: Any) -> None:
    pipeline.tracer_provider.add_span_processor(SimpleSpanProcessor(_FaultyExporter(fault)))


SEAMS = (
    Seam("type checker", _type_checker, ("types", "return", "returned")),
    Seam("path reader", _path_reader, ("not_none(x[0].a)", "present(x.a.b)")),
    Seam("predicate", _predicate, ("that(n is large)",)),
    Seam("clock", _clock, ("guard.clock", "report.span", "begin", "returned", "raised")),
    Seam("reporter", _reporter, ("guard.emit",)),
    Seam("span", _span, ("report.span",)),
    Seam("tally", _tally, ("report.tally",)),
    Seam("metric callback", _metric_callback, ("otel.metrics",)),
    Seam("log", _log_seam, ("report.log",)),
    Seam("rate limiter", _rate_limiter, ("report.log",)),
    Seam("request scope", _request_scope, ("report.request",)),
    Seam("span processor", _span_processor, ("report.span",)),
    Seam("exporter", _exporter, None),
)

HTTP_SEAMS = [s for s in SEAMS if s.name in ("clock", "reporter", "span", "log", "span processor")]


@dataclass
class Pipeline:
    """A real SDK pipeline for one test; seams may add processors or cleanups to it."""

    tracer_provider: TracerProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    cleanups: list[Callable[[], None]]

    def internal_errors_metric(self) -> int | None:
        data = self.reader.get_metrics_data()
        for resource_metric in data.resource_metrics if data else ():
            for scope_metric in resource_metric.scope_metrics:
                for metric in scope_metric.metrics:
                    if metric.name == "shadowguard.internal_errors":
                        return int(metric.data.data_points[0].value)  # type: ignore[union-attr]
        return None


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    """Real tracer and meter providers configured into shadowguard (not set globally)."""
    tracer_provider = TracerProvider()
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    _otel.reset()
    configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
    made = Pipeline(tracer_provider, exporter, reader, [])
    yield made
    for cleanup in reversed(made.cleanups):
        cleanup()
    configure(tracer_provider=None, meter_provider=None)
    _otel.reset()
    meter_provider.shutdown()
    tracer_provider.shutdown()


TOKEN = object()


def _twins() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A plain function and its guarded copy, whose assumptions every call breaks."""

    def body(x: list[Any], n: int = 0) -> list[Any]:
        if n < 0:
            raise ValueError("negative", n)
        return TOKEN  # type: ignore[return-value]

    twin = guarded(
        assume.not_none("x[0].a"),
        assume.present("x.a.b"),
        assume.latency(ms=1e-6),
        assume.that(lambda n: n > 100, "n is large"),
        name="faulty",
    )(_copy(body))
    return body, twin


def _copy(func: Callable[..., Any]) -> Callable[..., Any]:
    import types

    clone = types.FunctionType(func.__code__, func.__globals__, func.__name__)
    clone.__annotations__ = dict(func.__annotations__)
    return clone


def _outcome(func: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    try:
        return True, func(*args)
    except BaseException as exc:  # compared by the test, whatever it is
        return False, exc


def _expected_site(seam: Seam, site: str) -> bool:
    assert seam.sites is not None
    return any(part in site for part in seam.sites)


@pytest.mark.internal_errors
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("seam", SEAMS, ids=[s.name for s in SEAMS])
def test_a_broken_seam_never_reaches_the_call_and_is_reported_once(
    seam: Seam,
    fault: str,
    pipeline: Pipeline,
    reported: Reported,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Observe mode: the very same result object, the very same exception; faults logged once
    per site and counted every time; a hang reports nothing."""
    plain, twin = _twins()
    argument = [{"a": None}]
    with monkeypatch.context() as mp:
        seam.install(mp, fault, pipeline)
        with capture_violations() as violations:
            returned = [_outcome(twin, argument, 0) for _ in range(3)]
            raised = [_outcome(twin, argument, -1) for _ in range(2)]
        pipeline.reader.get_metrics_data()  # the metric callbacks run at collection
    assert returned == [(True, TOKEN)] * 3
    expected = _outcome(plain, argument, -1)[1]
    for ok, error in raised:
        assert not ok and type(error) is ValueError and error.args == expected.args
    sites = reported.sites()
    if fault == "hang" or seam.sites is None:
        assert sites == [] and reported.total() == 0
        assert violations, "a slow or foreign seam stopped the reports"
        return
    assert sites, f"the {seam.name} fault was swallowed without a trace"
    assert len(sites) == len(set(sites)), f"a fault site was logged twice: {sites}"
    assert all(_expected_site(seam, site) for site in sites), sites
    assert reported.total() >= len(sites)
    errors = [entry["error"] for entry in reported.faults()]
    assert set(errors) <= {"RuntimeError", "MemoryError", "RecursionError"}
    assert all(entry["log_level"] == "error" for entry in reported.faults())
    if seam.name != "metric callback":
        assert pipeline.internal_errors_metric() == _faults.internal_errors_total()


@pytest.mark.internal_errors
@pytest.mark.parametrize("fault", ["raise", "recurse"])
@pytest.mark.parametrize("seam", SEAMS, ids=[s.name for s in SEAMS])
def test_enforce_mode_raises_only_assumption_violation_whatever_breaks(
    seam: Seam,
    fault: str,
    pipeline: Pipeline,
    reported: Reported,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """E1/E3: with a seam broken, enforce mode raises ``AssumptionViolation`` (from the body's
    own exception when it raised one) or returns the body's result; never the fault."""
    _, twin = _twins()
    configure(mode="enforce")
    with monkeypatch.context() as mp:
        seam.install(mp, fault, pipeline)
        outcomes = [_outcome(twin, [{"a": None}], n) for n in (0, -1)]
    for (ok, value), n in zip(outcomes, (0, -1), strict=True):
        if ok:
            assert value is TOKEN
            continue
        assert type(value) in (AssumptionViolation, ValueError), repr(value)
        if isinstance(value, AssumptionViolation) and n == -1 and value.__cause__ is not None:
            assert type(value.__cause__) is ValueError


@pytest.mark.internal_errors
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("seam", HTTP_SEAMS, ids=[s.name for s in HTTP_SEAMS])
def test_a_broken_seam_never_reaches_an_asgi_response(
    seam: Seam,
    fault: str,
    pipeline: Pipeline,
    reported: Reported,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the ASGI middleware (latency, body and status assumptions all broken) the client
    gets the same status, headers and streamed body, whichever seam fails."""
    _, twin = _twins()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        twin([{"a": None}], 0)
        await send({"type": "http.response.start", "status": 503, "headers": [(b"a", b"b")]})
        for chunk in (b"one", b"two"):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    guarded_app = GuardMiddleware(app, latency_ms=1e-6, max_body_bytes=0, error_status=500)

    async def request(target: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=target)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/faulty", content=b"body")

    with monkeypatch.context() as mp:
        seam.install(mp, fault, pipeline)
        plain_response = asyncio.run(request(app))
        twin_response = asyncio.run(request(guarded_app))
    assert twin_response.status_code == plain_response.status_code == 503
    assert twin_response.headers.raw == plain_response.headers.raw
    assert twin_response.content == plain_response.content == b"onetwo"
    sites = reported.sites()
    assert len(sites) == len(set(sites))
    if fault == "hang":
        assert sites == []


@pytest.mark.internal_errors
def test_internal_errors_are_logged_once_per_site_and_counted_every_time(
    pipeline: Pipeline, reported: Reported, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault that repeats on every call is one log line and a counter that keeps counting."""
    _, twin = _twins()
    monkeypatch.setattr(_otel, "emit_spans", inject("raise", _otel.emit_spans))
    for _ in range(50):
        assert twin([{"a": None}], 0) is TOKEN
    assert reported.sites() == ["report.span"]
    assert reported.total() >= 50
    assert pipeline.internal_errors_metric() == _faults.internal_errors_total()


@pytest.mark.internal_errors
def test_the_choke_point_survives_a_broken_logger(
    reported: Reported, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When even the ``internal_error`` log line fails, the fault is still only counted."""
    monkeypatch.setattr(_log, "internal_error", inject("recurse", _log.internal_error))
    monkeypatch.setattr(_log, "assumption_violated", inject("raise", _log.assumption_violated))
    _, twin = _twins()
    assert twin([{"a": None}], 0) is TOKEN
    assert reported.total() >= 1
    assert reported.sites() == []


def test_a_telemetry_pipeline_that_calls_guarded_code_does_not_recurse(
    pipeline: Pipeline,
) -> None:
    """A span processor that itself calls a guarded function (which breaks its assumption) is
    not re-entered: one report per call, counted in full, no ``RecursionError``."""
    calls: list[int] = []

    @guarded(assume.not_none("x"), name="faulty.reentrant")
    def inner(x: object) -> str:
        return "inner"

    class Calling(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            calls.append(1)
            inner(None)

        def on_end(self, span: Any) -> None:
            return None

    pipeline.tracer_provider.add_span_processor(Calling())
    with capture_violations() as violations:
        assert inner(None) == "inner"
    assert len(calls) == 1
    assert len(violations) == 2  # the call's and the processor's, both counted
    assert _tallies.violation_counts()[("faulty.reentrant", "nullability", "not_none(x)")] == 2
    spans = pipeline.exporter.get_finished_spans()
    assert [s.name for s in spans] == ["shadowguard faulty.reentrant"]


@pytest.mark.internal_errors
@pytest.mark.parametrize("kind", [*CALL_KINDS, "generator"])
@pytest.mark.parametrize("sample_rate", [None, 0.5])
def test_a_broken_clock_never_reaches_any_kind_of_guarded_callable(
    kind: str,
    sample_rate: float | None,
    pipeline: Pipeline,
    reported: Reported,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every wrapper (function, method, coroutine, partial, callable object, property,
    generator), on its light and its sampled paths, returns the body's own result while the
    clock raises; the fault is logged once."""
    _clock(monkeypatch, "raise", pipeline)
    for n in range(4):
        if kind == "generator":
            record = GenRecord()
            gen = guard_generator(generator_body(record, 2, n))
            assert drive_generator(gen([], n), ["next", "next", "next"])[-1] == (
                "stop",
                ("pool", n),
            )
            continue
        call = make_callable(kind, "return_pool", Record(), True, int, sample_rate)
        assert call([1], n) is POOL[n]

    @guarded(name="faulty.types_only", sample_rate=sample_rate)
    def typed(x: int) -> Token:  # only a return type to check: the lightest timed paths
        return POOL[x]

    @guarded(name="faulty.types_only_gen", sample_rate=sample_rate)
    def typed_gen(x: int) -> Generator[int, None, Token]:
        yield x
        return POOL[x]

    for n in range(4):
        assert typed(n) is POOL[n]
        assert drive_generator(typed_gen(n), ["next", "next"]) == [
            ("yield", ("value", "int", n)),
            ("stop", ("pool", n)),
        ]
    assert reported.sites().count("guard.clock") <= 1
    assert reported.total() >= 1
