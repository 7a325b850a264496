"""shadowguard_fastapi: route templates from the matched route, per-route assumptions as a
dependency, idempotent install, OpenTelemetry's FastAPI server span as the one carrier of
violations, and a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

import shadowguard_fastapi
from shadowguard import AssumptionViolation, assume, configure, guarded
from shadowguard.asgi import GuardMiddleware
from shadowguard.testing import capture_violations
from shadowguard_fastapi import ShadowGuard, route_assumptions

HERE = Path(__file__).resolve().parent


@guarded(assume.not_none("user.email"), name="users.email")
def notify(user: dict[str, Any]) -> str:
    """A guarded function the endpoints below call."""
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


def make_app(clock: Clock | None = None, declared: bool = True) -> FastAPI:
    app = FastAPI()
    api = APIRouter(prefix="/api")
    sub = FastAPI()

    def tick(ms: float) -> None:
        if clock is not None:
            clock.advance(ms)

    @app.get("/users/{user_id}")
    async def user(user_id: int) -> dict[str, int]:
        notify({"email": None})
        return {"id": user_id}

    reports = [route_assumptions(latency_ms=50, error_status=400)] if declared else []

    @app.post("/reports", dependencies=reports, status_code=422)
    async def report(background: BackgroundTasks) -> dict[str, str]:
        tick(80)
        background.add_task(tick, 1000)  # after the last byte: not part of latency
        return {"detail": "bad input"}

    @app.get("/boom")
    async def boom() -> None:
        raise ZeroDivisionError("boom")

    @app.get("/gone")
    async def gone() -> None:
        raise HTTPException(404, "gone")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for part in (b"a", b"b", b"c"):
                tick(10)
                yield part

        return StreamingResponse(chunks())

    @api.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        notify({"email": None})
        return {"id": item_id}

    @sub.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        notify({"email": None})
        return {"id": thing_id}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app.include_router(api)
    app.mount("/sub", sub)
    return app


async def call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)


def request(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return asyncio.run(call(app, method, path, **kwargs))


# -- route templates and per-route assumptions -----------------------------------------------------


def test_route_templates_from_the_matched_route(otel: Any) -> None:
    """Guard violations carry FastAPI's template, with router prefixes and mount prefixes."""
    app = make_app()
    ShadowGuard(app)
    for path in ("/users/3", "/api/items/4", "/sub/things/x"):
        assert request(app, "GET", path).status_code == 200
    assert [e["http.route"] for e in otel.events()] == [
        "/users/{user_id}",
        "/api/items/{item_id}",
        "/sub/things/{thing_id}",
    ]
    assert all("url.path" not in e for e in otel.events())


def test_route_assumptions_override_the_apps(clock: Clock) -> None:
    """The dependency sets the route's latency budget and error threshold; a background task
    after the last byte is not part of the latency."""
    app = make_app(clock)
    ShadowGuard(app, latency_ms=1000)
    with capture_violations() as seen:
        assert request(app, "POST", "/reports").status_code == 422
    assert sorted((v.assumption, v.observed) for v in seen) == [
        ("error_status(400, route='/reports')", "422"),
        ("latency_ms(50, route='/reports')", "80.0 ms"),
    ]


def test_the_dependency_leaves_openapi_unchanged() -> None:
    """``route_assumptions`` adds no parameter: the OpenAPI schema is the same without it."""
    with_dependency, without = make_app(declared=True), make_app(declared=False)
    ShadowGuard(with_dependency)
    assert with_dependency.openapi() == without.openapi()


def test_guarded_endpoints_with_depends_keep_their_schema() -> None:
    """A guarded dependency and endpoint: same OpenAPI, same answers, violations reported."""

    def build(guard: bool) -> FastAPI:
        app = FastAPI()

        def current_user(token: str) -> dict[str, Any]:
            return {"name": token, "email": None}

        dependency = (
            guarded(assume.not_none("return.email"), name="auth.user")(current_user)
            if guard
            else current_user
        )

        @app.get("/me")
        async def me(user: dict[str, Any] = Depends(dependency)) -> dict[str, Any]:  # noqa: B008
            return user

        if guard:
            ShadowGuard(app)
        return app

    guarded_app, plain = build(True), build(False)
    assert guarded_app.openapi() == plain.openapi()
    with capture_violations() as seen:
        assert request(guarded_app, "GET", "/me?token=ada").json() == {"name": "ada", "email": None}
    assert [v.guard for v in seen] == ["auth.user"]


