"""The differential oracle: run one workload guarded and unguarded, diff what the caller sees.

A *recipe* (a plain, hashable description drawn by hypothesis) is built twice into fresh argument
objects, one copy for each run; the runs share only the :data:`POOL` tokens and the huge shared
containers. The workload body records what it received, returned and raised, so the oracle can
check identity inside a run (the guarded call returns the very object the body returned, raises
the very exception it raised) and equality across runs (same outcome, same effect on the
arguments, one-shot iterators advanced by the body alone, same generator sequences).

Nothing here calls a user dunder of the values it describes: hostile objects are described by
their kind, containers are walked through the builtin types' own methods, iterators through
probes that read their position without consuming them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import functools
import io
import itertools
import operator
import sys
import types
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shadowguard import _config, assume, configure, guarded

# -- shared objects --------------------------------------------------------------------------------


class Token:
    """An object both runs share, so results can be compared by identity across runs."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"Token({self.index})"


POOL = tuple(Token(i) for i in range(8))
_POOL_INDEX = {id(token): i for i, token in enumerate(POOL)}

TELEMETRY_CALLS: Counter[str] = Counter()
"""Calls of hostile objects' ``__repr__``/``__str__``/``__format__``: what telemetry would use."""


class Hostile:
    """Every dunder a guard might be tempted to call raises."""

    kind = "hostile"

    def __repr__(self) -> str:
        TELEMETRY_CALLS["__repr__"] += 1
        raise RuntimeError("repr")

    def __str__(self) -> str:
        TELEMETRY_CALLS["__str__"] += 1
        raise RuntimeError("str")

    def __format__(self, spec: str) -> str:
        TELEMETRY_CALLS["__format__"] += 1
        raise RuntimeError("format")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __hash__(self) -> int:
        raise RuntimeError("hash")

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("iter")

    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("getitem")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("getattr")

    def __bool__(self) -> bool:
        raise RuntimeError("bool")

    def __lt__(self, other: object) -> bool:
        raise RuntimeError("lt")

    def __le__(self, other: object) -> bool:
        raise RuntimeError("le")


class HostileSequence(Sequence[Any]):
    """A registered ``Sequence`` whose length and items raise."""

    kind = "sequence"

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __getitem__(self, index: Any) -> Any:
        raise RuntimeError("getitem")

    def __repr__(self) -> str:
        TELEMETRY_CALLS["__repr__"] += 1
        raise RuntimeError("repr")


class HostileMapping(Mapping[Any, Any]):
    """A registered ``Mapping`` whose every read raises."""

    kind = "mapping"

    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("getitem")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("iter")

    def __len__(self) -> int:
        raise RuntimeError("len")

    def get(self, key: Any, default: Any = None) -> Any:
        raise RuntimeError("get")

    def __repr__(self) -> str:
        TELEMETRY_CALLS["__repr__"] += 1
        raise RuntimeError("repr")


class LyingLength(Sequence[Any]):
    """Claims 2**62 items and returns itself for every index (a lazy, endless view)."""

    kind = "lying"

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: Any) -> Any:
        return self

    def __repr__(self) -> str:
        TELEMETRY_CALLS["__repr__"] += 1
        return "<lying>"


class ClassRaises:
    """A proxy whose ``__class__`` raises (an unbound werkzeug ``LocalProxy``)."""

    kind = "class"

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("unbound proxy")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("unbound proxy")

    def __repr__(self) -> str:
        TELEMETRY_CALLS["__repr__"] += 1
        raise RuntimeError("repr")


class Recursing:
    """Attribute lookups and ``repr`` recurse until ``RecursionError``."""

    kind = "recursing"

    def __getattr__(self, name: str) -> Any:
        return getattr(self, name + "_")

    def __repr__(self) -> str:
        TELEMETRY_CALLS["__repr__"] += 1
        return repr(self)

    def __len__(self) -> int:
        return len(self)


