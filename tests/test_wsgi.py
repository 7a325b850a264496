"""The WSGI middleware against hand-built environs (PEP 3333): reports land on the request, and
the server and the app see exactly what they would see without it."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.util import FileWrapper, setup_testing_defaults

import pytest
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from _hostile import REQUEST_STATE_FAULTS, break_request_state
from shadowguard import AssumptionViolation, assume, configure, guarded
from shadowguard._context import current_request
from shadowguard.testing import capture_violations
from shadowguard.wsgi import CountingInput, Exchange, GuardMiddleware


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


def environ(
    path: str = "/", method: str = "GET", body: bytes = b"", **extra: Any
) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "wsgi.input": io.BytesIO(body),
        "wsgi.file_wrapper": FileWrapper,
    }
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    env.update(extra)
    setup_testing_defaults(env)
    return env


class Server:
    """A minimal PEP 3333 server loop: start_response, iterate, close."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.written: list[bytes] = []
        self.chunks: list[bytes] = []
        self.exc_info: Any = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            self.exc_info = exc_info
            if self.chunks:
                raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, headers
        return self.written.append

    def serve(self, app: Callable[..., Iterable[bytes]], env: dict[str, Any]) -> bytes:
        result = app(env, self.start_response)
        try:
            for chunk in result:
                self.chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return b"".join(self.written + self.chunks)


