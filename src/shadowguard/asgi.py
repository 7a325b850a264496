"""ASGI middleware: watch every HTTP request of an ASGI app (Starlette, FastAPI, Quart...).

    from shadowguard.asgi import GuardMiddleware

    app = GuardMiddleware(app, latency_ms=250, max_in_flight=64, max_body_bytes=1_000_000,
                          routes={"POST /upload": {"max_body_bytes": 50_000_000}})

Every guarded function called while a request is served reports with the request's route
(``http.route``, or ``url.path`` where no template is known) and adds to the request span's
``shadowguard.violations``. The request itself is checked against ``latency_ms`` (until the last
body byte is sent), ``max_in_flight``, ``max_body_bytes`` (the declared Content-Length, then the
bytes as the app reads them) and ``error_status`` (a status at or above it, or an unhandled
exception, is a ``status`` violation); violations are reported under the guard name ``name``.

A pure ASGI middleware: bodies stream through message by message, websocket and lifespan scopes
pass untouched, exceptions of the app propagate as they are. In enforce mode it raises
:class:`~shadowguard.AssumptionViolation` only before the response started.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from shadowguard._config import Mode, settings
from shadowguard._context import reset_request, set_request
from shadowguard._faults import internal_error
from shadowguard._http import HttpGuard, RequestState

__all__ = ["GuardMiddleware"]

_OFF = Mode.OFF

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class GuardMiddleware:
    """Check each HTTP request's assumptions and give guarded calls the request's route."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str = "http",
        latency_ms: float | None = None,
        max_in_flight: int | None = None,
        max_body_bytes: int | None = None,
        error_status: int | None = 500,
        routes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.app = app
        self.guard = HttpGuard(
            name,
            latency_ms=latency_ms,
            max_in_flight=max_in_flight,
            max_body_bytes=max_body_bytes,
            error_status=error_status,
            routes=routes,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app  # an attribute, then a call: a method call on it is not specialised
        if scope.get("type") != "http" or settings.mode is _OFF:
            await app(scope, receive, send)
            return
        try:  # what HttpGuard.start does, inline: never raises, the request then passes as it is
            state: _Exchange = _Exchange()
            state.begin(
                self.guard, scope.get("method"), scope.get("path"), _from_scope, _from_scope
            )
        except Exception as exc:
            internal_error("http.start", exc)
            await app(scope, receive, send)
            return
        state.asgi_scope = scope
        state.entry_root = scope.get("root_path") or ""  # mounts grow it as they route
        state.server_receive = receive
        state.server_send = send
        token = set_request(state)
        try:
            if not state.admitted:
                state.admit()
            await app(scope, state.receive, state.send)
        except BaseException as exc:
            state.raised(exc)
            raise
        finally:
            state.finish()
            # The server's callables hold its connection, the scope what the app put there: a
            # state kept after the request (the reporter's flood short-cut keeps the last one)
            # must not keep them too.
            state.server_receive = _ended_receive
            state.server_send = _ended_send
            state.asgi_scope = _ENDED_SCOPE
            try:
                reset_request(token)
            except Exception as exc:  # pragma: no cover - reset in another context
                internal_error("asgi.context", exc)


class _Exchange(RequestState):
    """One ASGI request: its state, and the ``receive`` and ``send`` the app gets (one object
    per request for the three). It reads the Content-Length and the matched route from the
    request's scope only when asked: the fewer objects a request keeps, the rarer a busy
    server's garbage collections."""

    __slots__ = ("asgi_scope", "entry_root", "server_receive", "server_send")

    asgi_scope: Scope
    entry_root: str
    server_receive: Receive
    server_send: Send

    def read_content_length(self) -> int | None:
        """The declared Content-Length (read only if a body limit applies)."""
        declared = self.content_length
        if declared is _from_scope:
            declared = self.content_length = _content_length(self.asgi_scope)
        return declared  # type: ignore[return-value]  # an int or None once read

    def read_route(self) -> str | None:
        """The template of the route the framework matched, read when it is needed: Starlette
        and FastAPI put the matched route in ``scope["route"]`` and grow ``root_path`` under
        mounts. Never raises."""
        try:
            scope = self.asgi_scope
            route = scope.get("route")
            template = getattr(route, "path", None)
            if not isinstance(template, str):
                return None
            entry_root = self.entry_root
            root = scope.get("root_path") or ""
            prefix = (
                root[len(entry_root) :]
                if isinstance(root, str) and root.startswith(entry_root)
                else ""
            )
            if hasattr(type(route), "routes"):  # a mount: the app under it routed nothing more
                return prefix + "/{path}" if prefix else template
            return prefix + template
        except Exception as exc:
            internal_error("asgi.route", exc)
            return None

    async def receive(self) -> Message:
        """The server's ``receive``: request body bytes counted, a disconnect noted."""
        message = await self.server_receive()
        kind = message.get("type")
        if kind == "http.request":
            body = message.get("body")
            if body:
                self.count_body(len(body))
        elif kind == "http.disconnect":
            self._notes().disconnected = True
        return message

    async def send(self, message: Message) -> None:
        """The server's ``send``: the status checked, the end of the body timed. A coroutine
        function, as the server's is: hosts check (asgiref's ``async_to_sync`` warns on a
        plain callable)."""
        kind = message.get("type")
        if kind == "http.response.body":
            if not message.get("more_body", False):
                # Checked as the last chunk is handed over: OpenTelemetry's ASGI middleware
                # ends the server span as soon as it is sent.
                self.body_done()
        elif kind == "http.response.start":
            self.response_start(message.get("status"))
        elif kind == "http.response.pathsend":
            self.body_done()
        server_send = self.server_send  # an attribute, then a call: that one is specialised
        try:
            await server_send(message)
        except BaseException:
            self._notes().disconnected = True  # the client is gone or the server gave up on it
            raise


def _from_scope() -> None:
    """Marks the Content-Length and the route as read from the request's ASGI scope (see
    :class:`_Exchange`); called as a plain resolver, it knows nothing."""
    return None


_ENDED_SCOPE: Scope = {}
"""The scope of a request that ended: the real one is let go with the request."""


async def _ended_receive() -> Message:
    """``receive`` once the app returned: the client is gone, as servers then say."""
    return {"type": "http.disconnect"}


async def _ended_send(message: Message) -> None:
    """``send`` once the app returned: there is no response left to send."""
    raise RuntimeError("ASGI send after the app returned: the response is complete")


def _content_length(scope: Scope) -> int | None:
    try:
        for name, value in scope.get("headers") or ():
            if len(name) == 14 and name.lower() == b"content-length":
                text = value.strip()
                return int(text) if text.isdigit() else None
    except Exception as exc:
        internal_error("asgi.content_length", exc)
    return None