class _Truthless:
    def __bool__(self) -> bool:
        raise RuntimeError("ambiguous truth value")


class ArrayLike:
    """Comparisons return an object whose truth raises (numpy/pandas style)."""

    kind = "arraylike"

    def __init__(self) -> None:
        self.k = self

    def __eq__(self, other: object) -> Any:
        return _Truthless()

    def __lt__(self, other: object) -> Any:
        return _Truthless()

    def __le__(self, other: object) -> Any:
        return _Truthless()

    def __ge__(self, other: object) -> Any:
        return _Truthless()

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        TELEMETRY_CALLS["__repr__"] += 1
        raise RuntimeError("repr")


HOSTILE_TYPES: dict[str, type] = {
    cls.kind: cls  # type: ignore[attr-defined]
    for cls in (Hostile, HostileSequence, HostileMapping, LyingLength, ClassRaises, Recursing)
}
HOSTILE_TYPES[ArrayLike.kind] = ArrayLike


def _huge(kind: str) -> Any:
    return _HUGE[kind]


class _LazyHuge(dict[str, Any]):
    """Huge shared containers, built on first use (both runs share them, nobody mutates them)."""

    def __missing__(self, kind: str) -> Any:
        made: Any
        if kind == "list":
            made = list(range(1_000_000))
        elif kind == "dict":
            made = {f"k{i}": i for i in range(200_000)}
        elif kind == "set":
            made = frozenset(range(200_000))
        elif kind == "bytes":
            made = b"x" * 10_000_000
        elif kind == "str":
            made = "y" * 1_000_000
        else:
            made = tuple({"k": i, "b": None} for i in range(100_000))
        self[kind] = made
        return made


_HUGE = _LazyHuge()
HUGE_KINDS = ("list", "dict", "set", "bytes", "str", "records")
_HUGE_IDS: dict[int, str] = {}


# -- recipes: hashable descriptions of argument values ---------------------------------------------

Recipe = tuple[Any, ...]
ITER_KINDS = ("list_iterator", "generator", "count", "map", "csv", "dict_items")
KEYS = st.one_of(
    st.sampled_from(["a", "b", "k", "ts", "token", "last_login"]),
    st.text(max_size=3),
    st.integers(-2, 2),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
)
_HASHABLE = st.one_of(
    st.tuples(st.just("value"), st.one_of(st.none(), st.integers(), st.text(max_size=4))),
    st.tuples(st.just("pool"), st.integers(0, len(POOL) - 1)),
)


def recipes(max_leaves: int = 12) -> st.SearchStrategy[Recipe]:
    """Arbitrary nested data: scalars, shared tokens, hostile objects, huge containers, lists,
    tuples, dicts, sets, one-shot iterators and self-referential containers."""
    leaf = st.one_of(
        st.tuples(st.just("value"), _SCALARS),
        st.tuples(st.just("pool"), st.integers(0, len(POOL) - 1)),
        st.tuples(st.just("hostile"), st.sampled_from(sorted(HOSTILE_TYPES))),
        st.tuples(st.just("huge"), st.sampled_from(HUGE_KINDS)),
    )

    def extend(children: st.SearchStrategy[Recipe]) -> st.SearchStrategy[Recipe]:
        return st.one_of(
            st.tuples(st.just("list"), st.lists(children, max_size=5).map(tuple)),
            st.tuples(st.just("tuple"), st.lists(children, max_size=4).map(tuple)),
            st.tuples(st.just("dict"), st.lists(st.tuples(KEYS, children), max_size=5).map(tuple)),
            st.tuples(st.just("set"), st.lists(_HASHABLE, max_size=4).map(tuple)),
            st.tuples(
                st.just("iter"),
                st.sampled_from(ITER_KINDS),
                st.lists(children, max_size=4).map(tuple),
            ),
            st.tuples(
                st.just("selfref"),
                st.sampled_from(["list", "dict"]),
                st.lists(children, max_size=3).map(tuple),
            ),
        )

    return st.recursive(leaf, extend, max_leaves=max_leaves)


