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
middleware, so the adapter picks it up as Flask processes the request and its response).
Responses whose body is already in memory are checked when Flask finalizes them; streamed ones
when their last chunk is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, got_request_exception, request

from shadowguard._faults import internal_error
from shadowguard._http import HttpGuard, RequestState, current_state, parse_limits, recording_span
from shadowguard.wsgi import Environ, GuardMiddleware, StartResponse

__all__ = ["ShadowGuard", "route_assumptions"]

F = TypeVar("F", bound=Callable[..., Any])
EXTENSION = "shadowguard"
ROUTE_ATTRIBUTE = "__shadowguard_route__"
_OPTIONS = ("name", "latency_ms", "max_in_flight", "max_body_bytes", "error_status", "routes")
_current_request = request._get_current_object  # type: ignore[attr-defined]  # past the proxy


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
        return GuardMiddleware.__call__(self, environ, start_response)  # no super() object

    def _scan(self) -> None:
        self._scanned = True  # Flask refuses new routes once it served a request
        for view in list(self.flask_app.view_functions.values()):
            options = getattr(view, ROUTE_ATTRIBUTE, None)
            if isinstance(options, dict) and options.get("max_body_bytes") is not None:
                self.guard.count_bodies()
                return


class _Installation:
    """shadowguard on one app: the middleware, the two app methods it wraps, the exception
    signal's receiver, and how to remove them.

    The route is learnt as ``preprocess_request`` starts and the response finished as
    ``process_response`` returns (where Flask sends ``request_started`` and
    ``request_finished``, inside the same error handling): wrapping the two methods costs a
    Python call per request, a connected signal a few microseconds. The wrapped method is looked
    up on each call (the app's own attribute it replaced, else its class's), so a later patch of
    the Flask class still applies.
    """

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.app = app
        self.middleware = FlaskGuardMiddleware(app.wsgi_app, app, **options)
        self._hooks = {
            "preprocess_request": self.preprocess_request,
            "process_response": self.process_response,
        }
        self._previous = {name: vars(app).get(name) for name in self._hooks}
        self._preprocess: Callable[[], Any] | None = self._previous["preprocess_request"]
        self._process_response: Callable[[Response], Response] | None = self._previous[
            "process_response"
        ]
        app.wsgi_app = self.middleware  # type: ignore[method-assign]
        for name, hook in self._hooks.items():
            setattr(app, name, hook)
        got_request_exception.connect(self.got_request_exception, app, weak=False)

    def remove(self) -> None:
        got_request_exception.disconnect(self.got_request_exception, self.app)
        app = self.app
        if app.wsgi_app is self.middleware:
            app.wsgi_app = self.middleware.app  # type: ignore[method-assign,assignment]
        else:  # wrapped again after us (e.g. by OpenTelemetry): step aside instead
            self.middleware.bypass = True
        for name, hook in self._hooks.items():
            if vars(app).get(name) is not hook:
                self.middleware.bypass = True  # wrapped after us: our hook passes through
            elif self._previous[name] is None:
                delattr(app, name)
            else:
                setattr(app, name, self._previous[name])
        if app.extensions.get(EXTENSION) is self:
            del app.extensions[EXTENSION]

    def preprocess_request(self) -> Any:
        """Routing is done: name the request by its URL rule and apply the view's assumptions
        (in enforce mode a broken route limit raises here, so Flask answers 500), then run
        Flask's own ``preprocess_request``."""
        if not self.middleware.bypass:
            state = current_state()
            if state is not None:
                self._routed(state)
        if self._preprocess is not None:
            return self._preprocess()
        return type(self.app).preprocess_request(self.app)

    def _routed(self, state: RequestState) -> None:
        options: dict[str, Any] | None = None
        template: str | None = None
        try:
            rule = _current_request().url_rule  # the request itself: its proxy costs more
            if rule is not None:
                template = rule.rule
                view = self.app.view_functions.get(rule.endpoint)
                declared = getattr(view, ROUTE_ATTRIBUTE, None)
                options = declared if isinstance(declared, dict) else None
        except Exception as exc:
            internal_error("flask.route", exc)
        state.set_route(template, options)
        span = recording_span()
        if span is not None:
            state.attach_span(span)

    def process_response(self, response: Response) -> Response:
        """Flask's ``process_response``, then: the response is final; OpenTelemetry's span
        still records. A body already in memory means the request is served: report it all
        now. A streamed one stops counting as in flight (a client that never reads it must not
        hold the count), and is timed to its end."""
        if self._process_response is not None:
            response = self._process_response(response)
        else:
            response = type(self.app).process_response(self.app, response)
        if not self.middleware.bypass:
            state = current_state()
            if state is not None:
                self._finished(state, response)
        return response

    def _finished(self, state: RequestState, response: Response) -> None:
        state.settle(recording_span())
        try:
            streamed = response.is_streamed
            status = response.status_code
        except Exception as exc:
            internal_error("flask.response", exc)
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
        state.settle(recording_span())
        state.raised(exception)
