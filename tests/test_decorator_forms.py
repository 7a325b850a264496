"""``@guarded`` on every kind of callable: the wrapper is invisible except for its reports."""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import pickle
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest

from shadowguard import AssumptionViolation, assume, configure, guarded
from shadowguard.testing import capture_violations


def _double(x: int) -> int:
    """Double it."""
    return x * 2


@guarded
def double(x: int) -> int:
    """Double it."""
    return x * 2


@guarded(assume.that(lambda x: x >= 0, "non-negative"), name="forms.halve")
def halve(x: int) -> float:
    """Halve it."""
    return x / 2


@guarded
async def fetch(x: int) -> int:
    """Fetch it."""
    await asyncio.sleep(0)
    return x + 1


@guarded(assume.raises_only(KeyError))
def count_up(n: int) -> Iterator[int]:
    """Count up to n."""
    yield from range(n)


@guarded
async def acount(n: int) -> AsyncIterator[int]:
    """Count up to n, asynchronously."""
    for i in range(n):
        await asyncio.sleep(0)
        yield i


# -- bare and called forms on the four kinds of function ------------------------------------------


def test_bare_form_checks_annotations_and_returns_result() -> None:
    """Bare ``@guarded`` returns the function's result and reports an argument of the wrong type."""
    with capture_violations() as violations:
        assert double(3) == 6
        assert double("ab") == "abab"  # type: ignore[arg-type]
    assert [(v.assumption, v.observed) for v in violations] == [
        ("type(x)", "str"),
        ("type(return)", "str"),
    ]


def test_called_form_takes_assumptions_and_a_name() -> None:
    """``@guarded(...)`` runs its assumptions under the given name."""
    with capture_violations() as violations:
        assert halve(-4) == -2.0
    assert [(v.guard, v.assumption, v.observed) for v in violations] == [
        ("forms.halve", "that(non-negative)", "False")
    ]


def test_called_form_without_arguments_is_like_bare() -> None:
    """``@guarded()`` with no assumptions still checks the annotations."""

    @guarded()
    def inc(x: int) -> int:
        return x + 1

    with capture_violations() as violations:
        assert inc(1) == 2
        inc(1.5)  # type: ignore[arg-type]
    assert [v.observed for v in violations] == ["float", "float"]


def test_coroutine_function_stays_a_coroutine_function() -> None:
    """An async function stays async, awaits to the same result and reports bad types."""
    assert inspect.iscoroutinefunction(fetch)
    with capture_violations() as violations:
        assert asyncio.run(fetch(1)) == 2
        assert asyncio.run(fetch(1.5)) == 2.5  # type: ignore[arg-type]
    assert [v.assumption for v in violations] == ["type(x)", "type(return)"]


def test_generator_function_stays_a_generator_function() -> None:
    """A generator function stays one and yields the same items."""
    assert inspect.isgeneratorfunction(count_up)
    assert not inspect.iscoroutinefunction(count_up)
    assert list(count_up(4)) == [0, 1, 2, 3]


def test_async_generator_function_stays_one() -> None:
    """An async generator function stays one and yields the same items."""
    assert inspect.isasyncgenfunction(acount)

    async def collect() -> list[int]:
        return [i async for i in acount(3)]

    assert asyncio.run(collect()) == [0, 1, 2]


# -- metadata -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guarded_fn", "original_name"),
    [(double, "double"), (fetch, "fetch"), (count_up, "count_up"), (acount, "acount")],
)
def test_metadata_is_preserved(guarded_fn: Any, original_name: str) -> None:
    """Name, qualname, doc, module, annotations, ``__wrapped__`` and signature are kept."""
    original = guarded_fn.__wrapped__
    assert guarded_fn.__name__ == original.__name__ == original_name
    assert guarded_fn.__qualname__ == original.__qualname__
    assert guarded_fn.__doc__ == original.__doc__
    assert guarded_fn.__module__ == original.__module__ == __name__
    assert guarded_fn.__annotations__ == original.__annotations__
    assert inspect.signature(guarded_fn) == inspect.signature(original)
    assert inspect.iscoroutinefunction(guarded_fn) == inspect.iscoroutinefunction(original)
    assert inspect.isasyncgenfunction(guarded_fn) == inspect.isasyncgenfunction(original)
    assert inspect.isgeneratorfunction(guarded_fn) == inspect.isgeneratorfunction(original)


