"""The assumption catalogue: one small class per kind, all on one documented base class."""

from __future__ import annotations

import inspect
import itertools
import math
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any, ClassVar, Literal

from shadowguard._call import Call
from shadowguard._paths import ATTR, KEY, MISSING, Path, Unobservable, dict_get, parse_path
from shadowguard._shapes import type_name
from shadowguard._typecheck import TypeCheck

Shapes = Mapping[type, "tuple[type, ...] | None"]
"""What :meth:`Assumption.accepted_types` promises: the exact types of ``v`` the inline lines
may accept, each list or tuple with the exact types its members may have (``None``: they are not
looked at), ``()`` for any other type."""

__all__ = [
    "Assumption",
    "Finding",
    "GuardInfo",
    "Latency",
    "MaxConcurrency",
    "Monotonic",
    "NotNone",
    "Ordered",
    "Predicate",
    "Present",
    "RaisesOnly",
    "Size",
    "TypeAssumption",
]

When = Literal["before", "return", "exception", "finish"]


class Finding(str):
    """An observed shape that also names, for this one call, the assumption text, what was
    expected and the path; for assumptions that watch many paths at once (the envelope).
    :meth:`Assumption.check` may return one instead of a plain string."""

    assumption: str | None
    expected: str | None
    path: str | None

    def __new__(
        cls,
        observed: str,
        *,
        assumption: str | None = None,
        expected: str | None = None,
        path: str | None = None,
    ) -> Finding:
        self = super().__new__(cls, observed)
        self.assumption = assumption
        self.expected = expected
        self.path = path
        return self


class GuardInfo:
    """What an assumption may know about the function it guards when it is bound."""

    __slots__ = ("is_generator", "name", "parameters")

    def __init__(self, name: str, parameters: tuple[str, ...], is_generator: bool) -> None:
        self.name = name
        self.parameters = parameters
        self.is_generator = is_generator


class Assumption:
    """Base class of every assumption kind.

    Subclass it to add a kind of your own: set ``kind`` and ``expected``, choose ``when`` it runs
    and implement :meth:`check`, which returns the *observed shape* (a short, value-free string
    such as ``"None"`` or ``"len=12"``) when the call breaks the assumption, else ``None``.
    ``data`` assumptions are thinned by sampling; the others see every call. A check that raises
    is an internal fault: swallowed, logged once, never visible to the caller.
    """

    kind: ClassVar[str] = "predicate"
    data: ClassVar[bool] = True
    timed: ClassVar[bool] = False
    counts_in_flight: ClassVar[bool] = False

    when: When = "before"
    text: str
    expected: str
    path: str | None = None

    def __init__(self, text: str, expected: str, *, path: str | None = None) -> None:
        self.text = text
        self.expected = expected
        self.path = path
        self._fault: str | None = None

    def bind(self, guard: GuardInfo) -> None:
        """Validate against the guarded function at decoration; raise ``ValueError`` if wrong."""
        if self._fault is not None:
            raise ValueError(f"guard {guard.name!r}: {self.text}: {self._fault}")

    def check(self, call: Call) -> str | None:
        """The observed shape if ``call`` breaks this assumption, else ``None``."""
        return None

    def capture(self, call: Call) -> object:
        """The value to show when value capture is on (never used otherwise)."""
        return MISSING

    def argument_check(self) -> tuple[str, Callable[[object], str | None]] | None:
        """``(parameter, check)`` when :meth:`check` only reads that one parameter: ``check``
        takes its value and returns the observation (or raises :class:`Unobservable`). The
        guard then compiles it into its generated per-call checker. ``None``: call :meth:`check`.
        """
        return None

    def result_check(self) -> Callable[[object], str | None] | None:
        """The same for a ``return`` check that only reads the return value: a check of that
        value (may raise :class:`Unobservable`), compiled into the guard's result checker."""
        return None

    def accepts(self) -> tuple[Sequence[str], Mapping[str, object]] | None:
        """Source lines over the value ``v`` setting ``ok`` true only when the check of
        :meth:`argument_check` (or :meth:`result_check`) has nothing to say about ``v``, and
        the objects they name (upper-case names): the guard's generated checker runs them
        inline and calls the check only when ``ok`` is false. ``None``: always call it."""
        return None

    def accepted_types(self) -> Shapes | None:
        """For the lines the last :meth:`accepts` gave: the exact types of ``v`` they may set
        ``ok`` for, each list or tuple with the exact types its members may have (``None``:
        any). When ``ok`` so implies the parameter's annotation, the generated checker skips
        the type check for ``v`` too. ``None``: nothing is promised."""
        return None

    def flight_check(self) -> Callable[[int], str | None] | None:
        """For a ``counts_in_flight`` check that reads nothing but the number of calls in
        flight (this one included): that check. The guard then counts calls without a ``Call``
        and asks only when more are in flight than :meth:`flight_quiet` allows."""
        return None

    def flight_quiet(self) -> int:
        """The most calls in flight that :meth:`flight_check` has nothing to say about now;
        read again after each check (it may only grow while the guard's plan stands)."""
        return 0

    def after_fork(self) -> None:
        """Called in a forked child: re-create locks and forget per-process state that only
        made sense in the parent. Kinds holding a lock override it."""

    def _defer(self, fault: str) -> None:
        """Remember a construction mistake; it is raised at decoration with the guard's name."""
        if self._fault is None:
            self._fault = fault

    def __repr__(self) -> str:
        return f"<assumption {self.text}>"


