"""The request-assumption core shared by both middlewares: options, route table, modes, spans."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shadowguard import AssumptionViolation, Mode, configure
from shadowguard._context import current_request
from shadowguard._http import HttpGuard, Limits, current_state, parse_limits
from shadowguard.testing import capture_violations

# -- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"latency_ms": 0}, ValueError, "latency_ms must be a positive number"),
        ({"latency_ms": -5}, ValueError, "latency_ms must be a positive number"),
        ({"latency_ms": float("nan")}, ValueError, "latency_ms"),
        ({"latency_ms": float("inf")}, ValueError, "latency_ms"),
        ({"latency_ms": True}, TypeError, "latency_ms must be a number"),
        ({"latency_ms": "250"}, TypeError, "latency_ms must be a number"),
        ({"max_in_flight": 0}, ValueError, "max_in_flight must be >= 1"),
        ({"max_in_flight": 1.5}, TypeError, "max_in_flight must be an int"),
        ({"max_body_bytes": -1}, ValueError, "max_body_bytes must be >= 0"),
        ({"error_status": 99}, ValueError, "error_status must be >= 100"),
        ({"error_status": 600}, ValueError, "error_status must be an HTTP status"),
        ({"routes": ["/x"]}, TypeError, "routes must be a mapping"),
        ({"routes": {"/x": {"latency": 5}}}, TypeError, "unknown option 'latency'"),
        ({"routes": {"users": {}}}, ValueError, "'METHOD /pattern' or '/pattern'"),
        ({"routes": {"G3T /x": {}}}, ValueError, "'METHOD /pattern' or '/pattern'"),
        ({"routes": {1: {}}}, TypeError, "route keys must be strings"),
        ({"routes": {"/x": 5}}, TypeError, "options must be a mapping"),
        ({"routes": {"/x": {"max_in_flight": 0}}}, ValueError, "route '/x': max_in_flight"),
    ],
)
def test_bad_options_raise_at_construction_naming_the_middleware(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A mistake in the middleware's options fails at start-up, naming the middleware and fault."""
    with pytest.raises(error, match=message) as info:
        HttpGuard("web", **options)
    assert "shadowguard middleware 'web'" in str(info.value)


@pytest.mark.parametrize("name", ["", "  ", None, 3])
def test_name_must_be_a_non_empty_string(name: Any) -> None:
    """The guard name reported for request violations cannot be empty."""
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        HttpGuard(name)


def test_route_limits_inherit_the_apps_except_in_flight() -> None:
    """A route entry overrides what it names; max_in_flight always counts the route on its own."""
    base = parse_limits("t", {"latency_ms": 100, "max_in_flight": 8, "max_body_bytes": 10})
    route = parse_limits("t", {"error_status": 404, "latency_ms": None}, base)
    assert route == Limits(latency_ms=None, max_in_flight=None, max_body_bytes=10, error_status=404)


def test_assumption_texts_name_the_option_and_the_route() -> None:
    """Canonical texts: ``latency_ms(250)`` for the app, with ``route=`` for a route entry."""
    guard = HttpGuard(latency_ms=250, max_in_flight=4, routes={"GET /a": {"latency_ms": 0.5}})
    assert guard.app_rule.texts == {
        "latency_ms": "latency_ms(250)",
        "max_in_flight": "max_in_flight(4)",
        "error_status": "error_status(500)",
    }
    assert guard.patterns[0].rule.texts["latency_ms"] == "latency_ms(0.5, route='GET /a')"


# -- the route table ------------------------------------------------------------------------------


def _label(guard: HttpGuard, method: str, template: str | None, path: str) -> str | None:
    rule = guard.match(method, template, path)
    return None if rule is None else rule.label


def test_route_template_wins_over_path_patterns() -> None:
    """When the framework knows the template, the entry naming it exactly is chosen."""
    guard = HttpGuard(routes={"/users/*": {}, "/users/{user_id}": {}})
    assert _label(guard, "GET", "/users/{user_id}", "/users/7") == "/users/{user_id}"
    assert _label(guard, "GET", None, "/users/7") == "/users/*"


def test_method_entries_come_before_method_less_ones() -> None:
    """``POST /orders`` applies to POST even when ``/orders`` is declared first."""
    guard = HttpGuard(routes={"/orders": {}, "post /orders": {}})
    assert _label(guard, "POST", None, "/orders") == "POST /orders"
    assert _label(guard, "GET", None, "/orders") == "/orders"
    assert _label(guard, "DELETE", "/orders", "/orders") == "/orders"


def test_head_requests_use_get_entries() -> None:
    """HEAD is served by the GET handler, so GET entries cover it."""
    guard = HttpGuard(routes={"GET /a": {}})
    assert _label(guard, "HEAD", None, "/a") == "GET /a"
    assert _label(guard, "POST", None, "/a") is None