def test_signature_with_defaults_and_keyword_only_parameters() -> None:
    """A complex signature is reported unchanged and defaults still apply."""

    def original(a: int, /, b: str = "x", *args: int, c: bool = False, **kw: float) -> str:
        return f"{a}{b}{args}{c}{kw}"

    wrapped = guarded(original)
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert wrapped(1) == original(1)
    assert wrapped(1, "y", 2, 3, c=True, z=1.0) == original(1, "y", 2, 3, c=True, z=1.0)


# -- pickling and copying -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("fn", [double, halve, fetch, count_up, acount])
def test_module_level_guarded_function_pickles_by_reference(fn: Any, protocol: int) -> None:
    """Pickling a module-level guarded function gives back the very same object."""
    assert pickle.loads(pickle.dumps(fn, protocol=protocol)) is fn


def test_copy_and_deepcopy_keep_the_function() -> None:
    """``copy``/``deepcopy`` of a guarded function (alone or held) behave like for a function."""
    assert copy.copy(double) is double
    assert copy.deepcopy(double) is double
    holder = {"fn": double, "items": [1]}
    clone = copy.deepcopy(holder)
    assert clone["fn"] is double
    assert clone["fn"](2) == 4


# -- methods ------------------------------------------------------------------------------------


class Account:
    """A class with every kind of guarded member."""

    rate = 2

    def __init__(self, balance: int) -> None:
        self._balance = balance
        self.computed = 0

    @guarded
    def deposit(self, amount: int) -> int:
        """Deposit."""
        self._balance += amount
        return self._balance

    @guarded
    @classmethod
    def inner_classmethod(cls, x: int) -> int:
        """Guard outside classmethod."""
        return x * cls.rate

    @classmethod
    @guarded
    def outer_classmethod(cls, x: int) -> int:
        """Guard inside classmethod."""
        return x * cls.rate

    @guarded
    @staticmethod
    def inner_staticmethod(x: int) -> int:
        """Guard outside staticmethod."""
        return x + 1

    @staticmethod
    @guarded
    def outer_staticmethod(x: int) -> int:
        """Guard inside staticmethod."""
        return x + 1

    def _get(self) -> int:
        return self._balance

    def _set(self, value: int) -> None:
        self._balance = value

    def _delete(self) -> None:
        self._balance = 0

    balance = guarded(property(_get, _set, _delete, "The balance."))

    @guarded
    @functools.cached_property
    def expensive(self) -> int:
        """Computed once."""
        self.computed += 1
        return self._balance * 10

    @guarded
    async def adeposit(self, amount: int) -> int:
        """Deposit asynchronously."""
        return self.deposit(amount)


def test_plain_method_binds_self() -> None:
    """A guarded method receives ``self`` and checks the other arguments by name."""
    account = Account(1)
    with capture_violations() as violations:
        assert account.deposit(2) == 3
        assert account.deposit(0.5) == 3.5  # type: ignore[arg-type]
    assert [(v.guard, v.assumption) for v in violations] == [
        (f"{__name__}.Account.deposit", "type(amount)"),
        (f"{__name__}.Account.deposit", "type(return)"),
    ]


