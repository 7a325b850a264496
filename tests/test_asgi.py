"""The ASGI middleware against hand-built scopes, Starlette apps and OpenTelemetry's ASGI
middleware: reports land on the request, and the host never notices the middleware."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route

from _hostile import REQUEST_STATE_FAULTS, break_request_state
from shadowguard import AssumptionViolation, assume, configure, guarded
from shadowguard._context import current_request
from shadowguard.asgi import GuardMiddleware
from shadowguard.testing import capture_violations

Message = dict[str, Any]


@guarded(assume.not_none("user.email"), name="users.email")
def notify(user: dict[str, Any]) -> str:
    """A guarded function the apps below call while serving a request."""
    return "sent"


class Clock:
    """A fake ``perf_counter_ns`` for the middleware: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += int(ms * 1_000_000)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The middleware's clock, under the test's control (no timing assertions)."""
    fake = Clock()
    monkeypatch.setattr("shadowguard._http._perf_ns", fake)
    return fake


def http_scope(
    path: str = "/", method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers if headers is not None else [(b"host", b"test")],
        "server": ("test", 80),
        "client": ("127.0.0.1", 1234),
    }


class Exchange:
    """receive/send closures of a hand-driven server: a body in chunks, then a disconnect."""

    def __init__(self, chunks: list[bytes] | None = None) -> None:
        self.chunks = list(chunks or [b""])
        self.sent: list[Message] = []
        self.received = 0

    async def receive(self) -> Message:
        self.received += 1
        if self.chunks:
            body = self.chunks.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(self.chunks)}
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])


def run(
    app: Callable[..., Awaitable[None]], scope: dict[str, Any], exchange: Exchange | None = None
) -> Exchange:
    exchange = exchange or Exchange()
    asyncio.run(app(scope, exchange.receive, exchange.send))
    return exchange


async def respond(send: Any, status: int = 200, body: bytes = b"ok") -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


def starlette_app(**options: Any) -> Starlette:
    async def user(request: Request) -> JSONResponse:
        notify({"email": None})
        return JSONResponse({"id": request.path_params["user_id"]})

    async def fail(request: Request) -> JSONResponse:
        raise ValueError("boom")

    async def teapot(request: Request) -> PlainTextResponse:
        return PlainTextResponse("short and stout", status_code=418)

    async def thing(request: Request) -> JSONResponse:
        notify({"email": None})
        return JSONResponse({"id": request.path_params["thing_id"]})

    inner = Starlette(routes=[Route("/things/{thing_id}", thing)])
    routes = [
        Route("/users/{user_id}", user),
        Route("/fail", fail),
        Route("/teapot", teapot),
        Mount("/inner", app=inner),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(GuardMiddleware, **options)
    return app


async def get(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(kwargs.pop("method", "GET"), path, **kwargs)


# -- request context on guarded calls ------------------------------------------------------------


def test_guarded_calls_see_the_route_template_of_starlette() -> None:
    """Inside a Starlette route the request scope names the template and the method."""
    seen: list[dict[str, str]] = []

    async def endpoint(request: Request) -> PlainTextResponse:
        scope = current_request.get()
        assert scope is not None
        seen.append(scope.attributes())
        return PlainTextResponse("ok")

    route = Route("/users/{user_id}", endpoint, methods=["DELETE"])
    app = GuardMiddleware(Starlette(routes=[route]))
    asyncio.run(get(app, "/users/42", method="DELETE"))
    assert seen == [{"http.route": "/users/{user_id}", "http.request.method": "DELETE"}]


def test_route_template_reaches_span_events_and_logs(otel: Any, logs: list[Any]) -> None:
    """Events and logs of guards name the route template, with a mount's prefix."""
    asyncio.run(get(starlette_app(), "/users/42"))
    asyncio.run(get(starlette_app(), "/inner/things/7"))
    routes = [e["http.route"] for e in otel.events()]
    assert routes == ["/users/{user_id}", "/inner/things/{thing_id}"]
    assert all(e["http.request.method"] == "GET" for e in otel.events())
    assert [entry["http.route"] for entry in logs if entry["event"] == "assumption_violated"] == [
        "/users/{user_id}"  # the second one is the same fingerprint: rate limited
    ]


