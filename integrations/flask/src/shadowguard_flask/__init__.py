"""Flask integration for shadowguard: see, on each request, which assumptions production broke.

    from flask import Flask
    from shadowguard_flask import ShadowGuard, route_assumptions

    app = Flask(__name__)
    ShadowGuard(app, latency_ms=250, max_in_flight=32)   # or ShadowGuard().init_app(app)

    @app.post("/orders")
    @route_assumptions(latency_ms=800, max_body_bytes=64_000)
    def create_order(): ...

A thin adapter over :class:`shadowguard.wsgi.GuardMiddleware`: it wraps ``app.wsgi_app``, names
each request by its URL rule (``/users/<int:user_id>``), applies a view's
:func:`route_assumptions`, and puts request violations on the server span of
``opentelemetry-instrumentation-flask`` when that is active (it starts its span after the WSGI
middleware, so the adapter picks it up from Flask's signals). Responses whose body is already in
memory are checked when Flask finalizes them; streamed ones when their last chunk is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, got_request_exception, request, request_finished
from flask import request_started as flask_request_started
from opentelemetry import trace

from shadowguard._faults import internal_error
from shadowguard._http import HttpGuard, current_state, parse_limits
from shadowguard.wsgi import Environ, GuardMiddleware, StartResponse

__all__ = ["ShadowGuard", "route_assumptions"]

F = TypeVar("F", bound=Callable[..., Any])
EXTENSION = "shadowguard"
ROUTE_ATTRIBUTE = "__shadowguard_route__"
_OPTIONS = ("name", "latency_ms", "max_in_flight", "max_body_bytes", "error_status", "routes")


def route_assumptions(**options: Any) -> Callable[[F], F]:
    """Request assumptions for one view (``latency_ms``, ``max_in_flight``, ``max_body_bytes``,
    ``error_status``), overriding the app's; checked against the view's URL rule. Put it under
    (or over) ``@app.route``: the view is returned as it is."""
    parse_limits("shadowguard_flask.route_assumptions", options)

    def decorate(view: F) -> F:
        setattr(view, ROUTE_ATTRIBUTE, dict(options))
        return view

    return decorate


class ShadowGuard:
    """Install shadowguard's WSGI middleware on a Flask app (the usual extension pattern).

    Options are those of :class:`shadowguard.wsgi.GuardMiddleware`. Installing on an app that
    already has it does nothing; :meth:`uninstrument` gives the app back its ``wsgi_app``.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise TypeError(
                f"ShadowGuard: unknown option {unknown[0]!r} (known: {', '.join(_OPTIONS)})"
            )
        HttpGuard(**options)  # validate now, not on the first request
        self.options = options
        self._installed: dict[int, _Installation] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Guard ``app``'s requests (a no-op when shadowguard already guards it)."""
        if app.extensions.get(EXTENSION) is not None:
            return
        installation = _Installation(app, self.options)
        app.extensions[EXTENSION] = installation
        self._installed[id(app)] = installation

    def uninstrument(self, app: Flask | None = None) -> None:
        """Remove shadowguard from ``app`` (by default from every app this object installed on)."""
        targets = list(self._installed.values())
        if app is not None:
            targets = [i for i in targets if i.app is app]
        for installation in targets:
            installation.remove()
            self._installed.pop(id(installation.app), None)


class FlaskGuardMiddleware(GuardMiddleware):
    """The core WSGI middleware, plus what only Flask knows: whether any view declares a body
    limit (so ``wsgi.input`` is counted), and a bypass once uninstrumented under another wrapper."""

    awaits_span = True  # OpenTelemetry's Flask span starts in a before_request hook

    def __init__(self, app: Any, flask_app: Flask, **options: Any) -> None:
        super().__init__(app, **options)
        self.flask_app = flask_app
        self.bypass = False
        self._scanned = False

    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        if self.bypass:
            return self.app(environ, start_response)
        if not self._scanned:
            self._scan()
        return super().__call__(environ, start_response)

    def _scan(self) -> None:
        self._scanned = True  # Flask refuses new routes once it served a request
        for view in list(self.flask_app.view_functions.values()):
            options = getattr(view, ROUTE_ATTRIBUTE, None)
            if isinstance(options, dict) and options.get("max_body_bytes") is not None:
                self.guard.counts_body = True
                return


class _Installation:
    """shadowguard on one app: the middleware and the signal receivers, and how to remove them."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.app = app
        self.middleware = FlaskGuardMiddleware(app.wsgi_app, app, **options)
        app.wsgi_app = self.middleware  # type: ignore[method-assign]
        flask_request_started.connect(self.request_started, app, weak=False)
        request_finished.connect(self.request_finished, app, weak=False)
        got_request_exception.connect(self.got_request_exception, app, weak=False)

    def remove(self) -> None:
        flask_request_started.disconnect(self.request_started, self.app)
        request_finished.disconnect(self.request_finished, self.app)
        got_request_exception.disconnect(self.got_request_exception, self.app)
        if self.app.wsgi_app is self.middleware:
            self.app.wsgi_app = self.middleware.app  # type: ignore[method-assign,assignment]
        else:  # wrapped again after us (e.g. by OpenTelemetry): step aside instead
            self.middleware.bypass = True
        if self.app.extensions.get(EXTENSION) is self:
            del self.app.extensions[EXTENSION]

    def request_started(self, sender: Flask, **extra: Any) -> None:
        """Routing is done: name the request by its URL rule and apply the view's assumptions
        (in enforce mode a broken route limit raises here, so Flask answers 500)."""
        state = current_state()
        if state is None:
            return
        options: dict[str, Any] | None = None
        template: str | None = None
        try:
            rule = request.url_rule  # one look-up through the request proxy: they cost
            if rule is not None:
                template = rule.rule
                view = sender.view_functions.get(rule.endpoint)
                declared = getattr(view, ROUTE_ATTRIBUTE, None)
                options = declared if isinstance(declared, dict) else None
        except Exception as exc:
            internal_error("flask.request_started", exc)
        state.set_route(template, options)
        state.attach_span(trace.get_current_span())

    def request_finished(self, sender: Flask, response: Response, **extra: Any) -> None:
        """The response is final; OpenTelemetry's span still records. A body already in memory
        means the request is served: report it all now. A streamed one stops counting as in
        flight (a client that never reads it must not hold the count), and is timed to its end."""
        state = current_state()
        if state is None:
            return
        state.settle(trace.get_current_span())
        try:
            streamed = response.is_streamed
            status = response.status_code
        except Exception as exc:
            internal_error("flask.request_finished", exc)
            return
        if not streamed:
            state.complete(status)
        else:  # the view is done; the stream's end still stops the clock
            state.release()

    def got_request_exception(self, sender: Flask, exception: BaseException, **extra: Any) -> None:
        """An unhandled exception: a ``status`` violation, reported while the span records."""
        state = current_state()
        if state is None:
            return
        state.settle(trace.get_current_span())
        state.raised(exception)
