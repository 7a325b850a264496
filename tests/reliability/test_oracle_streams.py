"""O1 by differential oracle, for streams: generators and async generators driven by arbitrary
``send``/``throw``/``close`` scripts, ASGI responses streamed chunk by chunk and WSGI bodies
iterated, closed early or failing mid-stream must look the same to the consumer with and
without shadowguard (same objects, same order, ``finally`` and ``close()`` exactly once).
"""

from __future__ import annotations

import asyncio
import gc
import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadowguard import asgi, assume, guarded, wsgi
from shadowguard.testing import capture_violations, strict_internal_errors

from .conftest import ORACLE_SETTINGS
from .oracle import (
    GEN_OPS,
    POOL,
    GenRecord,
    async_generator_body,
    drive_async_generator,
    drive_generator,
    generator_body,
    guard_generator,
    real_sinks,
)

OPS = st.lists(st.sampled_from(GEN_OPS), max_size=12)


# -- generators ------------------------------------------------------------------------------------


@ORACLE_SETTINGS
@given(ops=OPS, items=st.integers(0, 5), ret=st.integers(0, 7), x=st.sampled_from([[], [1], {}]))
def test_generators_yield_send_throw_close_alike(
    ops: list[str], items: int, ret: int, x: Any
) -> None:
    """The same yields (by identity), the same sent values and thrown exceptions reaching the
    body, the same ``StopIteration.value``, ``finally`` at most once and exactly when it runs
    without the guard (never for a generator closed or sent a value before it started)."""
    plain_record, twin_record = GenRecord(), GenRecord()
    plain_gen = generator_body(plain_record, items, ret)
    twin_gen = guard_generator(generator_body(twin_record, items, ret))
    with strict_internal_errors() as faults, real_sinks():
        plain = drive_generator(plain_gen(x, 0), ops)
        with capture_violations() as violations:
            twin = drive_generator(twin_gen(x, 0), ops)
    assert faults == []
    assert twin == plain
    assert twin_record.events == plain_record.events
    assert [type(e) for e in twin_record.thrown] == [type(e) for e in plain_record.thrown]
    assert twin_record.finally_runs == plain_record.finally_runs <= 1
    assert violations or plain_record.finally_runs == 0, "the guard was not watching"


@ORACLE_SETTINGS
@given(ops=OPS, items=st.integers(0, 5), x=st.sampled_from([[], [1], {}]))
def test_async_generators_asend_athrow_aclose_alike(ops: list[str], items: int, x: Any) -> None:
    """The async twin: ``asend``/``athrow``/``aclose`` sequences are indistinguishable."""
    plain_record, twin_record = GenRecord(), GenRecord()
    plain_gen = async_generator_body(plain_record, items)
    twin_gen = guard_generator(async_generator_body(twin_record, items))
    with strict_internal_errors() as faults, real_sinks():
        plain = asyncio.run(drive_async_generator(plain_gen(x, 0), ops))
        twin = asyncio.run(drive_async_generator(twin_gen(x, 0), ops))
    assert faults == []
    assert twin == plain
    assert twin_record.events == plain_record.events
    assert twin_record.finally_runs == plain_record.finally_runs <= 1


def test_thrown_exception_reaches_the_generator_body_as_the_same_object() -> None:
    """``throw(exc)`` delivers the very object to the body, and when the body lets it out, the
    caller gets that object back."""
    record = GenRecord()
    gen = guard_generator(generator_body(record, 3, 0))([], 0)
    assert next(gen) is POOL[0]
    swallowed = ValueError("swallowed")
    assert gen.throw(swallowed) is POOL[-1]
    assert record.thrown == [swallowed]
    escaping = KeyError("escaping")
    with pytest.raises(KeyError) as info:
        gen.throw(escaping)
    assert info.value is escaping
    assert record.finally_runs == 1


def test_async_generator_closed_from_another_task_and_by_the_garbage_collector() -> None:
    """``aclose()`` from another task and finalisation by the GC run ``finally`` once, with no
    unraisable error and nothing logged by asyncio."""
    unraisable: list[Any] = []
    loop_errors: list[Any] = []
    records = [GenRecord(), GenRecord()]
    agens = [guard_generator(async_generator_body(r, 5)) for r in records]

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: loop_errors.append(ctx))
        first = agens[0]([], 0)
        assert await first.__anext__() is POOL[0]
        await asyncio.create_task(first.aclose())  # closed by a task that did not start it
        second = agens[1]([], 0)
        assert await second.__anext__() is POOL[0]
        del second  # finalised by the GC: asyncio schedules its aclose()
        gc.collect()
        await asyncio.sleep(0.01)

    previous, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with strict_internal_errors() as faults:
            asyncio.run(main())
    finally:
        sys.unraisablehook = previous
    assert faults == [] and unraisable == [] and loop_errors == []
    assert [r.finally_runs for r in records] == [1, 1]


