"""shadowguard_flask: route templates from URL rules, per-view assumptions, idempotent install,
OpenTelemetry's Flask server span as the one carrier of violations, and a real gunicorn."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Blueprint, Flask, Response, request_finished, request_started, stream_with_context
from opentelemetry.instrumentation.flask import FlaskInstrumentor

import shadowguard_flask
from shadowguard import AssumptionViolation, assume, configure, guarded
from shadowguard.testing import capture_violations
from shadowguard.wsgi import GuardMiddleware
from shadowguard_flask import ShadowGuard, route_assumptions

HERE = Path(__file__).resolve().parent


@guarded(assume.not_none("user.email"), name="users.email")
def notify(user: dict[str, Any]) -> str:
    """A guarded function the views below call."""
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


def make_app(clock: Clock | None = None, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> dict[str, Any]:
        notify({"email": None})
        return {"id": user_id}

    @app.post("/reports")
    @route_assumptions(latency_ms=50, error_status=400)
    def report() -> tuple[str, int]:
        if clock is not None:
            clock.advance(80)
        return "bad input", 422

    @app.get("/boom")
    def boom() -> str:
        raise ZeroDivisionError("boom")

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            for part in ("a", "b", "c"):
                if clock is not None:
                    clock.advance(10)
                yield part

        return Response(stream_with_context(chunks()))

    return app


# -- route templates and per-view assumptions ------------------------------------------------------


def test_route_template_from_the_url_rule(otel: Any) -> None:
    """Guard violations inside a view carry the URL rule, not the concrete path."""
    app = make_app()
    ShadowGuard(app)
    assert app.test_client().get("/users/42").json == {"id": 42}
    (event,) = otel.events()
    assert event["http.route"] == "/users/<int:user_id>"
    assert event["http.request.method"] == "GET"
    assert "url.path" not in event


def test_blueprint_views_keep_their_prefix_and_endpoints(otel: Any) -> None:
    """Two guarded views in one blueprint: no endpoint clash, templates with the prefix."""
    app = Flask(__name__)
    shop = Blueprint("shop", __name__, url_prefix="/shop")

    @guarded(name="shop.list")
    def list_items(limit: int) -> list[int]:
        return list(range(limit))

    @guarded(name="shop.item")
    def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @shop.get("/items")
    @route_assumptions(error_status=400)
    def items() -> Any:
        return list_items("3")  # type: ignore[arg-type]

    @shop.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        return get_item(str(item_id))  # type: ignore[arg-type]

    app.register_blueprint(shop)
    ShadowGuard(app)
    client = app.test_client()
    assert client.get("/shop/items").data.startswith(b"<!doctype html>")
    assert client.get("/shop/items/4").json == {"id": "4"}
    routes = {e["shadowguard.guard"]: e["http.route"] for e in otel.events()}
    assert routes == {
        "shop.list": "/shop/items",
        "http": "/shop/items",
        "shop.item": "/shop/items/<int:item_id>",
    }


def test_route_assumptions_override_the_apps(clock: Clock) -> None:
    """A view's decorator sets its own latency budget and error threshold."""
    app = make_app(clock)
    ShadowGuard(app, latency_ms=1000)
    with capture_violations() as seen:
        assert app.test_client().post("/reports").status_code == 422
    assert sorted((v.assumption, v.observed) for v in seen) == [
        ("error_status(400, route='/reports')", "422"),
        ("latency_ms(50, route='/reports')", "80.0 ms"),
    ]


def test_route_assumptions_validate_at_decoration_and_return_the_view() -> None:
    """Bad options fail where they are written; the view itself is left as it is."""

    def view() -> str:
        return "ok"

    assert route_assumptions(latency_ms=5)(view) is view
    with pytest.raises(TypeError, match="unknown option 'latency'"):
        route_assumptions(latency=5)
    with pytest.raises(ValueError, match="max_in_flight must be >= 1"):
        route_assumptions(max_in_flight=0)


