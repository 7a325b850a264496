"""The request core's shortcuts for the usual request give the same observations as before.

The middleware reads canonical methods, three-digit WSGI statuses, ASCII paths and integer ASGI
statuses without the general parsing; anything else still takes the general way.
"""

from __future__ import annotations

import asyncio
import http
import io
from typing import Any

import pytest

from shadowguard import _context
from shadowguard._context import RequestScope
from shadowguard._http import HttpGuard
from shadowguard.asgi import GuardMiddleware as AsgiGuard
from shadowguard.testing import capture_violations
from shadowguard.wsgi import GuardMiddleware as WsgiGuard


@pytest.mark.parametrize(
    ("method", "expected"), [("GET", "GET"), ("get", "GET"), ("BREW", "_OTHER"), (None, "_OTHER")]
)
def test_methods_are_canonical(method: Any, expected: str) -> None:
    """Canonical methods pass as they are; others are upper-cased or become ``_OTHER``."""
    state = HttpGuard().start(method, "/x", None)
    assert state is not None
    assert state.method == expected
    state.finish()


def wsgi_request(app: Any, path: str = "/x") -> None:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": io.BytesIO()}
    body = app(environ, lambda status, headers, exc_info=None: None)
    for _chunk in body:
        pass
    close = getattr(body, "close", None)  # as a server does: a list body has none
    if close is not None:
        close()


@pytest.mark.parametrize("status", ["503 Service Unavailable", "503", " 503 odd"])
def test_wsgi_status_lines(status: str) -> None:
    """``503 Service Unavailable``, a bare ``503`` and an odd line all read as 503."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [])
        return [b""]

    with capture_violations() as violations:
        wsgi_request(WsgiGuard(app))
    assert [v.observed for v in violations] == ["503"]


def test_wsgi_non_ascii_path_is_decoded() -> None:
    """A UTF-8 path (latin-1 in the environ, PEP 3333) is still decoded; ASCII is kept as is."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("500 Internal Server Error", [])
        return [b""]

    with capture_violations() as violations:
        wsgi_request(WsgiGuard(app), "/caf\u00c3\u00a9")
        wsgi_request(WsgiGuard(app), "/plain")
    assert len(violations) == 2


def test_asgi_status_as_an_enum() -> None:
    """An ``HTTPStatus`` (an int subclass) is read like a plain int."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": http.HTTPStatus.BAD_GATEWAY})
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            return None

        scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
        await AsgiGuard(app)(scope, receive, send)

    with capture_violations() as violations:
        asyncio.run(main())
    assert [v.observed for v in violations] == ["502"]


def test_request_scope_counts_without_a_lock() -> None:
    """Each scope counts on its own atomic counter: exact, and no lock to renew after fork."""
    scope = RequestScope("GET", "/x")
    scope.add(2)
    scope.add(1)
    scope.add(0)
    assert scope.violations == 3
    assert not hasattr(_context, "_lock")
    scope.violations = 0
    assert scope.violations == 0
