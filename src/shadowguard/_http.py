"""The request assumptions shared by the ASGI and WSGI middleware.

:class:`HttpGuard` holds one middleware's options (validated once, at construction) and its
in-flight counters; :class:`RequestState` follows one request. The state puts a
request scope (it is one) in :data:`~shadowguard._context.current_request`, so every guarded call
made while the request is served carries its route, and checks the request assumptions
(``latency_ms``, ``max_in_flight``, ``max_body_bytes``, ``error_status``) as the request comes in
and the response goes out.

Request violations go through the same pipeline as guard violations and land on the request's
span: the server span of OpenTelemetry's own instrumentation when one records, else a span of
shadowguard's own covering the request, opened only for requests where something was violated.
Where an adapter knows the server span starts later (OpenTelemetry's Flask span starts after the
WSGI middleware was entered), request violations wait for it until the adapter settles.

Nothing here raises into the host, except :class:`~shadowguard.AssumptionViolation` in enforce
mode, and only before the response started.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace import propagation as _propagation

from shadowguard import _otel, _report, _tallies
from shadowguard._config import Mode, resolve_mode, settings
from shadowguard._context import RequestScope, get_request, reset_request, set_request
from shadowguard._faults import internal_error
from shadowguard._shapes import type_name
from shadowguard._violation import AssumptionViolation, Violation

__all__ = [
    "OPTIONS",
    "HttpGuard",
    "Limits",
    "Notes",
    "RequestState",
    "current_state",
    "parse_limits",
    "recording_span",
    "request_path",
]

OPTIONS = ("latency_ms", "max_in_flight", "max_body_bytes", "error_status")
"""The request assumptions a middleware, a route entry or a route decorator may set."""

_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
_MAX_PATH = 1024
"""``url.path`` is cut to this length: a hostile URL must not make telemetry grow."""
_MAX_DECLARED = 4096
_NO_CODE: dict[str, Any] = {}

_perf_ns = time.perf_counter_ns
_OFF = Mode.OFF  # a module constant: reading an enum member off its class costs a lookup


_current_context = _otel.current_context
_SPAN_KEY: str | None = getattr(_propagation, "_SPAN_KEY", None)
"""The key OpenTelemetry keeps the current span under in a context, if it still has it there."""

Length = int | Callable[[], int | None] | None
"""A request's declared Content-Length, or a function reading it (only when a limit needs it)."""


# -- options --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The request assumptions of the whole app or of one route (``None`` = not checked)."""

    latency_ms: float | None = None
    max_in_flight: int | None = None
    max_body_bytes: int | None = None
    error_status: int | None = 500