def test_route_assumptions_validate_when_written() -> None:
    """Bad options fail at the route declaration, not on a request."""
    with pytest.raises(TypeError, match="unknown option 'timeout'"):
        route_assumptions(timeout=3)
    with pytest.raises(ValueError, match="max_body_bytes must be >= 0"):
        route_assumptions(max_body_bytes=-1)


def test_a_routes_in_flight_limit_is_enforced_before_the_endpoint() -> None:
    """In enforce mode a route over its own ``max_in_flight`` is refused before the endpoint
    runs (FastAPI answers 500); observe mode only reports."""
    app = FastAPI()
    calls: list[int] = []

    @app.post("/pay/{amount}", dependencies=[route_assumptions(max_in_flight=1)])
    async def pay(amount: int) -> str:
        calls.append(amount)
        return "paid"

    ShadowGuard(app)
    assert request(app, "POST", "/pay/1").status_code == 200
    middleware = app.middleware_stack
    while not isinstance(middleware, GuardMiddleware):
        middleware = middleware.app  # type: ignore[union-attr]
    (rule,) = middleware.guard._declared.values()
    rule.in_flight = 1  # another payment is being served
    with capture_violations() as seen:
        assert request(app, "POST", "/pay/2").status_code == 200
    configure(mode="enforce")
    with capture_violations() as refused:
        assert request(app, "POST", "/pay/3").status_code == 500
    assert calls == [1, 2]
    assert [v.observed for v in seen] == ["2 in flight"]
    assert [(v.kind, v.mode) for v in refused] == [("concurrency", "enforce")]
    assert rule.in_flight == 1


# -- install, twice, uninstall ---------------------------------------------------------------------


def test_installing_twice_is_a_no_op() -> None:
    """A second ShadowGuard on the same app adds no second middleware."""
    app = make_app()
    first = ShadowGuard(app, latency_ms=10)
    second = ShadowGuard(app, latency_ms=20)
    assert first.installed and not second.installed
    assert [m.cls for m in app.user_middleware].count(GuardMiddleware) == 1
    second.uninstrument()  # not its install: nothing happens
    assert first.installed


def test_uninstrument_restores_the_app_even_after_it_started(otel: Any) -> None:
    """Installed before or after the first request, uninstrument takes the middleware out."""
    app = make_app()
    assert request(app, "GET", "/users/1").status_code == 200  # the stack is built
    guard = ShadowGuard(app, error_status=200)
    request(app, "GET", "/users/1")
    assert any(s.name == "shadowguard http" for s in otel.spans())
    guard.uninstrument()
    guard.uninstrument()
    otel.exporter.clear()
    request(app, "GET", "/users/1")
    assert [s.name for s in otel.spans()] == ["shadowguard users.email"]
    assert GuardMiddleware not in [m.cls for m in app.user_middleware]
    assert all("http.route" not in e for e in otel.events())


def test_unknown_options_fail_at_construction() -> None:
    """A misspelt option is a TypeError naming it, before any request."""
    with pytest.raises(TypeError, match="unknown option 'latency'"):
        ShadowGuard(FastAPI(), latency=5)
    with pytest.raises(ValueError, match="error_status"):
        ShadowGuard(FastAPI(), error_status=700)


# -- spans: OpenTelemetry's FastAPI instrumentation or none ----------------------------------------


@pytest.mark.parametrize("shadowguard_first", [True, False])
def test_one_fastapi_server_span_carries_everything(
    otel: Any, clock: Clock, shadowguard_first: bool
) -> None:
    """With opentelemetry-instrumentation-fastapi, guard and request violations are events on
    its server span, which counts them; shadowguard makes no span, whatever the order."""
    app = make_app(clock)
    if shadowguard_first:
        ShadowGuard(app)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=otel.tracer_provider)
    if not shadowguard_first:
        ShadowGuard(app)
    try:
        request(app, "GET", "/users/7")
        request(app, "POST", "/reports")
        request(app, "GET", "/boom")
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
    servers = {s.attributes["http.route"]: s for s in otel.spans() if s.kind.name == "SERVER"}
    assert not [s.name for s in otel.spans() if s.name.startswith("shadowguard")]
    kinds = {
        route: sorted(
            e.attributes["shadowguard.kind"]
            for e in span.events
            if e.name == "shadowguard.violation" and e.attributes
        )
        for route, span in servers.items()
    }
    assert kinds == {
        "/users/{user_id}": ["nullability"],
        "/reports": ["latency", "status"],
        "/boom": ["status"],
    }
    assert {r: s.attributes["shadowguard.violations"] for r, s in servers.items()} == {
        "/users/{user_id}": 1,
        "/reports": 2,
        "/boom": 1,
    }


