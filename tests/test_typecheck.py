# ruff: noqa: UP006, UP007, UP045 - the typing spellings (Optional, Union, List) are under test
"""Annotations are checked with typeguard's semantics, sampled, resolved late and value-free.

This module deliberately does *not* use ``from __future__ import annotations``: annotations here
are real objects; ``_future_annotations`` holds the string-annotation cases.
"""

import collections
import collections.abc as cabc
import enum
import types
import typing
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, NewType, Optional, TypedDict, TypeVar, Union

import pytest
import typeguard
from typing_extensions import NotRequired, Required
from typing_extensions import TypedDict as ExtTypedDict

import _future_annotations as future
from shadowguard import AssumptionViolation, configure, guarded
from shadowguard._typecheck import SMALL, compile_annotation
from shadowguard.testing import capture_violations

CANARY = "CANARY-7f3a-do-not-leak"


class UserRow(TypedDict):
    """A row as the tests saw it."""

    id: int
    last_login: Optional[str]


class Partial(TypedDict, total=False):
    """Only ``id`` is required."""

    id: Required[int]
    note: str


class ExtRow(ExtTypedDict):
    """A typing_extensions TypedDict with an optional key."""

    id: int
    tag: NotRequired[str]


class Color(enum.Enum):
    RED = 1
    BLUE = 2


UserId = NewType("UserId", int)
Bounded = TypeVar("Bounded", bound=str)
Constrained = TypeVar("Constrained", int, bytes)
Free = TypeVar("Free")


def observe(annotation: Any, value: Any) -> Optional[str]:
    """What a guard with ``x: annotation`` observes for ``value`` (``None``: it passes)."""

    def f(x):  # type: ignore[no-untyped-def]
        return None

    f.__annotations__ = {"x": annotation}
    wrapped = guarded(name="tc")(f)
    with capture_violations() as violations:
        assert wrapped(value) is None
    assert len(violations) <= 1
    return violations[0].observed if violations else None


# -- the annotation catalogue -------------------------------------------------------------------

CASES: list[tuple[Any, Any, Optional[str]]] = [
    (int, 1, None),
    (int, True, None),  # bool is an int
    (int, "1", "str"),
    (int, None, "None"),
    (float, 1, None),  # the numeric tower
    (float, "1.0", "str"),
    (complex, 1.5, None),
    (bytes, bytearray(b"x"), None),
    (str, b"x", "bytes"),
    (Optional[int], None, None),
    (Optional[int], 3, None),
    (Optional[int], "3", "str"),
    (Union[int, str], "a", None),
    (int | str, 1.5, "float"),
    (int | None, None, None),
    (list[int], [1, 2], None),
    (list[int], [1, "2"], "str at [1]"),
    (list[int], (1, 2), "tuple"),
    (list[Optional[int]], [None, 1], None),
    (list[list[int]], [[1], [2, "x"]], "str at [1][1]"),
    (dict[str, int], {"a": 1}, None),
    (dict[str, int], {"a": "1"}, "str at [*]"),
    (dict[str, int], {1: 1}, "int at (key)"),
    (tuple[int, str], (1, "a"), None),
    (tuple[int, str], (1, 2), "int at [1]"),
    (tuple[int, str], (1,), "tuple len=1"),
    (tuple[int, ...], (1, 2, 3), None),
    (tuple[int, ...], (1, "2"), "str at [1]"),
    (tuple[()], (), None),
    (tuple[()], (1,), "tuple len=1"),
    (set[int], {1, 2}, None),
    (set[int], {"a"}, "str at {*}"),
    (frozenset[str], frozenset({"a"}), None),
    (Sequence[int], (1, 2), None),
    (Sequence[int], [1, None], "None at [1]"),
    (Sequence[int], "abc", "str at [0]"),
    (Mapping[str, int], types.MappingProxyType({"a": 1}), None),
    (Mapping[str, int], {"a": None}, "None at [*]"),
    (collections.deque[int], collections.deque([1]), None),
    (collections.Counter[str], collections.Counter("ab"), None),
    (Literal[1, "a"], 1, None),
    (Literal[1, "a"], "a", None),
    (Literal[1, "a"], 2, "int not in literal"),
    (Literal[1], True, "bool not in literal"),  # True == 1, but typeguard compares types first
    (Literal["a"], CANARY, "str not in literal"),
    (Literal[Color.RED], Color.RED, None),
    (Literal[Color.RED], Color.BLUE, "Color not in literal"),
    (UserId, UserId(5), None),
    (UserId, "5", "str"),
    (Bounded, "s", None),
    (Bounded, 1, "int"),
    (Constrained, b"x", None),
    (Constrained, "x", "str"),
    (Free, object(), None),
    (Annotated[int, "meta"], 1, None),
    (Annotated[int, "meta"], "1", "str"),
    (Any, object(), None),
    (object, None, None),
    (None, None, None),
    (None, 0, "int"),
    (type[int], bool, None),
    (type[int], str, "type[str]"),
    (type, int, None),
    (Callable[[int], int], len, None),
    (Callable[[int], int], 5, "int"),
    (Iterable[int], iter([1]), None),
    (Iterator[int], [1], "list"),
    (UserRow, {"id": 1, "last_login": None}, None),
    (UserRow, {"id": 1}, "missing key 'last_login'"),
    (UserRow, {"id": 1, "last_login": 5}, "int at ['last_login']"),
    (UserRow, {"id": 1, "last_login": None, CANARY: 1}, "extra key"),
    (UserRow, [("id", 1)], "list"),
    (list[UserRow], [{"id": 1, "last_login": "x"}, {"id": 2}], "missing key 'last_login' at [1]"),
    (Partial, {"id": 1}, None),
    (Partial, {"note": "n"}, "missing key 'id'"),
    (Partial, {"id": 1, "note": 2}, "int at ['note']"),
    (ExtRow, {"id": 1}, None),
    (ExtRow, {"id": 1, "tag": 2}, "int at ['tag']"),
    (ExtRow, {"tag": "t"}, "missing key 'id'"),
    (typing.List[int], [1], None),
    (typing.Dict[str, int], {"a": "b"}, "str at [*]"),
    (typing.List, [1], None),
    (typing.SupportsInt, 1.5, None),
    (typing.SupportsInt, CANARY, "str"),
    (cabc.Hashable, CANARY, None),
]


