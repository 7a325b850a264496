"""The light path beyond the arguments: calls in flight, the result checker, repeats.

A guard whose every check has a ``Call``-free form (annotations, path checks on arguments or on
the return value, ``max_concurrency``, ``raises_only``, latency, the envelope's watchers and
recorders) runs without a ``Call`` object until something fails. These tests pin that it then
reports exactly what the general path reports, and that a flood's repeats are counted exactly.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shadowguard
from conftest import Otel
from shadowguard import AssumptionViolation, assume, guarded
from shadowguard.envelope import Envelope, dumps, save, start_recording, stop_recording
from shadowguard.envelope._record import GuardRecorder
from shadowguard.testing import capture_violations


def observed(violations: list[Any]) -> list[tuple[str, str]]:
    return [(v.assumption, v.observed) for v in violations]


# -- calls in flight ---------------------------------------------------------------------------


def test_max_concurrency_on_the_light_path_reports_and_enforces() -> None:
    """Observe: the nested call is reported, both return. Enforce: it raises before running."""
    calls: list[int] = []

    @guarded(assume.max_concurrency(1), name="light.nested")
    def nested(depth: int) -> int:
        calls.append(depth)
        return nested(depth - 1) + 1 if depth else 0

    with capture_violations() as violations:
        assert nested(0) == 0
        guard = nested.__shadowguard__  # type: ignore[attr-defined]
        assert guard.fast is not None and guard.flight_checks  # the light plan counts calls
        assert nested(2) == 2
    assert sorted(observed(violations)) == [  # (reported as each call ends: inner first)
        ("max_concurrency(1)", "2 in flight"),
        ("max_concurrency(1)", "3 in flight"),
    ]
    assert nested.__shadowguard__.in_flight == 0  # type: ignore[attr-defined]
    calls.clear()
    shadowguard.configure(mode="enforce")
    with pytest.raises(AssumptionViolation):
        nested(1)
    assert calls == [1]  # the nested call was refused before it ran
    assert nested.__shadowguard__.in_flight == 0  # type: ignore[attr-defined]


def test_exceptions_on_the_light_path_keep_their_identity_and_release_the_count() -> None:
    """``raises_only`` judges the exception (the very object propagates); nothing stays in
    flight; a ``BaseException`` passes untouched."""
    error = KeyError("k")

    @guarded(assume.raises_only(ValueError), assume.max_concurrency(3), name="light.raises")
    def fail(kind: str) -> None:
        if kind == "key":
            raise error
        raise KeyboardInterrupt

    with capture_violations() as violations:
        with pytest.raises(KeyError) as caught:
            fail("key")
        assert caught.value is error
        with pytest.raises(KeyboardInterrupt):
            fail("interrupt")
    assert observed(violations) == [("raises_only(ValueError)", "KeyError")]
    assert fail.__shadowguard__.fast is not None  # type: ignore[attr-defined]
    assert fail.__shadowguard__.in_flight == 0  # type: ignore[attr-defined]


# -- the result checker ------------------------------------------------------------------------


def test_return_path_checks_run_in_the_result_checker() -> None:
    """``size("return")`` and the return annotation, both judged after the call, once each."""

    @guarded(assume.size("return", max=2), name="light.result")
    def rows(n: int) -> list[int]:
        return list(range(n)) if n >= 0 else "oops"  # type: ignore[return-value]

    guard = rows.__shadowguard__  # type: ignore[attr-defined]
    with capture_violations() as violations:
        assert rows(1) == [0]
        assert guard.after is not None
        assert rows(3) == [0, 1, 2]
        assert rows(-1) == "oops"
    assert sorted(observed(violations)) == [
        ("size(return, max=2)", "len=3"),
        ("size(return, max=2)", "len=4"),
        ("type(return)", "str"),
    ]


class _HostileLength(list[int]):
    def __len__(self) -> int:
        raise RuntimeError("len is hostile")


@pytest.mark.internal_errors
def test_a_result_check_that_raises_changes_nothing_for_the_caller() -> None:
    """A hostile ``__len__`` makes the result checker's check raise: the general path judges the
    value again under its fault handling; the caller gets its very result."""
    hostile = _HostileLength([1, 2, 3])

    @guarded(assume.size("return", max=10), name="light.hostile")
    def give() -> list[int]:
        return hostile

    with capture_violations():
        assert give() is hostile


def test_latency_and_result_checks_together() -> None:
    """A late call whose result also breaks a check: both reported, from one ``Call``."""

    @guarded(assume.latency(ms=0.001), assume.size("return", max=0), name="light.late")
    def slow() -> list[int]:
        deadline = __import__("time").perf_counter() + 0.002
        while __import__("time").perf_counter() < deadline:
            pass
        return [1]

    with capture_violations() as violations:
        assert slow() == [1]
    assert sorted(v.assumption for v in violations) == ["latency(ms=0.001)", "size(return, max=0)"]


def test_async_light_path_counts_flight_and_checks_results() -> None:
    """The coroutine wrapper: the same in-flight and result handling."""

    @guarded(assume.max_concurrency(1), assume.size("return", max=1), name="light.async")
    async def fetch(n: int) -> list[int]:
        await asyncio.sleep(0.01)
        return list(range(n))

    async def main() -> list[list[int]]:
        return await asyncio.gather(fetch(1), fetch(2))

    with capture_violations() as violations:
        assert asyncio.run(main()) == [[0], [0, 1]]
    assert sorted(observed(violations)) == [
        ("max_concurrency(1)", "2 in flight"),
        ("size(return, max=1)", "len=2"),
    ]
    assert fetch.__shadowguard__.in_flight == 0  # type: ignore[attr-defined]


# -- a flood: the same violation again ----------------------------------------------------------


def test_a_repeated_violation_is_reported_every_time(otel: Otel) -> None:
    """The same single violation again takes the repeat short-cut: every call is counted (the
    metric is exact), the events stop at the cap, results and exceptions are untouched."""

    @guarded(name="light.flood")
    def f(a: int, b: str) -> int:
        if a < 0:
            raise ValueError("negative")
        return a

    tracer = otel.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("request"):
        for i in range(100):
            assert f(i, 2) == i  # type: ignore[arg-type]
        assert f.__shadowguard__.repeat is not None  # type: ignore[attr-defined]
        with pytest.raises(ValueError):
            f(-1, 2)  # type: ignore[arg-type]
    metric = otel.metric("shadowguard.violations")
    assert sum(metric.values()) == 101
    (span,) = [s for s in otel.exporter.get_finished_spans() if s.name == "request"]
    assert len(span.events) == 32
    assert (span.attributes or {})["shadowguard.violations"] == 101


def test_a_repeat_whose_result_also_breaks_reports_both() -> None:
    """A repeat of the argument's violation, with a bad return value this time: both."""

    @guarded(name="light.repeat_result")
    def f(a: int) -> int:
        return 1 if a > 0 else "zero"  # type: ignore[return-value]

    with capture_violations() as violations:
        for _ in range(3):
            f(1.5)  # type: ignore[arg-type]
        f(0.0)  # type: ignore[arg-type]
    assert observed(violations) == [("type(a)", "float")] * 4 + [("type(return)", "str")]
    assert f.__shadowguard__.repeat is not None  # type: ignore[attr-defined]