def test_plain_asgi_apps_get_the_path(otel: Any) -> None:
    """Without a route template, events carry ``url.path`` instead."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        notify({"email": None})
        await respond(send)

    run(GuardMiddleware(app), http_scope("/users/7"))
    (event,) = otel.events()
    assert event["url.path"] == "/users/7"
    assert "http.route" not in event


def test_one_server_span_with_opentelemetry_asgi(otel: Any) -> None:
    """Under OpenTelemetry's ASGI middleware, guard and request violations are events on its
    server span, which counts them all; shadowguard makes no span of its own."""
    app = OpenTelemetryMiddleware(
        starlette_app(error_status=400), tracer_provider=otel.tracer_provider
    )
    asyncio.run(get(app, "/users/1"))
    asyncio.run(get(app, "/teapot"))
    servers = [s for s in otel.spans() if s.kind.name == "SERVER"]
    assert [s.name for s in otel.spans() if s.name.startswith("shadowguard")] == []
    by_path = {s.attributes["http.target"]: s for s in servers}
    user, teapot = by_path["/users/1"], by_path["/teapot"]
    assert user.attributes["shadowguard.violations"] == 1
    assert [e.attributes["shadowguard.guard"] for e in user.events] == ["users.email"]
    assert teapot.attributes["shadowguard.violations"] == 1
    (event,) = teapot.events
    assert event.attributes["shadowguard.kind"] == "status"
    assert event.attributes["shadowguard.observed"] == "418"
    assert event.attributes["http.route"] == "/teapot"


def test_without_a_server_span_an_own_span_only_when_violated(otel: Any, clock: Clock) -> None:
    """No recording span: quiet requests make no span, a violated one gets ``shadowguard http``
    covering it, with the request's violations and the total count."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/bad":
            notify({"email": None})
            clock.advance(30)
        await respond(send)

    middleware = GuardMiddleware(app, latency_ms=20)
    run(middleware, http_scope("/good"))
    assert otel.spans() == []
    run(middleware, http_scope("/bad"))
    spans = {s.name: s for s in otel.spans()}
    assert set(spans) == {"shadowguard users.email", "shadowguard http"}
    own = spans["shadowguard http"]
    assert own.attributes["shadowguard.violations"] == 2
    assert own.attributes["url.path"] == "/bad"
    assert own.attributes["http.request.method"] == "GET"
    (event,) = own.events
    assert event.attributes["shadowguard.assumption"] == "latency_ms(20)"
    assert event.attributes["shadowguard.observed"] == "30.0 ms"
    assert own.start_time is not None and own.end_time is not None
    assert own.start_time <= event.timestamp <= own.end_time


def test_the_request_context_is_restored_after_each_request() -> None:
    """The request scope is visible inside the app only."""
    inside: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        inside.append(current_request.get())
        await respond(send)

    run(GuardMiddleware(app), http_scope("/a"))
    assert inside[0] is not None and inside[0].path == "/a"
    assert current_request.get() is None


# -- request assumptions ------------------------------------------------------------------------


def test_latency_runs_until_the_last_body_byte_not_background_work(clock: Clock) -> None:
    """Time spent streaming counts; a background task after the last chunk does not."""

    async def chunks() -> Any:
        for part in (b"a", b"b", b"c"):
            clock.advance(10)
            yield part

    async def background() -> None:
        clock.advance(1000)

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(chunks(), background=BackgroundTask(background))

    app = Starlette(routes=[Route("/stream", stream)])
    with capture_violations() as seen:
        response = asyncio.run(get(GuardMiddleware(app, latency_ms=25), "/stream"))
    assert response.content == b"abc"
    assert [(v.kind, v.expected, v.observed) for v in seen] == [("latency", "<= 25 ms", "30.0 ms")]