@pytest.mark.parametrize(("annotation", "value", "expected"), CASES)
def test_annotation_catalogue(annotation: Any, value: Any, expected: Optional[str]) -> None:
    """Each annotation accepts what typeguard accepts and describes what it rejects by shape."""
    assert observe(annotation, value) == expected


@pytest.mark.parametrize(("annotation", "value", "expected"), CASES)
def test_same_verdict_as_typeguard(annotation: Any, value: Any, expected: Optional[str]) -> None:
    """The verdict (pass or violation) is typeguard's, checking every item."""
    try:
        typeguard.check_type(
            value,
            annotation,
            collection_check_strategy=typeguard.CollectionCheckStrategy.ALL_ITEMS,
        )
        verdict = None
    except typeguard.TypeCheckError:
        verdict = "violation"
    check = compile_annotation(annotation)
    ours = None if check is None else check.observe(value)
    assert (ours is None) == (verdict is None)


def test_types_false_checks_nothing() -> None:
    """``types=False`` turns the annotation checks off."""

    @guarded(types=False)
    def f(x: int) -> int:
        return x

    with capture_violations() as violations:
        assert f("no") == "no"  # type: ignore[arg-type]
    assert violations == []


def test_return_annotation_none() -> None:
    """``-> None`` means the function returns ``None``."""

    @guarded
    def f() -> None:
        return 1  # type: ignore[return-value]

    with capture_violations() as violations:
        assert f() == 1
    assert [(v.assumption, v.expected, v.observed) for v in violations] == [
        ("type(return)", "None", "int")
    ]


def test_violation_fields_of_a_type_violation() -> None:
    """A type violation names the parameter as path, the annotation as expected, a shape."""

    @guarded(name="tc.fields")
    def f(user_id: UserId, rows: list[int]) -> None:
        return None

    with capture_violations() as violations:
        f("x", [1, None])  # type: ignore[arg-type, list-item]
    assert [(v.kind, v.assumption, v.path, v.expected, v.observed) for v in violations] == [
        ("type", "type(user_id)", "user_id", "UserId", "str"),
        ("type", "type(rows)", "rows", "list[int]", "None at [1]"),
    ]