def _number(owner: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {key} must be a number of milliseconds, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{owner}: {key} must be a positive number of milliseconds, got {value!r}")
    return float(value)


def _integer(owner: str, key: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {key} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {key} must be >= {minimum}, got {value!r}")
    return value


def parse_limits(owner: str, options: Mapping[str, object], base: Limits | None = None) -> Limits:
    """Validated :class:`Limits`: keys given override ``base`` (``max_in_flight`` excepted,
    since a route counts its own requests). Raises ``TypeError``/``ValueError`` naming ``owner``."""
    if not isinstance(options, Mapping):
        raise TypeError(f"{owner}: options must be a mapping, got {type(options).__name__}")
    values: dict[str, Any] = {
        "latency_ms": base.latency_ms if base else None,
        "max_in_flight": None,
        "max_body_bytes": base.max_body_bytes if base else None,
        "error_status": base.error_status if base else 500,
    }
    for key, value in options.items():
        if key not in OPTIONS:
            known = ", ".join(OPTIONS)
            raise TypeError(f"{owner}: unknown option {key!r} (known: {known})")
        if value is None:
            values[key] = None
        elif key == "latency_ms":
            values[key] = _number(owner, key, value)
        elif key == "max_in_flight":
            values[key] = _integer(owner, key, value, 1)
        elif key == "max_body_bytes":
            values[key] = _integer(owner, key, value, 0)
        else:
            status = _integer(owner, key, value, 100)
            if status > 599:
                raise ValueError(f"{owner}: error_status must be an HTTP status, got {value!r}")
            values[key] = status
    return Limits(**values)


class Rule:
    """The limits of the app or of one route, with its requests in flight.

    ``flight`` holds one ``None`` per request in flight: ``append``, ``len`` and ``pop`` are
    each atomic (the guard counts its calls in flight the same way), so counting takes no lock
    (a deque: a list that empties and refills reallocates its storage each time)
    and a request entering reads how many are in flight, itself included. (Two requests
    entering at the very same time may both read the count that includes the other: each is
    a true count when it is read.)
    """

    __slots__ = ("error_status", "flight", "label", "latency_ns", "limit", "limits", "texts")

    def __init__(self, label: str | None, limits: Limits) -> None:
        self.label = label
        self.limits = limits
        self.limit = limits.max_in_flight
        self.error_status = limits.error_status
        self.latency_ns = None if limits.latency_ms is None else _whole_ns(limits.latency_ms)
        self.flight: deque[None] = deque()
        where = "" if label is None else f", route={label!r}"
        self.texts = {
            key: f"{key}({_fmt(getattr(limits, key))}{where})"
            for key in OPTIONS
            if getattr(limits, key) is not None
        }

    @property
    def in_flight(self) -> int:
        """How many requests of this rule are in flight (settable, for tests and diagnostics)."""
        return len(self.flight)

    @in_flight.setter
    def in_flight(self, value: int) -> None:
        flight = self.flight
        missing = max(value, 0) - len(flight)
        if missing > 0:
            flight.extend([None] * missing)
        else:
            for _ in range(-missing):
                flight.pop()

    def enter(self) -> int | None:
        """Count one more request of this rule in flight: how many are in flight when that is
        over the limit, else ``None``."""
        flight = self.flight
        flight.append(None)
        limit = self.limit
        if limit is not None:
            count = len(flight)
            if count > limit:
                return count
        return None

    def leave(self) -> None:
        """Give back what :meth:`enter` took."""
        try:  # noqa: SIM105  # suppress() would cost a context manager per request
            self.flight.pop()
        except IndexError:  # only a count set lower by hand meanwhile
            pass


def _whole_ns(ms: float) -> int:
    """A latency budget in whole nanoseconds: an int elapsed time is over it exactly when it is
    over the float one, and an int compares with an int faster. A budget too large for a float
    in nanoseconds is one no request reaches (2**63 ns is 292 years)."""
    ns = ms * 1e6
    return math.floor(ns) if ns < 2**63 else 2**63


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_PARAMETER = re.compile(r"\{[^{}]*\}|<[^<>]*>|\*")


@dataclass(frozen=True)
class _Pattern:
    method: str | None
    template: str
    regex: re.Pattern[str]
    rule: Rule


def _compile(template: str) -> tuple[re.Pattern[str], bool]:
    """A route template (``/users/{id}``, ``/users/<int:id>``, ``/static/*``) as a path regex;
    also whether it has parameters. ``{x:path}``, ``<path:x>`` and ``*`` span slashes."""
    parts: list[str] = []
    position = 0
    for token in _PARAMETER.finditer(template):
        parts.append(re.escape(template[position : token.start()]))
        text = token.group()
        spans = text == "*" or text.endswith(":path}") or text.startswith(("<path:", "<path("))
        parts.append(".*" if text == "*" else ".+" if spans else "[^/]+")
        position = token.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts) + r"\Z"), position > 0


def _parse_routes(owner: str, routes: object, base: Limits) -> tuple[_Pattern, ...]:
    if routes is None:
        return ()
    if not isinstance(routes, Mapping):
        raise TypeError(f"{owner}: routes must be a mapping, got {type(routes).__name__}")
    parsed: list[tuple[bool, bool, int, _Pattern]] = []
    for index, (key, options) in enumerate(routes.items()):
        if not isinstance(key, str):
            raise TypeError(f"{owner}: route keys must be strings, got {key!r}")
        verb, _, template = key.strip().rpartition(" ")
        method = verb.strip().upper() or None
        if not template.startswith("/") or (method is not None and not method.isalpha()):
            raise ValueError(f"{owner}: route {key!r} must be 'METHOD /pattern' or '/pattern'")
        limits = parse_limits(f"{owner}: route {key!r}", options, base)
        regex, has_parameters = _compile(template)
        label = f"{method} {template}" if method else template
        pattern = _Pattern(method, template, regex, Rule(label, limits))
        parsed.append((method is None, has_parameters, index, pattern))
    parsed.sort(key=lambda item: item[:3])
    return tuple(item[3] for item in parsed)


# -- the middleware's guard ---------------------------------------------------------------------