def test_pathsend_ends_the_response(clock: Clock) -> None:
    """``http.response.pathsend`` is the last byte of a file response."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": "/etc/hostname"})
        clock.advance(100)

    with capture_violations() as seen:
        run(GuardMiddleware(app, latency_ms=10), http_scope())
    assert seen == []


def test_streaming_responses_pass_chunk_by_chunk() -> None:
    """Each chunk reaches the server before the app produces the next one: nothing buffered."""
    exchange = Exchange()
    observed: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for index in range(3):
            observed.append(len(exchange.sent))
            await send(
                {"type": "http.response.body", "body": b"x%d" % index, "more_body": index < 2}
            )

    run(GuardMiddleware(app, latency_ms=1000, max_body_bytes=10), http_scope(), exchange)
    assert observed == [1, 2, 3]
    assert [m.get("body") for m in exchange.sent[1:]] == [b"x0", b"x1", b"x2"]


def test_messages_pass_unaltered() -> None:
    """The server receives the very message objects the app sent."""
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]}
    body = {"type": "http.response.body", "body": b"hi"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start)
        await send(body)

    exchange = run(GuardMiddleware(app, error_status=100), http_scope())
    assert exchange.sent[0] is start and exchange.sent[1] is body
    assert start == {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]}


def test_error_status_default_and_per_route(clock: Clock) -> None:
    """5xx is a ``status`` violation by default; a route may lower the bar to 4xx or drop it."""
    app = starlette_app(routes={"/teapot": {"error_status": 400}, "/fail": {"error_status": None}})
    with capture_violations() as seen:
        asyncio.run(get(app, "/teapot"))
        asyncio.run(get(app, "/fail"))
        asyncio.run(get(app, "/nowhere"))
    assert [(v.assumption, v.observed) for v in seen] == [
        ("error_status(400, route='/teapot')", "418")
    ]


def test_every_status_is_checked_whether_looked_up_or_parsed() -> None:
    """Each ``503`` is reported (a code found by one lookup), a status outside
    100..599 is checked too, a number equal to a code counts as that code, and what is no
    status (a list, none, a bool, a fraction) reaches the server untouched and
    reports nothing."""
    statuses: list[Any] = [503, 503, 200, 999, "200", ["no"], None, True, 503.0, 500.5]

    def app_for(status: Any) -> Callable[..., Awaitable[None]]:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        return app

    with capture_violations() as seen:
        for status in statuses:
            exchange = run(GuardMiddleware(app_for(status)), http_scope())
            assert exchange.sent[0]["status"] == status
    assert [v.observed for v in seen] == ["503", "503", "999", "503"]  # 503.0 is 503


def test_max_in_flight_counts_concurrent_requests() -> None:
    """Two requests in flight at once break ``max_in_flight(1)``; the counter drains after."""
    middleware: GuardMiddleware

    async def scenario() -> None:
        both_in = asyncio.Event()
        entered = 0

        async def app(scope: Any, receive: Any, send: Any) -> None:
            nonlocal entered
            entered += 1
            if entered == 2:
                both_in.set()
            await asyncio.wait_for(both_in.wait(), 5)
            await respond(send)

        nonlocal middleware
        middleware = GuardMiddleware(app, max_in_flight=1)
        await asyncio.gather(
            *(middleware(http_scope(), Exchange().receive, Exchange().send) for _ in range(2))
        )

    with capture_violations() as seen:
        asyncio.run(scenario())
    assert [(v.kind, v.expected, v.observed) for v in seen] == [
        ("concurrency", "<= 1 in flight", "2 in flight")
    ]
    assert middleware.guard.app_rule.in_flight == 0


def test_route_in_flight_limit_counts_only_that_route() -> None:
    """A route's ``max_in_flight`` ignores requests of other routes."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await respond(send)

    middleware = GuardMiddleware(app, routes={"POST /pay": {"max_in_flight": 1}})
    pay = next(p.rule for p in middleware.guard.patterns)
    middleware.guard.app_rule.in_flight = 5  # other routes are busy
    with capture_violations() as seen:
        run(middleware, http_scope("/pay", "POST"))
        pay.in_flight = 1  # another payment is being served
        run(middleware, http_scope("/pay", "POST"))
    assert [(v.assumption, v.observed) for v in seen] == [
        ("max_in_flight(1, route='POST /pay')", "2 in flight")
    ]