def test_a_views_in_flight_limit_is_enforced_before_it_runs() -> None:
    """In enforce mode, a view over its own ``max_in_flight`` is refused (Flask answers 500)
    and not called; in observe mode it runs and the violation is reported."""
    app = Flask(__name__)
    calls: list[int] = []

    @app.post("/pay/<int:amount>")
    @route_assumptions(max_in_flight=1)
    def pay(amount: int) -> str:
        calls.append(amount)
        return "paid"

    ShadowGuard(app)
    client = app.test_client()
    assert client.post("/pay/1").status_code == 200  # creates the route's rule
    middleware = app.extensions["shadowguard"].middleware
    (rule,) = middleware.guard._declared.values()
    rule.in_flight = 1  # another payment is being served
    with capture_violations() as seen:
        assert client.post("/pay/2").status_code == 200
    configure(mode="enforce")
    with capture_violations() as refused:
        assert client.post("/pay/3").status_code == 500
    assert calls == [1, 2]
    assert [v.observed for v in seen] == ["2 in flight"]
    assert [(v.kind, v.mode) for v in refused] == [("concurrency", "enforce")]
    assert rule.in_flight == 1


def test_a_views_body_limit_counts_the_upload() -> None:
    """A body limit declared only on a view is checked against that view's uploads."""
    app = Flask(__name__)

    @app.post("/upload")
    @route_assumptions(max_body_bytes=10)
    def upload() -> str:
        from flask import request

        return str(len(request.get_data()))

    @app.post("/other")
    def other() -> str:
        return "ok"

    ShadowGuard(app)
    client = app.test_client()
    with capture_violations() as seen:
        assert client.post("/upload", data=b"x" * 64).text == "64"
        assert client.post("/other", data=b"x" * 64).text == "ok"
    assert [(v.assumption, v.observed) for v in seen] == [
        ("max_body_bytes(10, route='/upload')", "64 bytes")
    ]


# -- install, twice, uninstall ---------------------------------------------------------------------


def test_installing_twice_is_a_no_op() -> None:
    """A second ShadowGuard (or init_app) on the same app changes nothing."""
    app = make_app()
    first = ShadowGuard(app, latency_ms=10)
    wsgi_app = app.wsgi_app
    ShadowGuard(app, latency_ms=20)
    first.init_app(app)
    assert app.wsgi_app is wsgi_app
    assert isinstance(wsgi_app, GuardMiddleware)
    assert wsgi_app.app.__func__ is Flask.wsgi_app  # type: ignore[attr-defined]


def test_init_app_and_uninstrument_restore_the_app(otel: Any) -> None:
    """The factory pattern works, and uninstrument gives the app back its own ``wsgi_app``."""
    guard = ShadowGuard(error_status=400)
    apps = [make_app(), make_app()]
    originals = [app.wsgi_app for app in apps]
    for app in apps:
        guard.init_app(app)
    guard.uninstrument(apps[0])
    assert apps[0].wsgi_app == originals[0]
    assert "shadowguard" not in apps[0].extensions
    apps[0].test_client().post("/reports")
    assert otel.spans() == []
    guard.uninstrument()
    assert apps[1].wsgi_app == originals[1]
    ShadowGuard(apps[0])  # can be installed again
    assert isinstance(apps[0].wsgi_app, GuardMiddleware)


def test_uninstrument_under_a_later_wrapper_steps_aside(otel: Any) -> None:
    """When something wrapped ``wsgi_app`` after shadowguard, uninstrument leaves the chain in
    place but makes shadowguard a pass-through."""
    app = make_app()
    guard = ShadowGuard(app)
    FlaskInstrumentor().instrument_app(app, tracer_provider=otel.tracer_provider)
    try:
        guard.uninstrument()
        with capture_violations() as seen:
            app.test_client().get("/users/1")
        assert [v.guard for v in seen] == ["users.email"]
        assert all("http.route" not in e for e in otel.events())
    finally:
        FlaskInstrumentor().uninstrument_app(app)


def test_hooks_wrap_two_app_methods_and_no_signal_fires_per_request(otel: Any) -> None:
    """The route and the final response come from wrappers of ``preprocess_request`` and
    ``process_response``: ``request_started``/``request_finished`` keep no receiver (a connected
    signal costs every request); uninstrument takes the wrappers off the app again."""
    app = make_app()
    guard = ShadowGuard(app)
    assert {"preprocess_request", "process_response"} <= set(vars(app))
    assert not request_started.has_receivers_for(app)
    assert not request_finished.has_receivers_for(app)
    app.test_client().get("/users/3")
    assert [e["http.route"] for e in otel.events()] == ["/users/<int:user_id>"]
    guard.uninstrument()
    assert not {"preprocess_request", "process_response"} & set(vars(app))
    assert app.preprocess_request.__func__ is Flask.preprocess_request  # type: ignore[attr-defined]


