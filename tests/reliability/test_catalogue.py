"""Cases from the hostile-case catalogue (``RELIABILITY.md``) not pinned elsewhere: descriptor
forms, telemetry pipelines that misbehave (late providers, black-holed exporters, failing log
bridges, odd attribute values, log floods, clock jumps), and the middleware under pipelined
large requests, big streamed uploads and Starlette's ``BaseHTTPMiddleware``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import math
import signal
import string
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shadowguard import _report, assume, configure, guarded
from shadowguard.asgi import GuardMiddleware
from shadowguard.testing import capture_violations

from .conftest import ServerProcess, clean_env, start_privacy_app

# -- decorator forms ------------------------------------------------------------------------------


class Named:
    """A callable descriptor: ``__set_name__`` records its name, ``__get__`` gives a value
    (callable or not, by ``bound``) instead of the object itself."""

    def __init__(self, bound: bool) -> None:
        self.bound = bound
        self.name: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        if self.bound:
            return functools.partial(self, instance)
        return ("value of", self.name)

    def __call__(self, *args: Any) -> Any:
        return ("called with", len(args))


@pytest.mark.parametrize("bound", [False, True], ids=["plain value", "bound callable"])
def test_a_guarded_callable_descriptor_behaves_as_the_unguarded_one(bound: bool) -> None:
    """``__set_name__`` reaches the descriptor, and instance access returns what its
    ``__get__`` returns: a plain value as is, a callable that still works."""

    class Plain:
        attr = Named(bound)

    class Guarded:
        attr = guarded(name="catalogue.descriptor")(Named(bound))

    plain, twin = Plain().attr, Guarded().attr
    assert Guarded.__dict__["attr"].name == Plain.__dict__["attr"].name == "attr"
    if bound:
        assert twin() == plain() == ("called with", 1)
    else:
        assert type(twin) is tuple and twin == plain == ("value of", "attr")


def test_cached_property_alias_singledispatch_and_contextmanager() -> None:
    """A guarded ``cached_property`` computes once and returns the same object; a class-body
    alias of a guarded method works under both names; a guarded ``singledispatch`` dispatches
    as before; a guarded generator behind ``contextmanager`` enters, exits and lets an error
    through (or swallows it) exactly like the unguarded one."""
    computed: list[int] = []

    class Lazy:
        @guarded(assume.not_none("self.missing"), name="catalogue.cached")
        @functools.cached_property
        def value(self) -> list[int]:
            computed.append(1)
            return [1]

        @guarded(assume.latency(ms=1e-6), name="catalogue.method")
        def method(self, x: int) -> int:
            return x

        alias = method

    lazy = Lazy()
    assert lazy.value is lazy.value and computed == [1]
    assert lazy.method(3) == lazy.alias(3) == 3

    @functools.singledispatch
    def describe(x: object) -> str:
        return "object"

    @describe.register
    def _(x: int) -> str:
        return "int"

    guarded_describe = guarded(name="catalogue.dispatch")(describe)
    assert [guarded_describe(v) for v in (1, "a", 2.0)] == [describe(v) for v in (1, "a", 2.0)]

    log: list[str] = []

    def body(swallow: bool) -> Iterator[str]:
        log.append("enter")
        try:
            yield "resource"
        except KeyError:
            log.append("caught")
            if not swallow:
                raise
        finally:
            log.append("exit")

    plain_cm = contextlib.contextmanager(body)
    twin_cm = contextlib.contextmanager(guarded(assume.latency(ms=1e-6), name="catalogue.cm")(body))
    for cm in (plain_cm, twin_cm):
        error = KeyError("k")
        with cm(False) as resource:
            assert resource == "resource"
        with pytest.raises(KeyError) as info, cm(False):
            raise error
        assert info.value is error
        with cm(True):
            raise KeyError("swallowed")
    assert log == ["enter", "exit", "enter", "caught", "exit", "enter", "caught", "exit"] * 2


# -- telemetry pipelines that misbehave -----------------------------------------------------------

LATE_PROVIDER = """
from shadowguard import assume, guarded
from opentelemetry import trace

