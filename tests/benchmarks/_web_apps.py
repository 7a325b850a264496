"""Hello-world apps for ``web_bench.py``: FastAPI for uvicorn, Flask for gunicorn, each bare or
wrapped by one middleware (a pure pass-through, shadowguard's, OpenTelemetry's).

    SG_BENCH_VARIANT=otel uvicorn --factory _web_apps:asgi_from_env
    SG_BENCH_VARIANT=bare gunicorn '_web_apps:wsgi_from_env()'
"""

from __future__ import annotations

import collections
import contextvars
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

ASGI_VARIANTS = ("bare", "pass-through", "shadowguard", "shadowguard-fastapi", "otel")
WSGI_VARIANTS = ("bare", "pass-through", "shadowguard", "shadowguard-flask", "otel")
ASGI_EXTRA = ("floor",)
WSGI_EXTRA = ("floor",)
"""Variants run only when ``--variants`` names them: ``floor`` is a hand-written floor middleware
(:class:`AsgiFloor`, :class:`WsgiFloor`), what any middleware doing shadowguard's work costs at
least."""

SG_OPTIONS: dict[str, Any] = {"latency_ms": 250, "max_in_flight": 64}
"""shadowguard's request assumptions in every benchmark app: a latency budget and an in-flight
limit, so the body's end is watched (the costlier path)."""


class AsgiPassThrough:
    """The cheapest possible pure ASGI middleware: the floor for any middleware."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


_clock = time.perf_counter_ns


class _Floor:
    """What both hand-written floors keep: the app, the request's context variable and the
    requests in flight."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.request: contextvars.ContextVar[object] = contextvars.ContextVar("floor_request")
        self.flight: collections.deque[None] = collections.deque()


class _FloorEnd:
    """The end of a request through a floor (once): out of the in-flight count, the clock
    read against the latency budget."""

    __slots__ = ("ended", "floor", "late", "started")

    floor: _Floor
    ended: bool
    late: bool
    started: int

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.floor.flight.pop()
            self.late = _clock() - self.started > 250_000_000


class AsgiFloor(_Floor):
    """A hand-written floor for an ASGI middleware of shadowguard's kind, and nothing more: the
    request in a context variable around the app, a clock and an in-flight count from entry to
    the body's last chunk, the status kept (see :class:`WsgiFloor`)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self.app
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        exchange = _AsgiFloorExchange()
        exchange.floor = self
        exchange.server_send = send
        exchange.started = _clock()
        exchange.ended = False
        self.flight.append(None)
        token = self.request.set(exchange)
        try:
            await app(scope, receive, exchange.send)
        finally:
            exchange.end()
            self.request.reset(token)


class _AsgiFloorExchange(_FloorEnd):
    """One request through ``AsgiFloor``: the ``send`` the app gets."""

    __slots__ = ("server_send", "status")

    floor: AsgiFloor
    server_send: Any
    status: object

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if not message.get("more_body", False):
                self.end()
        elif kind == "http.response.start":
            self.status = message["status"]
        await self.server_send(message)


class WsgiPassThrough:
    """The cheapest possible WSGI middleware."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def _otel_provider() -> Any:
    """An SDK tracer provider exporting in batches to nowhere, given to OpenTelemetry's
    middleware (not set globally: one process may build several variants): what an
    instrumented production service pays."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return provider


def _fastapi() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def asgi_app(variant: str) -> Callable[..., Any]:
    """The FastAPI hello app, wrapped as ``variant`` says (outermost middleware)."""
    app = _fastapi()
    if variant == "bare":
        return app  # type: ignore[no-any-return]
    if variant == "pass-through":
        return AsgiPassThrough(app)
    if variant == "floor":
        return AsgiFloor(app)
    if variant == "shadowguard":
        from shadowguard.asgi import GuardMiddleware

        return GuardMiddleware(app, **SG_OPTIONS)
    if variant == "shadowguard-fastapi":
        from shadowguard_fastapi import ShadowGuard

        ShadowGuard(app, **SG_OPTIONS)
        return app  # type: ignore[no-any-return]
    if variant == "otel":
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return OpenTelemetryMiddleware(app, tracer_provider=_otel_provider())
    raise ValueError(f"unknown ASGI variant {variant!r}")


def wsgi_app(variant: str) -> Callable[..., Any]:
    """The Flask hello app, its ``wsgi_app`` wrapped as ``variant`` says."""
    from flask import Flask

    app = Flask("hello")

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    if variant == "pass-through":
        app.wsgi_app = WsgiPassThrough(app.wsgi_app)  # type: ignore[method-assign]
    elif variant == "floor":
        app.wsgi_app = WsgiFloor(app.wsgi_app)  # type: ignore[method-assign]
    elif variant == "shadowguard":
        from shadowguard.wsgi import GuardMiddleware

        app.wsgi_app = GuardMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, **SG_OPTIONS
        )
    elif variant == "shadowguard-flask":
        from shadowguard_flask import ShadowGuard

        ShadowGuard(app, **SG_OPTIONS)
    elif variant == "otel":
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

        app.wsgi_app = OpenTelemetryMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, tracer_provider=_otel_provider()
        )
    elif variant != "bare":
        raise ValueError(f"unknown WSGI variant {variant!r}")
    return app


def asgi_from_env() -> Any:
    """uvicorn's factory: the variant named by ``SG_BENCH_VARIANT``."""
    return asgi_app(os.environ["SG_BENCH_VARIANT"])