def test_content_length_over_the_limit() -> None:
    """A declared body over ``max_body_bytes`` is a ``volume`` violation, reported once."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await respond(send)

    scope = http_scope("/up", "POST", [(b"content-length", b"12")])
    with capture_violations() as seen:
        run(GuardMiddleware(app, max_body_bytes=10), scope, Exchange([b"123456", b"789012"]))
    assert [(v.kind, v.expected, v.observed) for v in seen] == [
        ("volume", "<= 10 bytes", "12 bytes")
    ]


def test_streamed_bodies_are_counted_as_the_app_reads_them() -> None:
    """Without Content-Length the bytes are counted as read; nothing is read ahead of the app."""

    async def reads_one(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await respond(send)

    async def reads_all(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await respond(send)

    exchange = Exchange([b"12345", b"67890", b"abc"])
    with capture_violations() as seen:
        run(GuardMiddleware(reads_one, max_body_bytes=8), http_scope(method="POST"), exchange)
    assert seen == [] and exchange.received == 1
    with capture_violations() as seen:
        run(
            GuardMiddleware(reads_all, max_body_bytes=8),
            http_scope(method="POST"),
            Exchange([b"12345", b"67890", b"abc"]),
        )
    assert [v.observed for v in seen] == ["> 8 bytes"]


# -- enforce mode -------------------------------------------------------------------------------


def test_enforce_refuses_before_calling_the_app() -> None:
    """In enforce mode a request over ``max_in_flight`` or the Content-Length limit raises
    ``AssumptionViolation`` before the app is called and leaves no count behind."""
    configure(mode="enforce")
    called: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["path"])
        await respond(send)

    middleware = GuardMiddleware(app, max_in_flight=2, max_body_bytes=3)
    middleware.guard.app_rule.in_flight = 2
    with pytest.raises(AssumptionViolation) as info:
        run(middleware, http_scope("/busy"))
    assert [v.kind for v in info.value.violations] == ["concurrency"]
    middleware.guard.app_rule.in_flight = 0
    with pytest.raises(AssumptionViolation):
        run(middleware, http_scope("/big", "POST", [(b"content-length", b"4")]))
    assert called == []
    assert middleware.guard.app_rule.in_flight == 0


def test_enforce_raises_from_receive_when_a_stream_overflows() -> None:
    """A streamed body that overflows raises inside the app's ``receive()``, before the
    response started; the app's exception handling sees it like any read error."""
    configure(overrides={"http": "enforce"})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await respond(send)

    with capture_violations() as seen, pytest.raises(AssumptionViolation):
        run(
            GuardMiddleware(app, max_body_bytes=4),
            http_scope(method="POST"),
            Exchange([b"abc"] * 3),
        )
    assert [v.mode for v in seen] == ["enforce"]


def test_enforce_never_raises_once_the_response_started(clock: Clock) -> None:
    """Status, latency and a late body overflow are reported, never raised, after the start."""
    configure(mode="enforce")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        clock.advance(50)
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.body", "body": b"late"})

    with capture_violations() as seen:
        exchange = run(
            GuardMiddleware(app, latency_ms=10, max_body_bytes=1),
            http_scope(method="POST"),
            Exchange([b"ab", b"cd"]),
        )
    assert exchange.status == 503
    assert sorted(v.kind for v in seen) == ["latency", "status", "volume"]