@guarded(assume.not_none("x"), name="late.provider")
def f(x):
    return x

f(None)  # the tracer is resolved now, while only the API's proxy provider exists
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
f(None)
print(len([e for s in exporter.get_finished_spans() for e in s.events]))
"""


def test_a_tracer_resolved_before_the_provider_is_set_still_exports() -> None:
    """Guards used at import time, before the application sets its SDK provider globally,
    export their violations once it is set."""
    proc = subprocess.run(
        [sys.executable, "-c", LATE_PROVIDER],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "1"


@pytest.mark.parametrize("capture", [False, True])
def test_odd_values_never_trip_opentelemetry_attribute_sanitation(
    otel: Any, caplog: pytest.LogCaptureFixture, capture: bool
) -> None:
    """NaN, bytes (invalid UTF-8 too), a 10 MB string, dicts, sets, None and objects as
    arguments: every attribute shadowguard sets is a valid OpenTelemetry value, so the SDK
    never warns or drops one."""
    configure(capture_values=capture)
    caplog.set_level(logging.DEBUG, logger="opentelemetry")

    @guarded(assume.size("x", max=0), assume.not_none("x.missing"), name="catalogue.odd")
    def f(x: int) -> None:
        return None

    odd = [math.nan, b"\xff\xfe\x00", "s" * 10_000_000, {"a": {1, 2}}, {None}, object(), [None]]
    for value in odd:
        f(value)  # type: ignore[arg-type]
    events = otel.events()
    assert len(events) >= len(odd)
    for attributes in events:
        for value in attributes.values():
            assert isinstance(value, (str, int)) and not isinstance(value, bool)
            assert not isinstance(value, str) or len(value) <= 1024
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


BLACKHOLE = """
import socket, threading, sys
from shadowguard import assume, configure, guarded
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(64)
held = []
def accept_and_hold():  # accepts every connection and never answers
    while True:
        try:
            held.append(server.accept()[0])
        except OSError:
            return
threading.Thread(target=accept_and_hold, daemon=True).start()
port = server.getsockname()[1]

provider = TracerProvider()
exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=0.5)
provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50,
                                               export_timeout_millis=500, max_queue_size=64,
                                               max_export_batch_size=64))
configure(tracer_provider=provider)

@guarded(assume.not_none("x"), name="blackhole")
def f(x):
    return x