def test_star_args_and_kwargs_annotations() -> None:
    """``*args: int`` checks each positional extra, ``**kwargs: str`` each keyword value."""

    @guarded(name="tc.var")
    def f(*args: int, **kwargs: str) -> int:
        return len(args) + len(kwargs)

    with capture_violations() as violations:
        assert f(1, 2, a="x") == 3
        assert f(1, "2", a=3) == 3  # type: ignore[arg-type]
    assert [(v.assumption, v.observed) for v in violations] == [
        ("type(args)", "str at [1]"),
        ("type(kwargs)", "int at [*]"),
    ]


def test_arguments_by_position_keyword_and_default() -> None:
    """Arguments are found by position or keyword; keyword-only and positional-only too."""

    @guarded(name="tc.kinds")
    def f(a: int, /, b: int, *, c: int, d: int = 0) -> str:
        return "ok"

    with capture_violations() as violations:
        assert f(1, 2, c=3) == "ok"
        assert f(1, b=2, c=3, d=4) == "ok"
        f("a", "b", c="c", d="d")  # type: ignore[arg-type]
        f(1, b="b", c=3)  # type: ignore[arg-type]
    assert sorted(v.assumption for v in violations) == [
        "type(a)",
        "type(b)",
        "type(b)",
        "type(c)",
        "type(d)",
    ]


def test_iterator_argument_is_not_consumed_by_its_annotation() -> None:
    """``Iterable[int]``/``Iterator[int]`` check the object's class only, never its items."""

    @guarded(name="tc.iter")
    def f(items: Iterator[int]) -> list[int]:
        return list(items)

    def gen() -> Iterator[object]:
        yield 1
        yield "two"

    assert f(gen()) == [1, "two"]


def test_async_generator_yield_annotation_is_not_a_return_check() -> None:
    """``AsyncIterator[int]`` on an async generator is not checked against its ``None`` return."""
    import asyncio

    @guarded(name="tc.agen")
    async def agen() -> AsyncIterator[int]:
        yield 1

    async def main() -> list[int]:
        return [i async for i in agen()]

    with capture_violations() as violations:
        assert asyncio.run(main()) == [1]
    assert violations == []


# -- resolution: forward references, later classes, TYPE_CHECKING-only names ---------------------


def test_string_forward_reference_to_a_later_class() -> None:
    """A string annotation naming a class defined after the function resolves at the first call."""

    @guarded(name="tc.forward")
    def f(item: "DefinedLater") -> "DefinedLater":
        return item

    with capture_violations() as violations:
        f(DefinedLater())
        f(1)  # type: ignore[arg-type]
    assert [(v.assumption, v.observed) for v in violations] == [
        ("type(item)", "int"),
        ("type(return)", "int"),
    ]


class DefinedLater:
    """Defined after the test that references it."""


def test_future_annotations_class_defined_later_in_the_module() -> None:
    """Under PEP 563 a TypedDict defined after the function is found and checked."""
    with capture_violations() as violations:
        assert future.row_id({"id": 1, "name": None}) == 1
        assert future.row_id({"id": 2}) == 2  # type: ignore[typeddict-item]
    assert [(v.assumption, v.observed) for v in violations] == [("type(row)", "missing key 'name'")]


def test_future_annotations_forward_reference_in_a_generic() -> None:
    """``list[User]`` with ``User`` defined later checks the items' class."""
    with capture_violations() as violations:
        assert future.names([future.User("a")]) == ["a"]
        assert future.names([future.User("a"), "b"]) == ["a", "b"]  # type: ignore[list-item]
    assert [v.observed for v in violations] == ["str at [1]"]


def test_future_annotations_pep604_union_in_a_string() -> None:
    """``list[int] | None`` as a string works, also on Python 3.10."""
    with capture_violations() as violations:
        assert future.optional_count() == 0
        assert future.optional_count([1, 2]) == 2
        assert future.optional_count((1,)) == 1  # type: ignore[arg-type]
    assert [v.observed for v in violations] == ["tuple"]


def test_type_checking_only_annotation_is_skipped_with_one_diagnostic(
    logs: list[dict[str, Any]],
) -> None:
    """A name imported under TYPE_CHECKING is skipped (one diagnostic); the rest is checked."""
    from decimal import Decimal

    with capture_violations() as violations:
        for _ in range(3):
            assert future.keep(Decimal("1.5"), 2) == 2
        configure(sample_rate=1.0)  # a refresh must not diagnose again
        assert future.keep("ab", 2) == 2  # type: ignore[arg-type]
        assert future.keep(Decimal(1), "x") == "x"  # type: ignore[arg-type]
    diagnostics = [entry for entry in logs if entry["event"] == "annotation_unresolved"]
    assert len(diagnostics) == 1
    assert diagnostics[0]["guard"] == f"{future.__name__}.keep"
    assert diagnostics[0]["parameter"] == "amount"
    assert diagnostics[0]["annotation"] == "Decimal"
    assert "Decimal" in diagnostics[0]["reason"]
    assert [(v.assumption, v.observed) for v in violations] == [
        ("type(count)", "str"),
        ("type(return)", "str"),
    ]


