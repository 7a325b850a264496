"""Never harm the host: in observe mode a guarded call behaves exactly like the unguarded one.

The oracle is differential: the same function called guarded and unguarded must return the same
object, raise the same exception object (with its cause, context and notes), leave its arguments
untouched, and keep working when shadowguard's own parts (checks, exporters, loggers) break.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import structlog
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from shadowguard import (
    AssumptionViolation,
    _faults,
    _report,
    _tallies,
    assume,
    configure,
    guarded,
)
from shadowguard.testing import capture_violations

ROOT = Path(__file__).resolve().parent.parent

EVERY_ASSUMPTION = (
    assume.present("x.a"),
    assume.not_none("x[0]"),
    assume.not_none("x[*].b"),
    assume.size("x", max=1),
    assume.ordered("x", key="k"),
    assume.monotonic("x.a"),
    assume.latency(ms=60_000),
    assume.max_concurrency(5),
    assume.raises_only(KeyError),
    assume.that(lambda x: x, "truthy"),
)


def _both(body: Any) -> tuple[Any, Any]:
    """The plain function and a guarded copy with every assumption and a type annotation."""

    def plain(x: Iterable[Any]) -> Any:
        return body(x)

    def twin(x: Iterable[Any]) -> Any:
        return body(x)

    return plain, guarded(*EVERY_ASSUMPTION, name="oracle")(twin)


def _outcome(func: Any, arg: Any) -> tuple[str, Any]:
    try:
        return ("returned", func(arg))
    except BaseException as exc:  # the oracle compares every exception, interrupts included
        return ("raised", exc)


# -- the differential oracle --------------------------------------------------------------------


def test_same_return_object() -> None:
    """The guarded call returns the very object the function returned."""
    token = object()
    plain, twin = _both(lambda x: token)
    assert plain([1]) is twin([1]) is token


@pytest.mark.parametrize(
    "error",
    [ValueError("v"), KeyError("k"), KeyboardInterrupt(), SystemExit(3), asyncio.CancelledError()],
    ids=["ValueError", "KeyError", "KeyboardInterrupt", "SystemExit", "CancelledError"],
)
def test_same_exception_object_with_cause_context_and_notes(error: BaseException) -> None:
    """The very exception object propagates, with its cause, context, notes and args intact."""
    cause = OSError("cause")
    error.__cause__ = cause
    if sys.version_info >= (3, 11):
        error.add_note("a note")

    def body(x: Any) -> None:
        try:
            raise LookupError("context")
        except LookupError:
            raise error  # noqa: B904 - the cause is set explicitly above

    plain, twin = _both(body)
    plain_kind, plain_error = _outcome(plain, [1])
    kind, raised = _outcome(twin, [1])
    assert (kind, plain_kind) == ("raised", "raised")
    assert raised is error is plain_error
    assert raised.__cause__ is cause
    assert isinstance(raised.__context__, LookupError)
    assert raised.args == error.args
    if sys.version_info >= (3, 11):
        assert raised.__notes__ == ["a note"]


def test_mutable_arguments_are_untouched() -> None:
    """Checks read arguments, never change them."""
    argument = [{"k": 2, "b": None}, {"k": 1}]
    snapshot = repr(argument)
    _, twin = _both(len)
    assert twin(argument) == 2
    assert repr(argument) == snapshot


@pytest.mark.parametrize(
    "make",
    [
        lambda: iter([1, 2, 3]),
        lambda: (i for i in range(3)),
        lambda: map(int, "123"),
        lambda: iter({"a": 1, "b": 2, "c": 3}.items()),
        lambda: __import__("itertools").count(),
        lambda: __import__("csv").reader(["a,b", "c,d"]),
    ],
    ids=["iter", "generator", "map", "items", "count", "csv"],
)
def test_one_shot_iterators_are_not_advanced(make: Any) -> None:
    """A one-shot iterator argument reaches the function with every item still in it."""
    plain, twin = _both(lambda x: next(iter(x)))
    assert plain(make()) == twin(make())
    it = make()
    twin(it)
    again = make()
    next(again)
    assert next(it) == next(again)


def test_file_argument_is_not_read(tmp_path: Path) -> None:
    """A file object argument is not read by the guard."""
    path = tmp_path / "lines.txt"
    path.write_text("first\nsecond\n")
    _, twin = _both(lambda x: x.readline())
    with path.open() as handle:
        assert twin(handle) == "first\n"


def test_async_iterator_argument_is_not_consumed() -> None:
    """An async iterator argument is left for the function to consume."""

    async def agen() -> Any:
        yield 1
        yield 2

    @guarded(*EVERY_ASSUMPTION[:6], name="oracle.aiter")
    async def consume(x: Any) -> list[int]:
        return [i async for i in x]

    assert asyncio.run(consume(agen())) == [1, 2]


class Hostile:
    """Every dunder a guard might be tempted to call raises."""

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")

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


def test_hostile_argument_yields_no_violation_and_no_internal_error() -> None:
    """An argument whose every dunder raises is unobservable: same result, nothing reported."""

    @guarded(
        assume.present("x.a"),
        assume.not_none("x.a.b"),
        assume.not_none("x[*].b"),
        assume.size("x", max=1),
        assume.ordered("x", key="k"),
        assume.monotonic("x.a"),
        name="hostile",
    )
    def f(x: Hostile, y: Literal["a"], z: list[int], w: dict[str, int]) -> str:
        return "ok"

    hostile = Hostile()
    with capture_violations() as violations:
        assert f(hostile, "a", [1], {"a": 1}) == "ok"
    assert violations == []


def test_hostile_argument_that_breaks_an_annotation_is_reported_by_type_name() -> None:
    """A hostile object of the wrong type is reported by its class name, never its repr."""

    @guarded(name="hostile.type")
    def f(x: int, y: Literal["a", "b"]) -> None:
        return None

    with capture_violations() as violations:
        f(Hostile(), Hostile())  # type: ignore[arg-type]
    assert [v.observed for v in violations] == ["Hostile", "Hostile"]


def test_hostile_return_value() -> None:
    """A hostile return value is returned as is."""
    hostile = Hostile()

    @guarded(assume.not_none("return.a"), assume.size("return", max=1), name="hostile.ret")
    def f() -> list[int]:
        return hostile  # type: ignore[return-value]

    assert f() is hostile


@pytest.mark.internal_errors
def test_crashing_predicate_is_logged_once_per_site(logs: list[dict[str, Any]]) -> None:
    """A predicate that crashes is an internal fault: logged once, invisible to the caller."""
    previous = _faults.set_strict_hook(None)
    try:

        @guarded(assume.that(lambda x: 1 / x, "inverse"), name="crash.pred")
        def f(x: int) -> str:
            return "ok"

        with capture_violations() as violations:
            for _ in range(5):
                assert f(0) == "ok"
    finally:
        _faults.set_strict_hook(previous)
    assert violations == []
    faults = [entry for entry in logs if entry["event"] == "internal_error"]
    assert len(faults) == 1
    assert faults[0]["log_level"] == "error"
    assert faults[0]["error"] == "ZeroDivisionError"
    assert "crash.pred" in faults[0]["site"]


@pytest.mark.internal_errors
@pytest.mark.parametrize(
    "error",
    [RecursionError("deep"), MemoryError(), RuntimeError("x")],
    ids=["RecursionError", "MemoryError", "RuntimeError"],
)
def test_checks_raising_recursion_or_memory_errors_are_swallowed(error: Exception) -> None:
    """Even ``RecursionError`` and ``MemoryError`` from a check do not escape."""

    def explode(x: Any) -> bool:
        raise error

    @guarded(assume.that(explode, "explodes"), name="crash.deep", mode="enforce")
    def f(x: int) -> str:
        return "ok"

    assert f(1) == "ok"


class ExplodingProcessor(SpanProcessor):
    """A span processor that raises whenever it is used."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("on_start")

    def on_end(self, span: Any) -> None:
        raise RuntimeError("on_end")