@dataclass
class World:
    """The objects of one run that need a probe to be described (iterators)."""

    probes: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    generator_logs: list[list[object]] = field(default_factory=list)

    def iterator_states(self) -> list[tuple[str, object]]:
        """Where each one-shot iterator stands, read without advancing it."""
        return [(kind, probe()) for kind, probe in self.probes]


def _logged(items: Sequence[object], log: list[object]) -> Iterator[object]:
    for item in items:
        log.append(item)
        yield item


def build(recipe: Recipe, world: World) -> Any:
    """A fresh object for ``recipe`` (iterators registered in ``world`` with a probe)."""
    tag = recipe[0]
    if tag == "value":
        return recipe[1]
    if tag == "pool":
        return POOL[recipe[1]]
    if tag == "hostile":
        return HOSTILE_TYPES[recipe[1]]()
    if tag == "huge":
        made = _huge(recipe[1])
        _HUGE_IDS[id(made)] = recipe[1]
        return made
    if tag == "list":
        return [build(item, world) for item in recipe[1]]
    if tag == "tuple":
        return tuple(build(item, world) for item in recipe[1])
    if tag == "dict":
        return {key: build(item, world) for key, item in recipe[1]}
    if tag == "set":
        return {build(item, world) for item in recipe[1]}
    if tag == "selfref":
        items = [build(item, world) for item in recipe[2]]
        if recipe[1] == "list":
            items.append(items)
            return items
        made: dict[Any, Any] = dict(enumerate(items))
        made["self"] = made
        return made
    if tag == "iter":
        return _iterator(recipe[1], [build(item, world) for item in recipe[2]], world)
    raise AssertionError(f"unknown recipe {tag!r}")


def _iterator(kind: str, items: list[object], world: World) -> Iterator[object]:
    if kind == "list_iterator":
        it = iter(items)
        world.probes.append((kind, lambda: operator.length_hint(it)))
        return it
    if kind == "generator":
        log: list[object] = []
        world.generator_logs.append(log)
        gen = _logged(items, log)
        world.probes.append((kind, lambda: len(log)))
        return gen
    if kind == "count":
        counter = itertools.count(len(items))
        world.probes.append((kind, lambda: repr(counter)))
        return counter
    if kind == "map":
        inner = iter(items)
        world.probes.append((kind, lambda: operator.length_hint(inner)))
        return map(_identity, inner)
    if kind == "csv":
        lines = io.StringIO("".join(f"{i},x\n" for i in range(len(items) + 1)))
        world.probes.append((kind, lines.tell))
        return csv.reader(lines)
    pairs = dict(enumerate(items))
    view = iter(pairs.items())
    world.probes.append((kind, lambda: operator.length_hint(view)))
    return view


def _identity(item: object) -> object:
    return item


# -- describing values without touching user code --------------------------------------------------


def describe(value: Any, memo: dict[int, int] | None = None) -> Any:
    """A comparable description of ``value``: structure, scalars and shared identities, hostile
    objects by kind. Cycles become back-references; no user dunder is ever called."""
    if memo is None:
        memo = {}
    kind = type(value)
    index = _POOL_INDEX.get(id(value))
    if index is not None and value is POOL[index]:
        return ("pool", index)
    huge = _HUGE_IDS.get(id(value))
    if huge is not None and _HUGE.get(huge) is value:
        return ("huge", huge, len(value))
    if value is None or kind in (bool, int, str, bytes):
        return ("value", kind.__name__, value)
    if kind is float:
        return ("value", "float", repr(value))
    if id(value) in memo:
        return ("ref", memo[id(value)])
    if kind in (list, tuple, dict, set, frozenset):
        memo[id(value)] = len(memo)
        if kind is dict:
            return ("dict", tuple((describe(k, memo), describe(v, memo)) for k, v in value.items()))
        items = tuple(describe(item, memo) for item in value)
        if kind in (set, frozenset):
            items = tuple(sorted(items, key=repr))
        return (kind.__name__, items)
    for name, cls in HOSTILE_TYPES.items():
        if kind is cls or type.__getattribute__(kind, "__name__") == cls.__name__:
            return ("hostile", name)
    if isinstance(value, BaseException):
        return ("exception", kind.__name__)
    return ("object", kind.__qualname__)