# -- path-based data checks ---------------------------------------------------------------------


class _PathAssumption(Assumption):
    """An assumption about the value at a path of the arguments or of the return value."""

    strict: ClassVar[bool] = False
    present_passes: ClassVar[bool] = False
    """True when :meth:`leaf` accepts every value that exists (``None`` too)."""
    parsed: Path | None

    def __init__(self, name: str, path: object, expected: str, extra: str = "") -> None:
        text_path = path if isinstance(path, str) else repr(path)
        super().__init__(f"{name}({text_path}{extra})", expected, path=text_path)
        self.parsed = None
        self._read: Callable[[object], str | None] = self.leaf  # until the path is parsed
        try:
            self.parsed = parse_path(path)
            self._read = self.parsed.compile(self.leaf, self.strict, self.present_passes)
        except (TypeError, ValueError) as exc:
            self._defer(str(exc))

    def bind(self, guard: GuardInfo) -> None:
        super().bind(guard)
        assert self.parsed is not None
        root = self.parsed.root
        if root == "return":
            if guard.is_generator:
                raise ValueError(
                    f"guard {guard.name!r}: {self.text}: 'return' paths are not supported on"
                    " generator functions"
                )
            self.when = "return"
        elif root not in guard.parameters:
            known = ", ".join(guard.parameters) or "none"
            raise ValueError(
                f"guard {guard.name!r}: {self.text}: unknown parameter {root!r}"
                f" (parameters: {known}; or 'return')"
            )
        else:
            self.when = "before"

    def check(self, call: Call) -> str | None:
        assert self.parsed is not None
        return self.check_value(call.argument(self.parsed.root))

    def argument_check(self) -> tuple[str, Callable[[object], str | None]] | None:
        if self.parsed is None or type(self).check is not _PathAssumption.check:
            return None  # a kind with a check of its own (monotonic) needs the whole call
        return self.parsed.root, self._read

    def result_check(self) -> Callable[[object], str | None] | None:
        if self.parsed is None or type(self).check is not _PathAssumption.check:
            return None
        return self._read if self.parsed.root == "return" else None

    def check_value(self, value: object) -> str | None:
        """:meth:`check` given the value of the path's root (the generated checkers call it
        with the argument they fetched themselves)."""
        try:
            return self._read(value)
        except Unobservable:
            return None

    def leaf(self, value: object) -> str | None:
        """The observation for one value found at the path."""
        raise NotImplementedError

    def capture(self, call: Call) -> object:
        return call.argument(self.parsed.root) if self.parsed is not None else MISSING


class Present(_PathAssumption):
    """The key or attribute exists (``None`` is fine)."""

    kind = "nullability"
    strict = True
    present_passes = True

    def __init__(self, path: object) -> None:
        super().__init__("present", path, "present")

    def leaf(self, value: object) -> str | None:
        return "missing" if value is MISSING else None


class NotNone(_PathAssumption):
    """The key or attribute exists and is not ``None``."""

    kind = "nullability"
    strict = True

    def __init__(self, path: object) -> None:
        super().__init__("not_none", path, "not None")

    def leaf(self, value: object) -> str | None:
        if value is MISSING:
            return "missing"
        return "None" if value is None else None