class ExplodingExporter(SpanExporter):
    """An exporter that raises on every export."""

    def export(self, spans: Any) -> SpanExportResult:
        raise RuntimeError("export")

    def shutdown(self) -> None:
        return None


@pytest.mark.internal_errors
@pytest.mark.parametrize("where", ["processor", "exporter"])
def test_crashing_span_pipeline_never_reaches_the_host(where: str) -> None:
    """A span processor or exporter that raises changes nothing for the guarded call."""
    provider = TracerProvider()
    if where == "processor":
        provider.add_span_processor(ExplodingProcessor())
    else:
        provider.add_span_processor(SimpleSpanProcessor(ExplodingExporter()))
    configure(tracer_provider=provider)
    token = object()

    @guarded(assume.not_none("x"), name="crash.export")
    def f(x: object) -> object:
        return token

    try:
        with capture_violations() as violations:
            for _ in range(3):
                assert f(None) is token
            if where == "exporter":  # the host's own span through the same broken pipeline
                with provider.get_tracer("host").start_as_current_span("host span"):
                    assert f(None) is token
    finally:
        configure(tracer_provider=None)
        provider.shutdown()
    assert len(violations) == (4 if where == "exporter" else 3)


@pytest.mark.internal_errors
def test_crashing_tracer_provider_never_reaches_the_host() -> None:
    """A tracer provider that raises on ``get_tracer`` is an internal fault only."""

    class Broken:
        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("no tracer")

    configure(tracer_provider=Broken())
    try:
        assert _both(lambda x: "same")[1](None) == "same"
    finally:
        configure(tracer_provider=None)


