"""The assumption catalogue: canonical texts, expectations, observed shapes, decoration errors."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from shadowguard import AssumptionViolation, Violation, assume, configure, guarded
from shadowguard._assumptions import Finding
from shadowguard.assume import Assumption, Call, GuardInfo
from shadowguard.testing import capture_violations


def summary(violations: list[Violation]) -> list[tuple[str, str, str, str, str | None]]:
    """(kind, assumption, expected, observed, path) of each violation."""
    return [(v.kind, v.assumption, v.expected, v.observed, v.path) for v in violations]


class FakeClock:
    """A monotonic nanosecond clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += int(ms * 1_000_000)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Replace the guard's clock so latency is driven by the test, not by sleeping."""
    from shadowguard import _guard

    fake = FakeClock()
    monkeypatch.setattr(_guard, "_perf_ns", fake)
    return fake


# -- nullability --------------------------------------------------------------------------------


def test_present_missing_key_in_a_list_of_rows() -> None:
    """``present`` reports a missing key with its location, and accepts ``None``."""

    @guarded(assume.present("users[*].last_login"), name="users.active")
    def active(users: list[dict[str, Any]]) -> int:
        return len(users)

    with capture_violations() as violations:
        assert active([{"last_login": None}, {"last_login": "2024"}]) == 2
        assert active([{"last_login": "2024"}, {"id": 2}]) == 2
    assert summary(violations) == [
        (
            "nullability",
            "present(users[*].last_login)",
            "present",
            "missing at users[1].last_login",
            "users[*].last_login",
        )
    ]
    assert violations[0].guard == "users.active"


def test_not_none_distinguishes_none_and_missing() -> None:
    """``not_none(user.email)`` observes ``None`` and ``missing`` as different shapes."""

    @guarded(assume.not_none("user.email"), name="mail")
    def send(user: Any) -> str:
        return "sent"

    with capture_violations() as violations:
        send(SimpleNamespace(email="a@b"))
        send(SimpleNamespace(email=None))
        send(SimpleNamespace())
        send({"email": None})
    assert [(v.assumption, v.expected, v.observed) for v in violations] == [
        ("not_none(user.email)", "not None", "None"),
        ("not_none(user.email)", "not None", "missing"),
        ("not_none(user.email)", "not None", "None"),
    ]


def test_not_none_on_the_return_value() -> None:
    """A ``return`` path checks the result after the call."""

    @guarded(assume.not_none("return.id"), name="ret")
    def load(found: bool) -> dict[str, Any] | None:
        return {"id": 1} if found else None

    with capture_violations() as violations:
        assert load(True) == {"id": 1}
        assert load(False) is None
    assert [(v.assumption, v.observed, v.path) for v in violations] == [
        ("not_none(return.id)", "None at return", "return.id")
    ]


# -- volume -------------------------------------------------------------------------------------


def test_size_max_and_min() -> None:
    """``size`` reports ``len=N`` outside its bounds; values without a length are not observed."""

    @guarded(assume.size("rows", max=10_000), assume.size("name", min=1), name="vol")
    def load(rows: Any, name: Any = "x") -> None:
        return None

    with capture_violations() as violations:
        load(range(10_000))
        load(range(12_001))
        load([], "")
        load(5, None)
        load(iter([1, 2]))
    assert summary(violations) == [
        ("volume", "size(rows, max=10000)", "len <= 10000", "len=12001", "rows"),
        ("volume", "size(name, min=1)", "len >= 1", "len=0", "name"),
    ]


def test_size_with_both_bounds_over_star() -> None:
    """``size`` over ``[*]`` names the first item out of bounds."""

    @guarded(assume.size("batches[*]", min=1, max=3), name="vol.star")
    def f(batches: list[list[int]]) -> None:
        return None

    with capture_violations() as violations:
        f([[1], [1, 2, 3, 4], []])
    assert [(v.assumption, v.expected, v.observed) for v in violations] == [
        ("size(batches[*], min=1, max=3)", "1 <= len <= 3", "len=4 at batches[1]")
    ]


def test_size_does_not_consume_generators() -> None:
    """A generator has no length: it is neither measured nor advanced."""

    def gen() -> Iterator[int]:
        yield 1

    @guarded(assume.size("items", max=0), name="vol.gen")
    def f(items: Any) -> Any:
        return next(items)

    assert f(gen()) == 1