token = object()
assert all(f(None) is None for _ in range(1000))
assert f(token) is token
provider.shutdown()
server.close()
print("done")
"""


@pytest.mark.e2e
def test_a_blackholed_exporter_never_blocks_calls_and_shutdown_is_bounded() -> None:
    """An OTLP exporter pointed at a server that accepts and never answers, behind a small
    batch queue that overflows: 1,000 violating calls return their values, the provider shuts
    down and the process exits, all within the bound."""
    proc = subprocess.run(
        [sys.executable, "-c", BLACKHOLE],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "done"


def test_a_failing_log_exporter_bridged_from_structlog_neither_recurses_nor_deadlocks() -> None:
    """structlog bridged to the stdlib root logger, which carries OpenTelemetry's
    ``LoggingHandler`` whose exporter raises on every export: violations are still reported,
    every call returns, and the worker thread finishes (joined with a timeout)."""
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs import export as log_export

    exporter_base: Any = getattr(log_export, "LogRecordExporter", None) or log_export.LogExporter

    class Raising(exporter_base):  # type: ignore[misc]
        def export(self, batch: Any) -> Any:
            raise RuntimeError("log export failed")

        def shutdown(self) -> None:
            return None

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

    provider = LoggerProvider()
    provider.add_log_record_processor(log_export.SimpleLogRecordProcessor(Raising()))
    with warnings.catch_warnings():  # the SDK's handler is deprecated, still what hosts run
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    root = logging.getLogger()
    saved_config, saved_level = structlog.get_config(), root.level
    structlog.configure(
        processors=[structlog.stdlib.render_to_log_kwargs],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    root.addHandler(handler)
    root.setLevel(logging.WARNING)

    @guarded(assume.not_none("x"), name="catalogue.bridge")
    def f(x: object, i: int) -> int:
        return i

    results: list[int] = []
    try:
        with capture_violations() as violations:
            worker = threading_run(lambda: results.extend(f(None, i) for i in range(500)))
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        structlog.configure(**saved_config)
        provider.shutdown()
    assert not worker.is_alive(), "deadlocked"
    assert results == list(range(500))
    assert len(violations) == 500


def threading_run(target: Any) -> Any:
    """Run ``target`` in a thread, joined with a timeout; the thread."""
    import threading

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(60)
    return thread


def test_log_floods_stay_bounded_identical_or_distinct(logs: list[dict[str, Any]]) -> None:
    """10^5 identical violations: one line, then one a minute carrying the exact number held
    back. 10^4 violations with distinct fingerprints (a type made per call): at most 256 lines a
    minute, then one line saying how many were held back."""
    now = [0.0]
    _report.log_limiter.clock = lambda: now[0]
    try:

        @guarded(assume.not_none("x"), name="catalogue.flood")
        def same(x: object) -> None:
            return None

        for _ in range(100_000):
            same(None)
        now[0] += 61
        same(None)
        lines = [e for e in logs if e["event"] == "assumption_violated"]
        assert [e["suppressed"] for e in lines] == [0, 99_999]

        names = ("".join(p) for p in itertools.product(string.ascii_letters, repeat=3))

        @guarded(name="catalogue.distinct")
        def typed(x: int) -> None:
            return None

        def flood(count: int) -> None:
            for _ in range(count):
                typed(type(next(names), (), {})())  # type: ignore[arg-type]

        flood(10_000)
        distinct = [e for e in logs if e.get("guard") == "catalogue.distinct"]
        assert len(distinct) == 256
        now[0] += 61
        same(None)  # a known fingerprint after the minute: the summary comes with it
        flood(300)  # a new minute: 256 more pass, 44 are held back
        now[0] += 61
        typed("a new fingerprint")  # type: ignore[arg-type]
        held = [e for e in logs if e["event"] == "assumption_logs_held_back"]
        assert [e["count"] for e in held] == [10_000 - 256, 300 - 256]
        assert len([e for e in logs if e.get("guard") == "catalogue.distinct"]) == 256 * 2 + 1
    finally:
        _report.log_limiter.clock = time.monotonic
        _report.log_limiter.reset()


def test_wall_clock_jumps_never_give_negative_latency_or_spans(
    otel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wall clock jumping back and forth (NTP, a VM resumed) between and during calls:
    latency is measured on the monotonic clock, and no exported span ends before it starts."""
    jumps = itertools.cycle([-3600, 7200, -86_400, 0])
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + next(jumps) * 1_000_000_000)
    monkeypatch.setattr(time, "time", lambda: time.time_ns() / 1e9)

    @guarded(assume.latency(ms=1e-6), assume.not_none("x"), name="catalogue.clock")
    def f(x: object) -> None:
        return None

    with capture_violations() as violations:
        for _ in range(20):
            f(None)
    latencies = [v.observed for v in violations if v.kind == "latency"]
    assert len(latencies) == 20
    assert all(float(text.split()[0]) >= 0 for text in latencies)
    assert all(span.end_time >= span.start_time for span in otel.spans())


# -- the middleware under large and stacked requests ---------------------------------------------