class HttpGuard:
    """One middleware's request assumptions: options, route table, counters and mode."""

    def __init__(
        self,
        name: str = "http",
        *,
        latency_ms: float | None = None,
        max_in_flight: int | None = None,
        max_body_bytes: int | None = None,
        error_status: int | None = 500,
        routes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise TypeError(
                f"shadowguard middleware: name must be a non-empty string, got {name!r}"
            )
        owner = f"shadowguard middleware {name!r}"
        self.name = name
        self.owner = owner
        options = {
            "latency_ms": latency_ms,
            "max_in_flight": max_in_flight,
            "max_body_bytes": max_body_bytes,
            "error_status": error_status,
        }
        self.app_rule = Rule(None, parse_limits(owner, options))
        self.app_held = (self.app_rule,)
        """What a request counted in the app's rule only holds (one tuple for all of them)."""
        self.patterns = _parse_routes(owner, routes, self.app_rule.limits)
        self.counts_body = self.app_rule.limits.max_body_bytes is not None or any(
            p.rule.limits.max_body_bytes is not None for p in self.patterns
        )
        self.plain_entry = not self.patterns and not self.counts_body
        """No route table and no body limit: a request's entry is its in-flight count alone."""
        self._declared: dict[tuple[str, tuple[tuple[str, Any], ...]], Rule] = {}
        self._lock = threading.Lock()
        self._mode_generation = -1
        self._mode = Mode.OBSERVE
        self.checks = _tallies.check_counter(name)

    def mode(self) -> Mode:
        """The effective mode of this middleware's guard name (overrides apply)."""
        generation = settings.generation
        if generation != self._mode_generation:
            self._mode = resolve_mode(self.name, None)
            self._mode_generation = generation
        return self._mode

    def match(self, method: str, template: str | None, path: str) -> Rule | None:
        """The ``routes`` entry for a request: the route template itself first, then the path
        against each pattern; entries naming the method before the others."""
        patterns = self.patterns
        if not patterns:
            return None
        get_ok = method == "HEAD"
        if template is not None:
            for pattern in patterns:
                if pattern.template == template and _method_ok(pattern, method, get_ok):
                    return pattern.rule
        for pattern in patterns:
            if _method_ok(pattern, method, get_ok) and pattern.regex.match(path):
                return pattern.rule
        return None

    def declare(self, label: str, options: Mapping[str, Any]) -> Rule:
        """The rule of a route whose assumptions the framework adapter declared (a view
        decorator, a dependency): one per label and options, so its requests share a counter."""
        key = (label, tuple(sorted(options.items())))
        rule = self._declared.get(key)
        if rule is not None:
            return rule
        limits = parse_limits(f"{self.owner}: route {label!r}", options, self.app_rule.limits)
        with self._lock:
            rule = self._declared.get(key)
            if rule is None:
                rule = Rule(label, limits)
                if len(self._declared) < _MAX_DECLARED:
                    self._declared[key] = rule
                if limits.max_body_bytes is not None:
                    self.count_bodies()
        return rule

    def count_bodies(self) -> None:
        """A route with a body limit exists: requests from now on count their body bytes."""
        self.counts_body = True
        self.plain_entry = False

    def start(
        self,
        method: object,
        path: object,
        content_length: Length = None,
        resolver: Callable[[], str | None] | None = None,
        kind: type[RequestState] | None = None,
    ) -> RequestState | None:
        """A :class:`RequestState` (or an instance of ``kind``, a subclass) for a new request,
        counted in flight, or ``None`` when shadowguard is off (or failed: the request then
        passes untouched). ``content_length`` may be a function reading it, called only if a
        body limit applies. Never raises: what the entry violates is reported by
        :meth:`RequestState.admit`."""
        if settings.mode is _OFF:
            return None
        try:
            state: RequestState = (kind or RequestState)()
            state.begin(self, method, path, content_length, resolver)
            return state
        except Exception as exc:
            internal_error("http.start", exc)
            return None


def _method_ok(pattern: _Pattern, method: str, get_ok: bool) -> bool:
    return (
        pattern.method is None or pattern.method == method or (get_ok and pattern.method == "GET")
    )


_status_codes: dict[object, int] = {code: code for code in range(100, 600)}
"""Each status a response may start with, and its code: the ASGI ``int`` statuses, and the
WSGI status lines seen so far (parsing a line costs more than looking it up)."""
_MAX_STATUS_LINES = len(_status_codes) + 256


def _status_code(status: object) -> int | None:
    """The code of a WSGI status line (``"200 OK"``), or of an ASGI status outside 100..599;
    ``None`` for what is no status (a bool, a fraction, words: the app's mistake, which the
    server answers, not us). Numbers equal to an int code (``500.0``) are found by the
    lookup before this is called."""
    if isinstance(status, str):
        words = status.split(None, 1)
        text = words[0] if words else ""
        if not (text.isascii() and text.isdigit()):
            return None
        code = int(text)
        if type(status) is str and len(_status_codes) < _MAX_STATUS_LINES:
            _status_codes[status] = code  # a dict store is atomic: no lock needed
        return code
    if isinstance(status, int) and not isinstance(status, bool):
        return int(status)
    return None


def _method(value: object) -> str:
    """A request method as reported: canonical, or ``_OTHER`` (bounded cardinality)."""
    if isinstance(value, str):
        upper = value.upper()
        if upper in _METHODS:
            return upper
    return "_OTHER"


def request_path(value: object) -> str:
    """A request path as reported: from ``/``, an absolute-form target cut to its path, at
    most ``_MAX_PATH`` characters (``/`` for anything that is no path)."""
    if type(value) is not str or not value or value[0] != "/" or len(value) > _MAX_PATH:
        return _path(value)
    return value


def _path(value: object) -> str:
    if not isinstance(value, str):
        return "/"
    if type(value) is not str:
        value = str.__str__(value)  # a plain copy: a subclass's own len() or slicing may lie
    if not value:
        return "/"
    if not value.startswith("/"):
        # An absolute-form request target (``GET http://user:secret@host/x``), passed on as the
        # path by some servers (uvicorn): scheme and authority go, with the credentials.
        _, sep, rest = value.partition("://")
        if sep:
            slash = rest.find("/")
            value = rest[slash:] if slash >= 0 else "/"
    return value if len(value) <= _MAX_PATH else value[:_MAX_PATH]


# -- one request --------------------------------------------------------------------------------

_pending_lock = threading.Lock()
"""Guards every request's ``pending`` (rare: violations before the request's span is known);
threads serving one request may report at once."""


_notes_lock = threading.Lock()
"""Makes a request's :class:`Notes` once when two threads serving it need them at once."""


def _after_fork_in_child() -> None:
    global _pending_lock, _notes_lock
    _pending_lock = threading.Lock()  # one another thread held at fork would never be released
    _notes_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def recording_span(context: otel_context.Context | None = None) -> Any:
    """The span of ``context`` (by default the current one) if it records, else ``None``.
    Never raises: a span whose ``is_recording`` fails is an internal fault, and no span."""
    try:
        if context is None:
            context = _current_context()
        span = context.get(_SPAN_KEY) if _SPAN_KEY is not None else trace.get_current_span(context)
        if span is not None and isinstance(span, Span) and span.is_recording():
            return span
    except Exception as exc:
        internal_error("http.span", exc)
    return None


def current_state() -> RequestState | None:
    """The :class:`RequestState` of the request being served here, if a middleware set one."""
    scope = get_request()
    return scope if isinstance(scope, RequestState) else None


class Notes:
    """What few requests need, kept apart from their :class:`RequestState` and made at the
    first need: the count in flight that broke a limit, the body bytes read, a route declared
    by an adapter, what was raised or reported, violations waiting for the request's span,
    shadowguard's own span."""

    __slots__ = (
        "body_bytes",
        "crowd",
        "declared",
        "disconnected",
        "error",
        "own",
        "pending",
        "seen_exception",
        "status_done",
        "volume_done",
    )

    def __init__(self) -> None:
        self.crowd: int | None = None
        """How many requests were in flight as this one came in, when over the app's limit."""
        self.body_bytes = 0
        self.volume_done = False
        """A ``volume`` violation was reported (once per request)."""
        self.status_done = False
        """A ``status`` violation was reported (once per request)."""
        self.disconnected = False
        self.declared = False
        """An adapter declared the route's assumptions: the resolver no longer decides the rule."""
        self.error: AssumptionViolation | None = None
        """What enforce mode raised for this request."""
        self.seen_exception: BaseException | None = None
        """The last exception the app raised, as :meth:`RequestState.raised` saw it."""
        self.pending: Sequence[Violation] = ()
        """Violations waiting for the request's span (replaced, never mutated)."""
        self.own: Any = None
        """shadowguard's own span for the request, when one had to be opened."""


class RequestState(RequestScope):
    """One request as the middleware follows it: rules held, body counted, status, timing.

    It is also the request's :class:`~shadowguard._context.RequestScope` (the middleware puts it
    in :data:`~shadowguard._context.current_request`): guarded calls read its route, which it
    learns lazily (ASGI frameworks route after the middleware ran), and add to its count.

    Called by the middleware (``admit``, ``count_body``, ``response_start``, ``body_done``,
    ``raised``, ``finish``) and by framework adapters (``set_route``, ``attach_span``,
    ``settle``, ``release``, ``complete``). Only ``admit``, ``count_body`` and ``set_route``
    raise, in enforce mode and before the response started.

    Slots, all set in :meth:`begin` (``route`` and ``violations`` are the scope's; ``method``
    and ``path`` are normalised from ``raw_method`` and ``raw_path`` only when a report or a
    route reads them): on the request path reading a slot costs half what a class-level
    default does.
    ``span`` is the scope's, read when the request comes in. What few requests need (see
    :class:`Notes`) is kept apart, made at its first need: the usual request stores nine
    fields less as it comes in, and its checks read one slot where they read six.
    """

    __slots__ = (
        "active",
        "admitted",
        "awaiting_span",
        "content_length",
        "finished",
        "guard",
        "held",
        "in_force",
        "latency_done",
        "mode",
        "notes",
        "parent",
        "raw_method",
        "raw_path",
        "resolver",
        "response_started",
        "rule",
        "started_ns",
        "status",
    )

    syncs_count = True  # finish() writes the request's count on its span

    __init__ = object.__init__
    """Made empty, then :meth:`begin`: with no ``__init__`` of Python's to run, making one is
    the cheapest object construction there is (no call back into the interpreter from C)."""

    def begin(
        self,
        guard: HttpGuard,
        method: object,
        path: object,
        content_length: Length = None,
        resolver: Callable[[], str | None] | None = None,
    ) -> None:
        """Begin following a request (by :meth:`HttpGuard.start`, or by a middleware that
        checked the global mode itself): ``method`` and ``path`` as the server gave them,
        normalised when read."""
        self.guard = guard
        mode = self.mode = (
            guard._mode if guard._mode_generation == settings.generation else guard.mode()
        )
        active = self.active = mode is not _OFF
        """False when the middleware's guard name is turned off: the route is still known."""
        self.raw_method = method  # normalised when read (see ``method``): most requests never are
        self.raw_path = path
        self.route = None
        self._tally = None
        self.content_length = content_length
        self.resolver = resolver
        """Reads the template of the route the framework matched (ASGI), when asked."""
        self.rule: Rule | None = None
        """The route rule in force (``None``: the app's)."""
        app = self.in_force = guard.app_rule
        """The rule in force: the route's, else the app's."""
        self.status: int | None = None
        self.response_started = False
        self.latency_done = False
        self.finished = False
        self.awaiting_span = False
        self.notes: Notes | None = None
        """What few requests need, once one did (see :meth:`_notes`)."""
        # Read now, in the request's own context: later the server span may have ended (ASGI
        # background tasks run after the last body chunk), and another thread of the request
        # could not enter a copied context that one thread is already in.
        parent = self.parent = _current_context()
        """The OpenTelemetry context the request came in with (then: its span's, once known)."""
        self.span = recording_span(parent) if parent else None  # an empty context has none
        """The request's span, if it was recording when the request came in (or attached)."""
        self.started_ns = _perf_ns()
        # Counted in flight in the app's rule at once; what that (or a route, or the declared
        # Content-Length) violates is reported by ``admit``, once the request context is set.
        if active:
            next(guard.checks)
            flight = app.flight  # ``app.enter()``, inline: a call less per request
            flight.append(None)
            count = len(flight)
            limit = app.limit
            self.held: tuple[Rule, ...] | None = guard.app_held
            """The rules this request counts as in flight in (``None`` once released)."""
            if limit is not None and count > limit:
                notes = self.notes = Notes()
                notes.crowd = count
                self.admitted = False
            else:
                self.admitted = guard.plain_entry
                """Nothing is left for :meth:`admit` to check or report."""
        else:
            self.held = ()
            self.admitted = True

    @property  # the scope's slot, replaced: normalised from the raw value when read
    def method(self) -> str:
        """The request method as reported: canonical, or ``_OTHER`` (bounded cardinality)."""
        method = self.raw_method
        return method if type(method) is str and method in _METHODS else _method(method)

    @method.setter
    def method(self, value: object) -> None:
        self.raw_method = value

    @property
    def path(self) -> str:
        """The request path as reported: from ``/``, absolute-form targets cut to their path,
        at most ``_MAX_PATH`` characters."""
        return request_path(self.raw_path)

    @path.setter
    def path(self, value: object) -> None:
        self.raw_path = value

    @property
    def scope(self) -> RequestState:
        """The request scope guarded calls see: this state itself."""
        return self

    def _notes(self) -> Notes:
        """This request's notes, made at the first need (once, when two threads serving the
        request need them at the same time)."""
        notes = self.notes
        if notes is None:
            with _notes_lock:
                notes = self.notes
                if notes is None:
                    notes = self.notes = Notes()
        return notes

    @property
    def pending(self) -> Sequence[Violation]:
        """Violations waiting for the request's span (see :class:`Notes`)."""
        notes = self.notes
        return () if notes is None else notes.pending

    @property
    def own(self) -> Any:
        """shadowguard's own span for the request, when one had to be opened."""
        notes = self.notes
        return None if notes is None else notes.own

    def attributes(self) -> dict[str, str]:
        self.refresh_route()
        return super().attributes()

    # -- what applies -------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        """The limits in force: the matched route's, else the app's."""
        return self.in_force.limits

    def needs_end(self) -> bool:
        """Whether the end of the body matters (a latency budget or an in-flight limit)."""
        if self.in_force.latency_ns is not None:
            return True
        held = self.held
        return held is not None and any(rule.limit is not None for rule in held)

    def _text(self, key: str) -> str:
        rule = self.rule
        if rule is not None and key in rule.texts:
            return rule.texts[key]
        return self.guard.app_rule.texts.get(key, key)

    def _violation(self, kind: str, key: str, expected: str, observed: str) -> Violation:
        return Violation(
            guard=self.guard.name,
            assumption=self._text(key),
            kind=kind,
            mode=self.mode.value,
            expected=expected,
            observed=observed,
        )

    # -- the request comes in -------------------------------------------------------------------

    def admit(self) -> None:
        """Entry checks, once the request context is set: requests in flight (counted as the
        state was made), the route's rule and the declared Content-Length. The middleware skips
        the call when ``admitted`` says there is nothing to check (the usual request)."""
        if self.admitted:
            return
        self.admitted = True
        found: list[Violation] = []
        try:
            guard = self.guard
            notes = self.notes
            if notes is not None and notes.crowd is not None:
                found.append(self._crowded(guard.app_rule, notes.crowd))
            if guard.patterns:
                rule = guard.match(self.method, None, self.path)
                if rule is not None:
                    self.rule = self.in_force = rule
                    self._enter(rule, found)
            if guard.counts_body:
                self._check_volume(found)
        except Exception as exc:
            internal_error("http.admit", exc)
        if found:
            self._report(found, may_raise=True)

    def _enter(self, rule: Rule, found: list[Violation]) -> None:
        over = rule.enter()
        self.held = (*(self.held or ()), rule)
        if over is not None:
            found.append(self._crowded(rule, over))

    def _crowded(self, rule: Rule, count: int) -> Violation:
        return Violation(
            guard=self.guard.name,
            assumption=rule.texts["max_in_flight"],
            kind="concurrency",
            mode=self.mode.value,
            expected=f"<= {rule.limit} in flight",
            observed=f"{count} in flight",
        )

    def read_content_length(self) -> int | None:
        """The declared Content-Length, the header read only once a limit needs it."""
        declared = self.content_length
        if callable(declared):
            declared = self.content_length = declared()
        return declared

    def read_route(self) -> str | None:
        """The template of the route the framework matched, from the resolver, if any."""
        resolver = self.resolver
        return None if resolver is None else resolver()

    def _check_volume(self, found: list[Violation]) -> None:
        limit = self.limits.max_body_bytes
        notes = self.notes
        if limit is None or (notes is not None and notes.volume_done):
            return
        declared = self.read_content_length()
        if declared is not None and declared > limit:
            observed = f"{declared} bytes"
        elif notes is not None and notes.body_bytes > limit:
            observed = f"> {limit} bytes"
        else:
            return
        self._notes().volume_done = True
        found.append(self._violation("volume", "max_body_bytes", f"<= {limit} bytes", observed))

    def count_body(self, size: int) -> None:
        """Count request body bytes as the app reads them (never ahead of it)."""
        if not self.active:
            return
        notes = self._notes()
        if notes.volume_done:
            return
        found: list[Violation] = []
        try:
            notes.body_bytes += size
            self._check_volume(found)
        except Exception as exc:
            internal_error("http.body", exc)
        if found:
            self._report(found, may_raise=True)

    def set_route(self, template: str | None, options: Mapping[str, Any] | None = None) -> None:
        """The framework matched ``template``; ``options`` are the route's declared assumptions
        (a view decorator, a dependency). Switches the rule in force; may raise in enforce mode
        (in-flight or body limit of the route), before the response started."""
        if options is None and self.rule is None and not self.guard.patterns:
            if template is not None:  # no rule to switch to: only the name changes
                self.route = template
            return
        found: list[Violation] = []
        try:
            if template is not None:
                self.route = template
            if options is not None:
                self._notes().declared = True  # what the framework matched no longer decides
            if not self.active:
                return
            label = template if template is not None else self.path
            rule = (
                self.guard.declare(label, options)
                if options is not None
                else self.guard.match(self.method, template, self.path)
            )
            self._switch(rule, found)
        except Exception as exc:
            internal_error("http.route", exc)
        if found:
            self._report(found, may_raise=True)

    def _switch(self, rule: Rule | None, found: list[Violation]) -> None:
        if rule is self.rule:
            return
        previous = self.rule
        self.rule = rule
        self.in_force = rule if rule is not None else self.guard.app_rule
        held = self.held
        if held is not None:  # not released yet
            if previous is not None and previous in held:
                self.held = tuple(rule for rule in held if rule is not previous)
                previous.leave()
            if rule is not None:
                self._enter(rule, found)
        self._check_volume(found)

    def refresh_route(self) -> None:
        """Ask the resolver (ASGI: the framework's matched route) for the template. Never raises."""
        resolver = self.resolver
        notes = self.notes
        if resolver is None or (notes is not None and notes.declared):
            return
        try:
            template = self.read_route()
            if template is None or template == self.route:
                return
            self.route = template
            if self.active:
                found: list[Violation] = []
                self._switch(self.guard.match(self.method, template, self.path), found)
                if found:
                    self._report(found, may_raise=False)
        except Exception as exc:
            internal_error("http.resolve_route", exc)

    def _route_rules(self) -> None:
        """Before a check that depends on the rule in force: learn the route if a ``routes``
        entry could match it (otherwise the route is only read when a report names it)."""
        if self.resolver is not None and self.guard.patterns:
            self.refresh_route()

    # -- the response goes out ------------------------------------------------------------------

    def response_start(self, status: object) -> None:
        """Status line sent (or, in WSGI, about to be): from now on nothing may raise."""
        self.response_started = True
        if not self.active or self.finished:
            return  # finished: complete() already checked this status
        notes = self.notes
        if notes is not None and (
            notes.status_done
            or notes.error is not None
            or (notes.seen_exception is not None and self._enforced())
        ):
            return
        try:
            try:
                code: int | None = _status_codes[status]
            except Exception:  # a WSGI status line not seen before, or an odd (hostile) one
                code = _status_code(status)
            if code is None:
                return  # no status at all: nothing to check
            self.status = code
            if self.resolver is not None and self.guard.patterns:
                self.refresh_route()  # the route's rule may set another error_status
            threshold = self.in_force.error_status
            if threshold is None or code < threshold:
                return
            self._notes().status_done = True
            found = [self._violation("status", "error_status", f"< {threshold}", str(code))]
        except Exception as exc:
            internal_error("http.status", exc)
            return
        self._report(found, may_raise=False)

    def release(self) -> None:
        """The request no longer counts as in flight: give back its in-flight counters."""
        held = self.held
        if held is None:
            return
        self.held = None
        try:
            for rule in held:
                rule.leave()
        except Exception as exc:
            internal_error("http.release", exc)

    def body_done(self) -> None:
        """The last body byte went out (or the request ended without one): stop the clock and
        give back the in-flight counters."""
        if self.latency_done:
            return
        self.latency_done = True
        try:
            held = self.held
            if held is not None:  # release() and Rule.leave(), inline: once per request
                self.held = None
                for rule in held:
                    try:  # noqa: SIM105  # suppress() would cost a context manager
                        rule.flight.pop()
                    except IndexError:  # only a count set lower by hand meanwhile
                        pass
            elapsed = _perf_ns() - self.started_ns  # a broken clock is an internal fault
            if self.active:
                if self.status is None:  # else response_start read the route, which is final
                    self._route_rules()
                budget = self.in_force.latency_ns
                if budget is not None and elapsed > budget:
                    self._late(elapsed)
                    return
            if self._tally is not None and self.violations:
                span = self.span
                if span is not None and span.is_recording():
                    self._sync_count(span)  # OpenTelemetry's ASGI server span ends with the body
        except Exception as exc:
            internal_error("http.latency", exc)

    def _late(self, elapsed: int) -> None:
        """Report that the request took ``elapsed`` ns, over its latency budget."""
        ms = self.in_force.limits.latency_ms
        late = self._violation("latency", "latency_ms", f"<= {ms:g} ms", f"{elapsed / 1e6:.1f} ms")
        self._report([late], may_raise=False)  # never raises: may_raise=False

    def raised(self, exc: BaseException) -> None:
        """The app raised ``exc``. Before the response started an ``Exception`` means the
        server answers 500: a ``status`` violation (not for disconnects or cancellation)."""
        notes = self._notes()
        if exc is notes.error or exc is notes.seen_exception:
            return
        notes.seen_exception = exc
        if (
            not self.active
            or not isinstance(exc, Exception)
            or isinstance(exc, AssumptionViolation)  # already reported where it was raised
            or self.response_started
            or notes.disconnected
            or notes.status_done
        ):
            return
        found: list[Violation] = []
        try:
            self._route_rules()
            threshold = self.limits.error_status
            if threshold is not None and threshold <= 500:
                notes.status_done = True
                found.append(
                    self._violation(
                        "status", "error_status", f"< {threshold}", f"unhandled {type_name(exc)}"
                    )
                )
        except Exception as fault:
            internal_error("http.raised", fault)
        if found:
            self._report(found, may_raise=False)

    def _enforced(self) -> bool:
        """An ``AssumptionViolation`` failed this request: its error status is no news."""
        notes = self.notes
        return notes is not None and (
            notes.error is not None or isinstance(notes.seen_exception, AssumptionViolation)
        )

    def complete(self, status: object) -> None:
        """The framework finished a response whose body is already in memory (Flask): the
        request is served, so check and report everything now, while its span still records."""
        self.response_start(status)
        self.finish()

    def finish(self) -> None:
        """The request ended: release, check latency, report what waited, count on the span,
        end shadowguard's own span if it opened one. A quiet request stops at the clock."""
        if self.finished:
            return
        self.finished = True
        if not self.latency_done:
            self.body_done()
        if self.awaiting_span:
            self.awaiting_span = False
        notes = self.notes
        if (notes is not None and (notes.pending or notes.own is not None)) or (
            self._tally is not None and self.violations
        ):
            self._wrap_up()

    def _wrap_up(self) -> None:
        try:
            pending = self._take_pending()
            violated = bool(pending) or (self.violations > 0 and self.span is None)
            if violated or self.own is not None or self.span is not None:
                target = self._target(open_own=violated)
            else:
                target = None  # nothing recorded this request, nothing happened to it
            if target is not None:
                if pending:
                    self._emit(pending, target)
                self._sync_count(target)
            notes = self.notes
            if notes is not None and notes.own is not None:
                own, notes.own = notes.own, None
                own.end()
        except Exception as exc:
            internal_error("http.finish", exc)

    # -- reporting --------------------------------------------------------------------------------

    def attach_span(self, span: Any) -> None:
        """The request's span became known (Flask's starts after the WSGI middleware): report
        what waited on it."""
        try:
            if span is None or not span.is_recording() or span is self.span:
                return
            if self._live_span() is not None or self.own is not None:
                return
            self.span = span
            self.parent = trace.set_span_in_context(span)
            pending = self._take_pending()
            if pending:
                self._emit(pending, span)
            self._sync_count(span)
        except Exception as exc:
            internal_error("http.attach_span", exc)

    def settle(self, span: Any) -> None:
        """No span will start for this request after this point (Flask: the response is
        final): take ``span`` if it records, else report what waited on shadowguard's own."""
        if span is not None:
            self.attach_span(span)
        self.awaiting_span = False
        if not self.pending:
            return
        try:
            pending = self._take_pending()
            if pending:
                self._emit(pending, self._target(open_own=True))
        except Exception as exc:
            internal_error("http.settle", exc)

    def _take_pending(self) -> Sequence[Violation]:
        """The violations waiting for a span, handed over once (empty when none waited)."""
        notes = self.notes
        if notes is None or not notes.pending:
            return ()
        with _pending_lock:
            pending, notes.pending = notes.pending, ()
        return pending

    def _live_span(self) -> Any:
        span = self.span
        return span if span is not None and span.is_recording() else None

    def _target(self, *, open_own: bool) -> Any:
        """Where this request's violations go: the request span while it records, else
        shadowguard's own span for the request (opened on first need, ended by ``finish``)."""
        span = self._live_span()
        if span is not None:
            return span
        if self.own is None and open_own:
            return self._open_own_span()
        return self.own

    def _report(self, violations: list[Violation], *, may_raise: bool) -> None:
        try:
            if self.awaiting_span and self._live_span() is None:
                notes = self._notes()
                with _pending_lock:
                    notes.pending = [*notes.pending, *violations]
            else:
                self._emit(violations, self._target(open_own=True))
        except Exception as exc:
            internal_error("http.report", exc)
        if may_raise and self.mode is Mode.ENFORCE and not self.response_started:
            error = self._notes().error = AssumptionViolation(violations)
            raise error

    def _emit(self, violations: Sequence[Violation], span: Any) -> None:
        token = set_request(self)
        try:
            with trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                _report.emit(self.guard.name, violations, _NO_CODE, self.started_ns)
        finally:
            reset_request(token)
        self._sync_count(span)

    def _sync_count(self, span: Any) -> None:
        count = self.violations
        if count and span.is_recording():
            span.set_attribute(_otel.COUNT_ATTRIBUTE, count)

    def _open_own_span(self) -> Any:
        """No span records this request: one of shadowguard's own covers it from its start,
        a child of the request's span when that one already ended. A trace the host sampled out
        gets none (its non-recording span is returned: metrics and logs still count)."""
        parent_span = trace.get_current_span(self.parent)
        parent = parent_span.get_span_context()
        if parent.is_valid and not parent.trace_flags.sampled:
            return parent_span
        started = time.time_ns() - (_perf_ns() - self.started_ns)  # wall clock: only now
        own = self._notes().own = _otel._get_tracer().start_span(
            f"shadowguard {self.guard.name}",
            context=self.parent,
            start_time=started,
            attributes=self.attributes(),
        )
        return own
