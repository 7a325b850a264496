"""Cost of reporting, of the overhead budget and of the tested envelope (targets 5, 7, 8).

Run by ``make bench``; ``make test`` runs each once (``--benchmark-disable``). No assertion here
is about time: the ones left pin what each benchmark exercises.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _workloads import SIGNATURE_ARGS, busy
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider

import shadowguard
from shadowguard import _otel, _tallies, assume, guarded
from shadowguard.envelope import save, start_recording, stop_recording
from shadowguard.testing import capture_violations
from shadowguard.wsgi import GuardMiddleware

pytestmark = pytest.mark.bench


def _signature() -> Any:
    def f(a: int, b: str, items: list[int]) -> int:
        return a

    return f


@pytest.fixture
def tracer() -> Iterator[Any]:
    """An SDK tracer provider (no exporter) configured into shadowguard."""
    provider = TracerProvider()
    _otel.reset()
    shadowguard.configure(tracer_provider=provider)
    yield provider.get_tracer("bench")
    shadowguard.configure(tracer_provider=None)
    _otel.reset()
    provider.shutdown()


def _on_fresh_span(tracer: Any, op: Any) -> Any:
    """``op(span)`` with a fresh current span, for pedantic rounds (span made in setup)."""

    def setup() -> tuple[tuple[Any, Any], dict[str, Any]]:
        span = tracer.start_span("request")
        return (span, context.attach(trace.set_span_in_context(span))), {}

    def target(span: Any, token: Any) -> None:
        op(span)
        context.detach(token)
        span.end()

    return setup, target


@pytest.mark.benchmark(group="5 one violation")
@pytest.mark.parametrize("variant", ["bare add_event", "guarded call, one violation"])
def test_one_violation(benchmark: Any, tracer: Any, variant: str) -> None:
    """One violation reported (event, metric, log) against a bare event with its attributes."""
    f = guarded(name="bench.one")(_signature())
    items = SIGNATURE_ARGS[2]
    with tracer.start_as_current_span("probe"), capture_violations() as seen:
        f(1, 2, items)
    attributes = _otel.event_attributes(seen[0], f.__shadowguard__.code, None)
    if variant == "bare add_event":

        def op(span: Any) -> None:
            span.add_event("shadowguard.violation", attributes=attributes)
    else:

        def op(span: Any) -> None:
            f(1, 2, items)

    setup, target = _on_fresh_span(tracer, op)
    benchmark.pedantic(target, setup=setup, rounds=200, warmup_rounds=5)
    assert attributes["shadowguard.observed"] == "int"


@pytest.mark.benchmark(group="5 flood")
def test_flood(benchmark: Any, tracer: Any) -> None:
    """1,000 violating calls in one request (WSGI middleware, server span): per request."""
    f = guarded(name="bench.flood")(_signature())
    items = SIGNATURE_ARGS[2]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        for _ in range(1_000):
            f(1, 2, items)
        start_response("200 OK", [])
        return [b"ok"]

    served = GuardMiddleware(app)

    def request() -> bytes:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/flood", "wsgi.input": io.BytesIO()}
        with tracer.start_as_current_span("GET /flood"):
            body = served(environ, lambda status, headers, exc_info=None: None)
            try:
                return b"".join(body)
            finally:
                if hasattr(body, "close"):  # as a WSGI server does
                    body.close()

    assert benchmark(request) == b"ok"


@pytest.mark.benchmark(group="7 overhead budget")
@pytest.mark.parametrize("variant", ["plain", "guarded, budget 0.01"])
def test_budget(benchmark: Any, variant: str) -> None:
    """A ~50 us function whose checks cost about as much, with a budget of 1%."""
    spin = busy(50)
    rows = [{"id": i, "v": i} for i in range(400)]

    def work(rows: list[dict[str, int]], limit: int) -> int:
        return spin()

    def expensive(rows: list[dict[str, int]]) -> bool:
        return all(r["v"] >= 0 for r in rows) and sorted(rows, key=lambda r: r["v"]) == rows

    func = work
    if variant != "plain":
        shadowguard.configure(overhead_budget=0.01)
        func = guarded(assume.that(expensive, "rows valid"), name="bench.budget")(work)
        for _ in range(500):
            func(rows, 5)
    benchmark(func, rows, 5)
    if variant != "plain":
        benchmark.extra_info["checked_calls"] = _tallies.check_counts().get("bench.budget", 0)


@pytest.mark.benchmark(group="8 envelope")
@pytest.mark.parametrize("variant", ["plain guarded", "recording", "watching"])
def test_envelope(benchmark: Any, tmp_path: Path, variant: str) -> None:
    """A guarded call plain, while the tests' envelope records it, and watched in production."""
    f = guarded(name="bench.envelope")(_signature())
    recorder = start_recording()
    for args in [(1, "x", [1, 2, 3]), (0, "", []), (-5, "yz", [3, 4, 5, 6])] * 4:
        f(*args)
    envelope = stop_recording(recorder)
    path = tmp_path / "envelope.json"
    save(envelope, path)
    active = None
    if variant == "recording":
        active = start_recording()
    elif variant == "watching":
        shadowguard.configure(envelope=str(path))
    try:
        assert benchmark(f, *SIGNATURE_ARGS) == 1
    finally:
        if active is not None:
            stop_recording(active)
    assert "bench.envelope" in envelope.guards