@pytest.mark.e2e
def test_pipelined_keep_alive_requests_with_large_bodies_keep_their_own_context(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """Twenty POSTs of 70 KiB each pipelined on one keep-alive connection to a real uvicorn:
    each request's guarded call reports under its own ``url.path``, exactly once."""
    import json
    import socket

    server, port, spans, _log = start_privacy_app(tmp_path, servers)
    body = b"x" * 70 * 1024
    requests = b"".join(
        b"POST /pay/%d HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (n, len(body), body)
        for n in range(20)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(requests)
        received = b""
        while received.count(b"HTTP/1.1 200") < 20:
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            received += chunk
    assert server.stop(signal.SIGINT) == 0, server.output()
    exported = [json.loads(line) for line in spans.read_text().splitlines()]
    calls = [span for span in exported if span.get("name") == "shadowguard privacy.charge"]
    paths = [{e["attributes"]["url.path"] for e in span["events"]} for span in calls]
    assert sorted(paths, key=sorted) == sorted(({f"/pay/{n}"} for n in range(20)), key=sorted)


def test_a_large_streamed_upload_passes_byte_for_byte_without_buffering() -> None:
    """64 MiB uploaded in 64 KiB chunks through the middleware (with a body limit that it
    breaks): the app reads every byte unchanged, and memory stays far below the body's size."""
    chunk, count = b"\xab" * 65_536, 1024
    digest = hashlib.sha256()
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            digest.update(message.get("body", b""))
            seen.append(len(message.get("body", b"")))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> None:
        pending = iter(range(count))

        async def receive() -> dict[str, Any]:
            i = next(pending, None)
            if i is None:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": i < count - 1}

        async def send(message: Any) -> None:
            return None

        scope = {"type": "http", "method": "POST", "path": "/upload", "headers": []}
        await GuardMiddleware(app, max_body_bytes=1_000_000)(scope, receive, send)

    tracemalloc.start()
    try:
        with capture_violations() as violations:
            asyncio.run(main())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256(chunk * count).hexdigest()
    assert digest.hexdigest() == expected and sum(seen) == len(chunk) * count
    assert [v.kind for v in violations] == ["volume"]
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes: the body was buffered"


@guarded(assume.not_none("user.email"), name="catalogue.stacked")
def greet(user: dict[str, Any]) -> str:
    """Called by the endpoint below; breaks its assumption."""
    return "hello"


class Passthrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: Any) -> Any:
        return await call_next(request)


@pytest.mark.parametrize("order", ["guard outside", "guard inside"])
def test_guard_above_or_below_starlette_base_http_middleware(otel: Any, order: str) -> None:
    """Stacked outside or inside ``BaseHTTPMiddleware``: the guarded call made by the endpoint
    still reports the route (contextvars reach it), an app error comes out as the same type
    (no ``ExceptionGroup``), and the background task runs after the response."""
    ran: list[str] = []

    async def hello(request: Request) -> PlainTextResponse:
        greet({"email": None})
        if request.query_params.get("fail"):
            raise LookupError("endpoint failed")
        return PlainTextResponse("hi", background=BackgroundTask(ran.append, "background"))

    routes = [Route("/hello/{name}", hello)]
    if order == "guard inside":
        inner = Starlette(routes=routes)
        app: Any = Starlette(routes=[], middleware=[Middleware(Passthrough)])
        app.router.mount("/", GuardMiddleware(inner))
    else:
        app = GuardMiddleware(Starlette(routes=routes, middleware=[Middleware(Passthrough)]))

    async def main() -> tuple[httpx.Response, BaseException | None]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ok = await client.get("/hello/ada")
            try:
                await client.get("/hello/ada?fail=1")
            except BaseException as exc:  # the app's error, as httpx re-raises it
                return ok, exc
            return ok, None

    ok, error = asyncio.run(main())
    assert ok.text == "hi" and ran == ["background"]
    assert type(error) is LookupError
    routes_seen = {e.get("http.route") or e.get("url.path") for e in otel.events()}
    assert routes_seen <= {"/hello/{name}", "/hello/ada"} and routes_seen