# -- never harm the host ------------------------------------------------------------------------


def test_the_apps_receive_and_send_are_coroutine_functions() -> None:
    """Like the server's own: hosts check (asgiref's ``async_to_sync`` warns on a callable
    that is not a coroutine function)."""
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.extend(inspect.iscoroutinefunction(f) for f in (receive, send))
        await respond(send)

    run(GuardMiddleware(app), http_scope())
    assert seen == [True, True]


def test_other_scopes_pass_untouched(otel: Any) -> None:
    """Websocket and lifespan scopes reach the app with the server's own receive/send."""
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((receive, send, current_request.get()))

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    middleware = GuardMiddleware(app, latency_ms=1)
    for kind in ("websocket", "lifespan"):
        asyncio.run(middleware({"type": kind, "path": "/ws"}, receive, send))
    assert seen == [(receive, send, None), (receive, send, None)]
    assert otel.spans() == []


def test_app_exceptions_propagate_as_the_same_object() -> None:
    """An exception before the response is the same object outside, and a ``status``
    violation: the server answers it with a 500."""
    error = ValueError("boom")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise error

    with capture_violations() as seen, pytest.raises(ValueError) as info:
        run(GuardMiddleware(app), http_scope())
    assert info.value is error
    assert [(v.kind, v.observed) for v in seen] == [("status", "unhandled ValueError")]


def test_exceptions_after_the_response_started_are_not_a_status() -> None:
    """Once the status went out, a failing app is not reported as an error status."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-stream")

    with capture_violations() as seen, pytest.raises(RuntimeError):
        run(GuardMiddleware(app), http_scope())
    assert seen == []


def test_starlette_errors_are_reported_once() -> None:
    """Starlette's own 500 goes out after the middleware re-raised: one violation."""
    with capture_violations() as seen:
        response = asyncio.run(get(starlette_app(), "/fail"))
    assert response.status_code == 500
    assert [v.observed for v in seen] == ["unhandled ValueError"]


def test_cancellation_propagates_and_releases_the_request() -> None:
    """A cancelled request ends cancelled, with its counters given back and no error reported."""
    middleware: GuardMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(3600)

    async def scenario() -> asyncio.Task[None]:
        nonlocal middleware
        middleware = GuardMiddleware(app, max_in_flight=1)
        task = asyncio.ensure_future(middleware(http_scope(), Exchange().receive, Exchange().send))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task

    with capture_violations() as seen:
        task = asyncio.run(scenario())
    assert task.cancelled()
    assert seen == []
    assert middleware.guard.app_rule.in_flight == 0


def test_client_disconnects_are_not_errors() -> None:
    """An app that gives up after ``http.disconnect`` is not an error status."""

    class ClientGone(Exception):
        pass

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        raise ClientGone

    with capture_violations() as seen, pytest.raises(ClientGone):
        run(GuardMiddleware(app), http_scope())
    assert seen == []


def test_a_failing_send_propagates_and_is_not_an_error_status() -> None:
    """When the server's send raises (client gone), the error propagates as it is."""

    async def broken_send(message: Message) -> None:
        raise OSError("connection reset")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await respond(send)

    async def scenario() -> None:
        await GuardMiddleware(app)(http_scope(), Exchange().receive, broken_send)

    with capture_violations() as seen, pytest.raises(OSError, match="connection reset"):
        asyncio.run(scenario())
    assert seen == []


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"content-length", b"not-a-number")],
        [(b"x-latin", "caf\xe9".encode("latin-1")), (b"x-big", b"v" * 1_000_000)],
    ],
)
def test_odd_scopes_pass_through(headers: list[tuple[bytes, bytes]]) -> None:
    """Missing server/client, odd or huge headers: the request is served as usual."""
    scope = http_scope(headers=headers)
    del scope["server"], scope["client"]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await respond(send)

    assert run(GuardMiddleware(app, max_body_bytes=1), scope).status == 200