@pytest.mark.internal_errors
def test_crashing_structlog_configuration_never_reaches_the_host() -> None:
    """A host logging pipeline that raises does not break the call or enforce mode's error."""
    saved = structlog.get_config()

    def explode(logger: Any, method: str, event: Any) -> Any:
        raise RuntimeError("processor")

    structlog.configure(processors=[explode])
    previous = _faults.set_strict_hook(None)
    try:
        _, twin = _both(lambda x: "same")
        assert twin(None) == "same"
        configure(mode="enforce")
        with pytest.raises(AssumptionViolation):
            twin(None)
    finally:
        _faults.set_strict_hook(previous)
        structlog.configure(**saved)


@pytest.mark.internal_errors
def test_crashing_listener_is_isolated() -> None:
    """A violation listener that raises does not stop the others or the call."""

    def explode(violation: Any) -> None:
        raise RuntimeError("listener")

    _report.add_listener(explode)
    try:
        with capture_violations() as violations:
            assert _both(lambda x: "same")[1](None) == "same"
    finally:
        _report.remove_listener(explode)
    assert violations


@pytest.mark.internal_errors
def test_crashing_clock_never_reaches_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that raises inside the reporting path is swallowed."""
    from shadowguard import _otel

    def broken() -> int:
        raise RuntimeError("clock")

    monkeypatch.setattr(_otel.time, "time_ns", broken)
    assert _both(lambda x: "same")[1](None) == "same"


def test_internal_error_log_is_bounded_per_site(logs: list[dict[str, Any]]) -> None:
    """Each fault site is logged once; the number of sites logged is bounded."""
    previous = _faults.set_strict_hook(None)
    try:
        for i in range(_faults._MAX_SITES + 50):
            _faults.internal_error(f"site {i}", RuntimeError("x"))
            _faults.internal_error(f"site {i}", RuntimeError("x"))
    finally:
        _faults.set_strict_hook(previous)
    faults = [entry for entry in logs if entry["event"] == "internal_error"]
    assert len(faults) == _faults._MAX_SITES


# -- cancellation and interrupts ----------------------------------------------------------------


def test_cancellation_propagates_and_the_task_is_cancelled() -> None:
    """A guarded coroutine cancelled mid-await ends cancelled; nothing is reported."""

    @guarded(*EVERY_ASSUMPTION[6:9], name="cancel")
    async def slow() -> None:
        await asyncio.sleep(60)

    async def main() -> asyncio.Task[None]:
        task = asyncio.ensure_future(slow())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task

    with capture_violations() as violations:
        task = asyncio.run(main())
    assert task.cancelled()
    assert violations == []
    assert slow.__shadowguard__.in_flight == 0


def test_keyboard_interrupt_propagates_unchanged_in_enforce_mode() -> None:
    """``KeyboardInterrupt`` inside a guarded call comes out as itself, even in enforce mode."""
    configure(mode="enforce")
    interrupt = KeyboardInterrupt()

    @guarded(*EVERY_ASSUMPTION[6:9], name="interrupt")
    def f() -> None:
        raise interrupt

    with capture_violations() as violations, pytest.raises(KeyboardInterrupt) as info:
        f()
    assert info.value is interrupt
    assert violations == []


def test_system_exit_zero_is_not_reported() -> None:
    """``SystemExit(0)`` passes through and is not an exception violation."""

    @guarded(assume.raises_only(KeyError), name="exit")
    def f() -> None:
        raise SystemExit(0)

    with capture_violations() as violations, pytest.raises(SystemExit) as info:
        f()
    assert info.value.code == 0
    assert violations == []


# -- enforce mode never raises anything else --------------------------------------------------


@pytest.mark.internal_errors
def test_enforce_mode_raises_only_assumption_violation() -> None:
    """With crashing checks next to a real violation, enforce raises ``AssumptionViolation``."""
    configure(mode="enforce")

    @guarded(
        assume.that(lambda x: 1 / 0, "crashes"),
        assume.not_none("x"),
        name="enforce.only",
    )
    def f(x: object) -> None:
        return None

    with pytest.raises(AssumptionViolation) as info:
        f(None)
    assert [v.assumption for v in info.value.violations] == ["not_none(x)"]


def test_assumption_violation_pickles() -> None:
    """The enforce error survives pickling (multiprocessing, test runners)."""
    import pickle

    configure(mode="enforce")

    @guarded(assume.not_none("x"), name="pickle.error")
    def f(x: object) -> None:
        return None

    with pytest.raises(AssumptionViolation) as info:
        f(None)
    clone = pickle.loads(pickle.dumps(info.value))
    assert clone.violations == info.value.violations
    assert str(clone) == str(info.value)


# -- concurrency of the guard itself ------------------------------------------------------------


def test_many_threads_on_the_first_call_of_a_fresh_guard() -> None:
    """Threads racing into a fresh guard's first call: no exception, exact counts."""

    @guarded(assume.not_none("x"), name="race")
    def f(x: object) -> object:
        return x

    threads_count = 32
    barrier = threading.Barrier(threads_count, timeout=30)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            for _ in range(50):
                assert f(None) is None
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with capture_violations() as violations:
            threads = [threading.Thread(target=run) for _ in range(threads_count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(violations) == threads_count * 50
    assert _tallies.check_counts()["race"] == threads_count * 50
    assert _tallies.violation_counts()[("race", "nullability", "not_none(x)")] == threads_count * 50


def test_generator_started_in_one_thread_closed_in_another() -> None:
    """A guarded generator can be advanced in one thread and closed in another."""
    log: list[str] = []

    @guarded(assume.latency(ms=60_000), name="gen.threads")
    def gen() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            log.append("closed")

    g = gen()
    assert next(g) == 1
    closer = threading.Thread(target=g.close)
    closer.start()
    closer.join(10)
    assert log == ["closed"]


def test_guards_do_not_keep_instances_alive() -> None:
    """Calling a guarded method does not keep ``self`` alive (no per-call references kept)."""
    import weakref

    class Thing:
        @guarded(assume.not_none("value"), name="thing.method")
        def method(self, value: object) -> None:
            return None

    thing = Thing()
    thing.method(None)
    ref = weakref.ref(thing)
    del thing
    gc.collect()
    assert ref() is None


# -- no global state is touched -----------------------------------------------------------------


def test_import_and_use_mutate_no_global_state() -> None:
    """Import, configure and a reported violation leave providers, logging, structlog,
    typeguard's config and warning filters as they were."""
    code = """
import logging, sys, warnings
import structlog, typeguard
from opentelemetry import metrics, trace

def state():
    return (
        type(trace.get_tracer_provider()).__name__,
        type(metrics.get_meter_provider()).__name__,
        list(logging.getLogger().handlers),
        logging.getLogger().level,
        repr(structlog.get_config()),
        repr(typeguard.config),
        list(warnings.filters),
        sys.getprofile(),
        sys.gettrace(),
    )

before = state()
import shadowguard
from shadowguard import assume, guarded
shadowguard.configure(sample_rate=1.0)

@guarded(assume.not_none("x"))
def f(x):
    return x

f(None)
after = state()
for a, b in zip(before, after):
    assert a == b, (a, b)
print("unchanged")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWGUARD_")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "unchanged"


# -- the seed incident example ------------------------------------------------------------------


def test_seed_incident_example_runs_and_tells_the_story() -> None:
    """``examples/seed_incident.py`` runs, exits 0 and shows the violation in span and log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWGUARD_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed_incident.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert proc.stderr == ""
    assert "tests pass" in out
    assert "same result guarded and unguarded: True" in out
    assert "shadowguard.violation" in out
    assert "present(users[*].last_login)" in out
    assert "missing at users[1].last_login" in out
    assert "assumption_violated" in out
    assert len(out.splitlines()) < 60


class UnboundProxy:
    """Like a context-local proxy used outside its context: ``__class__`` itself raises."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        raise RuntimeError("working outside of request context")


@pytest.mark.internal_errors
def test_proxy_whose_class_raises_is_returned_and_passed_through() -> None:
    """``isinstance`` on such a proxy raises; the guard still returns it and reports nothing."""
    proxy = UnboundProxy()

    @guarded(name="proxy.return")
    def give() -> int:
        return proxy  # type: ignore[return-value]

    @guarded(name="proxy.argument")
    def take(x: int) -> None:
        return None

    @guarded(name="proxy.async")
    async def agive() -> int:
        return proxy  # type: ignore[return-value]

    with capture_violations() as violations:
        assert give() is proxy
        assert take(proxy) is None  # type: ignore[arg-type]
        assert asyncio.run(agive()) is proxy
    assert violations == []


# -- faults inside the guard's own machinery ----------------------------------------------------


class BrokenText(assume.Assumption):
    """An assumption that finds a violation but cannot describe itself."""

    def __init__(self, when: str, data: bool = True) -> None:
        self.expected = "anything"
        self.path = None
        self._fault = None
        self.when = when  # type: ignore[assignment]
        self.data = data  # type: ignore[misc]

    @property  # type: ignore[override]
    def text(self) -> str:  # type: ignore[override]
        raise RuntimeError("no text")

    def check(self, call: assume.Call) -> str | None:
        return "broken"


@pytest.mark.internal_errors
@pytest.mark.parametrize(
    ("when", "data", "raises"),
    [("before", True, False), ("return", True, False), ("exception", False, True)],
)
def test_a_violation_that_cannot_be_built_is_swallowed(when: str, data: bool, raises: bool) -> None:
    """Faults while recording a violation before, after or on an exception are swallowed."""
    from shadowguard.testing import strict_internal_errors

    @guarded(BrokenText(when, data), name=f"broken.{when}", mode="enforce")
    def f(fail: bool) -> str:
        if fail:
            raise LookupError("x")
        return "ok"

    with strict_internal_errors() as faults:
        if raises:
            with pytest.raises(LookupError):
                f(True)
        else:
            assert f(False) == "ok"
    assert faults and all("broken." in site for site, _ in faults)


@pytest.mark.internal_errors
def test_a_failing_value_capture_keeps_the_violation() -> None:
    """A value that cannot be captured leaves the violation without a value."""
    configure(capture_values=True)

    class NoCapture(assume.Assumption):
        def check(self, call: assume.Call) -> str | None:
            return "bad"

        def capture(self, call: assume.Call) -> object:
            raise RuntimeError("capture")

    @guarded(NoCapture("no_capture()", "good"), name="capture.broken")
    def f() -> None:
        return None

    with capture_violations() as violations:
        f()
    assert [(v.observed, v.value) for v in violations] == [("bad", None)]


@pytest.mark.internal_errors
def test_a_guard_whose_refresh_fails_turns_itself_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """If re-reading settings fails, the guard steps aside and the call goes on."""
    from shadowguard import _guard

    def explode(name: str, mode: Any) -> Any:
        raise RuntimeError("resolve")

    monkeypatch.setattr(_guard, "resolve_mode", explode)
    f = guarded(assume.not_none("x"), name="refresh.broken")(lambda x: "ok")
    with capture_violations() as violations:
        assert f(None) == "ok"
    assert violations == []


@pytest.mark.internal_errors
@pytest.mark.parametrize("stage", ["resolve_annotations", "compile_annotation"])
def test_annotation_machinery_faults_skip_type_checks(
    monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """If reading or compiling annotations fails, the guard runs without type checks."""
    from shadowguard import _guard

    def explode(*args: Any) -> Any:
        raise RuntimeError(stage)

    monkeypatch.setattr(_guard, stage, explode)

    @guarded(assume.not_none("x"), name=f"annotations.{stage}")
    def f(x: int) -> int:
        return 1

    with capture_violations() as violations:
        assert f(None) == 1  # type: ignore[arg-type]
    assert [v.assumption for v in violations] == ["not_none(x)"]


@pytest.mark.internal_errors
def test_providers_add_assumptions_and_a_failing_provider_is_isolated() -> None:
    """Providers add assumptions to every guard on refresh; one that raises is skipped."""
    from shadowguard import _guard

    def extra(guard: Any) -> list[Any]:
        if guard.name != "provided":
            return []
        return [assume.that(lambda: False, "provided rule")]

    def explode(guard: Any) -> list[Any]:
        raise RuntimeError("provider")

    @guarded(name="provided")
    def f() -> None:
        return None

    _guard.register_provider(extra)
    _guard.register_provider(explode)
    _guard.register_provider(extra)  # registering twice keeps one
    try:
        with capture_violations() as violations:
            f()
        assert any(g is f.__shadowguard__ for g in _guard.all_guards())
    finally:
        _guard._providers.remove(extra)
        _guard._providers.remove(explode)
        configure(sample_rate=1.0)  # a refresh without the providers
    assert [v.assumption for v in violations] == ["that(provided rule)"]


def test_builtin_without_a_signature_can_be_guarded() -> None:
    """A builtin whose signature cannot be read is guarded through ``*args``."""
    guarded_min = guarded(assume.that(lambda args: len(args) > 1, "two or more"), name="min")(min)
    with capture_violations() as violations:
        assert guarded_min(3, 1, 2) == 1
        assert guarded_min([5]) == 5
    assert [v.observed for v in violations] == ["False"]