def test_local_class_annotation_under_pep563_is_skipped_once(logs: list[dict[str, Any]]) -> None:
    """A class local to a function cannot be resolved from a string: one diagnostic, no crash."""
    use, local = future.local_class_guard()
    with capture_violations() as violations:
        assert use(local(), 1) == 1
        assert use(object(), 2) == 2
        assert use(object(), "3") == "3"
    diagnostics = [entry for entry in logs if entry["event"] == "annotation_unresolved"]
    assert [d["parameter"] for d in diagnostics] == ["value"]
    assert [(v.assumption, v.observed) for v in violations] == [
        ("type(count)", "str"),
        ("type(return)", "str"),
    ]


def test_typed_dict_with_unresolvable_field_still_checks_required_keys() -> None:
    """A TypedDict whose field annotation cannot be evaluated still checks its required keys."""
    namespace: dict[str, Any] = {}
    exec(
        "from __future__ import annotations\n"
        "from typing import TypedDict\n"
        "class Row(TypedDict):\n"
        "    id: int\n"
        "    extra: Nowhere\n",
        namespace,
    )
    check = compile_annotation(namespace["Row"])
    assert check is not None
    assert check.observe({"id": 1, "extra": object()}) is None
    assert check.observe({"id": 1}) == "missing key 'extra'"


# -- sampling of large containers ---------------------------------------------------------------


class CountingSequence(Sequence[int]):
    """A large sequence of ints, one of them bad, counting the items read."""

    def __init__(self, n: int, bad: int) -> None:
        self.n = n
        self.bad = bad
        self.reads = 0
        self.indexes: set[int] = set()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            raise TypeError("no slicing")
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        self.reads += 1
        self.indexes.add(i)
        return "bad" if i == self.bad else i


