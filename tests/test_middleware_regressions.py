"""Regressions found by review of the lean request state: each was a way for a request's
bookkeeping to go wrong under a hostile app, two threads, or a span that ended early."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

import shadowguard
from shadowguard.asgi import GuardMiddleware as AsgiGuard
from shadowguard.testing import capture_violations
from shadowguard.wsgi import GuardMiddleware as WsgiGuard


class CloseLookupRaises:
    """A response iterable whose ``close`` lookup raises (a lazy proxy gone wrong)."""

    def __iter__(self) -> Any:
        return iter([b"x"])

    def __getattr__(self, name: str) -> Any:
        if name == "close":
            raise RuntimeError("lazy proxy")
        raise AttributeError(name)


def test_wsgi_request_ends_when_the_close_lookup_raises() -> None:
    """The app's error reaches the server as before, and the request still ends: it is no
    longer in flight, so later requests are not over a limit they never reached."""

    def hostile(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        return CloseLookupRaises()

    def fine(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        return [b"ok"]

    middleware = WsgiGuard(hostile, max_in_flight=2)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}
    raised = 0
    for _ in range(3):
        body: Any = middleware(dict(environ), lambda status, headers, *exc: None)
        try:
            body.close()
        except RuntimeError:
            raised += 1
    assert raised == 3
    assert middleware.guard.app_rule.in_flight == 0
    middleware.app = fine
    with capture_violations() as seen:
        body = middleware(dict(environ), lambda status, headers, *exc: None)
        assert list(body) == [b"ok"]
        body.close()
    assert seen == []


def test_two_threads_of_one_request_read_its_span(otel: Any) -> None:
    """Threads serving one request (a threadpool dependency, ``copy_context().run``) read the
    request's span and context at once: both get them, nobody gets an error."""
    server = otel.tracer.start_span("server")
    with trace.use_span(server, end_on_exit=False):
        state = WsgiGuard(lambda e, s: []).guard.start("GET", "/x", None)
    assert state is not None
    real = otel_context.get_current
    barrier = threading.Barrier(2)
    seen: list[Any] = []
    errors: list[BaseException] = []

    def slow_get_current() -> Any:  # a thread switch inside OpenTelemetry's lookup
        barrier.wait(timeout=5)
        return real()

    def read() -> None:
        try:
            seen.append((state.span, state.parent))
        except BaseException as exc:
            errors.append(exc)

    otel_context.get_current = slow_get_current  # type: ignore[assignment]
    try:
        threads = [threading.Thread(target=read) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        otel_context.get_current = real
    server.end()
    state.finish()
    assert errors == []
    assert [span for span, _ in seen] == [server, server]


def test_violation_after_the_server_span_ended_counts_on_it(otel: Any) -> None:
    """OpenTelemetry's ASGI middleware ends the server span with the last body chunk; a
    background task's violation after that is reported without an extra request span."""

    @shadowguard.guarded(name="background")
    def work(x: int) -> int:
        return 0

    server = otel.tracer.start_span("server")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})
        server.end()
        work("not an int")  # type: ignore[arg-type]

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def main() -> None:
        with trace.use_span(server, end_on_exit=False):
            scope = {"type": "http", "method": "GET", "path": "/p", "headers": []}
            await AsgiGuard(app)(scope, receive, send)

    with capture_violations() as seen:
        asyncio.run(main())
    assert [v.assumption for v in seen] == ["type(x)"]
    names = [span.name for span in otel.spans()]
    assert not any(name.startswith("shadowguard http") for name in names), names


def _plain_environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
    }


def test_a_close_delegated_by_yield_from_ends_the_request() -> None:
    """A generator middleware above the guard that delegates with ``yield from`` closes what
    ``iter()`` gave it when the client goes away: that must reach the body's ``close()`` (the
    app's iterable closed, the request's in-flight entry released)."""
    closed: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])

        def body() -> Any:
            try:
                yield b"a"
                yield b"b"
            finally:
                closed.append(True)

        return body()

    guarded = WsgiGuard(app, max_in_flight=2)

    def outer(environ: dict[str, Any], start_response: Any) -> Any:
        yield from guarded(environ, start_response)

    for _ in range(3):
        served = outer(_plain_environ(), lambda status, headers, exc_info=None: None)
        assert next(served) == b"a"
        served.close()  # the server, on a client disconnect
    assert closed == [True] * 3
    assert guarded.guard.app_rule.in_flight == 0


def test_a_list_body_whose_end_is_timed_keeps_its_length() -> None:
    """wsgiref (like other servers) sets Content-Length from a one-chunk body's ``len()``: a
    list body the guard times to its end must keep that length."""
    import io
    import sys
    from wsgiref.handlers import SimpleHandler

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    def head(wsgi: Any) -> bytes:
        out = io.BytesIO()
        handler = SimpleHandler(io.BytesIO(), out, sys.stderr, _plain_environ(), multithread=False)
        handler.run(wsgi)
        return out.getvalue().split(b"\r\n\r\n")[0]

    assert b"Content-Length: 5" in head(app)
    for options in ({}, {"latency_ms": 1000}, {"max_in_flight": 8}):
        assert b"Content-Length: 5" in head(WsgiGuard(app, **options)), options