@pytest.mark.parametrize("where", ["before", "after"])
def test_cancelled_async_generator_consumer_propagates_cancellation(where: str) -> None:
    """A task consuming a guarded async generator is cancelled: ``CancelledError`` comes out,
    the task ends cancelled, ``finally`` runs once."""
    record = GenRecord()

    @guarded(assume.latency(ms=60_000), assume.max_concurrency(1), name="oracle.slow_agen")
    async def slow(x: Any) -> Any:
        try:
            yield 1
            await asyncio.sleep(60)
            yield 2
        finally:
            record.finally_runs += 1

    async def consume() -> None:
        async for _ in slow([]):
            pass

    async def main() -> asyncio.Task[None]:
        task = asyncio.create_task(consume())
        if where == "after":
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task

    with capture_violations() as violations:
        task = asyncio.run(main())
    assert task.cancelled()
    assert violations == []
    assert record.finally_runs == (1 if where == "after" else 0)
    assert slow.__shadowguard__.in_flight == 0


# -- ASGI ------------------------------------------------------------------------------------------


@dataclass
class AsgiRun:
    """What the server saw of one ASGI request, and what the app saw."""

    sent: list[Any] = field(default_factory=list)
    received_by_app: list[Any] = field(default_factory=list)
    app_sent: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    app_error: BaseException | None = None


@guarded(assume.not_none("user.email"), assume.latency(ms=1e-6), name="oracle.asgi_helper")
def _helper(user: dict[str, Any]) -> str:
    return "ok"


def _asgi_app(chunks: list[bytes], fail_at: int | None, read_body: bool, run: AsgiRun) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if read_body:
            while True:
                message = await receive()
                run.received_by_app.append(message)
                if not message.get("more_body"):
                    break
        _helper({"email": None})
        start = {"type": "http.response.start", "status": 200, "headers": [(b"x", b"y")]}
        run.app_sent.append(start)
        await send(start)
        for i, chunk in enumerate(chunks):
            if fail_at == i:
                error = RuntimeError("mid-stream", i)
                run.app_error = error
                raise error
            message = {"type": "http.response.body", "body": chunk, "more_body": True}
            run.app_sent.append(message)
            await send(message)
            await asyncio.sleep(0)
        final = {"type": "http.response.body", "body": b"", "more_body": False}
        run.app_sent.append(final)
        await send(final)

    return app