# -- ordering -----------------------------------------------------------------------------------


def test_ordered_by_key_names_the_first_inversion() -> None:
    """``ordered(events, key=ts)`` reports ``items[i] < items[i-1]``."""

    @guarded(assume.ordered("events", key="ts"), name="ord")
    def process(events: list[Any]) -> None:
        return None

    with capture_violations() as violations:
        process([{"ts": 1}, {"ts": 1}, {"ts": 2}])
        process([{"ts": 1}, {"ts": 2}, {"ts": 3}, {"ts": 2}])
        process([SimpleNamespace(ts=1), SimpleNamespace(ts=0)])
    assert summary(violations) == [
        ("ordering", "ordered(events, key=ts)", "sorted by ts", "items[3] < items[2]", "events"),
        ("ordering", "ordered(events, key=ts)", "sorted by ts", "items[1] < items[0]", "events"),
    ]


def test_ordered_descending_with_a_callable_key() -> None:
    """``descending`` with a callable key reports ``items[i] > items[i-1]``."""

    @guarded(assume.ordered("words", key=len, descending=True), name="ord.desc")
    def f(words: list[str]) -> None:
        return None

    with capture_violations() as violations:
        f(["ccc", "bb", "a"])
        f(["ccc", "a", "bb"])
    assert [(v.assumption, v.expected, v.observed) for v in violations] == [
        ("ordered(words, key=len, descending)", "sorted descending by len", "items[2] > items[1]")
    ]


def test_ordered_skips_missing_and_none_keys_and_ignores_non_sequences() -> None:
    """Items without the key, ``None`` keys, strings and iterators are not judged."""

    @guarded(assume.ordered("xs", key="k"), name="ord.skip")
    def f(xs: Any) -> None:
        return None

    it = iter([{"k": 2}, {"k": 1}])
    with capture_violations() as violations:
        f([{"k": 2}, {}, {"k": None}])
        f("cba")
        f(it)
        f([{"k": 1}])
    assert violations == []
    assert next(it) == {"k": 2}


def test_ordered_incomparable_items_are_unobservable() -> None:
    """Items that cannot be compared give no violation and no internal error."""

    @guarded(assume.ordered("xs"), name="ord.types")
    def f(xs: list[Any]) -> None:
        return None

    with capture_violations() as violations:
        f([1, "a", None, object()])
    assert violations == []


def test_ordered_large_sequences_are_sampled() -> None:
    """A long unsorted sequence is caught at its ends without comparing every pair."""

    @guarded(assume.ordered("xs"), name="ord.big")
    def f(xs: list[int]) -> None:
        return None

    with capture_violations() as violations:
        f([*range(100_000), 0])
        f(list(range(100_000)))
    assert [v.observed for v in violations] == ["items[100000] < items[99999]"]


def test_monotonic_across_calls() -> None:
    """``monotonic`` remembers the highest value seen and reports any step back below it."""

    @guarded(assume.monotonic("seq"), name="mono")
    def f(seq: int | None) -> None:
        return None

    with capture_violations() as violations:
        for value in (1, 2, 2, None, 5, 3, 4, 6):
            f(value)
    assert (
        summary(violations)
        == [("ordering", "monotonic(seq)", "non-decreasing", "seq < previous", "seq")] * 2
    )


def test_monotonic_per_key() -> None:
    """``monotonic(seq, per=account)`` tracks each account separately."""

    @guarded(assume.monotonic("event.seq", per="account"), name="mono.per")
    def f(event: dict[str, int], account: str) -> None:
        return None

    with capture_violations() as violations:
        f({"seq": 5}, "a")
        f({"seq": 1}, "b")
        f({"seq": 6}, "a")
        f({"seq": 2}, "b")
        f({"seq": 4}, "a")
    assert [(v.assumption, v.expected, v.observed) for v in violations] == [
        ("monotonic(event.seq, per=account)", "non-decreasing per account", "event.seq < previous")
    ]