def test_million_item_sequence_is_sampled_not_scanned() -> None:
    """Each call reads a handful of a million items, and over calls the sample spans the range."""
    items = CountingSequence(1_000_000, bad=-1)

    @guarded(name="tc.huge")
    def f(items: Sequence[int]) -> int:
        return 0

    for calls in range(1, 3001):
        f(items)
        assert items.reads <= calls * SMALL
    assert {i * 100 // items.n for i in items.indexes} == set(range(100))


def test_bad_item_anywhere_is_eventually_found() -> None:
    """Repeated calls find a single bad item in the middle of a large list."""

    @guarded(name="tc.find")
    def f(items: list[int]) -> int:
        return 0

    items = list(range(20_000))
    items[13_579] = "bad"  # type: ignore[call-overload]
    calls = 0
    with capture_violations() as violations:
        while not violations and calls < 300_000:
            f(items)
            calls += 1
    assert [v.observed for v in violations] == ["str at [13579]"]


def test_huge_mapping_reads_a_bounded_number_of_items() -> None:
    """A large mapping's type check reads a bounded number of items."""

    class CountingMapping(Mapping[str, int]):
        def __init__(self) -> None:
            self.reads = 0

        def __getitem__(self, key: str) -> int:
            self.reads += 1
            return 1

        def __iter__(self) -> Iterator[str]:
            return (str(i) for i in range(1_000_000))

        def __len__(self) -> int:
            return 1_000_000

    mapping = CountingMapping()
    check = compile_annotation(Mapping[str, int])
    assert check is not None
    for _ in range(10):
        assert check.observe(mapping) is None
    assert mapping.reads <= 10 * 300


def test_hostile_container_is_not_observable() -> None:
    """A container whose ``__len__``/``__getitem__`` raise gives no violation and no error."""

    class Hostile:
        def __len__(self) -> int:
            raise RuntimeError("len")

        def __getitem__(self, i: Any) -> Any:
            raise RuntimeError("getitem")

        def __iter__(self) -> Any:
            raise RuntimeError("iter")

    class HostileList(Hostile, list):  # type: ignore[misc, type-arg]
        pass

    class HostileTuple(Hostile, tuple):  # type: ignore[misc, type-arg]
        pass

    class HostileSet(Hostile, set):  # type: ignore[misc, type-arg]
        pass

    class HostileDict(Hostile, dict):  # type: ignore[misc, type-arg]
        def items(self) -> Any:
            raise RuntimeError("items")

        def __contains__(self, key: object) -> bool:
            raise RuntimeError("contains")

    assert observe(list[int], HostileList()) is None
    assert observe(Sequence[int], HostileList()) is None
    assert observe(tuple[int, ...], HostileTuple()) is None
    assert observe(tuple[int, str], HostileTuple()) is None
    assert observe(set[int], HostileSet()) is None
    assert observe(dict[str, int], HostileDict()) is None
    assert observe(UserRow, HostileDict()) is None


def test_hostile_return_value_is_not_observable() -> None:
    """A returned container whose reads raise gives no violation and no internal error."""

    class HostileList(list):  # type: ignore[type-arg]
        def __len__(self) -> int:
            raise RuntimeError("len")

    @guarded(name="tc.hostile.return")
    def f() -> list[int]:
        return HostileList([1])

    with capture_violations() as violations:
        assert isinstance(f(), HostileList)
    assert violations == []


# -- value-freedom ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "value"),
    [
        (int, CANARY),
        (Literal["a", "b"], CANARY),
        (dict[str, int], {CANARY: CANARY}),
        (dict[int, int], {CANARY: 1}),
        (UserRow, {"id": CANARY, "last_login": None, CANARY: CANARY}),
        (list[UserRow], [{"id": 1, CANARY: None}]),
        (typing.SupportsIndex, CANARY),
        (typing.SupportsAbs[int], CANARY),
        (set[int], {CANARY}),
        (tuple[int], (CANARY,)),
    ],
)
def test_violations_never_carry_the_value(annotation: Any, value: Any) -> None:
    """No field of a type violation contains the value, even where typeguard's message would."""

    def f(x):  # type: ignore[no-untyped-def]
        return None

    f.__annotations__ = {"x": annotation, "return": None}
    wrapped = guarded(name="tc.canary")(f)
    with capture_violations() as violations:
        wrapped(value)
    assert violations
    for violation in violations:
        assert violation.value is None
        assert all(CANARY not in str(field) for field in violation.__getstate__())  # type: ignore[attr-defined]


def test_enforce_mode_message_is_value_free() -> None:
    """The ``AssumptionViolation`` raised in enforce mode does not quote the value."""

    @guarded(name="tc.enforce", mode="enforce")
    def f(x: Literal["a"]) -> None:
        return None

    with pytest.raises(AssumptionViolation) as info:
        f(CANARY)  # type: ignore[arg-type]
    assert CANARY not in str(info.value)
    assert CANARY not in repr(info.value.violations)


def test_unknown_type_check_error_is_swallowed_as_internal_fault() -> None:
    """typeguard raising something else than a type error never reaches the host."""

    class Weird(typing.Protocol):
        def method(self) -> int: ...

    check = compile_annotation(Weird)
    assert check is not None
    assert check.observe(object()) == "object"
    assert check.observe(CANARY) == "str"


# -- corners of the compiler --------------------------------------------------------------------


class _RaisingMeta(type):
    """``isinstance``/``issubclass`` against classes of this metaclass raise."""

    def __instancecheck__(cls, instance: object) -> bool:
        raise RuntimeError("instancecheck")

    def __subclasscheck__(cls, subclass: type) -> bool:
        raise RuntimeError("subclasscheck")


class Unjudgeable(metaclass=_RaisingMeta):
    """A class nothing can be checked against."""


@pytest.mark.parametrize(
    ("annotation", "value", "expected"),
    [
        (Union[int, Any], "x", None),  # Any in a union accepts everything
        (Union[list[int], list[str]], [None], "None at [0]"),  # both fail: the first reason
        (Union[list[int], tuple[str, ...]], ("a", 1), "int at [1]"),
        (type[Any], int, None),
        (type[Any], 1, "int"),
        (type[Unjudgeable], int, None),  # issubclass raises: not observable
        (typing.Tuple, (1, "a"), None),
        (tuple[Any, int], ("x", 1), None),
        (tuple[Any, int], ("x", "y"), "str at [1]"),
        (set[Any], {1, "a"}, None),
        (dict[Any, Any], {1: 2}, None),
        (dict[Any, int], {1: "2"}, "str at [*]"),
        (typing.Generic, 1, "int"),
        (typing.NoReturn, 1, None),  # typeguard only judges NoReturn as a return type
        (list[list[list[list[list[list[list[list[list[list[int]]]]]]]]]], [[[]]], None),
    ],
)
def test_compiler_corners(annotation: Any, value: Any, expected: Optional[str]) -> None:
    """Unions with Any, ``type[...]`` variants, tuples, sets and mappings of Any, deep nesting."""
    check = compile_annotation(annotation)
    observed = None if check is None else check.observe(value)
    assert observed == expected