def _serve_asgi(app: Any, requests: list[dict[str, Any]], run: AsgiRun) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/stream",
        "raw_path": b"/stream",
        "query_string": b"",
        "headers": [(b"content-length", b"10")],
    }
    pending = iter(requests)

    async def receive() -> dict[str, Any]:
        return next(pending, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        run.sent.append(message)

    try:
        asyncio.run(app(scope, receive, send))
    except BaseException as exc:  # compared by identity
        run.error = exc


@ORACLE_SETTINGS
@given(
    chunks=st.lists(st.binary(max_size=6), max_size=6),
    fail_at=st.none() | st.integers(0, 5),
    read_body=st.booleans(),
    body=st.lists(st.binary(max_size=6), max_size=3),
)
def test_asgi_stream_passes_message_by_message(
    chunks: list[bytes], fail_at: int | None, read_body: bool, body: list[bytes]
) -> None:
    """Behind ``GuardMiddleware`` (every request assumption set to break) the server gets the
    app's very message objects in the same order, the app gets the server's very request
    messages, and an app exception comes out as the same object."""
    requests = [
        {"type": "http.request", "body": part, "more_body": i < len(body) - 1}
        for i, part in enumerate(body or [b""])
    ]
    plain, twin = AsgiRun(), AsgiRun()
    with strict_internal_errors() as faults, real_sinks() as sinks:
        _serve_asgi(_asgi_app(chunks, fail_at, read_body, plain), requests, plain)
        guarded_app = asgi.GuardMiddleware(
            _asgi_app(chunks, fail_at, read_body, twin),
            latency_ms=1e-6,
            max_in_flight=1,
            max_body_bytes=0,
            error_status=100,
        )
        _serve_asgi(guarded_app, requests, twin)
    assert faults == []
    for run in (plain, twin):
        assert len(run.sent) == len(run.app_sent)
        assert all(a is b for a, b in zip(run.sent, run.app_sent, strict=True))
        assert all(a is b for a, b in zip(run.received_by_app, requests, strict=False))
        assert run.error is run.app_error
    assert [m["body"] for m in twin.sent if "body" in m] == [
        m["body"] for m in plain.sent if "body" in m
    ]
    assert len(twin.received_by_app) == len(plain.received_by_app)
    assert sinks.exporter.get_finished_spans(), "the request's violations went nowhere"


# -- WSGI ------------------------------------------------------------------------------------------


@dataclass
class WsgiRun:
    """What the server saw of one WSGI request, and what the app did."""

    out: list[bytes] = field(default_factory=list)
    app_chunks: list[bytes] = field(default_factory=list)
    closes: int = 0
    started: list[tuple[Any, ...]] = field(default_factory=list)
    app_started: list[tuple[Any, ...]] = field(default_factory=list)
    read: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    app_error: BaseException | None = None


class _Body:
    """A response iterable whose ``__iter__`` returns a distinct iterator and whose ``close``
    counts; it may fail at a given chunk."""

    def __init__(self, chunks: list[bytes], fail_at: int | None, run: WsgiRun) -> None:
        self.chunks, self.fail_at, self.run = chunks, fail_at, run

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if self.fail_at == i:
                error = RuntimeError("mid-stream", i)
                self.run.app_error = error
                raise error
            _helper({"email": None})
            self.run.app_chunks.append(chunk)
            yield chunk

    def close(self) -> None:
        self.run.closes += 1


def _wsgi_app(
    chunks: list[bytes], fail_at: int | None, fail_early: bool, legacy: bool, run: WsgiRun
) -> Callable[..., Any]:
    status, headers = "200 OK", [("Content-Type", "text/plain")]

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        stream = environ["wsgi.input"]
        run.read.append(stream.read(3))
        run.read.append(stream.readline())
        run.read.extend(stream)
        run.app_started.append((status, headers))
        write = start_response(status, headers)
        if legacy:
            chunk = b"legacy"
            run.app_chunks.append(chunk)
            write(chunk)
        if fail_early:
            error = ValueError("before the body")
            run.app_error = error
            raise error
        return _Body(chunks, fail_at, run)

    return app


def _serve_wsgi(app: Any, run: WsgiRun, consume: int | None) -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/stream",
        "SCRIPT_NAME": "",
        "CONTENT_LENGTH": "12",
        "wsgi.input": io.BytesIO(b"abc\ndef\nghi\n"),
        "wsgi.url_scheme": "http",
    }

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        run.started.append((status, headers))
        return run.out.append

    try:
        result = app(environ, start_response)
        try:
            for i, chunk in enumerate(result):
                if consume is not None and i >= consume:
                    break
                run.out.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except BaseException as exc:  # compared by identity
        run.error = exc


@ORACLE_SETTINGS
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=6), max_size=6),
    fail_at=st.none() | st.integers(0, 5),
    fail_early=st.booleans(),
    legacy=st.booleans(),
    consume=st.none() | st.integers(0, 6),
)
def test_wsgi_body_passes_chunk_by_chunk_and_closes_once(
    chunks: list[bytes],
    fail_at: int | None,
    fail_early: bool,
    legacy: bool,
    consume: int | None,
) -> None:
    """Behind ``GuardMiddleware`` the server gets the app's very chunks in order (legacy
    ``write()`` included), ``start_response`` gets the app's very status and headers, the app
    reads the same request bytes, ``close()`` runs exactly once on the app's iterable, even on
    partial consumption or a mid-stream exception, which comes out as the same object."""
    plain, twin = WsgiRun(), WsgiRun()
    with strict_internal_errors() as faults, real_sinks():
        _serve_wsgi(_wsgi_app(chunks, fail_at, fail_early, legacy, plain), plain, consume)
        guarded_app = wsgi.GuardMiddleware(
            _wsgi_app(chunks, fail_at, fail_early, legacy, twin),
            latency_ms=1e-6,
            max_in_flight=1,
            max_body_bytes=0,
            error_status=100,
        )
        _serve_wsgi(guarded_app, twin, consume)
    assert faults == []
    for run in (plain, twin):
        assert all(a is b for a, b in zip(run.out, run.app_chunks, strict=False))
        assert len(run.out) <= len(run.app_chunks)
        pairs = zip(run.started, run.app_started, strict=True)
        assert all(a[0] is b[0] and a[1] is b[1] for a, b in pairs)
        assert run.error is run.app_error
    assert twin.out == plain.out
    assert twin.read == plain.read
    assert twin.closes == plain.closes == (0 if fail_early else 1)
    assert (twin.error is None) == (plain.error is None)
