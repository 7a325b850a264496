"""WSGI middleware (PEP 3333): watch every request of a WSGI app (Flask, Django, Falcon...).

    from shadowguard.wsgi import GuardMiddleware

    app.wsgi_app = GuardMiddleware(app.wsgi_app, latency_ms=250, max_in_flight=16)

The same options and reports as :mod:`shadowguard.asgi`: guarded calls made while a request is
served (the body's iteration included) carry its route, and the request is checked against
``latency_ms`` (until the body's last chunk is handed to the server), ``max_in_flight``,
``max_body_bytes`` (Content-Length, then the bytes as the app reads ``wsgi.input``) and
``error_status``.

The response iterable is passed through chunk by chunk, its ``close()`` called exactly once;
a ``wsgi.file_wrapper`` response is returned as it is (keeping the server's sendfile path) when
no latency budget or in-flight limit needs its end; ``start_response(..., exc_info)`` and the
legacy ``write()`` callable work unchanged. In enforce mode
:class:`~shadowguard.AssumptionViolation` is raised only before the status line is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from shadowguard._config import Mode, settings
from shadowguard._context import reset_request, set_request
from shadowguard._faults import internal_error
from shadowguard._http import HttpGuard, RequestState, request_path

__all__ = ["GuardMiddleware"]

_OFF = Mode.OFF

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class GuardMiddleware:
    """Check each request's assumptions and give guarded calls the request's route."""

    awaits_span = False
    """Adapters whose framework starts the server span inside the app (Flask) set this: request
    violations then wait for :meth:`~shadowguard._http.RequestState.settle`."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        name: str = "http",
        latency_ms: float | None = None,
        max_in_flight: int | None = None,
        max_body_bytes: int | None = None,
        error_status: int | None = 500,
        routes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.app = app
        self.awaits_span = self.awaits_span  # read per request: an instance's own is cheaper
        self.guard = HttpGuard(
            name,
            latency_ms=latency_ms,
            max_in_flight=max_in_flight,
            max_body_bytes=max_body_bytes,
            error_status=error_status,
            routes=routes,
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        app = self.app  # an attribute, then a call: a method call on it is not specialised
        if settings.mode is _OFF:
            return app(environ, start_response)
        guard = self.guard
        counts_body = guard.counts_body  # read once: a route declared meanwhile may flip it
        try:  # what HttpGuard.start does, inline: never raises, the request then passes as it is
            path = environ.get("PATH_INFO")  # decoded when read (see Exchange.path)
            if environ.get("SCRIPT_NAME"):
                path = _joined(environ)
            declared = environ.get("CONTENT_LENGTH")
            state: Exchange = Exchange()
            state.begin(
                guard,
                environ.get("REQUEST_METHOD"),
                path,
                _content_length(declared) if declared else None,
            )
        except Exception as exc:
            internal_error("http.start", exc)
            return app(environ, start_response)
        state.respond = start_response
        state.iterator = None
        state.closed = False
        if self.awaits_span:
            state.awaiting_span = True
        if counts_body and state.active:
            stream = environ.get("wsgi.input")
            if stream is not None:
                environ["wsgi.input"] = CountingInput(stream, state)
        token = set_request(state)
        try:
            if not state.admitted:
                state.admit()
            result = app(environ, state.start_response)
        except BaseException as exc:
            state.raised(exc)
            state.finish()
            raise
        finally:
            reset_request(token)
        if state.finished:
            return result
        kind = type(result)
        if state.in_force.latency_ns is not None or state.needs_end():  # the body's end matters
            if kind is list or kind is tuple:
                return InMemoryBody(state, result)  # type: ignore[arg-type]  # a list or tuple
        elif kind is list or kind is tuple or _is_file(environ, result):
            state.finish()  # the body is in memory (or the server sends a file): nothing to time
            return result
        state.result = result
        return state


def _is_file(environ: Environ, result: object) -> bool:
    """Whether ``result`` is the server's ``wsgi.file_wrapper`` (returned as it is, keeping the
    server's sendfile path)."""
    file_wrapper = environ.get("wsgi.file_wrapper")
    return isinstance(file_wrapper, type) and isinstance(result, file_wrapper)


_END = object()
"""What ``next(iterator, _END)`` gives at the end: no ``StopIteration`` raised and caught."""


class Exchange(RequestState):
    """One WSGI request: its state, the ``start_response`` the app gets, and the iterable the
    server gets back, passing the app's through chunk by chunk (one object for all three).

    The request context is set while the app's iterable runs; the request ends at exhaustion
    or ``close()``, whichever comes first (test clients often never close); the app's
    ``close()`` is called exactly once. It is its own iterator: a server, or a middleware above
    that delegates with ``yield from``, closes what ``iter()`` gave, and that must reach
    ``close()``; iterating it twice never starts the app's iterable again.
    """

    __slots__ = ("closed", "iterator", "respond", "result")

    respond: StartResponse
    """The server's ``start_response``."""
    result: Iterable[bytes]
    """The app's iterable, set once the app returned it."""
    iterator: Iterator[bytes] | None
    """``iter(result)``, once a chunk was asked for (shared: iterating twice never starts the
    app's iterable again)."""
    closed: bool

    @property
    def path(self) -> str:
        """The request path as reported, PEP 3333's latin-1 string decoded as UTF-8 (read only
        when a report or a route needs it)."""
        raw = self.raw_path
        if isinstance(raw, str) and not str.isascii(raw):  # str's own: a subclass's may lie
            raw = _decoded(str.__str__(raw))  # a plain copy, decoded (request_path copies the rest)
        return request_path(raw)

    @path.setter
    def path(self, value: object) -> None:
        self.raw_path = value

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        """The ``start_response`` the app gets: the status is checked, then the server's called
        (``exc_info`` passed on only when given, as the app gave it)."""
        self.response_start(status)
        respond = self.respond  # an attribute, then a call (see GuardMiddleware.__call__)
        if exc_info is None:
            return respond(status, headers)
        return respond(status, headers, exc_info)

    def __iter__(self) -> Iterator[bytes]:
        """The app's chunks, each pulled in the request context (a generator: resuming it costs
        no Python call, and its end raises no ``StopIteration``). The app's iterable is closed
        by the server's ``close()``, never earlier: what the app does there (and any exception
        it raises) comes where it would without the middleware. Closed, or let go of, before
        its end, it closes the response, as a generator app's own iterable would."""
        try:
            token = set_request(self)
            try:
                iterator = self.iterator
                if iterator is None:
                    iterator = self.iterator = iter(self.result)
                chunk = next(iterator, _END)
            finally:
                reset_request(token)
            while chunk is not _END:
                yield chunk  # type: ignore[misc]  # not _END: one of the app's chunks
                token = set_request(self)
                try:
                    chunk = next(iterator, _END)
                finally:
                    reset_request(token)
        except GeneratorExit:  # closed where it waited for the server: the response ends
            self.close()
            raise
        except BaseException as exc:
            self.raised(exc)
            self.finish()
            raise
        self.finish()

    def __next__(self) -> bytes:
        """A chunk, for callers that take the body for an iterator (the same chunks as
        iterating it, without a generator that would close the response once let go of)."""
        token = set_request(self)
        try:
            iterator = self.iterator
            if iterator is None:
                iterator = self.iterator = iter(self.result)
            chunk = next(iterator, _END)
            if chunk is _END:
                self.finish()
        except BaseException as exc:
            self.raised(exc)
            self.finish()
            raise
        finally:
            reset_request(token)
        if chunk is _END:
            raise StopIteration
        return chunk  # type: ignore[return-value]

    def close(self) -> None:
        """Close the app's iterable once, in the request context, then end the request."""
        if self.closed:
            return
        self.closed = True
        try:
            close = getattr(self.result, "close", None)  # a hostile iterable's lookup may raise
        except BaseException:
            self.finish()  # the request ends whatever the app's iterable does
            raise
        if close is None:
            self.finish()
            return
        token = set_request(self)
        try:
            close()
        finally:
            if not self.finished:  # else the body's end finished it
                self.finish()
            reset_request(token)


class InMemoryBody:
    """A list or tuple response whose end is timed or counted: its chunks as they are (iterating
    them runs no code of the app's, so no request context is set), the request finishing after
    the last one or at ``close()``. Its ``len()`` is the list's: servers set Content-Length from
    a one-chunk body's length, as they would for the app's own list."""

    __slots__ = ("_chunks", "_state", "result")

    def __init__(self, state: RequestState, result: list[bytes] | tuple[bytes, ...]) -> None:
        self._state = state
        self.result = result
        self._chunks = iter(result)

    def __iter__(self) -> InMemoryBody:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks, _END)
        if chunk is _END:
            self._state.finish()
            raise StopIteration
        return chunk  # type: ignore[return-value]  # not _END: one of the app's chunks

    def __len__(self) -> int:
        return len(self.result)

    def close(self) -> None:
        """End the request (a list or tuple has nothing to close)."""
        self._state.finish()


class CountingInput:
    """``wsgi.input`` that counts the bytes the app reads, as it reads them."""

    __slots__ = ("_state", "_stream")

    def __init__(self, stream: Any, state: RequestState) -> None:
        self._stream = stream
        self._state = state

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self._state.count_body(len(data))
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self._state.count_body(len(data))
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        self._state.count_body(sum(len(line) for line in lines))
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._state.count_body(len(line))
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _joined(environ: Environ) -> str:
    """The full path of an app mounted under ``SCRIPT_NAME`` (still a latin-1 string)."""
    return str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or "")


def _decoded(raw: str) -> str:
    """A PEP 3333 "bytes as latin-1" string decoded as UTF-8 (as it is, if it is no UTF-8)."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def _content_length(value: object) -> int | None:
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
    return None