# -- real sinks ------------------------------------------------------------------------------------


@dataclass
class Sinks:
    """A real OpenTelemetry SDK pipeline (in-memory exporter and metric reader) and structlog
    capture, wired into shadowguard for one hypothesis example."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    logs: list[dict[str, Any]]


@contextlib.contextmanager
def real_sinks() -> Iterator[Sinks]:
    """Every sink shadowguard reports to, real and recording, for the duration of the block."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    saved = _config.snapshot()
    configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with structlog.testing.capture_logs() as logs:
            yield Sinks(exporter, reader, logs)
            reader.get_metrics_data()  # the observable counters' callbacks run too
    finally:
        _config.restore(saved)
        meter_provider.shutdown()
        tracer_provider.shutdown()


# -- the workload ----------------------------------------------------------------------------------

BEHAVIOURS = (
    "return_pool",
    "return_arg",
    "mutate",
    "consume",
    "raise",
    "raise_base",
)
BASE_EXCEPTIONS: tuple[Callable[[], BaseException], ...] = (
    KeyboardInterrupt,
    lambda: SystemExit(0),
    lambda: SystemExit(3),
    asyncio.CancelledError,
    GeneratorExit,
)
_ITERATOR_TYPES = tuple(
    type(it)
    for it in (
        iter([]),
        _logged((), []),
        itertools.count(),
        map(_identity, ()),
        csv.reader(io.StringIO("")),
        iter({}.items()),
    )
)


@dataclass
class Record:
    """What the body of one run received, produced and raised."""

    received: list[tuple[object, object]] = field(default_factory=list)
    result: object = None
    exception: BaseException | None = None
    cause: BaseException | None = None
    consumed: list[object] = field(default_factory=list)


def act(behaviour: str, x: Any, n: int, record: Record) -> Any:
    """The body shared by every callable kind: one behaviour, recorded."""
    record.received.append((x, n))
    if behaviour == "return_pool":
        result: Any = POOL[n % len(POOL)]
    elif behaviour == "return_arg":
        result = x
    elif behaviour == "mutate":
        if id(x) in _HUGE_IDS:  # shared by both runs: never mutated
            pass
        elif type(x) is list:
            x.append(POOL[0])
        elif type(x) is dict:
            x["mutated"] = POOL[1]
        result = None
    elif behaviour == "consume":
        result = []
        if type(x) in _ITERATOR_TYPES:
            result = list(itertools.islice(x, 2))
        record.consumed = list(result)
    elif behaviour == "raise":
        try:
            raise KeyError("context")
        except KeyError:
            error = ValueError("boom", n)
            cause = LookupError("cause")
            error.__cause__ = cause
            if sys.version_info >= (3, 11):
                error.add_note(f"note {n}")
            record.exception, record.cause = error, cause
            raise error  # noqa: B904 - the cause is set explicitly above
    else:
        base = BASE_EXCEPTIONS[n % len(BASE_EXCEPTIONS)]()
        record.exception = base
        raise base
    record.result = result
    return result