def test_without_opentelemetry_a_span_only_for_violated_requests(otel: Any) -> None:
    """Alone, the integration makes ``shadowguard http`` spans only where something broke."""
    app = make_app()
    ShadowGuard(app, error_status=500)
    assert request(app, "GET", "/gone").status_code == 404
    assert otel.spans() == []
    assert request(app, "GET", "/boom").status_code == 500
    (span,) = otel.spans()
    assert span.name == "shadowguard http"
    assert span.attributes["http.route"] == "/boom"
    assert span.events[0].attributes["shadowguard.observed"] == "unhandled ZeroDivisionError"


def test_exceptions_propagate_as_the_same_object() -> None:
    """With the server re-raising app errors, the endpoint's exception object arrives as is."""
    app = make_app()
    ShadowGuard(app)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get("/boom")

    with capture_violations() as seen, pytest.raises(ZeroDivisionError, match="boom"):
        asyncio.run(scenario())
    assert [v.observed for v in seen] == ["unhandled ZeroDivisionError"]


def test_guard_enforcement_is_not_reported_again_as_a_status() -> None:
    """A guard raising AssumptionViolation in enforce mode: the resulting 500 is no news."""
    app = make_app()
    ShadowGuard(app)
    configure(overrides={"users.email": "enforce"})
    with capture_violations() as seen:
        assert request(app, "GET", "/users/1").status_code == 500
    assert [v.guard for v in seen] == ["users.email"]
    assert AssumptionViolation.__name__ == "AssumptionViolation"


def test_streams_and_websockets_pass_through(clock: Clock) -> None:
    """A streaming response arrives whole and is timed to its end; a websocket session is
    served with the server's messages, untouched."""
    app = make_app(clock)
    ShadowGuard(app, latency_ms=25)
    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "ping"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    outgoing: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        outgoing.append(message)

    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
    with capture_violations() as seen:
        assert request(app, "GET", "/stream").content == b"abc"
        asyncio.run(app(scope, receive, send))
    assert [(v.kind, v.observed) for v in seen] == [("latency", "30.0 ms")]
    assert [m["type"] for m in outgoing] == [
        "websocket.accept",
        "websocket.send",
        "websocket.close",
    ]
    assert outgoing[1]["text"] == "ping"


def test_the_package_exports_its_api() -> None:
    """The integration's public names are exactly the installer and the dependency."""
    assert shadowguard_fastapi.__all__ == ["ShadowGuard", "route_assumptions"]


# -- a real server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def uvicorn(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A uvicorn serving ``fastapi_server_app`` on loopback, stopped by PID."""
    port = _free_port()
    log = tmp_path / "violations.jsonl"
    env = dict(os.environ, SG_TEST_LOG=str(log), SHADOWGUARD_MODE="observe")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "fastapi_server_app:app",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield base, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.e2e
def test_a_real_uvicorn_reports_concurrent_requests(uvicorn: tuple[str, Path]) -> None:
    """Over real HTTP, two overlapping requests on a route limited to one break both the
    route's ``max_in_flight`` and its guard's ``max_concurrency``, and a missing key is reported
    with its route; the server stops by PID."""
    base, log = uvicorn

    async def concurrently() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:
            responses = await asyncio.gather(client.post("/orders/1"), client.post("/orders/2"))
        return [r.status_code for r in responses]

    assert asyncio.run(concurrently()) == [200, 200]
    assert httpx.get(f"{base}/users/2", timeout=10).json() == {"id": 2, "email": None}
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        violated = [r for r in records if r.get("event") == "assumption_violated"]
        if len(violated) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    found = {(r["guard"], r["kind"], r["observed"], r.get("http.route")) for r in violated}
    assert found == {
        ("http", "concurrency", "2 in flight", "/orders/{order_id}"),
        ("orders.reserve", "concurrency", "2 in flight", "/orders/{order_id}"),
        ("users.render", "nullability", "missing", "/users/{user_id}"),
    }