@pytest.mark.internal_errors
def test_internal_faults_never_reach_the_host() -> None:
    """A route object that explodes when read is shadowguard's problem, not the request's."""

    class HostileRoute:
        @property
        def path(self) -> str:
            raise RuntimeError("no")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = HostileRoute()
        notify({"email": None})
        await respond(send, status=503)

    with capture_violations() as seen:
        exchange = run(GuardMiddleware(app), http_scope())
    assert exchange.status == 503
    assert sorted(v.guard for v in seen) == ["http", "users.email"]


@pytest.mark.internal_errors
@pytest.mark.parametrize("broken", REQUEST_STATE_FAULTS)
def test_a_fault_making_the_request_state_lets_the_request_pass(
    broken: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If shadowguard cannot even make a request's state, the app gets the server's own
    ``receive`` and ``send`` and no request scope, and the fault is counted once."""
    from shadowguard import _faults

    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((receive, send, current_request.get()))
        await respond(send, status=500)

    middleware = GuardMiddleware(app, latency_ms=250)
    break_request_state(middleware.guard, broken, monkeypatch)
    before = _faults.internal_errors_total()
    exchange = Exchange()
    with capture_violations() as violations:
        asyncio.run(middleware(http_scope(), exchange.receive, exchange.send))
    assert exchange.status == 500
    assert seen == [(exchange.receive, exchange.send, None)]
    assert violations == []
    assert _faults.internal_errors_total() == before + 1
    assert middleware.guard.app_rule.in_flight == 0


@pytest.fixture
def no_sdk_spans() -> Iterator[None]:
    """Without a configured SDK the OpenTelemetry API is a no-op: shadowguard must cope."""
    configure(tracer_provider=None)
    yield


def test_works_with_the_opentelemetry_api_alone(no_sdk_spans: None) -> None:
    """No SDK at all: violations still reach listeners, nothing raises."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        notify({"email": None})
        await respond(send, status=500)

    with capture_violations() as seen:
        run(GuardMiddleware(app), http_scope())
    assert sorted(v.guard for v in seen) == ["http", "users.email"]


def test_a_mounted_plain_app_is_named_by_its_mount() -> None:
    """Under a Starlette ``Mount`` of a plain ASGI app, the route is the mount's ``/{path}``."""
    seen: list[dict[str, str]] = []

    async def files(scope: Any, receive: Any, send: Any) -> None:
        request_scope = current_request.get()
        assert request_scope is not None
        seen.append(request_scope.attributes())
        await respond(send)

    app = GuardMiddleware(Starlette(routes=[Mount("/static", app=files)]))
    asyncio.run(get(app, "/static/css/site.css"))
    assert seen == [{"http.route": "/static/{path}", "http.request.method": "GET"}]


def test_global_off_passes_http_scopes_untouched() -> None:
    """With shadowguard off the app gets the server's own receive/send and no request scope."""
    configure(mode="off")
    exchange = Exchange()
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((receive, send, current_request.get()))
        await respond(send, status=500)

    asyncio.run(GuardMiddleware(app)(http_scope(), exchange.receive, exchange.send))
    assert seen == [(exchange.receive, exchange.send, None)]


def test_trailers_pass_through() -> None:
    """Response trailers after the last body chunk reach the server as sent."""
    trailers = {"type": "http.response.trailers", "headers": [], "more_trailers": False}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"x"})
        await send(trailers)

    assert run(GuardMiddleware(app), http_scope()).sent[-1] is trailers


@pytest.mark.internal_errors
def test_malformed_headers_are_not_the_requests_problem() -> None:
    """Headers that are not name/value pairs: no Content-Length is read, the request is served."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await respond(send)

    scope = http_scope(headers=[b"garbage"])  # type: ignore[list-item]
    assert run(GuardMiddleware(app, max_body_bytes=1), scope).status == 200