class Size(_PathAssumption):
    """``min <= len(value) <= max``; values without a length are not observed."""

    kind = "volume"

    def __init__(self, path: object, max: int | None = None, min: int | None = None) -> None:
        bounds = []
        if min is not None:
            bounds.append(f"min={min}")
        if max is not None:
            bounds.append(f"max={max}")
        if min is not None and max is not None:
            expected = f"{min} <= len <= {max}"
        elif max is not None:
            expected = f"len <= {max}"
        else:
            expected = f"len >= {min}"
        super().__init__("size", path, expected, "".join(f", {b}" for b in bounds))
        for label, bound in (("max", max), ("min", min)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int) or bound < 0
            ):
                self._defer(f"{label} must be a non-negative int, got {bound!r}")
        if max is None and min is None:
            self._defer("size needs max= or min=")
        elif max is not None and min is not None and min > max:
            self._defer(f"min={min} is larger than max={max}")
        self.max = max
        self.min = min

    def leaf(self, value: object) -> str | None:
        kind = type(value)
        if kind is list or kind is dict or kind is tuple or kind is str:  # the usual, at C speed
            sized, length = True, len(value)  # type: ignore[arg-type]
        else:
            try:  # isinstance raises for a proxy whose ``__class__`` raises; len is user code
                sized = isinstance(value, (str, bytes)) or hasattr(kind, "__len__")
                length = len(value) if sized else 0  # type: ignore[arg-type]
            except Exception as exc:
                raise Unobservable from exc
        too_long = self.max is not None and length > self.max
        if sized and (too_long or (self.min is not None and length < self.min)):
            return f"len={length}"
        return None


_ORDER_FULL = 64
_ORDER_EDGE = 16


class Ordered(_PathAssumption):
    """The sequence is sorted (non-decreasing, or non-increasing with ``descending``) by key."""

    kind = "ordering"

    def __init__(
        self,
        path: object,
        key: str | Callable[[Any], Any] | None = None,
        descending: bool = False,
    ) -> None:
        extra = by = ""
        if isinstance(key, str):
            extra, by = f", key={key}", f" by {key}"
        elif key is not None:
            label = getattr(key, "__name__", "key")
            extra, by = f", key={label}", f" by {label}"
        if descending:
            extra += ", descending"
        expected = f"sorted{' descending' if descending else ''}{by}"
        super().__init__("ordered", path, expected, extra)
        self.descending = descending
        self._in_order: Callable[[Any, Any], Any] = operator.ge if descending else operator.le
        self.key_path: Path | None = None
        self.key_func: Callable[[Any], Any] | None = None
        self._field: object = None
        if isinstance(key, str):
            try:
                self.key_path = parse_path(f"_{key}" if key.startswith("[") else f"_.{key}")
            except ValueError as exc:
                self._defer(f"bad key {key!r}: {exc}")
            if self.key_path is not None and self.key_path.fans_out:
                self._defer(f"key {key!r} cannot use [*]")
            steps = self.key_path.steps if self.key_path is not None else ()
            if len(steps) == 1 and steps[0][0] in (ATTR, KEY):
                self._field = steps[0][1]  # one field: read plain dict items inline
        elif key is not None:
            if not callable(key):
                self._defer(f"key must be a field name or a callable, got {type(key).__name__}")
            self.key_func = key

    def _key(self, item: object) -> object:
        if self.key_path is not None:
            return self.key_path.read(item)
        if self.key_func is not None:
            return self.key_func(item)
        return item

    def _keys(self, items: Sequence[Any], key: Callable[[Any], Any] | None) -> Sequence[Any]:
        """The sort key of every item (None where it is missing: both are skipped alike)."""
        field = self._field
        if field is not None and self.key_path is not None:
            try:  # a batch of plain dicts, read at C speed
                return list(map(dict_get, items, itertools.repeat(field, len(items))))
            except TypeError:  # an item is not a dict
                get = self.key_path.read
                return [i.get(field, MISSING) if type(i) is dict else get(i) for i in items]
        return items if key is None else [key(item) for item in items]

    def leaf(self, value: object) -> str | None:
        seq: Any = value
        exact = type(seq) is list or type(seq) is tuple
        if exact and self._field is not None and 1 < len(seq) <= _ORDER_FULL:
            try:  # the usual batch, plain dicts sorted by one field: decided at C speed
                batch = list(map(dict_get, seq, repeat(self._field)))
                # A stable sort of sorted keys moves nothing, so the same objects come back in
                # the same places (compared by identity first); it breaks ties like the closer
                # look below (``after < before``), with type-specialised comparisons.
                if sorted(batch, reverse=self.descending) == batch:
                    return None
            except Exception:
                pass  # not all dicts, keys that do not compare...: looked at closer below
        try:
            if not exact and (isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence)):
                return None  # iterators are never consumed; strings are not batches
            n = len(seq)
            if n < 2:
                return None
            key = None if self.key_path is None and self.key_func is None else self._key
            if n <= _ORDER_FULL:
                items = seq if exact or isinstance(seq, (list, tuple)) else list(seq)
                keys = self._keys(items, key)
                try:  # all pairs at C speed; None/missing keys make it raise: look closer below
                    if all(map(self._in_order, keys, itertools.islice(keys, 1, None))):
                        return None
                except TypeError:
                    pass
                return self._first_break(lambda i: keys[i], range(1, n))
            from shadowguard._paths import _rng

            pairs = [
                *range(1, _ORDER_EDGE + 1),
                *range(n - _ORDER_EDGE, n),
                *(1 + int(_rng.random() * (n - 1)) for _ in range(_ORDER_EDGE)),
            ]
            read = (lambda i: seq[i]) if key is None else (lambda i: key(seq[i]))
            return self._first_break(read, pairs)
        except Unobservable:
            raise
        except Exception as exc:
            raise Unobservable from exc

    def _first_break(self, read: Callable[[int], Any], pairs: Any) -> str | None:
        """The first adjacent pair out of order, skipping items whose key is None or missing."""
        for i in pairs:
            before, after = read(i - 1), read(i)
            if before is MISSING or after is MISSING or before is None or after is None:
                continue
            wrong = before < after if self.descending else after < before
            if wrong:
                sign = ">" if self.descending else "<"
                return f"items[{i}] {sign} items[{i - 1}]"
        return None