def violated_assumptions() -> tuple[Any, ...]:
    """Assumptions over ``x``, ``n`` and the result that real traffic breaks all the time."""
    return (
        assume.present("x.a"),
        assume.present("x['k']"),
        assume.not_none("x[0]"),
        assume.not_none("x[*].b"),
        assume.not_none("x[*].a.b"),
        assume.size("x", max=0),
        assume.size("x[0]", min=10**9),
        assume.ordered("x", key="k"),
        assume.ordered("x", descending=True),
        assume.ordered("x[*]"),
        assume.monotonic("n"),
        assume.monotonic("x.a", per="n"),
        assume.latency(ms=1e-6),
        assume.max_concurrency(1),
        assume.raises_only(KeyError),
        assume.that(lambda n: n < -100, "n is very negative"),
        assume.that(lambda result: result is None, "returns None"),
        assume.not_none("return.a"),
        assume.size("return", max=0),
    )


ANNOTATIONS: tuple[Any, ...] = (
    int,
    list[dict[str, int]],
    dict[str, list[int]],
    tuple[int, ...],
    tuple[int, str],
    set[int],
    Sequence[int],
    Mapping[str, int],
    Iterator[int],
    "int | None",
    Callable[[int], int],
    type[int],
    Any,
)
"""Annotations for ``x`` (and the return), compiled and typeguard-backed alike."""


def _function(act_: Callable[[Any, int], Any]) -> Callable[..., Any]:
    def body(x: Any, n: int = 0) -> Any:
        return act_(x, n)

    return body


def _annotate(func: Any, annotation: Any) -> Any:
    target = func.__func__ if isinstance(func, (classmethod, staticmethod)) else func
    target.__annotations__ = {"x": annotation, "n": int, "return": annotation}
    return func


CALL_KINDS = (
    "function",
    "method",
    "classmethod",
    "staticmethod",
    "coroutine",
    "partial",
    "callable",
    "property",
)


def make_callable(
    kind: str,
    behaviour: str,
    record: Record,
    guard: bool,
    annotation: Any = int,
    sample_rate: float | None = None,
) -> Callable[[Any, int], Any]:
    """A caller ``(x, n) -> outcome`` of a fresh callable of ``kind`` running ``behaviour``:
    guarded with :func:`violated_assumptions` when ``guard``, else the plain callable."""

    def run(x: Any, n: int) -> Any:
        return act(behaviour, x, n, record)

    def wrap(target: Any) -> Any:
        if not guard:
            return target
        return guarded(*violated_assumptions(), name=f"oracle.{kind}", sample_rate=sample_rate)(
            target
        )

    if kind == "function":
        fn = wrap(_annotate(_function(run), annotation))
        return fn
    if kind == "coroutine":

        async def coro(x: Any, n: int = 0) -> Any:
            return run(x, n)

        afn = wrap(_annotate(coro, annotation))
        return lambda x, n: drive_coroutine(afn(x, n))
    if kind == "partial":

        def with_bound(bound: object, x: Any, n: int = 0) -> Any:
            return run(x, n)

        _annotate(with_bound, annotation)
        part = wrap(functools.partial(with_bound, POOL[0]))
        return part
    if kind == "callable":

        class Instance:
            def __call__(self, x: Any, n: int = 0) -> Any:
                return run(x, n)

        _annotate(Instance.__call__, annotation)
        instance = wrap(Instance())
        return instance
    if kind == "property":

        def getter(self: Any) -> Any:
            return run(self.x, self.n)

        getter.__annotations__ = {"return": annotation}

        class Holder:
            def __init__(self, x: Any, n: int) -> None:
                self.x, self.n = x, n

            value = (
                property(getter) if not guard else guarded(name="oracle.property")(property(getter))
            )

        return lambda x, n: Holder(x, n).value

    def method(self: Any, x: Any, n: int = 0) -> Any:
        return run(x, n)

    _annotate(method, annotation)
    if kind == "method":
        members: dict[str, Any] = {"m": wrap(method)}
    elif kind == "classmethod":
        members = {"m": wrap(classmethod(method))}
    elif kind == "staticmethod":
        members = {"m": wrap(staticmethod(_annotate(_function(run), annotation)))}
    else:
        raise AssertionError(kind)
    cls = type("Owner", (), members)
    owner = cls()
    return owner.m