def hello(env: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class Closing:
    """An app iterable whose ``__iter__`` returns a distinct iterator, counting ``close()``."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise RuntimeError("mid-stream")
            yield chunk

    def close(self) -> None:
        self.closed += 1


# -- request context on guarded calls -------------------------------------------------------------


def test_guarded_calls_carry_the_path_and_method(otel: Any) -> None:
    """A guard called while serving reports ``url.path`` and ``http.request.method``."""

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        notify({"email": None})
        return hello(env, start_response)

    assert Server().serve(GuardMiddleware(app), environ("/caf\xc3\xa9", "PATCH")) == b"hello"
    event = next(e for e in otel.events() if e["shadowguard.guard"] == "users.email")
    assert event["url.path"] == "/café"
    assert event["http.request.method"] == "PATCH"


class _Liar(str):
    """A path from a hostile server: it says it is short, and slicing it gives it back whole."""

    __slots__ = ()

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: Any) -> str:
        return str(self)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"SCRIPT_NAME": "/shop", "PATH_INFO": "/caf\xc3\xa9"}, "/shop/café"),  # mounted
        ({"PATH_INFO": "/not-utf8-\xe9"}, "/not-utf8-\xe9"),  # no UTF-8: kept as it came
        ({"PATH_INFO": b"/bytes"}, "/"),  # no str: no path
        ({"PATH_INFO": None}, "/"),
        ({"PATH_INFO": "/" + "x" * 5000}, "/" + "x" * 1023),  # cut: bounded telemetry
        ({"PATH_INFO": _Liar("/" + "y" * 5000)}, "/" + "y" * 1023),  # its len() lies: cut too
        ({"PATH_INFO": _Liar("/caf\xc3\xa9")}, "/café"),
    ],
)
def test_the_reported_path_is_decoded_and_bounded_when_read(
    otel: Any, extra: dict[str, Any], expected: str
) -> None:
    """The path is normalised only when a report reads it, from what the server gave as the
    request came in; odd values never break the request."""

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        notify({"email": None})
        return hello(env, start_response)

    env = environ()
    env.update(extra)
    assert Server().serve(GuardMiddleware(app), env) == b"hello"
    event = next(e for e in otel.events() if e["shadowguard.guard"] == "users.email")
    assert event["url.path"] == expected


def test_guards_inside_the_body_iteration_see_the_request(otel: Any) -> None:
    """A streaming body runs after the app returned: its guards still carry the request."""

    def app(env: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"a"
        notify({"email": None})
        yield b"b"

    Server().serve(GuardMiddleware(app), environ("/stream"))
    (event,) = otel.events()
    assert event["url.path"] == "/stream"
    assert current_request.get() is None


def test_one_server_span_with_opentelemetry_wsgi(otel: Any) -> None:
    """Under OpenTelemetry's WSGI middleware, all violations are events on its server span."""

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        notify({"email": None})
        start_response("503 Service Unavailable", [])
        return [b"down"]

    wrapped = OpenTelemetryMiddleware(GuardMiddleware(app), tracer_provider=otel.tracer_provider)
    Server().serve(wrapped, environ("/x"))
    (span,) = otel.spans()
    assert span.kind.name == "SERVER"
    assert span.attributes["shadowguard.violations"] == 2
    assert [e.attributes["shadowguard.kind"] for e in span.events] == ["nullability", "status"]


def test_without_a_server_span_an_own_span_only_when_violated(otel: Any) -> None:
    """No recording span: a quiet request makes none, a violated one gets ``shadowguard http``."""
    middleware = GuardMiddleware(hello, error_status=200)
    quiet = GuardMiddleware(hello)
    Server().serve(quiet, environ("/quiet"))
    assert otel.spans() == []
    Server().serve(middleware, environ("/loud"))
    (span,) = otel.spans()
    assert span.name == "shadowguard http"
    assert span.attributes["url.path"] == "/loud"
    assert span.attributes["shadowguard.violations"] == 1


# -- request assumptions ------------------------------------------------------------------------


def test_latency_runs_until_the_last_chunk(clock: Clock) -> None:
    """Producing the body counts; what the app does in ``close()`` afterwards does not."""

    class Slow:
        def __iter__(self) -> Iterator[bytes]:
            for chunk in (b"a", b"b"):
                clock.advance(20)
                yield chunk

        def close(self) -> None:
            clock.advance(500)

    def app(env: dict[str, Any], start_response: Any) -> Slow:
        start_response("200 OK", [])
        return Slow()

    with capture_violations() as seen:
        Server().serve(GuardMiddleware(app, latency_ms=30), environ())
    assert [(v.kind, v.observed) for v in seen] == [("latency", "40.0 ms")]


@pytest.mark.parametrize(("elapsed_ns", "late"), [(2_500_000, False), (2_500_001, True)])
def test_a_fractional_budget_is_exact_to_the_nanosecond(
    clock: Clock, elapsed_ns: int, late: bool
) -> None:
    """The budget is kept in whole nanoseconds: 2.5 ms is over at 2,500,001 ns, not at 2.5 ms."""

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        clock.now += elapsed_ns
        return hello(env, start_response)

    with capture_violations() as seen:
        Server().serve(GuardMiddleware(app, latency_ms=2.5), environ())
    assert [(v.kind, v.expected) for v in seen] == ([("latency", "<= 2.5 ms")] if late else [])


def test_error_status_is_checked_on_start_response() -> None:
    """``503`` breaks ``error_status(500)``; ``404`` does not, unless a route says so."""

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(env["PATH_INFO"][1:] + " X", [])
        return [b""]

    middleware = GuardMiddleware(app, routes={"/404": {"error_status": 404}})
    with capture_violations() as seen:
        for path in ("/503", "/404", "/200", "/418"):
            Server().serve(middleware, environ(path))
    assert [(v.assumption, v.observed) for v in seen] == [
        ("error_status(500)", "503"),
        ("error_status(404, route='/404')", "404"),
    ]


def test_a_status_line_seen_before_is_checked_as_the_first_time() -> None:
    """The second ``503`` (a line known by then, found by one lookup) is reported too;
    odd statuses (unhashable, no number) reach the server as the app gave them."""
    statuses: list[Any] = ["503 Busy", "503 Busy", "200 OK", ["not", "a", "status"], "abc"]

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(statuses[int(env["PATH_INFO"][1:])], [])
        return [b"ok"]

    middleware = GuardMiddleware(app)
    with capture_violations() as seen:
        for index, status in enumerate(statuses):
            server = Server()
            assert server.serve(middleware, environ(f"/{index}")) == b"ok"
            assert server.status == status
    assert [v.observed for v in seen] == ["503", "503"]


def test_max_in_flight_counts_concurrent_threads() -> None:
    """Two threads serving at once break ``max_in_flight(1)``; the count drains afterwards."""
    barrier = threading.Barrier(2, timeout=5)

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        barrier.wait()
        return hello(env, start_response)

    middleware = GuardMiddleware(app, max_in_flight=1)
    with capture_violations() as seen:
        threads = [
            threading.Thread(target=Server().serve, args=(middleware, environ())) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    # counted without a lock: two requests counted at the same instant may both see the other
    assert [v.observed for v in seen] in (["2 in flight"], ["2 in flight"] * 2)
    assert middleware.guard.app_rule.in_flight == 0


def test_body_limits_from_content_length_and_from_reading() -> None:
    """Content-Length over the limit is reported at once; without it, bytes count as read."""

    def reader(env: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = env["wsgi.input"]
        stream.readline()
        stream.read(2)
        stream.readlines()
        return hello(env, start_response)

    middleware = GuardMiddleware(reader, max_body_bytes=5)
    with capture_violations() as seen:
        Server().serve(middleware, environ("/a", "POST", b"12345678"))
        chunked = environ("/b", "POST")
        chunked["wsgi.input"] = io.BytesIO(b"line one\nline two\n")
        Server().serve(middleware, chunked)
    assert [(v.kind, v.observed) for v in seen] == [("volume", "8 bytes"), ("volume", "> 5 bytes")]


def test_the_body_is_never_read_ahead_of_the_app() -> None:
    """The counting stream reads only what the app asks for, and iterates lines lazily."""
    stream = io.BytesIO(b"a\nbb\nccc\n")
    env = environ("/", "POST")
    env["wsgi.input"] = stream
    positions: list[int] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        wrapped = env["wsgi.input"]
        assert isinstance(wrapped, CountingInput)
        wrapped.read(1)
        positions.append(stream.tell())
        for _line in wrapped:
            positions.append(stream.tell())
            break
        assert wrapped.seekable() is True  # other attributes reach the server's stream
        return hello(env, start_response)

    Server().serve(GuardMiddleware(app, max_body_bytes=100), env)
    assert positions == [1, 2]


def test_no_input_wrapping_without_body_limits() -> None:
    """Without any body limit, the app gets the server's own ``wsgi.input``."""
    env = environ("/", "POST", b"data")
    original = env["wsgi.input"]
    seen: list[Any] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(env["wsgi.input"])
        return hello(env, start_response)

    Server().serve(GuardMiddleware(app, latency_ms=100), env)
    assert seen == [original]


# -- enforce mode -------------------------------------------------------------------------------


def test_enforce_refuses_before_calling_the_app() -> None:
    """Over ``max_in_flight`` or the Content-Length limit, enforce mode raises before the app
    runs and before any header is sent."""
    configure(mode="enforce")
    called: list[bool] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(True)
        return hello(env, start_response)

    middleware = GuardMiddleware(app, max_in_flight=1, max_body_bytes=2)
    server = Server()
    with pytest.raises(AssumptionViolation, match="max_body_bytes"):
        server.serve(middleware, environ("/", "POST", b"abc"))
    middleware.guard.app_rule.in_flight = 1
    with pytest.raises(AssumptionViolation, match="max_in_flight"):
        server.serve(middleware, environ())
    assert called == [] and server.status is None


def test_enforce_raises_from_read_and_never_after_headers(clock: Clock) -> None:
    """An overflowing read raises before headers; after them only reports."""
    configure(mode="enforce")

    def early(env: dict[str, Any], start_response: Any) -> list[bytes]:
        env["wsgi.input"].read()
        return hello(env, start_response)

    def late(env: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("500 Oops", [])
        clock.advance(100)
        yield env["wsgi.input"].read()

    chunked = environ("/", "POST")
    chunked["wsgi.input"] = io.BytesIO(b"0123456789")
    with pytest.raises(AssumptionViolation):
        Server().serve(GuardMiddleware(early, max_body_bytes=4), chunked)
    chunked["wsgi.input"] = io.BytesIO(b"0123456789")
    with capture_violations() as seen:
        body = Server().serve(GuardMiddleware(late, max_body_bytes=4, latency_ms=1), chunked)
    assert body == b"0123456789"
    assert sorted(v.kind for v in seen) == ["latency", "status", "volume"]


# -- never harm the host ------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", [None, 1])
def test_close_is_called_exactly_once(fail_at: int | None) -> None:
    """The app's ``close()`` runs once, after full consumption or a mid-stream exception."""
    iterable = Closing([b"a", b"b", b"c"], fail_at=fail_at)

    def app(env: dict[str, Any], start_response: Any) -> Closing:
        start_response("200 OK", [])
        return iterable

    result = GuardMiddleware(app)(environ(), Server().start_response)
    if fail_at is None:
        assert list(result) == [b"a", b"b", b"c"]
    else:
        with pytest.raises(RuntimeError, match="mid-stream"):
            list(result)
    result.close()  # type: ignore[attr-defined]
    result.close()  # type: ignore[attr-defined]
    assert iterable.closed == 1


def test_partial_consumption_closes_once_and_releases() -> None:
    """A server that stops early still closes once; the request's counters go back to zero."""
    iterable = Closing([b"a", b"b", b"c"])

    def app(env: dict[str, Any], start_response: Any) -> Closing:
        start_response("200 OK", [])
        return iterable

    middleware = GuardMiddleware(app, max_in_flight=3)
    result = middleware(environ(), Server().start_response)
    chunks = iter(result)
    assert next(chunks) == b"a"
    assert middleware.guard.app_rule.in_flight == 1
    result.close()  # type: ignore[attr-defined]
    chunks.close()  # type: ignore[attr-defined]  # as a ``yield from`` above would
    assert iterable.closed == 1
    assert middleware.guard.app_rule.in_flight == 0


def test_a_chunk_iterator_let_go_of_midway_closes_the_response() -> None:
    """A server or middleware that drops what ``iter()`` gave before its end ends the request
    at once, as a generator app's own iterable would: counters back to zero, one close."""
    iterable = Closing([b"a", b"b", b"c"])

    def app(env: dict[str, Any], start_response: Any) -> Closing:
        start_response("200 OK", [])
        return iterable

    middleware = GuardMiddleware(app, max_in_flight=3)
    result = middleware(environ(), Server().start_response)
    assert next(iter(result)) == b"a"  # the iterator is let go of here
    assert iterable.closed == 1
    assert middleware.guard.app_rule.in_flight == 0
    result.close()  # type: ignore[attr-defined]
    assert iterable.closed == 1


def test_the_apps_close_runs_at_the_servers_close_in_the_request_context(otel: Any) -> None:
    """The app's ``close()`` runs when the server closes the response, not when its iterable
    runs out (a server writes its last bytes in between), in the request context; an
    exception it raises comes out of the server's ``close()``, after the whole body."""
    order: list[str] = []

    class Body(Closing):
        def close(self) -> None:
            super().close()
            order.append("app close")
            notify({"email": None})
            raise OSError("close failed")

    iterable = Body([b"a", b"b"])

    def app(env: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [])
        return iterable

    result = GuardMiddleware(app, latency_ms=250)(environ("/closing"), Server().start_response)
    assert list(result) == [b"a", b"b"]
    order.append("server wrote the end")
    with pytest.raises(OSError, match="close failed"):
        result.close()  # type: ignore[attr-defined]
    result.close()  # type: ignore[attr-defined]
    assert order == ["server wrote the end", "app close"]
    assert iterable.closed == 1
    assert current_request.get() is None
    (event,) = otel.events()
    assert event["url.path"] == "/closing"


@pytest.mark.internal_errors
@pytest.mark.parametrize("broken", REQUEST_STATE_FAULTS)
def test_a_fault_making_the_request_state_lets_the_request_pass(
    broken: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If shadowguard cannot even make a request's state, the app is called as it would be
    without the middleware, and the fault is counted as an internal error."""
    from shadowguard import _faults

    middleware = GuardMiddleware(hello, latency_ms=250)
    break_request_state(middleware.guard, broken, monkeypatch)
    before = _faults.internal_errors_total()
    assert Server().serve(middleware, environ()) == b"hello"
    assert _faults.internal_errors_total() == before + 1
    assert middleware.guard.app_rule.in_flight == 0


def test_exhaustion_without_close_still_ends_the_request(otel: Any) -> None:
    """Test clients often never call ``close()``: the request ends at the last chunk."""
    middleware = GuardMiddleware(hello, error_status=200, max_in_flight=1)
    result = middleware(environ(), Server().start_response)
    assert list(result) == [b"hello"]
    assert middleware.guard.app_rule.in_flight == 0
    assert [s.name for s in otel.spans()] == ["shadowguard http"]


def test_file_wrapper_keeps_its_identity_when_nothing_needs_its_end() -> None:
    """A ``wsgi.file_wrapper`` response is returned as is (sendfile) unless a latency budget or
    an in-flight limit needs to see its end."""
    wrappers: list[Any] = []

    def app(env: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        wrapper = env["wsgi.file_wrapper"](io.BytesIO(b"file data"), 4)
        wrappers.append(wrapper)
        return wrapper

    plain = GuardMiddleware(app, max_body_bytes=10)(environ(), Server().start_response)
    assert plain is wrappers[-1]
    timed = GuardMiddleware(app, latency_ms=100)(environ(), Server().start_response)
    assert isinstance(timed, Exchange)
    assert b"".join(timed) == b"file data"


def test_start_response_with_exc_info_before_headers() -> None:
    """An app replacing its status with ``exc_info`` before any byte went out is served as
    usual, and its final status is what is checked."""

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise KeyError("late failure")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"error page"]

    server = Server()
    with capture_violations() as seen:
        assert server.serve(GuardMiddleware(app), environ()) == b"error page"
    assert server.status == "500 Internal Server Error"
    assert server.exc_info is not None and isinstance(server.exc_info[1], KeyError)
    assert [v.observed for v in seen] == ["500"]


@pytest.mark.parametrize("how", ["omitted", "positional None", "keyword"])
def test_start_response_without_exc_info_calls_the_server_with_two_arguments(how: str) -> None:
    """No ``exc_info`` (left out, ``None``, or ``None`` by keyword): the server's
    ``start_response`` is called with status and headers alone (the exc_info cases are below)."""
    received: list[tuple[Any, ...]] = []

    def server_start_response(*args: Any, **kwargs: Any) -> Callable[[bytes], None]:
        received.append((*args, *kwargs.values()))
        return lambda data: None

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        if how == "omitted":
            start_response("200 OK", [])
        elif how == "positional None":
            start_response("200 OK", [], None)
        else:
            start_response("200 OK", [], exc_info=None)
        return [b"ok"]

    assert list(GuardMiddleware(app)(environ(), server_start_response)) == [b"ok"]
    assert received == [("200 OK", [])]


def test_start_response_with_exc_info_after_headers_reraises() -> None:
    """After the first chunk went out, the server re-raises ``exc_info``: so do we."""

    def app(env: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise KeyError("late failure")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    with pytest.raises(KeyError, match="late failure"):
        Server().serve(GuardMiddleware(app), environ())


def test_legacy_write_apps_keep_working() -> None:
    """The ``write()`` callable from ``start_response`` is the server's own."""
    writes: list[Any] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        writes.append(write)
        write(b"written ")
        return [b"returned"]

    server = Server()
    assert server.serve(GuardMiddleware(app), environ()) == b"written returned"
    assert writes == [server.written.append]


def test_app_exceptions_propagate_as_the_same_object() -> None:
    """An app that raises before answering: same exception object, one ``status`` violation."""
    error = LookupError("nope")

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        raise error

    middleware = GuardMiddleware(app, max_in_flight=1)
    with capture_violations() as seen, pytest.raises(LookupError) as info:
        Server().serve(middleware, environ())
    assert info.value is error
    assert [v.observed for v in seen] == ["unhandled LookupError"]
    assert middleware.guard.app_rule.in_flight == 0


def test_base_exceptions_propagate_without_a_report() -> None:
    """``KeyboardInterrupt`` is not an error status: it passes through untouched."""

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyboardInterrupt

    with capture_violations() as seen, pytest.raises(KeyboardInterrupt):
        Server().serve(GuardMiddleware(app), environ())
    assert seen == []


def test_generator_apps_may_start_the_response_lazily() -> None:
    """PEP 3333 lets an app call ``start_response`` on its first iteration."""

    def app(env: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("502 Bad Gateway", [])
        yield b"upstream down"

    with capture_violations() as seen:
        assert Server().serve(GuardMiddleware(app), environ()) == b"upstream down"
    assert [v.observed for v in seen] == ["502"]


def test_global_off_is_a_plain_pass_through() -> None:
    """With ``SHADOWGUARD_MODE=off`` semantics the app's own result comes back untouched."""
    configure(mode="off")
    result = [b"x"]

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("500 X", [])
        return result

    with capture_violations() as seen:
        assert GuardMiddleware(app)(environ(), Server().start_response) is result
    assert seen == []


class AwaitingMiddleware(GuardMiddleware):
    """An adapter whose framework would start the server span inside the app."""

    awaits_span = True


def test_violations_waiting_for_a_span_that_never_comes_are_reported_at_the_end(
    otel: Any,
) -> None:
    """If the adapter never settles, the request's end still reports what waited."""
    middleware = AwaitingMiddleware(hello, max_in_flight=1)
    middleware.guard.app_rule.in_flight = 1
    with capture_violations() as seen:
        result = middleware(environ(), Server().start_response)
        assert seen == []  # waiting for the framework's span
        assert list(result) == [b"hello"]
    assert [v.kind for v in seen] == ["concurrency"]
    (span,) = otel.spans()
    assert span.name == "shadowguard http"


def test_environs_without_input_odd_paths_and_lengths() -> None:
    """No ``wsgi.input``, a path that is not UTF-8, a non-string CONTENT_LENGTH: served as is."""
    env = environ("/\xff", "POST", CONTENT_LENGTH=None)
    del env["wsgi.input"]
    seen: list[str] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        scope = current_request.get()
        assert scope is not None and scope.path is not None
        seen.append(scope.path)
        return hello(env, start_response)

    assert Server().serve(GuardMiddleware(app, max_body_bytes=1), env) == b"hello"
    assert seen == ["/\xff"]


def test_iterating_the_input_counts_every_line() -> None:
    """Reading ``wsgi.input`` line by line to its end counts all of it."""
    env = environ("/", "POST")
    env["wsgi.input"] = io.BytesIO(b"a\nbb\nccc\n")

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        assert [len(line) for line in env["wsgi.input"]] == [2, 3, 4]
        return hello(env, start_response)

    with capture_violations() as seen:
        Server().serve(GuardMiddleware(app, max_body_bytes=8), env)
    assert [v.observed for v in seen] == ["> 8 bytes"]