class Monotonic(_PathAssumption):
    """Across calls the value never goes back, per key when ``per`` is given (bounded LRU)."""

    kind = "ordering"

    def __init__(self, path: object, per: str | None = None, max_keys: int = 10_000) -> None:
        super().__init__(
            "monotonic",
            path,
            "non-decreasing" + (f" per {per}" if per else ""),
            f", per={per}" if per else "",
        )
        self.per: Path | None = None
        if per is not None:
            try:
                self.per = parse_path(per)
            except (TypeError, ValueError) as exc:
                self._defer(f"bad per={per!r}: {exc}")
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            self._defer(f"max_keys must be a positive int, got {max_keys!r}")
        self.max_keys = max_keys
        self._last: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at fork time

    def bind(self, guard: GuardInfo) -> None:
        super().bind(guard)
        assert self.parsed is not None
        if self.parsed.fans_out:
            raise ValueError(f"guard {guard.name!r}: {self.text}: monotonic paths cannot use [*]")
        if self.per is not None:
            if self.per.fans_out:
                raise ValueError(f"guard {guard.name!r}: {self.text}: per cannot use [*]")
            if self.per.root not in guard.parameters and self.per.root != "return":
                raise ValueError(
                    f"guard {guard.name!r}: {self.text}:"
                    f" unknown parameter {self.per.root!r} in per="
                )
            if self.per.root == "return":
                self.when = "return"

    def check(self, call: Call) -> str | None:
        assert self.parsed is not None
        try:
            value = self.parsed.read(call.argument(self.parsed.root))
            if value is MISSING or value is None:
                return None
            key: Any = None
            if self.per is not None:
                key = self.per.read(call.argument(self.per.root))
                if key is MISSING:
                    return None
                key = (type(key), key)
                hash(key)
            with self._lock:
                last = self._last.get(key, MISSING)
                went_back = last is not MISSING and value < last
                if not went_back:
                    self._last[key] = value
                self._last.move_to_end(key)
                while len(self._last) > self.max_keys:
                    self._last.popitem(last=False)
        except Exception:
            return None
        return f"{self.parsed.text} < previous" if went_back else None


# -- whole-call checks (every call) -------------------------------------------------------------