def test_a_later_patch_of_the_flask_class_still_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Instrumentation that patches ``Flask.preprocess_request``/``process_response`` after
    shadowguard was installed still runs: the hooks look the method up on each call."""
    app = make_app()
    ShadowGuard(app)
    calls: list[str] = []
    original_pre, original_post = Flask.preprocess_request, Flask.process_response

    def pre(self: Flask) -> Any:
        calls.append("pre")
        return original_pre(self)

    def post(self: Flask, response: Response) -> Response:
        calls.append("post")
        return original_post(self, response)

    monkeypatch.setattr(Flask, "preprocess_request", pre)
    monkeypatch.setattr(Flask, "process_response", post)
    assert app.test_client().get("/users/2").json == {"id": 2}
    assert calls == ["pre", "post"]


def test_uninstrument_under_a_later_method_wrapper_passes_through(otel: Any) -> None:
    """Something wrapped ``preprocess_request`` after shadowguard: uninstrument leaves that
    wrapper in place, and shadowguard's hooks under it only pass through."""
    app = make_app()
    guard = ShadowGuard(app)
    ours = app.preprocess_request
    calls: list[str] = []

    def later() -> Any:
        calls.append("later")
        return ours()

    app.preprocess_request = later  # type: ignore[method-assign]
    guard.uninstrument()
    assert app.preprocess_request is later
    with capture_violations() as seen:
        assert app.test_client().get("/users/1").status_code == 200
    assert calls == ["later"]
    assert [v.guard for v in seen] == ["users.email"]
    assert all("http.route" not in e for e in otel.events())


def test_unknown_options_fail_at_construction() -> None:
    """A misspelt option is a TypeError naming it, before any request."""
    with pytest.raises(TypeError, match="unknown option 'latency'"):
        ShadowGuard(latency=5)
    with pytest.raises(ValueError, match="latency_ms"):
        ShadowGuard(latency_ms=-1)


# -- spans: OpenTelemetry's Flask instrumentation or none ------------------------------------------


@pytest.mark.parametrize("shadowguard_first", [True, False])
def test_one_flask_server_span_carries_everything(
    otel: Any, clock: Clock, shadowguard_first: bool
) -> None:
    """With opentelemetry-instrumentation-flask, guard and request violations are events on
    its server span, which counts them; no shadowguard span is made, whatever the install order."""
    app = make_app(clock)
    if shadowguard_first:
        ShadowGuard(app, max_in_flight=1)
    FlaskInstrumentor().instrument_app(app, tracer_provider=otel.tracer_provider)
    if not shadowguard_first:
        ShadowGuard(app, max_in_flight=1)
    try:
        app.extensions["shadowguard"].middleware.guard.app_rule.in_flight = 1
        app.test_client().get("/users/7")
        app.test_client().post("/reports")
    finally:
        FlaskInstrumentor().uninstrument_app(app)
    spans = otel.spans()
    assert all(s.kind.name == "SERVER" for s in spans), [s.name for s in spans]
    by_route = {s.attributes["http.route"]: s for s in spans}
    user = by_route["/users/<int:user_id>"]
    assert sorted(e.attributes["shadowguard.kind"] for e in user.events) == [
        "concurrency",
        "nullability",
    ]
    assert user.attributes["shadowguard.violations"] == 2
    reports = by_route["/reports"]
    assert sorted(e.attributes["shadowguard.kind"] for e in reports.events) == [
        "concurrency",
        "latency",
        "status",
    ]
    assert reports.attributes["shadowguard.violations"] == 3


def test_without_opentelemetry_a_span_only_for_violated_requests(otel: Any) -> None:
    """Alone, the integration makes ``shadowguard http`` spans only where something broke."""
    app = make_app()
    ShadowGuard(app, error_status=404)
    client = app.test_client()
    assert client.get("/users/1").status_code == 200
    assert otel.spans()[0].name == "shadowguard users.email"  # the guard's own, nothing else
    otel.exporter.clear()
    response = client.get("/missing")
    assert response.status_code == 404
    assert otel.spans() == []  # shadowguard's span covers the request: until the body is sent
    assert response.data
    assert [(s.name, s.attributes["url.path"]) for s in otel.spans()] == [
        ("shadowguard http", "/missing")
    ]