def test_monotonic_remembers_a_bounded_number_of_keys_lru() -> None:
    """Beyond ``max_keys`` the least recently used key is forgotten."""

    @guarded(assume.monotonic("seq", per="key", max_keys=2), name="mono.lru")
    def f(seq: int, key: str) -> None:
        return None

    with capture_violations() as violations:
        f(10, "a")
        f(10, "b")
        f(11, "a")  # a is now the most recent
        f(10, "c")  # evicts b
        f(1, "b")  # b was forgotten: no violation
        f(1, "a")  # keys were {c, b}: a was evicted by b, so it starts afresh
    monotonic = f.__shadowguard__.declared[0]
    assert len(monotonic._last) == 2
    assert violations == []
    with capture_violations() as violations:
        f(0, "b")
    assert [v.observed for v in violations] == ["seq < previous"]


def test_monotonic_memory_is_bounded_under_many_keys() -> None:
    """Many distinct keys never grow the memory past ``max_keys``."""

    @guarded(assume.monotonic("seq", per="key", max_keys=100), name="mono.bound")
    def f(seq: int, key: int) -> None:
        return None

    for i in range(5_000):
        f(i, i)
    assert len(f.__shadowguard__.declared[0]._last) == 100


def test_monotonic_ignores_unhashable_keys_and_incomparable_values() -> None:
    """Unhashable ``per`` values and values that cannot be compared are skipped silently."""

    @guarded(assume.monotonic("seq", per="key"), name="mono.odd")
    def f(seq: Any, key: Any) -> None:
        return None

    with capture_violations() as violations:
        f(1, ["unhashable"])
        f(1, "k")
        f("text", "k")
        f(1, 1)
        f(0, True)  # True and 1 are distinct keys (type is part of the key)
    assert violations == []


# -- latency ------------------------------------------------------------------------------------


def test_latency_over_budget(clock: FakeClock) -> None:
    """``latency(ms=250)`` reports the elapsed time with one decimal."""

    @guarded(assume.latency(ms=250), name="slow")
    def f(ms: float) -> str:
        clock.advance(ms)
        return "done"

    with capture_violations() as violations:
        assert f(100) == "done"
        assert f(312.4) == "done"
    assert summary(violations) == [("latency", "latency(ms=250)", "<= 250 ms", "312.4 ms", None)]


