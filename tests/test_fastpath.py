"""The generated per-call checker and the light path: the same verdicts as the general path.

Guards whose checks all read one parameter each (annotations, path assumptions) and that only
time the call afterwards run a checker generated for them, without a ``Call`` object; these
tests pin that it fetches arguments like the binder, reports every finding of a call once, and
hands anything unusual back to the general path.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

import pytest

from shadowguard import AssumptionViolation, assume, guarded
from shadowguard._assumptions import Assumption
from shadowguard._call import Binder
from shadowguard._fastpath import UNDECIDED, build_checker
from shadowguard._paths import MISSING, Unobservable, parse_path
from shadowguard.testing import capture_violations


def observed(violations: list[Any]) -> list[tuple[str, str]]:
    return [(v.assumption, v.observed) for v in violations]


# -- fetching arguments ---------------------------------------------------------------------


def test_data_checks_read_positional_keyword_and_keyword_only_arguments() -> None:
    """Each way of passing a parameter reaches the generated data check."""

    @guarded(assume.size("rows", max=1), assume.not_none("opts.user"), name="fp.fetch")
    def f(rows: list[int], *, opts: dict[str, Any]) -> None:
        return None

    with capture_violations() as violations:
        f([1, 2], opts={"user": None})
        f(rows=[1, 2, 3], opts={})
        f([1], opts={"user": "ann"})
    assert observed(violations) == [
        ("size(rows, max=1)", "len=2"),
        ("not_none(opts.user)", "None"),
        ("size(rows, max=1)", "len=3"),
        ("not_none(opts.user)", "missing"),
    ]
    assert f.__shadowguard__.fast is not None


def test_defaults_are_checked_when_the_argument_is_left_out() -> None:
    """A parameter not passed is checked with its default, as the binder reads it."""

    @guarded(assume.not_none("limit"), assume.size("tags", min=1), name="fp.defaults")
    def f(tags: tuple[str, ...] = (), /, limit: int | None = None) -> None:
        return None

    with capture_violations() as violations:
        f()
        f(("a",), limit=3)
        f(("a",), 3)
    assert observed(violations) == [("not_none(limit)", "None"), ("size(tags, min=1)", "len=0")]


def test_every_finding_of_one_call_is_reported_once() -> None:
    """Type and data violations of the same call are all reported, each exactly once."""

    @guarded(assume.present("rows[*].id"), name="fp.all")
    def f(a: int, rows: list[dict[str, int]]) -> int:
        return 1

    with capture_violations() as violations:
        f("1", [{"id": 1}, {"x": 2}])  # type: ignore[arg-type]
    assert observed(violations) == [
        ("type(a)", "str"),
        ("present(rows[*].id)", "missing at rows[1].id"),
    ]


def test_a_star_argument_root_is_checked_by_the_general_path() -> None:
    """``*args``/``**kwargs`` roots are not compiled, and still checked."""

    @guarded(assume.size("args", max=1), assume.size("kwargs", max=0), name="fp.star")
    def f(*args: int, **kwargs: int) -> None:
        return None

    with capture_violations() as violations:
        f(1, 2, x=3)
    assert observed(violations) == [
        ("size(args, max=1)", "len=2"),
        ("size(kwargs, max=0)", "len=1"),
    ]
    assert f.__shadowguard__.fast is None


class CustomPlan(Assumption):
    """A custom kind whose ``argument_check`` raises: the guard falls back to ``check``."""

    def __init__(self) -> None:
        super().__init__("custom()", "fine")

    def argument_check(self) -> Any:
        raise RuntimeError("cannot say")

    def check(self, call: Any) -> str | None:
        return "bad" if call.argument("x") < 0 else None


@pytest.mark.internal_errors
def test_a_custom_kind_that_cannot_be_compiled_is_checked_the_general_way() -> None:
    """A failing ``argument_check`` is an internal fault; the assumption still runs."""
    from shadowguard.testing import strict_internal_errors

    with strict_internal_errors() as faults:

        @guarded(CustomPlan(), name="fp.custom")
        def f(x: int) -> int:
            return x

        with capture_violations() as violations:
            f(-1)
    assert observed(violations) == [("custom()", "bad")]
    assert {site for site, _ in faults} == {"guard.plan"}  # at decoration and refresh


def test_binder_slot_describes_each_parameter() -> None:
    """``Binder.slot`` gives position, kind and default, and ``None`` for an unknown name."""

    def f(a: int, /, b: int = 2, *args: int, c: int, **kw: int) -> None: ...

    binder = Binder(inspect.signature(f))
    P = inspect.Parameter
    assert binder.slot("a") == (0, P.POSITIONAL_ONLY, MISSING)
    assert binder.slot("b") == (1, P.POSITIONAL_OR_KEYWORD, 2)
    assert binder.slot("c") == (-1, P.KEYWORD_ONLY, MISSING)
    assert binder.slot("args")[1] is P.VAR_POSITIONAL  # type: ignore[index]
    assert binder.slot("nope") is None


def test_a_checker_whose_check_raises_is_undecided() -> None:
    """The generated checker answers "undecided" (re-run generally) when a check raises."""

    def explode(value: object) -> str | None:
        raise RuntimeError("boom")

    checker = build_checker([], [(0, "x", True, MISSING, explode, object())])
    assert checker((1,), {}) is UNDECIDED
    assert build_checker([])((1,), {}) is None
    assert "def check(args, kwargs)" in (checker.__doc__ or "")


# -- inline item checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1, "2", 3], "str at [1]"),
        ((1, 2, None), "None at [2]"),
        ([1, 2, 3], None),
        ([], None),
    ],
)
def test_small_lists_and_tuples_are_checked_item_by_item(value: Any, expected: str | None) -> None:
    """Items of small containers are checked inline; a failure names the item."""

    @guarded(name="fp.items")
    def f(items: list[int] | tuple[int, ...]) -> None:
        return None

    with capture_violations() as violations:
        f(value)
    assert [v.observed for v in violations] == ([expected] if expected else [])


# -- the star-field walk --------------------------------------------------------------------


class Row:
    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)


class Hostile:
    def __getattr__(self, name: str) -> object:
        raise RuntimeError("no attribute reads here")


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([{"id": 1}, {"id": None}], None),
        (({"id": 1}, {"name": "x"}), "missing at rows[1].id"),
        ([{"id": 1}, Row(id=2), Row(name="x")], "missing at rows[2].id"),
        ([{"id": 1}, None], "None at rows[1]"),
        ([{"id": i} for i in range(100)] + [{}], "missing at rows[100].id"),
        ([{"name": "x"}] + [{"id": i} for i in range(100)], "missing at rows[0].id"),
        ({"a": {"name": "x"}}, "missing at rows[*].id"),
        ([Hostile()], None),
    ],
)
def test_present_over_items(rows: Any, expected: str | None) -> None:
    """``present(rows[*].id)``: plain dicts, objects, None items, big lists and mappings."""

    @guarded(assume.present("rows[*].id"), name="fp.present")
    def f(rows: Any) -> None:
        return None

    with capture_violations() as violations:
        f(rows)
    assert [v.observed for v in violations] == ([expected] if expected else [])


def test_not_none_and_size_over_items() -> None:
    """Other leaves over ``[*].field``: None and lengths are observed, missing keys skipped."""

    @guarded(
        assume.not_none("rows[*].id"),
        assume.size("rows[*].tags", max=1),
        name="fp.leaves",
    )
    def f(rows: Any) -> None:
        return None

    with capture_violations() as violations:
        f([{"id": 1, "tags": []}, {"id": None}, {"id": 2, "tags": [1, 2]}])
    assert observed(violations) == [
        ("not_none(rows[*].id)", "None at rows[1].id"),
        ("size(rows[*].tags, max=1)", "len=2 at rows[2].tags"),
    ]


def test_a_leaf_that_raises_makes_the_star_walk_unobservable() -> None:
    """Any exception of the walk over a list is reported as unobservable, not raised."""

    def leaf(value: object) -> str | None:
        raise KeyError("a user __eq__ or __len__ went wrong")

    walk = parse_path("rows[*].id").compile(leaf, strict=False)
    with pytest.raises(Unobservable):
        walk([{"id": 1}])
    assert parse_path("rows").compile(leaf, strict=False) is leaf


# -- ordered -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "descending", "expected"),
    [
        ([{"ts": 1}, {"ts": 1}, {"ts": 2}], False, None),
        ([{"ts": 1}, {"ts": 3}, {"ts": 2}], False, "items[2] < items[1]"),
        ([{"ts": 3}, {"ts": 2}, {"ts": 2}], True, None),
        ([{"ts": 3}, {"ts": 4}], True, "items[1] > items[0]"),
        ([{"ts": 1}, {}, {"ts": None}, {"ts": 2}], False, None),
        ([{"ts": 2}, {}, {"ts": 1}], False, None),
        ([{"ts": 1}, Row(ts=0)], False, "items[1] < items[0]"),
        ([{"ts": 1}, {"ts": "a"}], False, None),
    ],
)
def test_ordered_by_a_field(rows: Any, descending: bool, expected: str | None) -> None:
    """Sortedness by one field: ties, descending, missing and None keys, objects, mixed types."""

    @guarded(assume.ordered("rows", key="ts", descending=descending), name="fp.ordered")
    def f(rows: Any) -> None:
        return None

    with capture_violations() as violations:
        f(rows)
    assert [v.observed for v in violations] == ([expected] if expected else [])


# -- the light path: latency and return type without a Call --------------------------------------


def slow(seconds: float = 0.02) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        time.sleep(0.005)


def test_light_path_reports_latency_and_return_type() -> None:
    """A guard with data checks and a latency budget reports both kinds after the call."""

    @guarded(assume.size("rows", max=5), assume.latency(ms=5), name="fp.light")
    def f(rows: list[int], wait: bool) -> int:
        if wait:
            slow()
        return "done"  # type: ignore[return-value]

    with capture_violations() as violations:
        assert f([1], False) == "done"
        assert f([1], True) == "done"
    kinds = [v.kind for v in violations]
    assert kinds == ["type", "type", "latency"]
    assert f.__shadowguard__.fast is not None


def test_light_path_keeps_the_exception_and_checks_latency() -> None:
    """An exception passes unchanged; a slow failing call still breaks the latency budget."""
    error = ValueError("nope")

    @guarded(assume.latency(ms=5), name="fp.raises")
    def f(wait: bool) -> None:
        if wait:
            slow()
        raise error

    with capture_violations() as violations:
        for wait in (False, True):
            with pytest.raises(ValueError) as caught:
                f(wait)
            assert caught.value is error
    assert [v.kind for v in violations] == ["latency"]


def test_light_path_enforces_after_the_call() -> None:
    """In enforce mode a broken budget raises once the call has completed."""
    done: list[bool] = []

    @guarded(assume.latency(ms=5), name="fp.enforce", mode="enforce")
    def f() -> None:
        slow()
        done.append(True)

    with pytest.raises(AssumptionViolation):
        f()
    assert done == [True]


def test_light_path_of_coroutines() -> None:
    """Coroutines take the same light path: latency, return type and exceptions."""
    error = KeyError("k")

    @guarded(assume.latency(ms=5), name="fp.async")
    async def f(mode: str) -> int:
        if mode == "slow":
            await asyncio.sleep(0.02)
        if mode == "raise":
            raise error
        return 1 if mode != "str" else "1"  # type: ignore[return-value]

    async def main() -> None:
        assert await f("fast") == 1
        assert await f("slow") == 1
        assert await f("str") == "1"
        with pytest.raises(KeyError) as caught:
            await f("raise")
        assert caught.value is error

    with capture_violations() as violations:
        asyncio.run(main())
    assert [v.kind for v in violations] == ["latency", "type"]


@pytest.mark.internal_errors
def test_light_path_return_value_whose_class_raises() -> None:
    """A returned proxy whose ``__class__`` raises goes to the general path, untouched."""

    class Unbound:
        @property  # type: ignore[misc]
        def __class__(self) -> type:  # type: ignore[override]
            raise RuntimeError("outside of context")

    proxy = Unbound()

    @guarded(assume.latency(ms=1_000), name="fp.proxy")
    def f() -> int:
        return proxy  # type: ignore[return-value]

    with capture_violations() as violations:
        assert f() is proxy
    assert violations == []


def test_whole_call_checks_read_keyword_arguments_and_defaults() -> None:
    """Checks that are not compiled (a predicate) read arguments through the binder alike."""

    covers = assume.that(lambda limit, rows: limit >= len(rows), "limit covers rows")

    @guarded(covers, name="fp.that")
    def f(rows: list[int], limit: int = 1) -> None:
        return None

    with capture_violations() as violations:
        f([1, 2])
        f(rows=[1, 2], limit=2)
        f([1, 2], limit=1)
    assert [v.observed for v in violations] == ["False", "False"]


def test_walk_and_its_compiled_form_agree() -> None:
    """``Path.walk`` and ``Path.compile`` observe the same thing."""
    path = parse_path("rows[*].id")

    def leaf(value: object) -> str | None:
        return "missing" if value is MISSING else None

    rows = [{"id": 1}, {"name": "x"}]
    assert path.walk(rows, leaf, True) == path.compile(leaf, True)(rows) == "missing at rows[1].id"


def test_tuples_of_anything_have_no_item_check() -> None:
    """``tuple[Any, ...]`` checks that it is a tuple, and nothing about the items."""

    @guarded(name="fp.anytuple")
    def f(t: tuple[Any, ...]) -> None:
        return None

    with capture_violations() as violations:
        f((1, "a"))
        f([1])  # type: ignore[arg-type]
    assert [v.observed for v in violations] == ["list"]


# -- the overhead budget ---------------------------------------------------------------------


def test_calls_left_unchecked_by_the_budget_read_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a budget, a call that is not sampled costs a random draw: it is not even timed."""
    from shadowguard import _guard, configure

    reads: list[int] = []

    def clock() -> int:
        reads.append(1)
        return len(reads) * 1_000

    configure(overhead_budget=0.05)

    @guarded(assume.size("rows", max=1), name="fp.budget", sample_rate=0.0)
    def f(rows: list[int]) -> int:
        return len(rows)

    monkeypatch.setattr(_guard, "_perf_ns", clock)
    with capture_violations() as violations:
        assert [f([1, 2]) for _ in range(100)] == [2] * 100
    assert reads == []
    assert violations == []


