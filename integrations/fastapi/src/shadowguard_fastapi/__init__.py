"""FastAPI integration for shadowguard: see, on each request, which assumptions production broke.

    from fastapi import FastAPI
    from shadowguard_fastapi import ShadowGuard, route_assumptions

    app = FastAPI()
    ShadowGuard(app, latency_ms=250, max_in_flight=64)

    @app.post("/orders", dependencies=[route_assumptions(latency_ms=800, max_in_flight=4)])
    async def create_order(order: Order): ...

A thin adapter over :class:`shadowguard.asgi.GuardMiddleware`, added as the outermost user
middleware (inside Starlette's error handling, inside OpenTelemetry's FastAPI instrumentation
when that is active, so violations land on its server span). Each request is named by the route
FastAPI matched (``/users/{user_id}``, with the prefix of a mounted sub-app); a route's own
assumptions come from the :func:`route_assumptions` dependency, which adds no parameter to the
OpenAPI schema.
"""

from __future__ import annotations

import weakref
from typing import Any

from fastapi import Depends
from starlette.applications import Starlette
from starlette.middleware import Middleware

from shadowguard._http import HttpGuard, current_state, parse_limits
from shadowguard.asgi import GuardMiddleware

__all__ = ["ShadowGuard", "route_assumptions"]

_OPTIONS = ("name", "latency_ms", "max_in_flight", "max_body_bytes", "error_status", "routes")
_installed: weakref.WeakKeyDictionary[Starlette, ShadowGuard] = weakref.WeakKeyDictionary()


def route_assumptions(**options: Any) -> Any:
    """A dependency declaring one route's request assumptions (``latency_ms``,
    ``max_in_flight``, ``max_body_bytes``, ``error_status``), overriding the app's. Use it in
    ``dependencies=[...]`` of a route or a router. In enforce mode a broken in-flight or body
    limit raises here, before the endpoint runs."""
    parse_limits("shadowguard_fastapi.route_assumptions", options)
    declared = dict(options)

    async def shadowguard_route_assumptions() -> None:
        state = current_state()
        if state is None:
            return
        template = state.read_route()
        state.set_route(template, declared)

    return Depends(shadowguard_route_assumptions)


class ShadowGuard:
    """Install shadowguard's ASGI middleware on a FastAPI (or Starlette) app.

    Options are those of :class:`shadowguard.asgi.GuardMiddleware`. Installing on an app that
    already has it does nothing; :meth:`uninstrument` takes the middleware out again. Works
    before or after the app started serving (the middleware stack is rebuilt).
    """

    def __init__(self, app: Starlette, **options: Any) -> None:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise TypeError(
                f"ShadowGuard: unknown option {unknown[0]!r} (known: {', '.join(_OPTIONS)})"
            )
        HttpGuard(**options)  # validate now, not on the first request
        self.app = app
        self.options = options
        self.middleware: Middleware | None = None
        if app in _installed:
            return
        self.middleware = Middleware(GuardMiddleware, **options)
        app.user_middleware.insert(0, self.middleware)
        _rebuild(app)
        _installed[app] = self

    @property
    def installed(self) -> bool:
        """Whether this object's middleware is on the app."""
        return self.middleware is not None and _installed.get(self.app) is self

    def uninstrument(self) -> None:
        """Take shadowguard off the app (a no-op if this object did not install it)."""
        if not self.installed:
            return
        self.app.user_middleware[:] = [
            m for m in self.app.user_middleware if m is not self.middleware
        ]
        del _installed[self.app]
        self.middleware = None
        _rebuild(self.app)


def _rebuild(app: Starlette) -> None:
    """Starlette builds its middleware stack once, on the first request: rebuild it if it was."""
    if app.middleware_stack is not None:
        app.middleware_stack = app.build_middleware_stack()