def test_latency_uses_the_monotonic_clock_not_wall_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wall-clock jumps (an hour forward or back) during a call cause no latency violation."""

    @guarded(assume.latency(ms=60_000), name="jumps")
    def f(jump: float) -> None:
        now = time.time()
        monkeypatch.setattr(time, "time", lambda: now + jump)
        monkeypatch.setattr(time, "time_ns", lambda: int((now + jump) * 1e9))

    with capture_violations() as violations:
        f(-3600.0)
        f(3600.0)
    assert violations == []


def test_latency_of_a_generator_covers_the_whole_iteration(clock: FakeClock) -> None:
    """For a generator the budget covers iteration, not just creating it."""

    @guarded(assume.latency(ms=100), name="gen.slow")
    def stream() -> Iterator[int]:
        for i in range(3):
            clock.advance(40)
            yield i

    with capture_violations() as violations:
        gen = stream()
        assert violations == []
        assert list(gen) == [0, 1, 2]
    assert [v.observed for v in violations] == ["120.0 ms"]


def test_latency_of_a_generator_closed_early(clock: FakeClock) -> None:
    """A generator closed early is still timed from start to close."""

    @guarded(assume.latency(ms=100), name="gen.closed")
    def stream() -> Iterator[int]:
        while True:
            clock.advance(60)
            yield 1

    with capture_violations() as violations:
        for _ in stream():
            break
        gen = stream()
        next(gen)
        next(gen)
        gen.close()
    assert [v.observed for v in violations] == ["120.0 ms"]


def test_latency_of_a_coroutine_spans_awaits(clock: FakeClock) -> None:
    """An async call is timed from start to finish, across awaits."""

    @guarded(assume.latency(ms=10), name="async.slow")
    async def f() -> int:
        clock.advance(6)
        await asyncio.sleep(0)
        clock.advance(6)
        return 1

    with capture_violations() as violations:
        assert asyncio.run(f()) == 1
    assert [v.observed for v in violations] == ["12.0 ms"]


def test_latency_is_checked_when_the_call_raises(clock: FakeClock) -> None:
    """A slow call that raises is still a latency violation, and the exception propagates."""

    @guarded(assume.latency(ms=1), name="slow.raise")
    def f() -> None:
        clock.advance(5)
        raise LookupError("x")

    with capture_violations() as violations, pytest.raises(LookupError):
        f()
    assert [v.observed for v in violations] == ["5.0 ms"]


def test_latency_enforce_lets_the_call_complete_first(clock: FakeClock) -> None:
    """In enforce mode the slow call runs to completion before the violation is raised."""
    done: list[str] = []

    @guarded(assume.latency(ms=1), name="slow.enforce", mode="enforce")
    def f() -> str:
        clock.advance(2)
        done.append("side effect")
        return "result"

    with pytest.raises(AssumptionViolation) as info:
        f()
    assert done == ["side effect"]
    assert [v.observed for v in info.value.violations] == ["2.0 ms"]


# -- concurrency --------------------------------------------------------------------------------


def test_max_concurrency_with_threads() -> None:
    """Three threads inside a ``max_concurrency(1)`` guard at once: two violations."""
    barrier = threading.Barrier(3, timeout=10)

    @guarded(assume.max_concurrency(1), name="conc")
    def f() -> None:
        barrier.wait()

    with capture_violations() as violations:
        threads = [threading.Thread(target=f) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        f_alone = threading.Barrier(1)
        barrier = f_alone  # the next call is alone
        f()
    # counted without a lock: calls counted at the same instant may see each other, so the
    # first of the three may report too; the last always sees all three
    observed = sorted(v.observed for v in violations)
    assert observed in (
        ["2 in flight", "3 in flight"],
        ["3 in flight", "3 in flight"],
        ["2 in flight", "2 in flight", "3 in flight"],
        ["2 in flight", "3 in flight", "3 in flight"],
        ["3 in flight", "3 in flight", "3 in flight"],
    )
    assert {(v.kind, v.assumption, v.expected) for v in violations} == {
        ("concurrency", "max_concurrency(1)", "<= 1 in flight")
    }


def test_max_concurrency_with_asyncio_tasks() -> None:
    """Concurrent asyncio tasks count as in flight; sequential ones do not."""

    @guarded(assume.max_concurrency(2), name="conc.async")
    async def f(gate: asyncio.Event, entered: list[int]) -> None:
        entered.append(1)
        await gate.wait()

    async def main() -> None:
        gate = asyncio.Event()
        entered: list[int] = []
        tasks = [asyncio.ensure_future(f(gate, entered)) for _ in range(4)]
        while len(entered) < 4:
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*tasks)
        await f(gate, entered)

    with capture_violations() as violations:
        asyncio.run(main())
    assert sorted(v.observed for v in violations) == ["3 in flight", "4 in flight"]


def test_in_flight_is_released_after_exceptions_and_cancellation() -> None:
    """A call that raised or was cancelled no longer counts as in flight."""

    @guarded(assume.max_concurrency(1), name="conc.release")
    async def f(fail: bool) -> None:
        if fail:
            raise LookupError("x")
        await asyncio.sleep(10)

    async def main() -> None:
        with pytest.raises(LookupError):
            await f(True)
        task = asyncio.ensure_future(f(False))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert f.__shadowguard__.in_flight == 0

    with capture_violations() as violations:
        asyncio.run(main())
    assert violations == []


# -- exceptions ---------------------------------------------------------------------------------


def test_raises_only_reports_other_exception_types() -> None:
    """Listed types (and subclasses) pass; any other ``Exception`` is observed by type name."""

    @guarded(assume.raises_only(KeyError, ValueError), name="exc")
    def f(error: BaseException | None) -> str:
        if error is not None:
            raise error
        return "ok"

    with capture_violations() as violations:
        assert f(None) == "ok"
        for error in (KeyError("k"), UnicodeError("u"), ZeroDivisionError("z")):
            with pytest.raises(type(error)) as info:
                f(error)
            assert info.value is error
    assert summary(violations) == [
        (
            "exception",
            "raises_only(KeyError, ValueError)",
            "KeyError | ValueError",
            "ZeroDivisionError",
            None,
        )
    ]


@pytest.mark.parametrize(
    "error",
    [KeyboardInterrupt(), SystemExit(0), SystemExit(1), asyncio.CancelledError(), GeneratorExit()],
    ids=["KeyboardInterrupt", "SystemExit0", "SystemExit1", "CancelledError", "GeneratorExit"],
)
def test_raises_only_leaves_base_exceptions_alone(error: BaseException) -> None:
    """Interrupts, exits and cancellation propagate as the same object and are not reported."""

    @guarded(assume.raises_only(KeyError), name="exc.base", mode="enforce")
    def f() -> None:
        raise error

    with capture_violations() as violations, pytest.raises(BaseException) as info:
        f()
    assert info.value is error
    assert violations == []


def test_raises_only_enforce_chains_the_original_exception() -> None:
    """In enforce mode the original exception is the ``__cause__``."""

    @guarded(assume.raises_only(KeyError), name="exc.enforce", mode="enforce")
    def f() -> None:
        raise ValueError("boom")

    with pytest.raises(AssumptionViolation) as info:
        f()
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.__cause__.args == ("boom",)
    assert [v.observed for v in info.value.violations] == ["ValueError"]


# -- predicates ---------------------------------------------------------------------------------


def test_that_binds_parameters_by_name_and_result() -> None:
    """``that`` receives the named parameters (defaults included) and ``result``."""
    seen: list[tuple[Any, ...]] = []

    def never_grows(users: list[int], result: list[int]) -> bool:
        seen.append((users, result))
        return len(result) <= len(users)

    @guarded(assume.that(never_grows, "filter never grows"), name="pred")
    def active(users: list[int], extra: int = 0) -> list[int]:
        return users + [0] * extra

    with capture_violations() as violations:
        active([1, 2])
        active([1], extra=2)
    assert seen == [([1, 2], [1, 2]), ([1], [1, 0, 0])]
    assert summary(violations) == [
        ("predicate", "that(filter never grows)", "filter never grows", "False", None)
    ]


def test_that_without_result_runs_before_the_call() -> None:
    """A predicate that does not ask for ``result`` is checked before the function runs."""
    order: list[str] = []

    @guarded(assume.that(lambda x: order.append("check") or x > 0), name="pred.before")
    def f(x: int) -> None:
        order.append("call")

    with capture_violations() as violations:
        f(-1)
    assert order == ["check", "call"]
    assert [(v.assumption, v.expected) for v in violations] == [("that(<lambda>)", "<lambda>")]


def test_that_uses_the_function_name_as_text() -> None:
    """A named function as predicate gives ``that(name)``."""

    def positive(x: int) -> bool:
        return x > 0

    @guarded(assume.that(positive), name="pred.named")
    def f(x: int) -> None:
        return None

    with capture_violations() as violations:
        f(0)
    assert [v.assumption for v in violations] == ["that(positive)"]


@pytest.mark.internal_errors
def test_that_predicate_that_raises_is_an_internal_error_not_a_violation() -> None:
    """A crashing predicate is swallowed: the call's result stands, nothing is reported."""

    @guarded(assume.that(lambda x: 1 / x), name="pred.crash")
    def f(x: int) -> str:
        return "ok"

    with capture_violations() as violations:
        assert f(0) == "ok"
    assert violations == []


