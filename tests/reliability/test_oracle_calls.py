"""O1 by differential oracle, for calls: every callable kind, run guarded (observe mode, with
assumptions that real traffic breaks) and unguarded on arbitrary and hostile arguments, must be
indistinguishable to the caller; enforce mode may only add :class:`AssumptionViolation` (E1).

Hypothesis draws the argument (nested data, hostile objects, huge and self-referential
containers, one-shot iterators), the body's behaviour, the annotation and the settings.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadowguard import AssumptionViolation, configure, guarded
from shadowguard.testing import capture_violations, configured, strict_internal_errors

from .conftest import ORACLE_SETTINGS
from .oracle import (
    ANNOTATIONS,
    BEHAVIOURS,
    CALL_KINDS,
    POOL,
    Recipe,
    Record,
    World,
    assert_identical,
    build,
    make_callable,
    observe_call,
    real_sinks,
    recipes,
    violated_assumptions,
)


def _maker(kind: str, behaviour: str, guard: bool, annotation: Any, rate: float | None) -> Any:
    return functools.partial(
        _make, kind=kind, behaviour=behaviour, guard=guard, annotation=annotation, rate=rate
    )


def _make(
    record: Record, *, kind: str, behaviour: str, guard: bool, annotation: Any, rate: float | None
) -> Any:
    return make_callable(kind, behaviour, record, guard, annotation, rate)


@pytest.mark.parametrize("kind", CALL_KINDS)
@ORACLE_SETTINGS
@given(
    recipe=recipes(),
    behaviour=st.sampled_from(BEHAVIOURS),
    n=st.integers(-3, 3),
    annotation=st.sampled_from(ANNOTATIONS),
    capture=st.booleans(),
    rate=st.sampled_from([None, 0.5]),
)
def test_observe_mode_is_indistinguishable(
    kind: str,
    recipe: Recipe,
    behaviour: str,
    n: int,
    annotation: Any,
    capture: bool,
    rate: float | None,
) -> None:
    """Same result object, same exception object (cause, context, notes), same arguments and
    iterator positions, no ``repr`` of user values; and the guard did report violations."""
    with strict_internal_errors() as faults, real_sinks() as sinks:
        configure(capture_values=capture)
        plain = observe_call(_maker(kind, behaviour, False, annotation, rate), recipe, n)
        with capture_violations() as violations:
            twin = observe_call(_maker(kind, behaviour, True, annotation, rate), recipe, n)
    assert faults == [], "a hostile value made shadowguard fault"
    assert_identical(plain, twin, telemetry_dunders=not capture)
    if kind != "property" and (twin.returned or isinstance(twin.value, Exception)):
        assert violations, "the guard was not watching"  # latency(ms=1e-6) breaks on every call
        assert sinks.exporter.get_finished_spans(), "no span carried the violations"
    assert all(v.mode == "observe" for v in violations)
    if not capture:
        assert all(v.value is None for v in violations)


@pytest.mark.parametrize("kind", ["function", "method", "coroutine", "callable"])
@ORACLE_SETTINGS
@given(
    recipe=recipes(),
    behaviour=st.sampled_from(BEHAVIOURS),
    n=st.integers(-3, 3),
    annotation=st.sampled_from(ANNOTATIONS),
)
def test_enforce_mode_adds_only_assumption_violation(
    kind: str, recipe: Recipe, behaviour: str, n: int, annotation: Any
) -> None:
    """Enforce mode either behaves exactly like the plain call or raises
    ``AssumptionViolation`` (from the body's exception, when the body raised one); interrupts,
    exits and cancellation pass through as the same object."""
    with strict_internal_errors() as faults, real_sinks():
        plain = observe_call(_maker(kind, behaviour, False, annotation, None), recipe, n)
        with configured(mode="enforce"):
            twin = observe_call(_maker(kind, behaviour, True, annotation, None), recipe, n)
    assert faults == []
    if twin.returned or not isinstance(twin.value, AssumptionViolation):
        assert_identical(plain, twin)
        assert twin.returned or not isinstance(twin.value, Exception) or not twin.record.received
        return
    error = twin.value
    assert error.violations and all(v.mode == "enforce" for v in error.violations)
    assert all(v.value is None for v in error.violations)
    if twin.record.exception is not None:  # the body raised: only an Exception is replaced,
        assert isinstance(twin.record.exception, Exception)  # and it becomes the cause
        assert error.__cause__ is twin.record.exception
    else:  # refused before the call: the body never ran, nothing was consumed
        assert not twin.record.received
        fresh = World()
        build(recipe, fresh)
        assert twin.iterators == fresh.iterator_states()


def test_the_oracle_itself_sees_a_guard_that_changes_results() -> None:
    """The oracle is not vacuous: a decorator that copies the result or touches an iterator
    argument is caught."""

    def meddling(target: Any) -> Any:
        def wrapper(x: Any, n: int = 0) -> Any:
            if hasattr(x, "__next__"):
                next(x, None)
            result = target(x, n)
            return list(result) if isinstance(result, list) else result

        return wrapper

    def make(record: Record, meddle: bool) -> Any:
        from .oracle import act

        def body(x: Any, n: int = 0) -> Any:
            return act("return_arg", x, n, record)

        fn = meddling(body) if meddle else body
        return fn

    for recipe in [("list", (("pool", 1),)), ("iter", "list_iterator", (("pool", 2),))]:
        plain = observe_call(functools.partial(make, meddle=False), recipe, 0)
        twin = observe_call(functools.partial(make, meddle=True), recipe, 0)
        with pytest.raises(AssertionError):
            assert_identical(plain, twin)


def test_a_shared_result_object_is_returned_by_identity_from_every_kind() -> None:
    """A pool token returned by the body comes back as the very same object from each kind."""
    for kind in CALL_KINDS:
        record = Record()
        call = make_callable(kind, "return_pool", record, True)
        assert call([1], 3) is POOL[3]


@pytest.mark.parametrize("rate", [1.0, 0.5, 0.0])
def test_huge_arguments_are_read_within_a_bounded_sample(rate: float) -> None:
    """A 10^6-item list, a 200k-key dict and 10 MB of bytes pass through untouched and only a
    bounded sample of their items is read (a counting sequence tells)."""
    reads: list[int] = []

    class Counting(list[Any]):
        def __getitem__(self, index: Any) -> Any:
            reads.append(1)
            return super().__getitem__(index)

        def __iter__(self) -> Any:
            raise AssertionError("iterated in full")

    big = Counting({"k": i, "b": i} for i in range(1_000_000))

    @guarded(
        *violated_assumptions(),
        name="oracle.huge",
        sample_rate=rate,
    )
    def f(x: list[dict[str, int]], n: int = 0) -> Any:
        return x

    with strict_internal_errors() as faults:
        assert f(big, 0) is big
    assert faults == []
    assert len(reads) <= 500