@pytest.mark.parametrize("member", ["inner_classmethod", "outer_classmethod"])
def test_classmethod_in_either_order(member: str) -> None:
    """``@guarded`` above or below ``@classmethod`` works from the class and from an instance."""
    assert isinstance(Account.__dict__[member], classmethod)
    method = getattr(Account, member)
    assert method(3) == 6
    assert getattr(Account(0), member)(3) == 6
    assert list(inspect.signature(method).parameters) == ["x"]
    assert list(inspect.signature(Account.__dict__[member].__func__).parameters) == ["cls", "x"]
    with capture_violations() as violations:
        assert method("ab") == "abab"
    assert [v.observed for v in violations] == ["str", "str"]
    assert violations[0].guard == f"{__name__}.Account.{member}"


@pytest.mark.parametrize("member", ["inner_staticmethod", "outer_staticmethod"])
def test_staticmethod_in_either_order(member: str) -> None:
    """``@guarded`` above or below ``@staticmethod`` works from the class and an instance."""
    assert isinstance(Account.__dict__[member], staticmethod)
    assert getattr(Account, member)(1) == 2
    assert getattr(Account(0), member)(1) == 2
    with capture_violations() as violations:
        assert getattr(Account, member)(1.5) == 2.5
    assert [v.observed for v in violations] == ["float", "float"]


def test_property_get_set_delete_are_guarded() -> None:
    """A guarded property stays a property; getter, setter and deleter are each checked."""
    descriptor = Account.__dict__["balance"]
    assert isinstance(descriptor, property)
    assert descriptor.__doc__ == "The balance."
    account = Account(5)
    with capture_violations() as violations:
        assert account.balance == 5
        account.balance = 7
        assert account.balance == 7
        account.balance = "x"  # type: ignore[assignment]
        assert account.balance == "x"
        del account.balance
        assert account.balance == 0
    assert [(v.guard, v.assumption, v.observed) for v in violations] == [
        (f"{__name__}.Account._set.setter", "type(value)", "str"),
        (f"{__name__}.Account._get", "type(return)", "str"),
    ]


def test_property_decorated_with_setter_chain() -> None:
    """``@guarded`` on the last ``@x.setter`` guards the getter and the setter."""

    class Box:
        def __init__(self) -> None:
            self._v = 0

        @property
        def v(self) -> int:
            return self._v

        @guarded(name="box.v")
        @v.setter
        def v(self, value: int) -> None:
            self._v = value

    box = Box()
    with capture_violations() as violations:
        box.v = "s"  # type: ignore[assignment]
        assert box.v == "s"
    assert sorted((v.guard, v.assumption) for v in violations) == [
        ("box.v", "type(return)"),
        ("box.v.setter", "type(value)"),
    ]


def test_property_assumptions_apply_to_the_getter_only() -> None:
    """Assumptions given to a guarded property check the getter's result."""

    class Box:
        def __init__(self, v: object) -> None:
            self._v = v

        def _get(self) -> object:
            return self._v

        def _set(self, value: object) -> None:
            self._v = value

        v = guarded(assume.not_none("return"), name="box")(property(_get, _set))

    box = Box(None)
    with capture_violations() as violations:
        assert box.v is None
        box.v = None
    assert [(v.guard, v.observed) for v in violations] == [("box", "None")]


def test_cached_property_is_computed_once() -> None:
    """A guarded ``cached_property`` stays one: computed once, cached, checked on that call."""
    assert isinstance(Account.__dict__["expensive"], functools.cached_property)
    account = Account(3)
    assert account.expensive == 30
    assert account.expensive == 30
    assert account.computed == 1
    assert account.__dict__["expensive"] == 30


def test_cached_property_violation_is_reported() -> None:
    """The cached computation's result is type checked."""

    class Lazy:
        @guarded
        @functools.cached_property
        def value(self) -> int:
            return "text"  # type: ignore[return-value]

    with capture_violations() as violations:
        assert Lazy().value == "text"
    assert [(v.assumption, v.observed) for v in violations] == [("type(return)", "str")]


def test_async_method() -> None:
    """A guarded async method binds ``self`` and awaits to the result."""
    account = Account(1)
    assert asyncio.run(account.adeposit(1)) == 2