# -- a user-defined assumption ------------------------------------------------------------------


class EvenLength(Assumption):
    """A user-defined kind: the sequence parameter has an even length."""

    kind = "parity"

    def __init__(self, parameter: str) -> None:
        super().__init__(f"even_length({parameter})", "even length", path=parameter)
        self.parameter = parameter

    def bind(self, guard: GuardInfo) -> None:
        super().bind(guard)
        if self.parameter not in guard.parameters:
            raise ValueError(f"guard {guard.name!r}: {self.text}: no parameter {self.parameter}")

    def check(self, call: Call) -> str | None:
        length = len(call.argument(self.parameter))
        return None if length % 2 == 0 else f"len={length}"


class ResultNotEmpty(Assumption):
    """A user-defined, every-call check on the result."""

    kind = "volume"
    data = False
    when = "return"

    def __init__(self) -> None:
        super().__init__("result_not_empty()", "non-empty result")

    def check(self, call: Call) -> str | None:
        return "empty" if not call.result else None


def test_user_defined_assumption() -> None:
    """A subclass of ``Assumption`` reports through the same pipeline."""

    @guarded(EvenLength("items"), ResultNotEmpty(), name="custom")
    def f(items: list[int]) -> list[int]:
        return items

    with capture_violations() as violations:
        f([1, 2])
        f([1, 2, 3])
        f([])
    assert summary(violations) == [
        ("parity", "even_length(items)", "even length", "len=3", "items"),
        ("volume", "result_not_empty()", "non-empty result", "empty", None),
    ]