def test_unevaluated_annotations_accept_everything() -> None:
    """Strings and forward references that reach the compiler are not checked."""
    assert compile_annotation("Later") is None
    assert compile_annotation(typing.ForwardRef("Later")) is None


@pytest.mark.internal_errors
def test_isinstance_that_raises_is_an_internal_fault_not_a_crash() -> None:
    """An annotation whose ``isinstance`` raises leaves the call untouched."""

    @guarded(name="tc.raising")
    def f(x: Unjudgeable) -> Unjudgeable:
        return x

    @guarded(name="tc.raising.return")
    def g() -> Unjudgeable:
        return 1  # type: ignore[return-value]

    with capture_violations() as violations:
        assert f(1) == 1  # type: ignore[arg-type]
        assert g() == 1
    assert violations == []


def test_object_with_raising_annotations_is_guarded_without_types() -> None:
    """A callable whose ``__annotations__`` are not a dict is guarded without type checks."""

    class Meta(type):
        @property
        def __annotations__(cls) -> Any:  # type: ignore[override]
            return 42

    class Odd(metaclass=Meta):
        def __init__(self, x: int) -> None:
            self.x = x

    wrapped = guarded(name="tc.noannotations")(Odd)
    with capture_violations() as violations:
        assert wrapped("x").x == "x"
    assert violations == []


def test_generator_annotations_without_a_return_type() -> None:
    """Generators annotated ``AsyncGenerator``, ``Iterable`` or ``object`` have no return check."""
    import asyncio
    from collections.abc import AsyncGenerator

    @guarded(name="tc.gen.object")
    def gen() -> object:
        yield 1

    @guarded(name="tc.gen.iterable")
    def gen2() -> Iterable[int]:
        yield 1

    @guarded(name="tc.agen.generator")
    async def agen() -> AsyncGenerator[int, None]:
        yield 1

    async def main() -> list[int]:
        return [i async for i in agen()]

    with capture_violations() as violations:
        assert list(gen()) == [1]  # type: ignore[call-overload]
        assert list(gen2()) == [1]
        assert asyncio.run(main()) == [1]
    assert violations == []


def test_captured_value_of_a_type_violation() -> None:
    """With value capture on, a type violation carries the redacted argument."""
    configure(capture_values=True)

    @guarded(name="tc.capture")
    def f(x: int, token: int) -> None:
        return None

    with capture_violations() as violations:
        f("visible", CANARY)  # type: ignore[arg-type]
    assert [v.value for v in violations] == ["'visible'", "[REDACTED]"]


def test_callable_whose_annotations_attribute_is_not_a_dict() -> None:
    """A callable object with a bogus ``__annotations__`` is guarded without type checks."""

    class Bogus:
        __call__ = staticmethod(max)

        @property
        def __annotations__(self) -> Any:  # type: ignore[override]
            return 42

    wrapped = guarded(name="tc.bogus")(Bogus())
    with capture_violations() as violations:
        assert wrapped(1, 3) == 3
    assert violations == []


def test_coroutine_without_a_return_annotation() -> None:
    """An async function with annotated parameters only takes the light path."""
    import asyncio

    @guarded(name="tc.async.noreturn")
    async def f(x: int):  # type: ignore[no-untyped-def]
        return x

    with capture_violations() as violations:
        assert asyncio.run(f(1)) == 1
        assert asyncio.run(f("a")) == "a"
    assert [v.observed for v in violations] == ["str"]


def test_async_generator_with_only_a_return_annotation_to_skip() -> None:
    """An async generator whose only annotation is its yield type has nothing to check."""
    import asyncio

    @guarded(name="tc.agen.only", sample_rate=0.9999999)
    async def agen() -> AsyncIterator[int]:
        yield "a"  # type: ignore[misc]

    async def main() -> list[Any]:
        return [i async for i in agen()]

    assert asyncio.run(main()) == ["a"]