def test_guarded_method_instances_are_independent() -> None:
    """Two instances of a class with a guarded method do not share state."""
    a, b = Account(1), Account(100)
    assert a.deposit(1) == 2
    assert b.deposit(1) == 101


# -- callables that are not functions -----------------------------------------------------------


def test_guarded_partial_keeps_partial_attributes() -> None:
    """A guarded ``functools.partial`` calls through and still looks like the partial."""

    def scale(factor: int, x: int) -> int:
        return factor * x

    part = functools.partial(scale, 3)
    wrapped = guarded(assume.that(lambda x: x > 0, "positive"))(part)
    assert isinstance(wrapped, functools.partial)
    assert wrapped.func is scale
    assert wrapped.args == (3,)
    assert wrapped(2) == 6
    with capture_violations() as violations:
        assert wrapped(-1) == -3
    assert [(v.guard, v.observed) for v in violations] == [
        (f"{__name__}.{scale.__qualname__}", "False")
    ]


def test_guarded_callable_instance() -> None:
    """A guarded callable instance keeps its attributes and checks its ``__call__`` signature."""

    class Multiplier:
        def __init__(self, factor: int) -> None:
            self.factor = factor

        def __call__(self, x: int) -> int:
            return x * self.factor

    instance = Multiplier(4)
    wrapped = guarded(assume.that(lambda x: x != 0, "non-zero"), name="mult")(instance)
    assert wrapped.factor == 4
    assert isinstance(wrapped, Multiplier)
    assert wrapped(2) == 8
    with capture_violations() as violations:
        assert wrapped(0) == 0
    assert [v.observed for v in violations] == ["False"]


def test_guarded_callable_instance_default_name_is_its_class() -> None:
    """Without ``name=``, a callable instance's guard is named after its class."""

    class Echo:
        def __call__(self, x: object) -> object:
            return x

    wrapped = guarded(assume.not_none("x"))(Echo())
    with capture_violations() as violations:
        assert wrapped(None) is None
    assert violations[0].guard.endswith("Echo")


def test_non_callable_is_rejected_naming_the_guard() -> None:
    """Decorating something that is not callable raises ``TypeError`` naming the guard."""
    with pytest.raises(TypeError, match=r"callable.*'nope'"):
        guarded(name="nope")(42)


def test_singledispatch_function_can_be_guarded() -> None:
    """A guarded ``singledispatch`` function keeps dispatching and registering."""

    @functools.singledispatch
    def render(value: object) -> str:
        return "object"

    @render.register
    def _(value: int) -> str:
        return "int"

    wrapped = guarded(assume.not_none("value"), name="render")(render)
    assert wrapped(1) == "int"
    assert wrapped("x") == "object"
    with capture_violations() as violations:
        assert wrapped(None) == "object"
    assert [v.observed for v in violations] == ["None"]


# -- generators ---------------------------------------------------------------------------------


def _echo_gen(log: list[str]) -> Any:
    def echo(n: int) -> Iterator[object]:
        try:
            for i in range(n):
                try:
                    received = yield i
                except ValueError as exc:
                    received = f"caught {exc}"
                log.append(f"got {received}")
        finally:
            log.append("finally")
        return "done"

    return echo


def _drive(gen: Any) -> list[object]:
    """Exercise send/throw/exhaustion and record everything observable."""
    seen: list[object] = [next(gen), gen.send("a"), gen.throw(ValueError("v"))]
    try:
        while True:
            seen.append(next(gen))
    except StopIteration as stop:
        seen.append(("stop", stop.value))
    return seen


def test_generator_send_throw_and_return_value_match_unguarded() -> None:
    """send/throw/exhaustion give the same items, return value and ``finally`` runs once."""
    log_plain: list[str] = []
    log_guarded: list[str] = []
    plain = _echo_gen(log_plain)
    wrapped = guarded(assume.latency(ms=60_000))(_echo_gen(log_guarded))
    assert _drive(wrapped(4)) == _drive(plain(4))
    assert log_guarded == log_plain
    assert log_guarded.count("finally") == 1