def test_user_defined_assumption_validates_at_decoration() -> None:
    """A user ``bind`` that raises stops decoration with the guard's name."""
    with pytest.raises(ValueError, match=r"'custom.bad'.*even_length\(nope\)"):

        @guarded(EvenLength("nope"), name="custom.bad")
        def f(items: list[int]) -> None:
            return None


def test_user_defined_every_call_assumption_ignores_sampling() -> None:
    """``data = False`` assumptions run on every call even with ``sample_rate=0``."""
    configure(sample_rate=0.0)

    @guarded(EvenLength("items"), ResultNotEmpty(), name="custom.sampled")
    def f(items: list[int]) -> list[int]:
        return items

    with capture_violations() as violations:
        f([1])
        f([])
    assert [v.assumption for v in violations] == ["result_not_empty()"]


def test_base_assumption_checks_nothing() -> None:
    """The base class alone observes nothing and captures nothing."""
    base = Assumption("noop()", "anything")

    @guarded(base, name="base")
    def f() -> int:
        return 1

    with capture_violations() as violations:
        assert f() == 1
    assert violations == []
    assert repr(base) == "<assumption noop()>"


def test_finding_overrides_text_expected_and_path_for_one_call() -> None:
    """A check returning a ``Finding`` names its own assumption text, expectation and path."""

    class Multi(Assumption):
        def check(self, call: Call) -> str | None:
            return Finding("int", assumption="multi(x.y)", expected="str", path="x.y")

    @guarded(Multi("multi()", "all"), name="finding")
    def f(x: Any) -> None:
        return None

    with capture_violations() as violations:
        f(1)
    assert summary(violations) == [("predicate", "multi(x.y)", "str", "int", "x.y")]
    assert type(violations[0].observed) is str


# -- decoration-time mistakes -------------------------------------------------------------------


def _decorate(*assumptions: Any, name: str | None = "guard.x", **options: Any) -> Any:
    def target(users: Any, user: Any = None) -> None:
        return None

    return guarded(*assumptions, name=name, **options)(target)


@pytest.mark.parametrize(
    ("make", "error", "fault"),
    [
        (lambda: _decorate(assume.present("nobody.email")), ValueError, "unknown parameter"),
        (lambda: _decorate(assume.not_none("users[")), ValueError, "bad path"),
        (lambda: _decorate(assume.not_none("users[x]")), ValueError, "bad path"),
        (lambda: _decorate(assume.present(42)), ValueError, "must be a string"),
        (lambda: _decorate(assume.latency(ms=-5)), ValueError, "positive number"),
        (lambda: _decorate(assume.latency(ms=0)), ValueError, "positive number"),
        (lambda: _decorate(assume.size("users", max=-1)), ValueError, "non-negative"),
        (lambda: _decorate(assume.size("users")), ValueError, "max= or min="),
        (lambda: _decorate(assume.size("users", min=3, max=1)), ValueError, "larger"),
        (lambda: _decorate(assume.max_concurrency(0)), ValueError, "positive int"),
        (lambda: _decorate(assume.raises_only()), ValueError, "at least one"),
        (lambda: _decorate(assume.raises_only(str)), ValueError, "not an exception"),  # type: ignore[arg-type]
        (lambda: _decorate(assume.that(lambda nobody: True)), ValueError, "unknown parameter"),
        (lambda: _decorate(assume.that(lambda *a: True)), ValueError, "name its parameters"),
        (lambda: _decorate(assume.that(42)), ValueError, "not callable"),  # type: ignore[arg-type]
        (lambda: _decorate(assume.ordered("users", key="a b")), ValueError, "bad key"),
        (lambda: _decorate(assume.ordered("users", key="[*]")), ValueError, r"\[\*\]"),
        (lambda: _decorate(assume.ordered("users", key=3)), ValueError, "field name"),  # type: ignore[arg-type]
        (lambda: _decorate(assume.monotonic("users[*].x")), ValueError, r"\[\*\]"),
        (lambda: _decorate(assume.monotonic("users", per="ghost")), ValueError, "unknown"),
        (lambda: _decorate(assume.monotonic("users", per="user[*]")), ValueError, r"\[\*\]"),
        (lambda: _decorate(assume.monotonic("users", max_keys=0)), ValueError, "positive"),
        (lambda: _decorate(mode="sometimes"), ValueError, "mode"),
        (lambda: _decorate(sample_rate=1.5), ValueError, "sample_rate"),
        (lambda: _decorate(sample_rate="abc"), ValueError, "sample_rate"),
        (lambda: _decorate("users"), TypeError, "shadowguard.assume"),
        (lambda: _decorate(assume.present, assume.latency(1)), TypeError, "shadowguard.assume"),
        (lambda: _decorate(types="yes"), TypeError, "types"),
    ],
)
def test_decoration_mistakes_name_the_guard(make: Any, error: type[Exception], fault: str) -> None:
    """Each mistake raises at decoration with the guard's name and the fault."""
    with pytest.raises(error, match=fault) as info:
        make()
    assert "'guard.x'" in str(info.value)