class Latency(Assumption):
    """The call (for generators: the whole iteration) finishes within ``ms`` milliseconds."""

    kind = "latency"
    data = False
    timed = True
    when: When = "finish"

    def __init__(self, ms: float) -> None:
        valid = isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0
        super().__init__(f"latency(ms={ms:g})" if valid else f"latency(ms={ms!r})", "")
        if not valid or math.isnan(ms) or math.isinf(ms):
            self._defer(f"budget must be a positive number of ms, got {ms!r}")
            valid = False
        self.ms = float(ms) if valid else 0.0
        self.expected = f"<= {self.ms:g} ms"
        self.budget_ns = int(self.ms * 1_000_000)

    def check(self, call: Call) -> str | None:
        elapsed = call.elapsed_ns
        if elapsed is not None and elapsed > self.budget_ns:
            return f"{elapsed / 1_000_000:.1f} ms"
        return None


class MaxConcurrency(Assumption):
    """Never more than ``limit`` calls of this guard in flight (threads and asyncio tasks)."""

    kind = "concurrency"
    data = False
    counts_in_flight = True

    def __init__(self, limit: int) -> None:
        super().__init__(f"max_concurrency({limit!r})", f"<= {limit!r} in flight")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            self._defer(f"limit must be a positive int, got {limit!r}")
        self.limit = limit

    def check(self, call: Call) -> str | None:
        return self.over(call.in_flight)

    def over(self, in_flight: int) -> str | None:
        """The observation for ``in_flight`` calls at once."""
        return f"{in_flight} in flight" if in_flight > self.limit else None

    def flight_check(self) -> Callable[[int], str | None] | None:
        return self.over

    def flight_quiet(self) -> int:
        return self.limit


class RaisesOnly(Assumption):
    """Any exception other than these types is a violation (``BaseException``s pass untouched)."""

    kind = "exception"
    data = False
    when: When = "exception"

    def __init__(self, *types: type[BaseException]) -> None:
        names = " | ".join(getattr(t, "__qualname__", repr(t)) for t in types)
        super().__init__(f"raises_only({', '.join(n for n in names.split(' | '))})", names)
        if not types:
            self._defer("raises_only needs at least one exception type")
        for t in types:
            if not (isinstance(t, type) and issubclass(t, BaseException)):
                self._defer(f"{t!r} is not an exception type")
        self.types = tuple(types)

    def check(self, call: Call) -> str | None:
        exc = call.exception
        if exc is None or not isinstance(exc, Exception):
            return None
        return None if isinstance(exc, self.types) else type_name(exc)


class Predicate(Assumption):
    """A callable over named parameters (and ``result``) that must return something truthy."""

    kind = "predicate"

    def __init__(self, predicate: Callable[..., Any], description: str | None = None) -> None:
        label = description or getattr(predicate, "__name__", None) or "predicate"
        super().__init__(f"that({label})", str(label))
        self.predicate = predicate
        self.names: tuple[str, ...] = ()
        if not callable(predicate):
            self._defer(f"{predicate!r} is not callable")
            return
        if description is not None and not isinstance(description, str):
            self._defer("the description must be a string")
        try:
            params = inspect.signature(predicate).parameters.values()
        except (TypeError, ValueError):
            self._defer("cannot read the predicate's signature")
            return
        names = []
        for param in params:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                self._defer("the predicate must name its parameters (no *args/**kwargs)")
            names.append(param.name)
        self.names = tuple(names)

    def bind(self, guard: GuardInfo) -> None:
        super().bind(guard)
        unknown = [n for n in self.names if n not in guard.parameters and n != "result"]
        if unknown:
            known = ", ".join(guard.parameters) or "none"
            raise ValueError(
                f"guard {guard.name!r}: {self.text}: unknown parameter {unknown[0]!r}"
                f" (parameters: {known}; or 'result')"
            )
        self.when = "return" if "result" in self.names else "before"

    def check(self, call: Call) -> str | None:
        values = {name: call.argument(name) for name in self.names}
        return None if self.predicate(**values) else "False"


class TypeAssumption(Assumption):
    """A parameter (or the return value) matches its annotation."""

    kind = "type"

    def __init__(self, name: str, check: TypeCheck) -> None:
        super().__init__(f"type({name})", check.text, path=name)
        self.name = name
        self.type_check = check
        self.when = "return" if name == "return" else "before"

    def check(self, call: Call) -> str | None:
        return self.type_check.observe(call.argument(self.name))

    def capture(self, call: Call) -> object:
        return call.argument(self.name)