def test_one_slow_sample_moves_the_budget_average_at_most_fourfold() -> None:
    """A check preempted mid-way counts as at most 4x the average so far."""
    from shadowguard._guard import _average

    assert _average(0.0, 500) == 500
    assert _average(100.0, 10_000) == pytest.approx(130.0)
    assert _average(100.0, 50) == pytest.approx(95.0)


@pytest.mark.parametrize("size", [40, 100_000])
def test_big_lists_are_sampled_inline_ends_first(size: int) -> None:
    """Over 32 items: the first and last are read on every call, and one random item."""

    @guarded(name="fp.big")
    def f(items: list[int] | tuple[int, ...]) -> None:
        return None

    items: list[Any] = list(range(size))
    with capture_violations() as violations:
        f(items)
        items[0] = "first"
        f(items)
        items[0] = 0
        items[-1] = None
        f(tuple(items))
        items[-1] = 0
        items[size // 2] = 1.5
        calls = 0
        while len(violations) < 3 and calls < 50 * size:
            f(items)
            calls += 1
    assert [v.observed for v in violations] == [
        "str at [0]",
        f"None at [{size - 1}]",
        f"float at [{size // 2}]",
    ]


# -- an inline acceptance that implies the annotation ----------------------------------------


class _Accepts(Assumption):
    """A data check of ``x`` whose inline lines accept exact ``int`` values and lists of exact
    ``int`` members, promising so through ``accepted_types``; its check counts its calls."""

    kind = "data"

    def __init__(self, shapes: dict[type, tuple[type, ...] | None] | None) -> None:
        super().__init__("accepts(x)", "inline", path="x")
        self.shapes = shapes
        self.checked: list[object] = []

    def argument_check(self) -> tuple[str, Any]:
        def check(value: object) -> str | None:
            self.checked.append(value)
            return "odd" if value == 7 else None

        return ("x", check)

    def accepts(self) -> tuple[list[str], dict[str, object]]:
        return [
            "ok = False",
            "c = type(v)",
            "if c is int:",
            "    ok = v != 7",
            "elif c is list:",
            "    ok = all(type(e) is int for e in v)",
        ], {}

    def accepted_types(self) -> dict[type, tuple[type, ...] | None] | None:
        return self.shapes


@pytest.mark.parametrize("annotation", [int, "int | list[int]", object])
def test_a_promised_acceptance_skips_the_annotation_it_implies(annotation: Any) -> None:
    """When the first data check promises that what it accepts inline passes the annotation,
    such a value costs one test; anything else still gets the type check and the data check."""
    accepts = _Accepts({int: (), list: (int,)})

    def plain(x: Any) -> None:
        return None

    plain.__annotations__["x"] = annotation
    f = guarded(accepts, name=f"fp.implied.{annotation}")(plain)
    checker = f.__shadowguard__.fast
    assert checker is not None
    if annotation is int or annotation is object:
        assert "if not ok:" in checker.__doc__
    with capture_violations() as violations:
        f(3)
        f(7)
        f("s")
    assert accepts.checked == [7, "s"]  # 3 was decided inline
    found = observed(violations)
    assert ("accepts(x)", "odd") in found
    if annotation is not object:
        assert ("type(x)", "str") in found


@pytest.mark.parametrize(
    ("annotation", "shapes", "value", "expected"),
    [
        (list[str], {list: (int,)}, [1, 2], "int at [0]"),  # members outside the annotation
        (list[str], {list: None}, [1, 2], "int at [0]"),  # members not promised
        (list[str], None, [1, 2], "int at [0]"),  # no promise at all
        (bool, {int: ()}, 3, "int"),  # a wider type
        (int | None, {int: (), type(None): ()}, 3, None),  # implied: nothing to report
    ],
)
def test_an_acceptance_wider_than_the_annotation_keeps_the_type_check(
    annotation: Any, shapes: Any, value: Any, expected: str | None
) -> None:
    """A promise that does not imply the annotation leaves the type check on every call, for
    values the data check accepts inline as well."""
    accepts = _Accepts(shapes)

    def plain(x: Any) -> None:
        return None

    plain.__annotations__["x"] = annotation
    f = guarded(accepts, name=f"fp.wide.{annotation}.{shapes}")(plain)
    with capture_violations() as violations:
        f(value)
    assert observed(violations) == ([("type(x)", expected)] if expected else [])
    assert accepts.checked == []  # accepted inline: the data check has nothing to say
    implied = "if not ok:" in f.__shadowguard__.fast.__doc__.split("isinstance")[0]
    assert implied is (expected is None)


def test_an_implied_annotation_with_a_default_still_checks_the_default() -> None:
    """A parameter left out reaches the data check with its default, the annotation none."""
    accepts = _Accepts({int: ()})

    @guarded(accepts, name="fp.implied.default")
    def f(x: int = 7) -> None:
        return None

    with capture_violations() as violations:
        f()
        f(x=2)
    assert observed(violations) == [("accepts(x)", "odd")]
    assert accepts.checked == [7]