def test_literal_paths_come_before_parameters() -> None:
    """``/users/me`` is chosen over ``/users/{id}`` for that path, whatever the order."""
    guard = HttpGuard(routes={"/users/{id}": {}, "/users/me": {}})
    assert _label(guard, "GET", None, "/users/me") == "/users/me"
    assert _label(guard, "GET", None, "/users/9") == "/users/{id}"


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/users/{id}", "/users/7", True),
        ("/users/{id}", "/users/7/orders", False),
        ("/users/<int:id>", "/users/7", True),
        ("/users/<id>", "/users/7/x", False),
        ("/files/{rest:path}", "/files/a/b/c", True),
        ("/files/<path:rest>", "/files/a/b/c", True),
        ("/static/*", "/static/css/site.css", True),
        ("/a.b", "/aXb", False),
        ("/a", "/a/", False),
    ],
)
def test_path_patterns(pattern: str, path: str, matches: bool) -> None:
    """Starlette and Flask templates match one segment per parameter; path/``*`` span slashes."""
    guard = HttpGuard(routes={pattern: {}})
    assert (_label(guard, "GET", None, path) == pattern) is matches


def test_declared_rules_are_shared_per_route_and_options() -> None:
    """Requests of a route declared by an adapter share one rule, hence one in-flight counter."""
    guard = HttpGuard()
    first = guard.declare("/a", {"max_in_flight": 1})
    assert guard.declare("/a", {"max_in_flight": 1}) is first
    assert guard.declare("/a", {"max_in_flight": 2}) is not first
    assert not guard.counts_body
    guard.declare("/b", {"max_body_bytes": 3})
    assert guard.counts_body


# -- a request ---------------------------------------------------------------------------------


def test_global_off_means_no_request_state() -> None:
    """The kill switch makes the middleware a plain pass-through."""
    configure(mode="off")
    assert HttpGuard().start("GET", "/", None) is None


def test_an_override_turning_the_middleware_off_keeps_the_route_context() -> None:
    """``http=off`` stops request checks but guarded calls still learn the route."""
    configure(overrides={"http": "off"})
    state = HttpGuard(max_in_flight=1).start("GET", "/x", None)
    assert state is not None and not state.active
    state.admit()
    state.response_start(503)
    state.finish()
    assert state.guard.app_rule.in_flight == 0


def test_overrides_reach_the_middleware_guard_name() -> None:
    """``configure(overrides=...)`` resolves the middleware's name like any guard's."""
    guard = HttpGuard("edge", max_in_flight=1)
    configure(overrides={"edge*": "enforce"})
    assert guard.mode() is Mode.ENFORCE
    configure(overrides=None, mode="observe")
    assert guard.mode() is Mode.OBSERVE


def test_unknown_methods_and_long_paths_are_bounded() -> None:
    """Telemetry cardinality stays bounded: odd methods become ``_OTHER``, paths are cut."""
    state = HttpGuard().start("BREW", "/" + "x" * 5000, None)
    assert state is not None
    assert state.method == "_OTHER"
    assert len(state.path) == 1024
    assert HttpGuard().start(None, None, None).path == "/"  # type: ignore[union-attr]


def test_current_state_is_the_middlewares_request() -> None:
    """Adapters find the request's state through the request context, and only ours."""
    assert current_state() is None
    state = HttpGuard().start("GET", "/", None)
    assert state is not None
    token = current_request.set(state.scope)
    try:
        assert current_state() is state
    finally:
        current_request.reset(token)


def test_enforce_raises_only_before_the_response_started() -> None:
    """A streamed body over its limit raises while the app reads it, never after headers."""
    configure(mode="enforce")
    guard = HttpGuard(max_body_bytes=4)
    early = guard.start("POST", "/", None)
    assert early is not None
    early.admit()
    with capture_violations() as seen, pytest.raises(AssumptionViolation) as info:
        early.count_body(5)
    early.raised(info.value)
    early.finish()
    assert [v.observed for v in seen] == ["> 4 bytes"]
    late = guard.start("POST", "/", None)
    assert late is not None
    late.admit()
    late.response_start(200)
    with capture_violations() as seen:
        late.count_body(5)
        late.finish()
    assert [v.kind for v in seen] == ["volume"]


def test_a_sampled_out_trace_gets_no_span_but_still_counts(otel: Any) -> None:
    """When the host sampled the request's trace out, no own span is made; metrics still count."""
    parent = NonRecordingSpan(
        SpanContext(trace_id=1, span_id=2, is_remote=True, trace_flags=TraceFlags(0))
    )
    with trace.use_span(parent):
        state = HttpGuard(error_status=400).start("GET", "/", None)
    assert state is not None
    with capture_violations() as seen:
        state.admit()
        state.response_start(404)
        state.finish()
    assert [v.kind for v in seen] == ["status"]
    assert otel.spans() == []
    assert otel.metric("shadowguard.violations")