def test_unhandled_exceptions_are_one_status_violation() -> None:
    """A view that raises: one ``status`` violation naming the exception type, whether Flask
    answers 500 itself or propagates the exception (testing mode), which stays the same object."""
    app = make_app()
    ShadowGuard(app)
    with capture_violations() as seen:
        assert app.test_client().get("/boom").status_code == 500
    assert [(v.kind, v.observed) for v in seen] == [("status", "unhandled ZeroDivisionError")]
    testing = make_app(TESTING=True)
    ShadowGuard(testing)
    with capture_violations() as seen, pytest.raises(ZeroDivisionError):
        testing.test_client().get("/boom")
    assert [v.observed for v in seen] == ["unhandled ZeroDivisionError"]


def test_guard_enforcement_is_not_reported_again_as_a_status() -> None:
    """An AssumptionViolation raised by a guard in enforce mode fails the request: the 500 is
    its consequence, not a second violation."""
    app = make_app()
    ShadowGuard(app)
    configure(overrides={"users.email": "enforce"})
    with capture_violations() as seen:
        assert app.test_client().get("/users/1").status_code == 500
    assert [v.guard for v in seen] == ["users.email"]
    with pytest.raises(AssumptionViolation):
        make_app(TESTING=True).test_client().get("/users/1")


def test_streamed_responses_pass_chunk_by_chunk_and_time_to_the_end(clock: Clock) -> None:
    """``stream_with_context`` bodies flow lazily; latency covers the whole stream."""
    app = make_app(clock)
    ShadowGuard(app, latency_ms=25)
    with capture_violations() as seen:
        response = app.test_client().get("/stream", buffered=False)
        chunks = iter(response.response)
        assert next(chunks) == b"a"
        assert clock.now == 1_000_000_000 + 10_000_000  # the rest is not produced yet
        assert b"".join(chunks) == b"bc"
        response.close()
    assert [(v.kind, v.observed) for v in seen] == [("latency", "30.0 ms")]


def test_the_package_exports_its_api() -> None:
    """The integration's public names are exactly the extension and the view decorator."""
    assert shadowguard_flask.__all__ == ["ShadowGuard", "route_assumptions"]


# -- a real server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A gunicorn (threaded worker) serving ``flask_server_app`` on loopback, stopped by PID."""
    port = _free_port()
    log = tmp_path / "violations.jsonl"
    env = dict(os.environ, SG_TEST_LOG=str(log), SHADOWGUARD_MODE="observe")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(HERE),
            "flask_server_app:app",
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
                raise RuntimeError(f"gunicorn did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
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
def test_a_real_gunicorn_reports_concurrent_requests(gunicorn: tuple[str, Path]) -> None:
    """Over real HTTP, two overlapping requests on a view limited to one break both the view's
    ``max_in_flight`` and its guard's ``max_concurrency``, and a missing key is reported with
    its route; the server stops by PID."""
    base, log = gunicorn
    with ThreadPoolExecutor(2) as pool:
        statuses = list(
            pool.map(lambda n: httpx.post(f"{base}/orders/{n}", timeout=20).status_code, [1, 2])
        )
    assert statuses == [200, 200]
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
        ("http", "concurrency", "2 in flight", "/orders/<int:order_id>"),
        ("orders.reserve", "concurrency", "2 in flight", "/orders/<int:order_id>"),
        ("users.render", "nullability", "missing", "/users/<int:user_id>"),
    }


@pytest.mark.internal_errors
def test_a_span_whose_is_recording_raises_does_not_break_the_request() -> None:
    """A span attached by a ``before_request`` hook (as OpenTelemetry's Flask instrumentation
    does) whose ``is_recording`` raises: an internal fault, and the request answers as usual."""
    from flask import g
    from opentelemetry import context, trace
    from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan

    class HostileSpan(NonRecordingSpan):
        def is_recording(self) -> bool:
            raise RuntimeError("span backend fault")

    app = Flask(__name__)

    @app.before_request
    def attach() -> None:
        g.token = context.attach(trace.set_span_in_context(HostileSpan(INVALID_SPAN_CONTEXT)))

    @app.teardown_request
    def detach(exc: BaseException | None) -> None:
        context.detach(g.token)

    @app.get("/")
    def index() -> str:
        return "hello"

    shadowguard_flask.ShadowGuard(app)
    response = app.test_client().get("/")
    assert (response.status_code, response.get_data()) == (200, b"hello")