def test_decoration_mistake_names_the_default_guard_name() -> None:
    """Without ``name=``, the message names the function's qualified name."""

    def lookup(key: str) -> None:
        return None

    with pytest.raises(ValueError, match=r"lookup.*unknown parameter 'value'"):
        guarded(assume.not_none("value"))(lookup)
    with pytest.raises(ValueError, match=r"lookup.*mode"):
        guarded(mode="loud")(lookup)


def test_bad_guard_name_is_rejected() -> None:
    """An empty or non-string name is a ``TypeError``."""
    with pytest.raises(TypeError, match="name"):
        guarded(name="  ")(lambda: None)
    with pytest.raises(TypeError, match="name"):
        guarded(name=3)(lambda: None)  # type: ignore[arg-type]


def test_return_paths_are_accepted_and_result_in_predicates() -> None:
    """``return`` as a path root and ``result`` as a predicate parameter need no parameter."""

    @guarded(assume.present("return.id"), assume.that(lambda result: result), name="ret.ok")
    def f() -> dict[str, int]:
        return {"id": 1}

    assert f() == {"id": 1}


# -- corners ------------------------------------------------------------------------------------


def test_first_construction_fault_is_the_one_reported() -> None:
    """With several mistakes in one assumption, the first is named."""
    with pytest.raises(ValueError, match="max must be a non-negative int"):
        _decorate(assume.size("users", max=-1, min=-2))


def test_bad_per_path_and_description_and_unreadable_predicate() -> None:
    """A bad ``per=`` path, a non-string description or a signature-less predicate are named."""
    with pytest.raises(ValueError, match="bad per"):
        _decorate(assume.monotonic("users", per="user["))
    with pytest.raises(ValueError, match="description must be a string"):
        _decorate(assume.that(lambda users: True, 42))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signature"):
        _decorate(assume.that(min))


def test_monotonic_per_key_from_the_return_value() -> None:
    """``per`` may read the return value; the check then runs after the call."""

    @guarded(assume.monotonic("seq", per="return.account"), name="mono.ret")
    def f(seq: int, account: str) -> dict[str, str]:
        return {"account": account}

    with capture_violations() as violations:
        f(5, "a")
        f(1, "b")
        f(4, "a")
    assert [v.observed for v in violations] == ["seq < previous"]


def test_ordered_items_whose_key_cannot_be_read_are_unobservable() -> None:
    """Items whose attribute access raises make the sequence unobservable, not a violation."""

    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(name)

    @guarded(assume.ordered("xs", key="ts"), name="ord.hostile")
    def f(xs: list[Any]) -> None:
        return None

    with capture_violations() as violations:
        f([Hostile(), Hostile()])
        f([Hostile()] * 100)
    assert violations == []


def test_ordered_sequence_that_is_not_a_list() -> None:
    """A Sequence other than a list or tuple is read item by item."""
    from collections import deque

    @guarded(assume.ordered("xs"), name="ord.deque")
    def f(xs: Any) -> None:
        return None

    with capture_violations() as violations:
        f(range(5))
        f(deque([1, 3, 2]))
        f(memoryview(bytes([3, 1])))
    assert [v.observed for v in violations] == ["items[2] < items[1]", "items[1] < items[0]"]


def test_paths_that_stop_early_are_not_judged_by_non_strict_kinds() -> None:
    """``size``/``ordered`` have nothing to check when the path runs into None or a gap."""

    @guarded(assume.size("x.rows", max=1), assume.ordered("x.rows"), name="lenient")
    def f(x: Any) -> None:
        return None

    with capture_violations() as violations:
        f(None)
        f({})
        f({"rows": None})
    assert violations == []