def test_generator_close_and_early_break() -> None:
    """``close()`` and an early ``break`` run ``finally`` once and report nothing."""
    log: list[str] = []
    wrapped = guarded(assume.raises_only(KeyError), name="gen")(_echo_gen(log))
    with capture_violations() as violations:
        gen = wrapped(5)
        next(gen)
        gen.close()
        for item in wrapped(5):
            if item == 1:
                break
    assert log.count("finally") == 2
    assert violations == []


def test_generator_throw_uncaught_propagates_the_same_exception() -> None:
    """An exception thrown into a generator and not caught comes out unchanged."""
    wrapped = guarded(_echo_gen([]))
    gen = wrapped(3)
    next(gen)
    error = KeyError("k")
    with pytest.raises(KeyError) as info:
        gen.throw(error)
    assert info.value is error


def test_generator_raising_reports_raises_only() -> None:
    """An unexpected exception raised while iterating is a ``raises_only`` violation."""

    @guarded(assume.raises_only(KeyError), name="gen.bad")
    def bad() -> Iterator[int]:
        yield 1
        raise ValueError("boom")

    with capture_violations() as violations, pytest.raises(ValueError, match="boom"):
        list(bad())
    assert [(v.kind, v.observed) for v in violations] == [("exception", "ValueError")]


def test_generator_yield_type_is_not_checked_as_return() -> None:
    """A generator's ``Iterator[int]`` annotation is not mistaken for its return type."""
    with capture_violations() as violations:
        assert list(count_up(2)) == [0, 1]
    assert violations == []


def test_generator_return_type_from_generator_annotation() -> None:
    """``Generator[Y, S, R]`` checks the value the generator returns."""

    @guarded(name="gen.ret")
    def gen() -> Generator[int, None, str]:
        yield 1
        return 5  # type: ignore[return-value]

    with capture_violations() as violations:
        assert list(gen()) == [1]
    assert [(v.assumption, v.observed) for v in violations] == [("type(return)", "int")]


def test_return_path_on_generator_is_rejected() -> None:
    """A ``return`` path on a generator function is a decoration-time ``ValueError``."""
    with pytest.raises(ValueError, match=r"'gen.r'.*generator"):

        @guarded(assume.not_none("return"), name="gen.r")
        def gen() -> Iterator[int]:
            yield 1


# -- async generators ---------------------------------------------------------------------------


def _echo_agen(log: list[str]) -> Any:
    async def echo(n: int) -> AsyncIterator[object]:
        try:
            for i in range(n):
                try:
                    received = yield i
                except ValueError as exc:
                    received = f"caught {exc}"
                log.append(f"got {received}")
        finally:
            log.append("finally")

    return echo


async def _adrive(agen: Any) -> list[object]:
    seen: list[object] = [
        await agen.__anext__(),
        await agen.asend("a"),
        await agen.athrow(ValueError("v")),
    ]
    seen.extend([item async for item in agen])
    return seen


def test_async_generator_asend_athrow_match_unguarded() -> None:
    """asend/athrow/exhaustion give the same items and run ``finally`` once."""
    log_plain: list[str] = []
    log_guarded: list[str] = []
    plain = _echo_agen(log_plain)
    wrapped = guarded(assume.latency(ms=60_000))(_echo_agen(log_guarded))
    assert asyncio.run(_adrive(wrapped(4))) == asyncio.run(_adrive(plain(4)))
    assert log_guarded == log_plain
    assert log_guarded.count("finally") == 1


def test_async_generator_aclose_runs_finally_once() -> None:
    """``aclose()`` mid-iteration closes the inner generator once and reports nothing."""
    log: list[str] = []
    wrapped = guarded(assume.raises_only(KeyError), name="agen")(_echo_agen(log))

    async def main() -> None:
        agen = wrapped(5)
        assert await agen.__anext__() == 0
        await agen.aclose()

    with capture_violations() as violations:
        asyncio.run(main())
    assert log == ["finally"]
    assert violations == []


