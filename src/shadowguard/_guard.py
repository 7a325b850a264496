"""The ``@guarded`` decorator and the per-call path.

Everything expensive happens once: at decoration (assumptions bound and validated, signature
read) or on the first call (annotations resolved and compiled, so classes defined later in the
module are found). A call then costs a generation check, a sampling decision and the checks.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import wrapt

from shadowguard import _log, _report
from shadowguard._assumptions import Assumption, Finding, GuardInfo, Latency, TypeAssumption
from shadowguard._call import Binder, Call
from shadowguard._config import Mode, parse_fraction, parse_mode, resolve_mode, settings
from shadowguard._fastpath import (
    ArgSpec,
    DataSpec,
    Findings,
    ResultChecker,
    build_checker,
    build_result_checker,
)
from shadowguard._faults import internal_error
from shadowguard._paths import _rng
from shadowguard._shapes import capture, type_name
from shadowguard._typecheck import (
    TypeCheck,
    Unresolved,
    compile_annotation,
    generator_types,
    resolve_annotations,
)
from shadowguard._violation import AssumptionViolation, Violation

__all__ = ["Guard", "guarded", "register_provider"]

F = TypeVar("F", bound=Callable[..., Any])

_perf_ns = time.perf_counter_ns
_random = _rng.random


def _now() -> int:
    """The clock, never raising: a clock that fails is an internal fault, and the call is then
    not timed (0 reads as "no start", so no latency is judged)."""
    try:
        return _perf_ns()
    except Exception as exc:
        return _clock_fault(exc)


def _clock_fault(exc: Exception) -> int:
    """What a failed clock read gives (the hot paths read ``_perf_ns`` inline, in a ``try``)."""
    internal_error("guard.clock", exc)
    return 0


_RESULT_ONLY: Any = object()
"""``begin`` found nothing to follow but a return-type check: no ``Call`` is allocated."""

Provider = Callable[["Guard"], Sequence[Assumption]]
_providers: list[Provider] = []
_registry: weakref.WeakSet[Guard] = weakref.WeakSet()
_registry_lock = threading.Lock()
_BUDGET_FLOOR = 0.001
_MADE_MAX = 64
"""Violations (immutable) remembered per guard, to report a repeated one without rebuilding it."""
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def register_provider(provider: Provider) -> None:
    """Add assumptions to every guard on its next refresh (the envelope uses this)."""
    if provider not in _providers:
        _providers.append(provider)
    settings.generation += 1


def all_guards() -> list[Guard]:
    """Every live guard of the process."""
    with _registry_lock:
        return list(_registry)


def _after_fork_in_child() -> None:
    """A forked child starts with fresh locks and no calls in flight: a lock another thread of
    the parent held at fork time would never be released in the child (its first call would
    hang), and the other threads' calls do not exist there (they would count as in flight)."""
    global _registry_lock
    _registry_lock = threading.Lock()
    for guard in list(_registry):
        guard.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Guard:
    """The compiled state of one guarded callable; the wrappers below drive it."""

    __slots__ = (
        "__weakref__",
        "_lock",
        "after",
        "after_exception",
        "after_finish",
        "after_return",
        "avg_check_ns",
        "avg_fn_ns",
        "base_rate",
        "before_always",
        "before_data",
        "before_rest",
        "binder",
        "budget",
        "checks",
        "code",
        "counts_in_flight",
        "declared",
        "decorator_mode",
        "decorator_rate",
        "enforce",
        "extra",
        "fast",
        "fast_args",
        "flight",
        "flight_checks",
        "flight_quiet",
        "func",
        "gen",
        "info",
        "kind",
        "latency_ns",
        "made",
        "mode",
        "name",
        "needs_call",
        "needs_call_always",
        "off",
        "rate",
        "repeat",
        "return_check",
        "return_data",
        "return_deep",
        "return_outer",
        "tail",
        "timed",
        "type_assumptions",
        "types",
        "types_ready",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        assumptions: Sequence[Assumption],
        *,
        name: str,
        types: bool,
        mode: Mode | None,
        sample_rate: float | None,
        kind: str,
    ) -> None:
        self.func = func
        self.name = name
        self.kind = kind
        self.types = types
        self.decorator_mode = mode
        self.decorator_rate = sample_rate
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            signature = inspect.Signature(
                [inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL)]
            )
        self.binder = Binder(signature)
        self.info = GuardInfo(name, self.binder.names, kind in ("generator", "asyncgen"))
        for assumption in assumptions:
            assumption.bind(self.info)
        self.declared = tuple(assumptions)
        self.code = _code_attributes(func)
        self._lock = threading.RLock()
        self.flight: deque[None] = deque()
        """One item per call in flight: ``append``, ``len`` and ``pop`` are atomic, no lock (a
        deque: a list that empties and refills reallocates its storage each time)."""
        self.flight_checks: tuple[tuple[Assumption, Callable[[int], str | None]], ...] = ()
        self.flight_quiet = 0
        self.after: ResultChecker | None = None
        self.latency_ns: int | None = None
        self.tail = False
        self.repeat: tuple[Assumption, str, list[Violation]] | None = None
        """The light plan's last single violation before the call, to report it again as it
        is when the same one comes back (a flood): no ``Call``, nothing rebuilt."""
        self.checks = _tallies_counter(name)
        self.types_ready = not types
        self.type_assumptions: tuple[TypeAssumption, ...] = ()
        self.fast_args: tuple[ArgSpec, ...] = ()
        self.return_check: TypeCheck | None = None
        self.return_outer: tuple[type, ...] | None = None
        self.return_deep: Any = None
        self.fast: Any = None
        self.extra: tuple[Assumption, ...] = ()
        self.avg_fn_ns = 0.0
        self.avg_check_ns = 0.0
        self.gen = -1
        self.off = False
        self.mode = Mode.OBSERVE
        self.made: dict[tuple[int, str], tuple[Assumption, Mode, Violation]] = {}
        self.enforce = False
        self._set_plan((), None)
        with _registry_lock:
            _registry.add(self)

    def after_fork(self) -> None:
        """In a forked child: fresh locks, nothing in flight (see ``_after_fork_in_child``)."""
        self._lock = threading.RLock()
        self.flight = deque()
        for assumption in (*self.type_assumptions, *self.declared, *self.extra):
            assumption.after_fork()

    def replan(self) -> None:
        """Plan again on the next call (an assumption's inline part is out of date)."""
        self.gen = -1

    @property
    def in_flight(self) -> int:
        """Calls of this guard in flight now (counted only while an assumption needs it)."""
        return len(self.flight)

    # -- planning (on configuration changes only) ---------------------------------------------

    def refresh(self) -> None:
        """Re-read settings: mode, sampling, envelope assumptions. Never raises."""
        generation = settings.generation
        try:
            with self._lock:
                mode = resolve_mode(self.name, self.decorator_mode)
                self.mode = mode
                self.enforce = mode is Mode.ENFORCE
                if mode is not Mode.OFF:
                    if not self.types_ready:
                        self._compile_types()
                    extra: list[Assumption] = []
                    for provider in _providers:
                        try:
                            extra.extend(provider(self))
                        except Exception as exc:
                            internal_error("guard.provider", exc)
                    self.extra = tuple(extra)
                    self._set_plan(self.extra, settings.overhead_budget)
                self.off = mode is Mode.OFF
                if self.off:
                    self.fast = None
                self.gen = generation
        except Exception as exc:
            internal_error("guard.refresh", exc)
            self.fast = None
            self.off = True
            self.gen = generation

    def _set_plan(self, extra: Sequence[Assumption], budget: float | None) -> None:
        fast = {a for *_, a in self.fast_args}
        everything = (*self.type_assumptions, *self.declared, *extra)
        self.before_data = tuple(
            a for a in everything if a.data and a.when == "before" and a not in fast
        )
        data_specs = self._data_specs(self.before_data)
        compiled = {spec[-1] for spec in data_specs}
        self.before_rest = tuple(a for a in self.before_data if a not in compiled)
        self.before_always = tuple(a for a in everything if not a.data and a.when == "before")
        self.return_data = tuple(
            a
            for a in everything
            if a.data and a.when in ("return", "finish") and a is not self._return_assumption()
        )
        self.after_return = tuple(
            a for a in everything if not a.data and a.when in ("return", "finish")
        )
        self.after_exception = tuple(a for a in everything if a.when in ("exception", "finish"))
        self.after_finish = tuple(a for a in everything if a.when == "finish")
        self.counts_in_flight = any(a.counts_in_flight for a in everything)
        self.budget = budget
        # A budget times the checked calls only (their checks' cost against the function's own
        # run time): a call that is not sampled costs one random draw, nothing else.
        self.timed = any(a.timed for a in everything)
        self.needs_call = bool(
            budget is not None
            or self.timed
            or self.counts_in_flight
            or self.before_data
            or self.before_always
            or self.return_data
            or self.after_return
            or self.after_exception
        )
        self.needs_call_always = bool(
            self.timed
            or self.counts_in_flight
            or self.before_always
            or self.after_return
            or self.after_exception
        )
        rate = self.decorator_rate if self.decorator_rate is not None else settings.sample_rate
        self.base_rate = rate
        self.rate = rate
        check = self.return_check
        self.return_outer = None if check is None else check.outer
        self.return_deep = None if check is None else check.deep
        # The light path: the generated checker decides everything before the call; after it
        # a generated result checker, the latency budgets, and the checks of calls in flight
        # and of exceptions run without a ``Call`` (one is made only once something fails).
        self.repeat = None
        flight_checks = self._flight_checks(everything)
        result_checks = self._result_checks(self.return_data)
        latencies = [a.budget_ns for a in self.after_return if isinstance(a, Latency)]
        light = (
            budget is None
            and rate >= 1.0
            and flight_checks is not None
            and result_checks is not None
            and not self.before_rest
            and all(a.counts_in_flight for a in self.before_always)
            and len(latencies) == len(self.after_return)
        )
        checker = after = None
        if light:
            assert flight_checks is not None and result_checks is not None
            returns = self._return_assumption()
            try:
                checker = build_checker(self.fast_args, data_specs)
                after = build_result_checker(
                    None if returns is None or check is None else (check, returns), result_checks
                )
            except Exception as exc:  # pragma: no cover - generated from validated specs
                internal_error("guard.fastpath", exc)
                checker = None
        if checker is None or flight_checks is None or result_checks is None:
            self.fast = None  # the general path from the next call on (a call already on the
            self.repeat = None  # light path keeps reading the tail it started with)
            return
        # Published before the checker: a call that read the old one finds a whole new tail.
        self.after = after
        self.latency_ns = min(latencies) if latencies else None
        self.flight_checks = flight_checks
        self.flight_quiet = self._quiet(flight_checks)
        self.tail = bool(flight_checks or result_checks or latencies or self.after_exception)
        self.repeat = None
        self.fast = checker

    def _flight_checks(
        self, assumptions: Sequence[Assumption]
    ) -> tuple[tuple[Assumption, Callable[[int], str | None]], ...] | None:
        """The checks of calls in flight, for the light path; ``None`` if one needs a ``Call``."""
        found = []
        for assumption in assumptions:
            if assumption.counts_in_flight:
                try:
                    check = assumption.flight_check()
                except Exception as exc:
                    internal_error("guard.plan", exc)
                    return None
                if check is None:
                    return None
                found.append((assumption, check))
        return tuple(found)

    def _result_checks(
        self, assumptions: Sequence[Assumption]
    ) -> list[tuple[Callable[[object], str | None], Assumption]] | None:
        """The return value's data checks, for the light path; ``None`` if one needs a ``Call``."""
        found = []
        for assumption in assumptions:
            try:
                check = assumption.result_check()
            except Exception as exc:
                internal_error("guard.plan", exc)
                return None
            if check is None:
                return None
            found.append((check, assumption))
        return found

    @staticmethod
    def _quiet(checks: Sequence[tuple[Assumption, Callable[[int], str | None]]]) -> int:
        """The most calls in flight that no check of ``checks`` needs to see now."""
        quiet = sys.maxsize
        for assumption, _ in checks:
            try:
                quiet = min(quiet, assumption.flight_quiet())
            except Exception as exc:
                internal_error("guard.flight", exc)
                return 0
        return quiet

    def _data_specs(self, assumptions: Sequence[Assumption]) -> list[DataSpec]:
        """The before-call data checks that read one named parameter, for the generated
        checker (``*args``/``**kwargs`` roots and whole-call checks stay general)."""
        specs: list[DataSpec] = []
        for assumption in assumptions:
            try:
                found = assumption.argument_check()
            except Exception as exc:
                internal_error("guard.plan", exc)
                continue
            slot = None if found is None else self.binder.slot(found[0])
            if found is None or slot is None:
                continue
            position, kind, default = slot
            if kind not in (*_POSITIONAL, inspect.Parameter.KEYWORD_ONLY):
                continue
            keyword_ok = kind is not inspect.Parameter.POSITIONAL_ONLY
            specs.append((position, found[0], keyword_ok, default, found[1], assumption))
        return specs

    def _return_assumption(self) -> TypeAssumption | None:
        for assumption in self.type_assumptions:
            if assumption.name == "return":
                return assumption
        return None

    def _compile_types(self) -> None:
        self.types_ready = True
        try:
            hints = resolve_annotations(self.func)
        except Exception as exc:
            internal_error("guard.annotations", exc)
            return
        compiled: list[TypeAssumption] = []
        fast: list[tuple[int, str, bool, tuple[type, ...], Any, TypeAssumption]] = []
        try:
            params = inspect.signature(self.func).parameters if hints else {}
        except (TypeError, ValueError):  # no signature (a callable descriptor): return type only
            params = {}
        positions = {name: i for i, name in enumerate(self.binder.names)}
        for name, annotation in hints.items():
            hint = annotation
            if isinstance(hint, Unresolved):
                _log.diagnostic(
                    "annotation_unresolved",
                    guard=self.name,
                    parameter=name,
                    annotation=hint.text,
                    reason=hint.reason,
                )
                continue
            if name == "return" and self.kind in ("generator", "asyncgen"):
                hint = generator_types(hint)[1]
                if hint is None or self.kind == "asyncgen":
                    continue
            try:
                check = compile_annotation(hint)
            except Exception as exc:
                internal_error("guard.compile", exc)
                continue
            if check is None:
                continue
            param = params.get(name)
            if param is None and name != "return":  # bound by a partial, or ``self``
                continue
            if param is not None and param.kind is inspect.Parameter.VAR_POSITIONAL:
                check = compile_annotation(tuple[hint, ...])  # type: ignore[valid-type]
            elif param is not None and param.kind is inspect.Parameter.VAR_KEYWORD:
                check = compile_annotation(dict[str, hint])  # type: ignore[valid-type]
            if check is None:
                continue
            assumption = TypeAssumption(name, check)
            compiled.append(assumption)
            if name == "return":
                self.return_check = check
            elif param is not None and param.kind in (
                *_POSITIONAL,
                inspect.Parameter.KEYWORD_ONLY,
            ):
                position = positions[name] if param.kind in _POSITIONAL else -1
                keyword_ok = param.kind is not inspect.Parameter.POSITIONAL_ONLY
                fast.append((position, name, keyword_ok, check.outer, check.deep, assumption))
        self.type_assumptions = tuple(compiled)
        self.fast_args = tuple(fast)

    # -- the per-call path ------------------------------------------------------------------------

    def violation(self, assumption: Assumption, observed: str, call: Call | None) -> Violation:
        """A :class:`Violation` of ``assumption``; the value only when capture is on.

        The same violation again (a flood) is the one made before: reporting keeps what it
        prepared for it by identity, so a repeat costs a dict lookup here and there."""
        if settings.capture_values and call is not None:
            value = self._captured(assumption, call)
            if value is not None:
                return self._make(assumption, observed, value)
        if type(observed) is not str:  # a Finding: this call's own text, expectation and path
            return self._make(assumption, observed, None)
        key = (id(assumption), observed)
        known = self.made.get(key)
        if known is not None and known[0] is assumption and known[1] is self.mode:
            return known[2]
        violation = self._make(assumption, observed, None)
        if len(self.made) >= _MADE_MAX:
            self.made.clear()
        self.made[key] = (assumption, self.mode, violation)
        return violation

    def _captured(self, assumption: Assumption, call: Call) -> str | None:
        try:
            raw = assumption.capture(call)
            from shadowguard._paths import MISSING

            if raw is not MISSING:
                return capture(raw, assumption.path)
        except Exception as exc:
            internal_error("guard.capture", exc)
        return None

    def _make(self, assumption: Assumption, observed: str, value: str | None) -> Violation:
        text, expected, path = assumption.text, assumption.expected, assumption.path
        if isinstance(observed, Finding):  # this call's own text, expectation and path
            text = observed.assumption or text
            expected = observed.expected or expected
            path = observed.path or path
            observed = str(observed)
        return Violation(
            guard=self.name,
            assumption=text,
            kind=assumption.kind,
            mode=self.mode.value,
            expected=expected,
            observed=observed,
            path=path,
            value=value,
        )

    def _run(self, assumptions: Sequence[Assumption], call: Call) -> None:
        for assumption in assumptions:
            try:
                observed = assumption.check(call)
            except Exception as exc:
                internal_error(f"check {self.name} {assumption.text}", exc)
                continue
            if observed is not None:
                self._add(call, assumption, observed)

    def _add(self, call: Call, assumption: Assumption, observed: str) -> None:
        violation = self.violation(assumption, observed, call)
        if call.violations is None:
            call.violations = [violation]
        else:
            call.violations.append(violation)

    def begin(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        counted: bool = False,
        verdict: Findings | None = None,
        checked: bool | None = None,
    ) -> Any:
        """Before the call: data checks (if sampled) and the every-call ones.

        Returns ``None`` when nothing remains to do after the call, :data:`_RESULT_ONLY` when
        only the return type is left, else a :class:`Call`. In enforce mode raises
        :class:`AssumptionViolation` for what is already broken (the function is not called).
        ``verdict`` is what the generated checker found, taken as it is (a sampled check may
        not repeat); empty when one of its checks raised: then everything runs again here.
        ``checked`` is the sampling decision when the caller already drew it.
        """
        if verdict and self.fast is not None:
            # The light plan, whose generated checker found violations: nothing else runs
            # before the call, so the ``Call`` only carries them (and the start time).
            call = Call(self.binder, args, kwargs)
            violations: list[Violation] = []
            made, mode, reuse = self.made, self.mode, not settings.capture_values
            known = None
            try:
                for assumption, observed in verdict:
                    known = made.get((id(assumption), observed)) if reuse else None
                    if (
                        known is not None
                        and known[0] is assumption
                        and known[1] is mode
                        and type(observed) is str
                    ):  # the same violation again (a flood): what ``violation`` would give
                        violations.append(known[2])
                    else:
                        violations.append(self.violation(assumption, observed, call))
            except Exception as exc:
                internal_error(f"guard {self.name} begin", exc)
            call.violations = violations
            if (
                len(violations) == 1
                and len(verdict) == 1
                and type(verdict[0][1]) is str
                and known is not None
                and known[2] is violations[0]
            ):  # a repeat: the wrappers report it again without coming here
                self._remember_repeat(verdict[0][0], verdict[0][1], violations[0], mode)
            if self.flight_checks:
                self._enter(call)
            try:  # an own span must cover the call, whatever breaks later
                call.started_ns = _perf_ns()
            except Exception as exc:
                _clock_fault(exc)
            if call.violations and self.enforce:
                self._leave(call)
                self._emit(call)
                raise AssumptionViolation(call.violations)
            return call
        if checked is None:
            rate = self.rate
            checked = rate >= 1.0 or _random() < rate
        found: Findings | None = None
        rest = self.before_data
        started = 0
        if checked:
            if not counted:
                next(self.checks)
            if self.budget is not None:
                started = _now()
            if verdict:
                found, rest = verdict, self.before_rest
            else:
                found = self._check_types(args, kwargs)
            if found is None and not self.needs_call:
                return None if self.return_check is None else _RESULT_ONLY
        elif not self.needs_call_always:
            return None
        call = Call(self.binder, args, kwargs)
        call.checked = checked
        try:
            if found is not None:
                for assumption, observed in found:
                    self._add(call, assumption, observed)
            if checked and rest:
                self._run(rest, call)
            if started:
                self._note_check_cost(_perf_ns() - started)
            if self.counts_in_flight:
                flight = call.flight = self.flight
                flight.append(None)
                call.in_flight = len(flight)
            if self.before_always:
                self._run(self.before_always, call)
        except Exception as exc:
            internal_error(f"guard {self.name} begin", exc)
        try:  # an own span must cover the call, whatever breaks later
            call.started_ns = _perf_ns()
        except Exception as exc:
            _clock_fault(exc)
        if call.violations and self.enforce:
            self._leave(call)
            self._emit(call)
            raise AssumptionViolation(call.violations)
        return call

    def _check_types(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Findings | None:
        """The annotated parameters' checks, the general way (what the generated checker does)."""
        found: list[tuple[Assumption, str]] | None = None
        try:
            count = len(args)
            for position, name, keyword_ok, outer, deep, assumption in self.fast_args:
                if 0 <= position < count:
                    value = args[position]
                elif keyword_ok and name in kwargs:
                    value = kwargs[name]
                else:
                    continue
                try:
                    matches = isinstance(value, outer)
                except Exception:  # a proxy whose ``__class__`` raises: not observable
                    continue
                if matches:
                    if deep is None:
                        continue
                    observed = deep(value)
                    if observed is None:
                        continue
                else:
                    observed = type_name(value)
                if found is None:
                    found = []
                found.append((assumption, observed))
        except Exception as exc:
            internal_error(f"check {self.name} types", exc)
        return found

    def _remember_repeat(
        self, assumption: Assumption, observed: str, violation: Violation, mode: Mode
    ) -> None:
        """Remember the light plan's repeated violation, if the plan it was found under is still
        the one in force (under the lock ``refresh`` holds: a re-plan clears it)."""
        with self._lock:
            if (
                self.gen == settings.generation
                and self.fast is not None
                and not self.tail
                and self.mode is mode
                and not self.enforce
                and not settings.capture_values
            ):
                self.repeat = (assumption, observed, [violation])

    def repeated(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        started: int,
        violations: list[Violation],
    ) -> Call:
        """The ``Call`` of a repeat (its ``violations``, as the wrapper read them) whose result
        the general path must still judge."""
        call = self.timed_call(args, kwargs, started)
        call.violations = list(violations)
        return call

    def timed_call(self, args: tuple[Any, ...], kwargs: dict[str, Any], started_ns: int) -> Call:
        """The :class:`Call` of the light path, made only once something needs it."""
        call = Call(self.binder, args, kwargs)
        call.started_ns = started_ns
        return call

    def _enter(self, call: Call) -> None:
        """Count ``call`` in flight and run the light plan's checks of calls in flight."""
        flight = call.flight = self.flight
        flight.append(None)
        in_flight = call.in_flight = len(flight)
        try:
            self._flight(call, in_flight)
        except Exception as exc:  # pragma: no cover - _flight isolates each check
            internal_error(f"guard {self.name} begin", exc)

    def _flight(self, call: Call, in_flight: int) -> None:
        checks = self.flight_checks
        for assumption, check in checks:
            try:
                observed = check(in_flight)
            except Exception as exc:
                internal_error(f"check {self.name} {assumption.text}", exc)
                continue
            if observed is not None:
                self._add(call, assumption, observed)
        quiet = self._quiet(checks)
        with self._lock:  # (``refresh`` holds it): not an old plan's over a new plan's
            if checks is self.flight_checks:
                self.flight_quiet = quiet

    def in_flight_seen(
        self, flight: deque[None], args: tuple[Any, ...], kwargs: dict[str, Any], started: int
    ) -> Call | None:
        """The light path's checks of calls in flight (more than ``flight_quiet`` are): ``None``
        when they found nothing, else the ``Call`` carrying what they found, for the general
        path to finish. In enforce mode raises instead (the function is not called)."""
        try:
            call = self.timed_call(args, kwargs, started)
            call.flight = flight
            call.in_flight = len(flight)
            self._flight(call, call.in_flight)
        except Exception as exc:  # pragma: no cover - _flight isolates each check
            internal_error(f"guard {self.name} begin", exc)
            return None
        if not call.violations:
            return None
        if self.enforce:
            self._leave(call)
            self._emit(call)
            raise AssumptionViolation(call.violations)
        return call

    def _leave(self, call: Call) -> None:
        flight = call.flight
        if flight is not None:
            call.flight = None
            call.in_flight = 0
            with contextlib.suppress(IndexError):  # only a list emptied by hand
                flight.pop()

    def _emit(self, call: Call) -> None:
        violations = call.violations
        if violations:
            try:
                _report.emit(self.name, violations, self.code, call.started_ns or None)
            except Exception as exc:  # pragma: no cover - emit isolates its sinks
                internal_error("guard.emit", exc)

    def returned(self, call: Call, result: Any) -> None:
        """After a normal return (or generator exhaustion). Raises only in enforce mode."""
        violations = call.violations
        already = len(violations) if violations else 0
        self._returned(call, result, already)

    def light_returned(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        started: int,
        result: Any,
        found: Findings | None,
    ) -> None:
        """The light path's end when something failed: the call ran late, or the result
        checker ``found`` something (:data:`UNDECIDED`: a check raised, all run again here)."""
        call = self.timed_call(args, kwargs, started)
        if found is None or found:
            call.checked = False  # the result's checks ran already: not twice
            try:
                for assumption, observed in found or ():
                    self._add(call, assumption, observed)
            except Exception as exc:
                internal_error(f"guard {self.name} returned", exc)
        self._returned(call, result, 0)

    def _returned(self, call: Call, result: Any, already: int) -> None:
        try:
            started = call.started_ns
            if started:
                call.elapsed_ns = _perf_ns() - started
            if call.flight is not None:
                self._leave(call)
            call.result = result
            if call.checked:
                check = self.return_check
                if check is not None:
                    try:  # isinstance raises for proxies whose __class__ raises (LocalProxy...)
                        passes = self.return_deep is None and isinstance(result, check.outer)
                    except Exception:
                        passes = False  # the check itself decides, inside this fault handler
                    observed = None if passes else check.observe(result)
                    if observed is not None:
                        assumption = self._return_assumption()
                        if assumption is not None:
                            self._add(call, assumption, observed)
                if self.return_data:
                    self._run(self.return_data, call)
            if self.after_return:
                self._run(self.after_return, call)
            if self.budget is not None and call.checked and call.elapsed_ns is not None:
                self._note_run_time(call.elapsed_ns)
        except Exception as exc:
            internal_error(f"guard {self.name} returned", exc)
        violations = call.violations
        if violations:
            self._emit(call)
            if self.enforce and len(violations) > already:
                raise AssumptionViolation(violations[already:])

    def raised(self, call: Call, exc: BaseException) -> None:
        """After the function raised ``exc``. Raises ``AssumptionViolation`` from it only in
        enforce mode, and only for an ``Exception`` (cancellation and exits pass untouched)."""
        already = len(call.violations) if call.violations else 0
        try:
            if call.started_ns:
                call.elapsed_ns = _perf_ns() - call.started_ns
            self._leave(call)
            if isinstance(exc, Exception):
                call.exception = exc
                self._run(self.after_exception, call)
            elif isinstance(exc, GeneratorExit):  # the consumer stopped early: time still counts
                self._run(self.after_finish, call)
        except Exception as fault:
            internal_error(f"guard {self.name} raised", fault)
        self._emit(call)
        if (
            self.enforce
            and isinstance(exc, Exception)
            and call.violations
            and len(call.violations) > already
        ):
            raise AssumptionViolation(call.violations[already:]) from exc

    def result_only(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, started_ns: int = 0
    ) -> None:
        """The light path's return-type check (no ``Call`` unless it fails).

        ``started_ns`` is when the call began, so that an own span covers it."""
        check = self.return_check
        try:
            observed = check.observe(result) if check is not None else None
        except Exception as exc:
            internal_error(f"check {self.name} return", exc)
            return
        if observed is None:
            return
        call = Call(self.binder, args, kwargs)
        call.result = result
        call.started_ns = started_ns
        assumption = self._return_assumption()
        if assumption is None:  # pragma: no cover - return_check implies the assumption
            return
        self._add(call, assumption, observed)
        self._emit(call)
        if self.enforce:
            raise AssumptionViolation(list(call.violations or ()))

    # -- overhead budget ------------------------------------------------------------------------

    def _note_check_cost(self, ns: int) -> None:
        self.avg_check_ns = _average(self.avg_check_ns, ns)
        self._adapt()

    def _note_run_time(self, ns: int) -> None:
        self.avg_fn_ns = _average(self.avg_fn_ns, ns)
        self._adapt()

    def _adapt(self) -> None:
        budget = self.budget
        if budget is None or not self.avg_check_ns or not self.avg_fn_ns:
            return
        allowed = budget * self.avg_fn_ns / self.avg_check_ns
        self.rate = max(_BUDGET_FLOOR, min(self.base_rate, allowed))


def _average(average: float, ns: int) -> float:
    """Moving average of a duration; one sample counts at most 4x the average so far (a thread
    preempted mid-check must not make the guard stop checking for a long while)."""
    if not average:
        return float(ns)
    return 0.9 * average + 0.1 * min(ns, 4 * average)


def _tallies_counter(name: str) -> Any:
    from shadowguard import _tallies

    return _tallies.check_counter(name)


def _code_attributes(func: Callable[..., Any]) -> dict[str, Any]:
    target: Any = inspect.unwrap(func) if callable(func) else func
    target = getattr(target, "func", target)  # functools.partial
    attributes: dict[str, Any] = {}
    qualname = getattr(target, "__qualname__", None)
    if isinstance(qualname, str):
        attributes["code.function.name"] = qualname
    code = getattr(target, "__code__", None)
    if code is not None:
        attributes["code.file.path"] = code.co_filename
        attributes["code.line.number"] = code.co_firstlineno
    return attributes


# -- the wrappers, one per kind of callable ------------------------------------------------------


def _report_again(guard: Guard, violations: list[Violation], started: int) -> None:
    """Report a repeat of the light plan's last violation (see ``Guard.repeat``)."""
    try:
        _report.emit(guard.name, violations, guard.code, started or None)
    except Exception as exc:  # pragma: no cover - emit isolates its sinks
        internal_error("guard.emit", exc)


def _sync(guard: Guard, func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g = guard
        if g.gen != settings.generation:
            g.refresh()
        fast = g.fast
        if fast is not None:
            next(g.checks)
            found = fast(args, kwargs)
            if found is None:
                if not g.tail:  # at most a return type to check
                    outer = g.return_outer
                    if outer is None:
                        return func(*args, **kwargs)
                    try:
                        started = _perf_ns()  # so that an own span covers the call
                    except Exception as exc:
                        started = _clock_fault(exc)
                    result = func(*args, **kwargs)
                    try:  # isinstance raises for proxies whose __class__ raises (LocalProxy...)
                        if isinstance(result, outer) and g.return_deep is None:
                            return result
                    except Exception:
                        pass  # result_only runs the check again, inside its fault handler
                    g.result_only(args, kwargs, result, started)  # once: samples may differ
                    return result
                try:
                    started = _perf_ns()
                except Exception as exc:
                    started = _clock_fault(exc)
                call = None
                flight = g.flight if g.flight_checks else None
                if flight is not None:
                    flight.append(None)
                    if len(flight) > g.flight_quiet:
                        call = g.in_flight_seen(flight, args, kwargs, started)
                if call is None:
                    try:
                        result = func(*args, **kwargs)
                    except BaseException as exc:
                        if flight is not None:
                            flight.pop()
                        g.raised(g.timed_call(args, kwargs, started), exc)
                        raise
                    if flight is not None:
                        flight.pop()
                    after = g.after
                    found = None if after is None else after(result)
                    budget = g.latency_ns
                    if budget is not None:
                        try:
                            late = started != 0 and _perf_ns() - started > budget
                        except Exception as exc:
                            late = _clock_fault(exc) != 0
                    else:
                        late = False
                    if late or found is not None:
                        g.light_returned(args, kwargs, started, result, found)
                    return result
            else:
                repeat = g.repeat
                if (
                    repeat is not None
                    and len(found) == 1
                    and found[0][0] is repeat[0]
                    and type(found[0][1]) is str
                    and found[0][1] == repeat[1]
                ):  # the same single violation again (a flood): reported as it is
                    try:
                        started = _perf_ns()
                    except Exception as exc:
                        started = _clock_fault(exc)
                    try:
                        result = func(*args, **kwargs)
                    except BaseException:
                        _report_again(g, repeat[2], started)
                        raise
                    outer = g.return_outer
                    try:
                        passes = outer is None or (
                            isinstance(result, outer) and g.return_deep is None
                        )
                    except Exception:
                        passes = False  # the general path judges it, inside its fault handler
                    if passes:  # ``_report_again``, inline: a flood's per-call path
                        try:
                            _report.emit(g.name, repeat[2], g.code, started or None)
                        except Exception as exc:  # pragma: no cover - emit isolates its sinks
                            internal_error("guard.emit", exc)
                    else:
                        g.returned(g.repeated(args, kwargs, started, repeat[2]), result)
                    return result
                call = g.begin(args, kwargs, True, found)
        elif g.off:
            return func(*args, **kwargs)
        else:
            rate = g.rate
            if rate >= 1.0 or _random() < rate:
                call = g.begin(args, kwargs, checked=True)
            elif g.needs_call_always:
                call = g.begin(args, kwargs, checked=False)
            else:
                return func(*args, **kwargs)  # not sampled, and nothing to follow
        if call is None:
            return func(*args, **kwargs)
        if call is _RESULT_ONLY:
            started = _now()
            result = func(*args, **kwargs)
            g.result_only(args, kwargs, result, started)
            return result
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            g.raised(call, exc)
            raise
        g.returned(call, result)
        return result

    return wrapper


def _coroutine(guard: Guard, func: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        g = guard
        if g.gen != settings.generation:
            g.refresh()
        fast = g.fast
        if fast is not None:
            next(g.checks)
            found = fast(args, kwargs)
            if found is None:
                if not g.tail:  # at most a return type to check
                    if g.return_outer is None:
                        return await func(*args, **kwargs)
                    started = _now()
                    result = await func(*args, **kwargs)
                    g.result_only(args, kwargs, result, started)
                    return result
                try:
                    started = _perf_ns()
                except Exception as exc:
                    started = _clock_fault(exc)
                call = None
                flight = g.flight if g.flight_checks else None
                if flight is not None:
                    flight.append(None)
                    if len(flight) > g.flight_quiet:
                        call = g.in_flight_seen(flight, args, kwargs, started)
                if call is None:
                    try:
                        result = await func(*args, **kwargs)
                    except BaseException as exc:
                        if flight is not None:
                            flight.pop()
                        g.raised(g.timed_call(args, kwargs, started), exc)
                        raise
                    if flight is not None:
                        flight.pop()
                    after = g.after
                    found = None if after is None else after(result)
                    budget = g.latency_ns
                    if budget is not None:
                        try:
                            late = started != 0 and _perf_ns() - started > budget
                        except Exception as exc:
                            late = _clock_fault(exc) != 0
                    else:
                        late = False
                    if late or found is not None:
                        g.light_returned(args, kwargs, started, result, found)
                    return result
            else:
                repeat = g.repeat
                if (
                    repeat is not None
                    and len(found) == 1
                    and found[0][0] is repeat[0]
                    and type(found[0][1]) is str
                    and found[0][1] == repeat[1]
                ):  # the same single violation again (a flood): reported as it is
                    try:
                        started = _perf_ns()
                    except Exception as exc:
                        started = _clock_fault(exc)
                    try:
                        result = await func(*args, **kwargs)
                    except BaseException:
                        _report_again(g, repeat[2], started)
                        raise
                    outer = g.return_outer
                    try:
                        passes = outer is None or (
                            isinstance(result, outer) and g.return_deep is None
                        )
                    except Exception:
                        passes = False  # the general path judges it, inside its fault handler
                    if passes:  # ``_report_again``, inline: a flood's per-call path
                        try:
                            _report.emit(g.name, repeat[2], g.code, started or None)
                        except Exception as exc:  # pragma: no cover - emit isolates its sinks
                            internal_error("guard.emit", exc)
                    else:
                        g.returned(g.repeated(args, kwargs, started, repeat[2]), result)
                    return result
                call = g.begin(args, kwargs, True, found)
        elif g.off:
            return await func(*args, **kwargs)
        else:
            rate = g.rate
            if rate >= 1.0 or _random() < rate:
                call = g.begin(args, kwargs, checked=True)
            elif g.needs_call_always:
                call = g.begin(args, kwargs, checked=False)
            else:
                return await func(*args, **kwargs)  # not sampled, and nothing to follow
        if call is None:
            return await func(*args, **kwargs)
        if call is _RESULT_ONLY:
            started = _now()
            result = await func(*args, **kwargs)
            g.result_only(args, kwargs, result, started)
            return result
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            g.raised(call, exc)
            raise
        g.returned(call, result)
        return result

    return wrapper


def _generator(guard: Guard, func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g = guard
        if g.gen != settings.generation:
            g.refresh()
        if g.off:
            return (yield from func(*args, **kwargs))
        call = g.begin(args, kwargs)
        if call is None:
            return (yield from func(*args, **kwargs))
        if call is _RESULT_ONLY:
            started = _now()
            result = yield from func(*args, **kwargs)
            g.result_only(args, kwargs, result, started)
            return result
        try:
            result = yield from func(*args, **kwargs)
        except BaseException as exc:
            g.raised(call, exc)
            raise
        g.returned(call, result)
        return result

    return wrapper


def _async_generator(guard: Guard, func: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        g = guard
        if g.gen != settings.generation:
            g.refresh()
        call = None if g.off else g.begin(args, kwargs)
        if call is _RESULT_ONLY:
            call = None
        try:
            inner = func(*args, **kwargs)
        except BaseException as exc:  # bad arguments: the call ends here, counted as such
            if call is not None:
                g.raised(call, exc)
            raise
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                try:
                    if thrown is not None:
                        error, thrown = thrown, None
                        item = await inner.athrow(error)
                    else:
                        item = await inner.asend(sent)
                except StopAsyncIteration:
                    break
                try:
                    sent = yield item
                except GeneratorExit:
                    await inner.aclose()
                    raise
                except BaseException as exc:
                    thrown = exc
        except BaseException as exc:
            if call is not None:
                g.raised(call, exc)
            raise
        if call is not None:
            g.returned(call, None)

    return wrapper


if TYPE_CHECKING:
    _FunctionWrapper = wrapt.FunctionWrapper[Any, Any]
else:
    _FunctionWrapper = wrapt.FunctionWrapper


class _GuardedCallable(_FunctionWrapper):
    """The proxy of a guarded callable object. Looked up on an instance, a callable that is
    also a descriptor gives what its own ``__get__`` gives: a value as it is, unwrapped (wrapt
    would wrap it for calling), a callable guarded."""

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        bound: Any = super().__get__(instance, owner)
        if bound is not self:
            value = bound.__wrapped__
            if not callable(value):
                return value
        return bound


def _proxy(guard: Guard, target: Any) -> Any:
    """Callables that are not functions (partials, callable instances): a wrapt proxy keeps
    their attributes visible while the call goes through the guard."""

    def handler(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        g = guard
        if g.gen != settings.generation:
            g.refresh()
        if g.off:
            return wrapped(*args, **kwargs)
        call = g.begin(args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        if call is _RESULT_ONLY:
            started = _now()
            result = wrapped(*args, **kwargs)
            g.result_only(args, kwargs, result, started)
            return result
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            g.raised(call, exc)
            raise
        g.returned(call, result)
        return result

    return _GuardedCallable(target, handler)


# -- the decorator ---------------------------------------------------------------------------------


def _kind(func: Any) -> str:
    if inspect.isasyncgenfunction(func):
        return "asyncgen"
    if inspect.iscoroutinefunction(func):
        return "coroutine"
    if inspect.isgeneratorfunction(func):
        return "generator"
    return "function"


def _default_name(func: Any) -> str:
    target = getattr(func, "func", func)  # functools.partial
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{qualname}"


def _decorate(
    target: Any,
    assumptions: tuple[Assumption, ...],
    name: str | None,
    types: bool,
    mode: Mode | None,
    sample_rate: float | None,
    suffix: str = "",
) -> Any:
    if isinstance(target, classmethod):
        return classmethod(_decorate(target.__func__, assumptions, name, types, mode, sample_rate))
    if isinstance(target, staticmethod):
        return staticmethod(_decorate(target.__func__, assumptions, name, types, mode, sample_rate))
    if isinstance(target, property):
        parts = {}
        for attr, label in (("fget", ""), ("fset", ".setter"), ("fdel", ".deleter")):
            accessor = getattr(target, attr)
            parts[attr] = (
                None
                if accessor is None
                else _decorate(
                    accessor,
                    assumptions if attr == "fget" else (),
                    None if name is None else name + label,
                    types,
                    mode,
                    sample_rate,
                    label,
                )
            )
        return type(target)(parts["fget"], parts["fset"], parts["fdel"], target.__doc__)
    if isinstance(target, functools.cached_property):
        return functools.cached_property(
            _decorate(target.func, assumptions, name, types, mode, sample_rate)
        )
    if not callable(target):
        raise TypeError(
            f"@guarded can only decorate a callable, got {type(target).__name__}"
            + (f" (guard {name!r})" if name else "")
        )
    guard_name = name if name is not None else _default_name(target) + suffix
    kind = _kind(target)
    guard = Guard(
        target,
        assumptions,
        name=guard_name,
        types=types,
        mode=mode,
        sample_rate=sample_rate,
        kind=kind,
    )
    if settings.mode_from_env_off:
        return target  # SHADOWGUARD_MODE=off at start-up: validated, then not installed at all
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and kind == "function":
        return _proxy(guard, target)
    build = {
        "function": _sync,
        "coroutine": _coroutine,
        "generator": _generator,
        "asyncgen": _async_generator,
    }[kind]
    wrapper = build(guard, target)
    functools.update_wrapper(wrapper, target)
    wrapper.__shadowguard__ = guard  # type: ignore[attr-defined]
    return wrapper


@overload
def guarded(func: F, /) -> F: ...


@overload
def guarded(
    *assumptions: Assumption,
    name: str | None = None,
    types: bool = True,
    mode: Mode | str | None = None,
    sample_rate: float | None = None,
) -> Callable[[F], F]: ...


def guarded(
    *assumptions: Any,
    name: str | None = None,
    types: bool = True,
    mode: Mode | str | None = None,
    sample_rate: float | None = None,
) -> Any:
    """Guard a callable: check its annotations and ``assumptions`` on production calls.

    Use bare (``@guarded``) to check annotated types, or called with assumptions from
    :mod:`shadowguard.assume`. In observe mode a violation is reported (span event, metric, log)
    and the call goes on untouched; in enforce mode :class:`AssumptionViolation` is raised.
    Mistakes (a path naming no parameter, a bad mode...) raise at decoration, naming the guard.
    """
    if (
        len(assumptions) == 1
        and not isinstance(assumptions[0], Assumption)
        and (
            callable(assumptions[0])
            or isinstance(
                assumptions[0],
                (classmethod, staticmethod, property, functools.cached_property),
            )
        )
    ):
        return _validated(assumptions[0], (), name, types, mode, sample_rate)

    def decorator(target: Any) -> Any:
        return _validated(target, assumptions, name, types, mode, sample_rate)

    return decorator


def _validated(
    target: Any,
    assumptions: tuple[Any, ...],
    name: Any,
    types: Any,
    mode: object,
    sample_rate: object,
) -> Any:
    inner = target
    while isinstance(inner, (classmethod, staticmethod)):
        inner = inner.__func__
    if isinstance(inner, (property, functools.cached_property)):
        inner = getattr(inner, "fget", None) or getattr(inner, "func", None)
    label = f"guard {name!r}" if name is not None else f"guard {_default_name(inner)!r}"
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(f"@guarded: name must be a non-empty string, got {name!r}")
    if not isinstance(types, bool):
        raise TypeError(f"{label}: types must be True or False, got {types!r}")
    for item in assumptions:
        if not isinstance(item, Assumption):
            raise TypeError(
                f"{label}: expected assumptions from shadowguard.assume, got {type(item).__name__}"
            )
    checked_mode: Mode | None = None
    checked_rate: float | None = None
    try:
        if mode is not None:
            checked_mode = parse_mode(mode)
        if sample_rate is not None:
            checked_rate = parse_fraction(sample_rate, "sample_rate")
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None
    return _decorate(target, assumptions, name, types, checked_mode, checked_rate)