def test_attach_span_reports_what_waited(otel: Any) -> None:
    """Violations found before the request's span is known land on it once it is attached."""
    guard = HttpGuard(max_in_flight=1)
    guard.app_rule.in_flight = 1  # another request is being served
    state = guard.start("GET", "/a", None)
    assert state is not None
    state.awaiting_span = True  # as under Flask, whose span starts inside the app
    state.admit()
    assert state.pending
    with otel.tracer.start_as_current_span("GET /a") as span:
        state.attach_span(span)
        state.attach_span(span)  # twice: nothing more
        assert not state.pending
        state.finish()
    (server,) = otel.spans()
    assert [e["shadowguard.kind"] for e in otel.events()] == ["concurrency"]
    assert server.attributes["shadowguard.violations"] == 1


@pytest.mark.internal_errors
@pytest.mark.parametrize(
    "target",
    [
        "shadowguard._http.RequestState._violation",
        "shadowguard._http.RequestState._live_span",
        "shadowguard._http.RequestState._check_volume",
        "shadowguard._http.HttpGuard.match",
        "shadowguard._http.HttpGuard.declare",
        "shadowguard._http.Rule.enter",
        "shadowguard._http.Rule.leave",
        "shadowguard._http.RequestState._emit",
        "shadowguard._http.RequestState._target",
        "shadowguard._http._method",
        "shadowguard._report.emit",
    ],
)
def test_internal_faults_are_swallowed_at_every_step(
    target: str, monkeypatch: pytest.MonkeyPatch, otel: Any
) -> None:
    """Whatever part of the request core breaks, no step raises into the host; the fault goes
    through the internal-error choke point instead."""
    from shadowguard import _faults

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected")

    guard = HttpGuard(
        latency_ms=0.001, max_in_flight=1, max_body_bytes=1, routes={"/a": {"error_status": 400}}
    )
    monkeypatch.setattr(target, broken)
    before = _faults.internal_errors_total()
    with otel.tracer.start_as_current_span("late") as span:
        state = guard.start("get", "/a", 10, lambda: "/a")  # not canonical: _method runs
        if state is not None:
            state.awaiting_span = True
            state.admit()
            state.count_body(5)
            state.set_route("/a")
            state.set_route("/a", {"latency_ms": 1})
            state.raised(ValueError("x"))
            state.attach_span(span)
            state.settle(span)
            state.release()
            state.response_start("503 Service Unavailable")
            state.complete(503)
    assert _faults.internal_errors_total() > before


def test_a_declared_route_keeps_its_template_and_a_huge_budget_is_accepted() -> None:
    """Declaring a route's assumptions twice (router, then route) keeps the template the
    resolver read; a latency budget of any finite size is a budget (no overflow)."""
    guard = HttpGuard(latency_ms=sys.float_info.max)
    state = guard.start("GET", "/users/7", None, lambda: "/users/{id}")
    assert state is not None
    state.set_route(state.read_route(), {"error_status": 400})
    state.set_route(state.read_route(), {"latency_ms": 1e303})
    assert state.route == "/users/{id}"
    assert state.rule is not None and state.rule.label == "/users/{id}"
    state.finish()


def test_the_route_the_framework_matched_replaces_the_path_match() -> None:
    """A request first matched by its path moves to the template's entry once the framework
    routed it: the in-flight count moves with it, and a late switch counts nothing."""
    guard = HttpGuard(routes={"/users/*": {"max_in_flight": 5}, "/users/{id}": {}})
    state = guard.start("GET", "/users/7", None)
    assert state is not None
    state.admit()
    (wildcard_rule,) = (p.rule for p in guard.patterns if p.template == "/users/*")
    assert wildcard_rule.in_flight == 1
    state.set_route("/users/{id}")
    template = state.rule
    assert template is not None and template.label == "/users/{id}"
    assert (wildcard_rule.in_flight, template.in_flight) == (0, 1)
    state.release()
    state.set_route("/users/*")
    assert (wildcard_rule.in_flight, template.in_flight) == (0, 0)
    state.finish()


def test_a_late_template_can_break_a_routes_in_flight_limit() -> None:
    """When the template is only learnt lazily (ASGI), the route's limit is still checked and
    reported (never raised: the request is already running)."""
    configure(mode="enforce")
    guard = HttpGuard(routes={"GET /pay/{amount}": {"max_in_flight": 1}})
    (rule,) = (p.rule for p in guard.patterns)
    rule.in_flight = 1
    template: list[str] = []
    state = guard.start("GET", "/pay", None, lambda: template[0] if template else None)
    assert state is not None
    state.admit()
    template.append("/pay/{amount}")
    with capture_violations() as seen:
        state.refresh_route()
        state.finish()
    assert [(v.kind, v.mode) for v in seen] == [("concurrency", "enforce")]
    assert rule.in_flight == 1


def test_set_route_on_an_inactive_request_only_names_it() -> None:
    """With the middleware's guard off, adapters still name the request's route."""
    configure(overrides={"http": "off"})
    state = HttpGuard().start("GET", "/a", None)
    assert state is not None
    state.set_route("/<name>", {"latency_ms": 1})
    assert state.scope.route == "/<name>" and state.rule is None