def drive_coroutine(coro: Any) -> Any:
    """Run a coroutine that never suspends, without an event loop (so cancellation and exit
    exceptions come out exactly as raised)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the workload coroutine suspended")


# -- outcomes and their comparison -----------------------------------------------------------------


@dataclass
class Outcome:
    """What one run looked like from the outside, plus the body's own record."""

    returned: bool
    value: Any
    record: Record
    arguments: Any
    iterators: list[tuple[str, object]]
    telemetry_calls: int


def observe_call(
    make: Callable[[Record], Callable[[Any, int], Any]], recipe: Recipe, n: int
) -> Outcome:
    """Build the argument from ``recipe``, call, and describe everything visible afterwards."""
    world = World()
    x = build(recipe, world)
    record = Record()
    call = make(record)
    before = sum(TELEMETRY_CALLS.values())
    try:
        value, returned = call(x, n), True
    except BaseException as exc:  # the oracle compares every exception, exits included
        value, returned = exc, False
    telemetry = sum(TELEMETRY_CALLS.values()) - before
    received = record.received[0][0] if record.received else None
    assert not record.received or received is x, "the body must receive the caller's object"
    return Outcome(returned, value, record, describe(x), world.iterator_states(), telemetry)


def exception_facts(exc: BaseException) -> tuple[Any, ...]:
    """Type, args, cause, context, notes and suppress-context flag of an exception."""
    return (
        type(exc),
        exc.args,
        None if exc.__cause__ is None else (type(exc.__cause__), exc.__cause__.args),
        None if exc.__context__ is None else (type(exc.__context__), exc.__context__.args),
        getattr(exc, "__notes__", None),
        exc.__suppress_context__,
    )


def assert_identical(plain: Outcome, twin: Outcome, *, telemetry_dunders: bool = True) -> None:
    """The guarded run (``twin``) is indistinguishable from the plain one."""
    assert twin.returned == plain.returned, (plain.value, twin.value)
    if twin.returned:
        # identity inside the run: the guard hands back the body's own object
        if twin.record.received:
            assert twin.value is twin.record.result or twin.value is twin.record.received[0][0]
        assert describe(twin.value) == describe(plain.value)
        if type(plain.value) is list and plain.record.consumed:
            assert [describe(v) for v in twin.value] == [describe(v) for v in plain.value]
    else:
        assert type(twin.value) is type(plain.value)
        if twin.record.exception is not None:
            assert twin.value is twin.record.exception, "not the body's own exception object"
            assert twin.value.__cause__ is twin.record.cause
        assert exception_facts(twin.value) == exception_facts(plain.value)
    assert [describe(n) for _, n in twin.record.received] == [
        describe(n) for _, n in plain.record.received
    ]
    assert twin.arguments == plain.arguments, "the guard changed an argument"
    assert twin.iterators == plain.iterators, "the guard advanced a one-shot iterator"
    if telemetry_dunders:
        assert twin.telemetry_calls == plain.telemetry_calls, "the guard called __repr__/__str__"


# -- generators ------------------------------------------------------------------------------------

GEN_OPS = ("next", "send", "throw_value", "throw_key", "throw_exit", "close")


@dataclass
class GenRecord:
    """What a generator body saw and did."""

    events: list[Any] = field(default_factory=list)
    finally_runs: int = 0
    thrown: list[BaseException] = field(default_factory=list)


def generator_body(record: GenRecord, items: int, ret: int) -> Callable[..., Any]:
    """A generator function that yields pool tokens, records what is sent and thrown into it,
    swallows a thrown ``ValueError`` (yielding a marker), re-raises anything else, and returns a
    pool token."""

    def gen(x: Any, n: int = 0) -> Iterator[Any]:
        try:
            i = 0
            while i < items:
                try:
                    sent = yield POOL[i % len(POOL)]
                    record.events.append(("sent", describe(sent)))
                except ValueError as exc:
                    record.thrown.append(exc)
                    record.events.append(("caught", type(exc).__name__))
                    yield POOL[-1]
                i += 1
            return POOL[ret % len(POOL)]
        finally:
            record.finally_runs += 1

    return gen


