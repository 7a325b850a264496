"""What the middleware's cheaper request path keeps: exact in-flight counts without a lock, the
OpenTelemetry context read straight from its variable, in-memory WSGI bodies handed over as they
are, and a request's violation count read only when something was reported."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace

from shadowguard import assume, guarded
from shadowguard._context import RequestScope, current_request
from shadowguard._http import HttpGuard, Rule, _current_context, parse_limits, recording_span
from shadowguard.testing import capture_violations
from shadowguard.wsgi import Exchange, InMemoryBody
from shadowguard.wsgi import GuardMiddleware as WsgiGuard

THREADS = 32


@guarded(assume.not_none("user.email"), name="costs.email")
def notify(user: dict[str, Any]) -> str:
    return "sent"


def environ(path: str = "/") -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": io.BytesIO()}


def serve(app: Any, env: dict[str, Any]) -> tuple[Any, list[bytes]]:
    """A server's loop: the iterable the middleware returned and the chunks it gave."""
    result = app(env, lambda status, headers, exc_info=None: None)
    chunks = list(result)
    close = getattr(result, "close", None)
    if close is not None:
        close()
    return result, chunks


# -- in flight ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("contention")
def test_in_flight_counts_every_overlap_without_a_lock() -> None:
    """All threads are inside the app at once: every request but possibly the first read more
    than one in flight as it came in, the last one read them all, and the count drains to 0.
    (Two requests entering at the very same time may both read the count that includes the
    other: each is a true count when it was read.)"""
    inside = threading.Barrier(THREADS, timeout=30)

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        inside.wait()
        start_response("200 OK", [])
        return [b"ok"]

    middleware = WsgiGuard(app, max_in_flight=1)
    errors: list[BaseException] = []

    def request() -> None:
        try:
            serve(middleware, environ())
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    with capture_violations() as seen:
        workers = [threading.Thread(target=request) for _ in range(THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    assert errors == []
    counts = sorted(int(v.observed.split()[0]) for v in seen)
    assert len(counts) in (THREADS - 1, THREADS)
    assert counts[0] >= 2 and counts[-1] == THREADS
    assert middleware.guard.app_rule.in_flight == 0


def test_in_flight_can_be_set_for_tests_and_never_goes_below_zero() -> None:
    """The settable count grows and shrinks the list; leaving more than entered is harmless."""
    rule = Rule(None, parse_limits("t", {"max_in_flight": 2}))
    rule.in_flight = 3
    assert rule.in_flight == 3
    assert rule.enter() == 4
    rule.in_flight = 1
    assert rule.in_flight == 1
    rule.leave()
    rule.leave()  # one more than was counted: nothing to give back
    assert rule.in_flight == 0
    assert rule.enter() is None  # 1 in flight: within the limit


def test_requests_of_one_guard_share_one_held_tuple() -> None:
    """A request counted in the app's rule only holds the guard's one tuple (no allocation)."""
    guard = HttpGuard(max_in_flight=4)
    first, second = guard.start("GET", "/a"), guard.start("GET", "/b")
    assert first is not None and second is not None
    first.admit()
    second.admit()
    assert first.held is second.held is guard.app_held
    first.finish()
    second.finish()
    assert guard.app_rule.in_flight == 0


# -- the OpenTelemetry context --------------------------------------------------------------------


def test_the_context_read_is_opentelemetry_s_current_context(otel: Any) -> None:
    """The fast read gives what ``opentelemetry.context.get_current()`` gives, span or not."""
    assert _current_context() is otel_context.get_current()
    assert recording_span() is None
    with otel.tracer.start_as_current_span("server") as span:
        assert _current_context() is otel_context.get_current()
        assert recording_span() is span is trace.get_current_span()
        state = HttpGuard().start("GET", "/")
        assert state is not None
        assert state.span is span
        assert state.parent is otel_context.get_current()
        state.finish()
    token = otel_context.attach(trace.set_span_in_context(trace.INVALID_SPAN))
    try:
        assert recording_span() is None  # a span that does not record is no request span
    finally:
        otel_context.detach(token)


# -- in-memory WSGI bodies ------------------------------------------------------------------------


def test_a_list_body_is_returned_as_it_is_when_nothing_times_its_end() -> None:
    """No latency budget, no in-flight limit: the server gets the app's own list, and the
    request is over when the app returns."""
    body = [b"a", b"b"]

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return body

    middleware = WsgiGuard(app)
    result, chunks = serve(middleware, environ())
    assert result is body
    assert chunks == [b"a", b"b"]
    assert middleware.guard.app_rule.in_flight == 0


def test_a_list_body_is_timed_to_its_last_chunk_without_the_request_context() -> None:
    """With a latency budget the list is passed chunk by chunk and the request ends with the
    last one; iterating a list runs no app code, so no context is set per chunk."""
    seen_context: list[Any] = []

    class Watching(list[bytes]):
        """Not a plain list: its iteration is the app's, and sees the request."""

        def __iter__(self) -> Iterator[bytes]:
            seen_context.append(current_request.get())
            return super().__iter__()

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return env["body"]  # type: ignore[no-any-return]

    middleware = WsgiGuard(app, latency_ms=10_000, max_in_flight=2)
    env = environ()
    env["body"] = (b"a", b"b")
    result, chunks = serve(middleware, env)
    assert isinstance(result, InMemoryBody) and len(result) == 2
    assert chunks == [b"a", b"b"]
    assert middleware.guard.app_rule.in_flight == 0
    env = environ()
    env["body"] = Watching([b"c"])
    result, chunks = serve(middleware, env)
    assert chunks == [b"c"]
    assert len(seen_context) == 1 and seen_context[0] is not None


# -- violation counts -----------------------------------------------------------------------------


def test_a_request_s_count_is_read_only_after_a_report(otel: Any) -> None:
    """``reported`` stays False on a quiet request; a violation inside sets it, and the
    request span carries the exact count."""
    quiet = RequestScope("GET", "/x")
    assert not quiet.reported and quiet.violations == 0
    states: list[Any] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        states.append(current_request.get())
        if env["PATH_INFO"] == "/bad":
            notify({"email": None})
            notify({"email": None})
        start_response("200 OK", [])
        return [b"ok"]

    middleware = WsgiGuard(app)
    with otel.tracer.start_as_current_span("server") as span:
        serve(middleware, environ("/ok"))
    assert not states[0].reported
    assert "shadowguard.violations" not in (span.attributes or {})
    with otel.tracer.start_as_current_span("server") as span:
        serve(middleware, environ("/bad"))
    assert states[1].reported and states[1].violations == 2
    assert span.attributes is not None
    assert span.attributes["shadowguard.violations"] == 2


# -- the body's chunks ----------------------------------------------------------------------------


class Chunks:
    """An app iterable (not a list): its chunks come from a generator of the app's."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed += 1


def test_the_body_is_freed_by_reference_counting_alone() -> None:
    """The body's chunk generator holds the request, not the body: once the server lets go,
    the app's iterable is freed at once, with the cycle collector off."""
    import gc
    import weakref

    chunks = Chunks(b"a", b"b")
    watch = weakref.ref(chunks)

    def app(env: dict[str, Any], start_response: Any) -> Chunks:
        start_response("200 OK", [])
        return env.pop("body")  # type: ignore[no-any-return]

    env = environ()
    env["body"] = chunks
    del chunks
    gc.disable()
    try:
        result, served = serve(WsgiGuard(app), env)
        assert served == [b"a", b"b"]
        assert watch() is not None and watch().closed == 1  # type: ignore[union-attr]
        del result
        assert watch() is None
    finally:
        gc.enable()


def test_next_on_the_body_gives_the_same_chunks_as_iterating_it() -> None:
    """A caller that takes the body for an iterator gets the chunks too, and iterating it
    afterwards goes on where ``next`` left off (the app's iterable is never started again)."""

    def app(env: dict[str, Any], start_response: Any) -> Chunks:
        start_response("200 OK", [])
        return Chunks(b"a", b"b", b"c")

    body = WsgiGuard(app)(environ(), lambda status, headers, exc_info=None: None)
    assert isinstance(body, Exchange)
    assert next(body) == b"a"
    assert list(body) == [b"b", b"c"]
    with pytest.raises(StopIteration):
        next(body)
    body.close()
    assert body.result.closed == 1  # type: ignore[attr-defined]