def test_a_different_violation_after_a_repeat_is_its_own() -> None:
    """Another observed shape, or another parameter, is not the repeat."""

    @guarded(name="light.other")
    def f(a: int, b: int) -> int:
        return 0

    with capture_violations() as violations:
        f("x", 1)  # type: ignore[arg-type]
        f("x", 1)  # type: ignore[arg-type]
        f(None, 1)  # type: ignore[arg-type]
        f(1, "y")  # type: ignore[arg-type]
        f("x", "y")  # type: ignore[arg-type]
    assert observed(violations) == [
        ("type(a)", "str"),
        ("type(a)", "str"),
        ("type(a)", "None"),
        ("type(b)", "str"),
        ("type(a)", "str"),
        ("type(b)", "str"),
    ]


def test_enforce_after_a_flood_raises_again() -> None:
    """Switching to enforce re-plans: the repeat short-cut is gone, the call is refused."""
    ran: list[int] = []

    @guarded(name="light.enforce")
    def f(a: int) -> int:
        ran.append(a)
        return 0

    with capture_violations():
        f("x")  # type: ignore[arg-type]
        f("x")  # type: ignore[arg-type]
    shadowguard.configure(mode="enforce")
    with pytest.raises(AssumptionViolation):
        f("x")  # type: ignore[arg-type]
    assert ran == ["x", "x"]