def async_generator_body(record: GenRecord, items: int) -> Callable[..., Any]:
    """The async twin of :func:`generator_body` (async generators cannot return a value)."""

    async def agen(x: Any, n: int = 0) -> Any:
        try:
            i = 0
            while i < items:
                try:
                    sent = yield POOL[i % len(POOL)]
                    record.events.append(("sent", describe(sent)))
                except ValueError as exc:
                    record.thrown.append(exc)
                    record.events.append(("caught", type(exc).__name__))
                    yield POOL[-1]
                i += 1
        finally:
            record.finally_runs += 1

    return agen


def guard_generator(func: Any) -> Any:
    """``func`` guarded with the assumptions a generator may carry (no ``return`` paths)."""
    return guarded(
        assume.present("x.a"),
        assume.not_none("x[*].b"),
        assume.size("x", max=0),
        assume.ordered("x", key="k"),
        assume.latency(ms=1e-6),
        assume.max_concurrency(1),
        assume.raises_only(KeyError),
        assume.that(lambda n: n < -100, "n is very negative"),
        name=f"oracle.{func.__name__}",
    )(func)


def _throwable(op: str) -> BaseException:
    if op == "throw_value":
        return ValueError("thrown")
    if op == "throw_key":
        return KeyError("thrown")
    return SystemExit(7)


def drive_generator(gen: Any, ops: Sequence[str]) -> list[Any]:
    """Apply ``ops`` to a generator; describe each step's outcome (identity of the thrown
    exception included). Stops at the first step that ends the generator."""
    steps: list[Any] = []
    for i, op in enumerate(ops):
        thrown: BaseException | None = None
        try:
            if op == "next":
                value = next(gen)
            elif op == "send":
                value = gen.send(POOL[i % len(POOL)])
            elif op == "close":
                gen.close()
                steps.append(("closed",))
                continue
            else:
                thrown = _throwable(op)
                value = gen.throw(thrown)
            steps.append(("yield", describe(value)))
        except StopIteration as stop:
            steps.append(("stop", describe(stop.value)))
            break
        except BaseException as exc:  # compared below, interrupts included
            steps.append(("raise", type(exc).__name__, exc.args, thrown is None or exc is thrown))
            break
    gen.close()
    return steps


async def drive_async_generator(agen: Any, ops: Sequence[str]) -> list[Any]:
    """:func:`drive_generator` for async generators (``asend``/``athrow``/``aclose``)."""
    steps: list[Any] = []
    for i, op in enumerate(ops):
        thrown: BaseException | None = None
        try:
            if op == "next":
                value = await agen.__anext__()
            elif op == "send":
                value = await agen.asend(POOL[i % len(POOL)])
            elif op == "close":
                await agen.aclose()
                steps.append(("closed",))
                continue
            else:
                thrown = _throwable(op)
                value = await agen.athrow(thrown)
            steps.append(("yield", describe(value)))
        except StopAsyncIteration:
            steps.append(("stop",))
            break
        except BaseException as exc:  # compared below, interrupts included
            steps.append(("raise", type(exc).__name__, exc.args, thrown is None or exc is thrown))
            break
    await agen.aclose()
    return steps


def copy_function(func: Any, name: str) -> Any:
    """A separate function object with the same code (so the plain one is never guarded)."""
    clone = types.FunctionType(
        func.__code__, func.__globals__, name, func.__defaults__, func.__closure__
    )
    clone.__annotations__ = copy.copy(getattr(func, "__annotations__", {}))
    clone.__qualname__ = func.__qualname__
    return clone