def test_async_generator_aclose_from_another_task() -> None:
    """An async generator started in one task can be closed from another."""
    log: list[str] = []
    wrapped = guarded(_echo_agen(log))

    async def main() -> None:
        agen = wrapped(5)
        await asyncio.create_task(agen.__anext__())
        await asyncio.create_task(agen.aclose())

    asyncio.run(main())
    assert log == ["finally"]


def test_async_generator_athrow_uncaught_propagates_same_exception() -> None:
    """An exception thrown in and not caught comes out as the same object."""
    wrapped = guarded(_echo_agen([]))
    error = KeyError("k")

    async def main() -> BaseException:
        agen = wrapped(3)
        await agen.__anext__()
        try:
            await agen.athrow(error)
        except KeyError as exc:
            return exc
        raise AssertionError("not raised")

    assert asyncio.run(main()) is error


def test_async_generator_unexpected_exception_reported() -> None:
    """An async generator raising an unexpected type is a ``raises_only`` violation."""

    @guarded(assume.raises_only(KeyError), name="agen.bad")
    async def bad() -> AsyncIterator[int]:
        yield 1
        raise ValueError("boom")

    async def main() -> None:
        async for _ in bad():
            pass

    with capture_violations() as violations, pytest.raises(ValueError, match="boom"):
        asyncio.run(main())
    assert [(v.guard, v.observed) for v in violations] == [("agen.bad", "ValueError")]


def test_async_generator_enforce_raises_from_original() -> None:
    """In enforce mode an unexpected exception becomes the cause of ``AssumptionViolation``."""

    @guarded(assume.raises_only(KeyError), name="agen.enforce", mode="enforce")
    async def bad() -> AsyncIterator[int]:
        yield 1
        raise ValueError("boom")

    async def main() -> None:
        async for _ in bad():
            pass

    with pytest.raises(AssumptionViolation) as info:
        asyncio.run(main())
    assert isinstance(info.value.__cause__, ValueError)


def test_async_generator_argument_checked_before_first_item() -> None:
    """An async generator's argument types are checked when iteration starts."""
    with capture_violations() as violations:

        async def main() -> list[int]:
            return [i async for i in acount(2.0)]  # type: ignore[arg-type]

        with pytest.raises(TypeError):
            asyncio.run(main())
    assert [(v.assumption, v.observed) for v in violations] == [("type(n)", "float")]


def test_off_mode_async_generator_passes_through() -> None:
    """With the kill switch on, an async generator still yields everything."""
    configure(mode="off")

    async def main() -> list[int]:
        return [i async for i in acount(3)]

    with capture_violations() as violations:
        assert asyncio.run(main()) == [0, 1, 2]
    assert violations == []


# -- every wrapper through every path: off, unsampled, return-type only, full --------------------


def _kinds(return_value: object) -> dict[str, Any]:
    """One guarded function of each kind, annotated ``-> int``, returning ``return_value``."""

    def sync(x: int) -> int:
        return return_value  # type: ignore[return-value]

    async def coroutine(x: int) -> int:
        return return_value  # type: ignore[return-value]

    def generator(x: int) -> Generator[int, None, int]:
        yield x
        return return_value  # type: ignore[return-value]

    async def async_generator(x: int) -> AsyncIterator[int]:
        yield x

    class Instance:
        def __call__(self, x: int) -> int:
            return return_value  # type: ignore[return-value]

    return {
        "sync": sync,
        "coroutine": coroutine,
        "generator": generator,
        "async_generator": async_generator,
        "instance": Instance(),
    }


def _call(kind: str, func: Any, x: object) -> object:
    if kind == "coroutine":
        return asyncio.run(func(x))
    if kind == "generator":
        gen = func(x)
        next(gen)
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
        raise AssertionError("generator did not stop")
    if kind == "async_generator":

        async def drain() -> list[int]:
            return [i async for i in func(x)]

        return asyncio.run(drain())
    return func(x)