def test_value_capture_is_not_bypassed_by_repeats(otel: Otel) -> None:
    """With value capture on, each violation carries its own (redacted) value."""

    @guarded(name="light.capture")
    def f(a: int) -> int:
        return 0

    with capture_violations() as violations:
        f("x")  # type: ignore[arg-type]
        f("x")  # type: ignore[arg-type]
        shadowguard.configure(capture_values=True)
        f("x")  # type: ignore[arg-type]
        f("y")  # type: ignore[arg-type]
    assert [v.value for v in violations][:2] == [None, None]
    assert all(v.value is not None for v in violations[2:])


# -- the envelope on the light path -------------------------------------------------------------

_leaves = (
    st.integers(-3, 3)
    | st.text("ab", max_size=3)
    | st.none()
    | st.floats(allow_nan=True, allow_infinity=False, width=16)
    | st.booleans()
)
_arguments = _leaves | st.lists(_leaves, max_size=5) | st.tuples(_leaves, _leaves)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_arguments, _arguments), min_size=1, max_size=12))
def test_recording_through_the_guard_records_what_the_plain_walk_records(
    calls: list[tuple[Any, Any]],
) -> None:
    """A test run's recorder fed by the guard's checker (inline knowledge, planned again as it
    learns) records byte for byte what the plain walk of the same values records."""

    @guarded(types=False, name="light.record")
    def f(a: Any, b: Any) -> Any:
        return b

    plain = GuardRecorder("light.record", thin=False)
    plain.skip = False
    recorder = start_recording()
    try:
        for a, b in calls:
            f(a, b)
            plain.see("a", a)
            plain.see("b", b)
            plain.see("return", b)
            plain.flight(1)
    finally:
        recorded = stop_recording(recorder)
    assert dumps(recorded) == dumps(Envelope({"light.record": plain.envelope()}))


def test_recording_plans_again_once_it_knows_more() -> None:
    """The first calls teach the recorder; the guard then decides known values inline."""

    @guarded(name="light.replan")
    def f(a: int, items: list[int]) -> int:
        return a

    recorder = start_recording()
    try:
        guard = f.__shadowguard__  # type: ignore[attr-defined]
        f(1, [1, 2, 3])
        f(1, [1, 2, 3])  # planned again: what the first call taught is inline now
        assert guard.fast is not None and "v > 0" in (guard.fast.__doc__ or "")
        assert guard.after is not None and "v > 0" in (guard.after.__doc__ or "")
        before = guard.fast
        f(2, [1, 2, 3])
        assert guard.fast is before  # nothing new: no new plan
    finally:
        stop_recording(recorder)


def test_watching_decides_tested_values_inline(tmp_path: Any) -> None:
    """A watched guard's checker accepts tested values inline and reports departures."""

    @guarded(name="light.watch")
    def f(a: int, items: list[int]) -> int:
        return a

    recorder = start_recording()
    for a, items in ((1, [1, 2]), (2, [3]), (5, [])):
        f(a, items)
    save(stop_recording(recorder), tmp_path / "envelope.json")
    shadowguard.configure(envelope=str(tmp_path / "envelope.json"))
    with capture_violations() as violations:
        assert f(3, [4, 5]) == 3
        guard = f.__shadowguard__  # type: ignore[attr-defined]
        assert guard.fast is not None and "v > 0" in (guard.fast.__doc__ or "")
        f(-1, [1, 2])
        f(1, [1, -2])
        f(1, [2, 0])
    assert observed(violations) == [
        ("envelope(a)", "negative"),
        ("envelope(return)", "negative"),
        ("envelope(items[*])", "negative"),
        ("envelope(items[*])", "zero"),
    ]