def wsgi_from_env() -> Any:
    """gunicorn's factory: the variant named by ``SG_BENCH_VARIANT``."""
    return wsgi_app(os.environ["SG_BENCH_VARIANT"])


# -- one request in process, no sockets (run_all.py's target 6 and test_bench_middleware.py) ---

HELLO_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/hello",
    "raw_path": b"/hello",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"bench")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}

HELLO_ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/hello",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "127.0.0.1",
    "wsgi.url_scheme": "http",
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def asgi_requests(app: Any, n: int) -> None:
    """``n`` requests for ``GET /hello`` straight through the ASGI interface."""
    for _ in range(n):
        await app(dict(HELLO_SCOPE), _receive, _send)


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    return None


def wsgi_requests(app: Any, n: int) -> None:
    """``n`` requests for ``GET /hello`` straight through the WSGI interface, bodies drained
    and closed as a server does."""
    import io
    import sys

    for _ in range(n):
        environ = dict(HELLO_ENVIRON)
        environ["wsgi.input"] = io.BytesIO()
        environ["wsgi.errors"] = sys.stderr
        body = app(environ, _start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()


# -- the middleware alone, its caches warm or cold (test_bench_middleware.py's test_wsgi_alone)


class _Body:
    """A one-chunk body with a ``close()``, like a framework's response iterable."""

    def __init__(self) -> None:
        self.chunks = [b"hello"]

    def __iter__(self) -> Any:
        return iter(self.chunks)

    def close(self) -> None:
        return None


def tiny_wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A WSGI app that does next to nothing: what runs is the middleware in front of it."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _Body()


class WsgiFloor(_Floor):
    """A hand-written floor for a middleware of shadowguard's kind, and nothing more: the
    request in a context variable around the app, each body chunk and ``close()``; a clock and
    an in-flight count from entry to the body's end; the status line kept. What shadowguard's
    middleware costs beyond it is the price of what it checks and reports."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        exchange = _FloorExchange()
        exchange.floor = self
        exchange.respond = start_response
        exchange.started = _clock()
        exchange.ended = False
        self.flight.append(None)
        token = self.request.set(exchange)
        try:
            exchange.result = self.app(environ, exchange.start_response)
        finally:
            self.request.reset(token)
        return exchange


_FLOOR_END = object()


class _FloorExchange(_FloorEnd):
    """One request through ``WsgiFloor``: its ``start_response`` and the body it hands back."""

    __slots__ = ("respond", "result", "status")

    floor: WsgiFloor
    respond: Any
    result: Iterable[bytes]
    status: str

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        self.status = status
        return self.respond(status, headers)

    def __iter__(self) -> Any:
        request = self.floor.request
        token = request.set(self)
        try:
            iterator = iter(self.result)
            chunk = next(iterator, _FLOOR_END)
        finally:
            request.reset(token)
        while chunk is not _FLOOR_END:
            yield chunk
            token = request.set(self)
            try:
                chunk = next(iterator, _FLOOR_END)
            finally:
                request.reset(token)
        self.end()

    def close(self) -> None:
        close = getattr(self.result, "close", None)
        if close is not None:
            token = self.floor.request.set(self)
            try:
                close()
            finally:
                self.floor.request.reset(token)
        self.end()


def tiny_wsgi(variant: str) -> Callable[..., Any]:
    """``tiny_wsgi_app`` bare, behind the hand-written floor, or behind shadowguard's
    middleware as ``wsgi_app`` sets it up."""
    if variant == "bare":
        return tiny_wsgi_app
    if variant == "floor":
        return WsgiFloor(tiny_wsgi_app)
    if variant == "shadowguard":
        from shadowguard.wsgi import GuardMiddleware

        return GuardMiddleware(tiny_wsgi_app, **SG_OPTIONS)
    raise ValueError(f"unknown tiny WSGI variant {variant!r}")


def wsgi_requests_between(app: Any, flask: Any, n: int) -> None:
    """``n`` requests to ``app``, each one after a request to the Flask hello app ``flask`` (not
    None), or one after the other (None). Flask's request evicts the middleware's code and data
    from the CPU caches, as a server's work does between requests: the difference between the
    two is what the middleware costs cold beyond what it costs in a tight loop."""
    for _ in range(n):
        if flask is not None:
            wsgi_requests(flask, 1)
        wsgi_requests(app, 1)