@pytest.mark.parametrize("kind", ["sync", "coroutine", "generator", "async_generator", "instance"])
@pytest.mark.parametrize(
    ("options", "reports"),
    [
        ({"mode": "off"}, False),
        ({"sample_rate": 0.0}, False),
        ({"sample_rate": 0.9999999}, True),
        ({}, True),
    ],
    ids=["off", "unsampled", "sampled", "always"],
)
def test_every_kind_through_every_path(kind: str, options: dict[str, Any], reports: bool) -> None:
    """Each wrapper returns the same result whether off, unsampled, partly or fully sampled."""
    func = guarded(name=f"paths.{kind}", **options)(_kinds("wrong")[kind])
    plain = _kinds("wrong")[kind]
    with capture_violations() as violations:
        assert _call(kind, func, 1) == _call(kind, plain, 1)
        assert _call(kind, func, 1.5) == _call(kind, plain, 1.5)
    expected = []
    if reports:
        returns = kind != "async_generator"
        expected = (["type(return)"] if returns else []) + ["type(x)"]
        expected += ["type(return)"] if returns else []
    assert [v.assumption for v in violations] == expected


@pytest.mark.parametrize("kind", ["sync", "coroutine", "generator", "instance"])
def test_every_kind_raises_in_enforce_mode_for_a_bad_result(kind: str) -> None:
    """A bad return value raises ``AssumptionViolation`` in enforce mode for every kind."""
    func = guarded(name=f"enforce.{kind}", mode="enforce", sample_rate=0.9999999)(
        _kinds("wrong")[kind]
    )
    with pytest.raises(AssumptionViolation) as info:
        _call(kind, func, 1)
    assert [v.assumption for v in info.value.violations] == ["type(return)"]


@pytest.mark.parametrize("kind", ["sync", "coroutine", "generator", "instance"])
def test_every_kind_with_a_full_plan_reports_exceptions(kind: str) -> None:
    """With an every-call assumption the full path runs and sees exceptions for every kind."""

    def sync(x: int) -> int:
        raise ValueError("x")

    async def coroutine(x: int) -> int:
        raise ValueError("x")

    def generator(x: int) -> Iterator[int]:
        yield x
        raise ValueError("x")

    class Instance:
        def __call__(self, x: int) -> int:
            raise ValueError("x")

    target = {"sync": sync, "coroutine": coroutine, "generator": generator, "instance": Instance()}
    func = guarded(assume.raises_only(KeyError), name=f"raise.{kind}")(target[kind])
    with capture_violations() as violations, pytest.raises(ValueError):
        if kind == "generator":
            list(func(1))
        else:
            _call(kind, func, 1)
    assert [v.observed for v in violations] == ["ValueError"]


def test_partial_is_type_checked_on_its_remaining_parameters() -> None:
    """A guarded partial checks the annotations of the parameters it still takes."""

    def scale(factor: int, x: int) -> int:
        return factor * x

    wrapped = guarded(name="partial.types")(functools.partial(scale, 2))
    with capture_violations() as violations:
        assert wrapped(3) == 6
        assert wrapped(x="ab") == "abab"
    assert [(v.assumption, v.observed) for v in violations] == [
        ("type(x)", "str"),
        ("type(return)", "str"),
    ]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_guarded_methods_and_their_holders_pickle(protocol: int) -> None:
    """Guarded methods (plain, class, static) and instances holding them survive pickling."""
    account = Account(5)
    for method in (Account.deposit, Account.outer_classmethod, Account.inner_staticmethod):
        assert pickle.loads(pickle.dumps(method, protocol=protocol)) == method
    bound = pickle.loads(pickle.dumps(account.deposit, protocol=protocol))
    assert bound(1) == 6
    clone = pickle.loads(pickle.dumps(account, protocol=protocol))
    assert clone.deposit(2) == 7
    assert copy.deepcopy(account).deposit(3) == 8