# -- re-planned while calls run (another thread's configure and refresh) -----------------------


def test_a_call_that_spans_a_re_plan_is_still_judged() -> None:
    """A budget set while a call runs moves the guard off the light path: the call that
    started on it still has its result checked (the tail it started with)."""

    @guarded(assume.size("return", max=1), assume.latency(ms=10_000), name="light.midcall")
    def f(reconfigure: bool) -> list[int]:
        if reconfigure:
            shadowguard.configure(overhead_budget=0.5)
            f.__shadowguard__.refresh()  # type: ignore[attr-defined]  # another thread's call
        return [1, 2]

    with capture_violations() as violations:
        f(True)
    assert observed(violations) == [("size(return, max=1)", "len=2")]
    assert f.__shadowguard__.fast is None  # type: ignore[attr-defined]


def test_a_repeat_is_only_remembered_for_the_plan_in_force() -> None:
    """A repeat found under a plan that a re-plan replaced meanwhile (enforce switched on) is
    not remembered: the next calls are refused, not reported as the observe-mode repeat."""
    from shadowguard._config import Mode

    @guarded(assume.size("xs", max=1), name="light.stale_repeat")
    def f(xs: list[int]) -> int:
        return len(xs)

    guard = f.__shadowguard__  # type: ignore[attr-defined]
    with capture_violations():
        f([1, 2])
        f([1, 2])
    assert guard.repeat is not None
    assumption, shape, (violation,) = guard.repeat
    shadowguard.configure(mode="enforce")  # not yet picked up by the guard
    guard.repeat = None
    guard._remember_repeat(assumption, shape, violation, Mode.OBSERVE)  # the racing call's
    assert guard.repeat is None
    with pytest.raises(AssumptionViolation):
        f([1, 2])


class _QuietReplans(assume.Assumption):
    """A check of calls in flight whose ``flight_quiet`` lets another thread re-plan the guard
    in between (what a concurrent ``refresh`` can do): quiet forever, once asked."""

    counts_in_flight = True
    data = False

    def __init__(self, replan: list[Any]) -> None:
        super().__init__("quiet_replans", "nothing")
        self.replan = replan

    def flight_check(self) -> Any:
        return lambda in_flight: None

    def flight_quiet(self) -> int:
        if self.replan:
            self.replan.pop()()
            return 10**9
        return 0


def test_an_old_plans_flight_quiet_never_overwrites_the_new_ones() -> None:
    """The quiet limit computed for the plan a call started with is dropped when a re-plan
    landed meanwhile: the new plan's ``max_concurrency`` still sees two calls in flight."""
    replan: list[Any] = []
    limit = assume.max_concurrency(1)

    @guarded(_QuietReplans(replan), name="light.quiet")
    def f(depth: int) -> int:
        return f(depth - 1) if depth else 0

    guard = f.__shadowguard__  # type: ignore[attr-defined]
    f(0)

    def switch() -> None:  # the new plan: max_concurrency(1) instead
        guard.declared = (limit,)
        guard._set_plan((), None)

    replan.append(switch)
    guard._flight(assume.Call(guard.binder, (), {}), 1)
    assert guard.flight_quiet == 1  # the new plan's, not the old one's 10**9
    with capture_violations() as violations:
        f(1)
    assert observed(violations) == [("max_concurrency(1)", "2 in flight")]


def test_an_async_generator_called_with_bad_arguments_leaves_nothing_in_flight() -> None:
    """The ``TypeError`` of a bad call propagates as it is and the call is no longer counted."""

    @guarded(assume.max_concurrency(1), name="light.agen")
    async def stream(n: int) -> Any:
        yield n

    async def consume() -> None:
        async for _ in stream(1, 2):  # type: ignore[call-arg]
            pass

    with pytest.raises(TypeError):
        asyncio.run(consume())
    assert stream.__shadowguard__.in_flight == 0  # type: ignore[attr-defined]
