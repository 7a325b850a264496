"""Annotations compiled once into fast checks; the only module that imports typeguard.

Each annotation becomes a :class:`TypeCheck`: an ``isinstance`` tuple that decides most values in
one C call, plus an optional ``deep`` function for what ``isinstance`` cannot decide (items of a
container, TypedDict keys, literals). Containers are sampled, never scanned in full. Annotations
the fast path does not understand go to ``typeguard.check_type`` (typeguard's semantics); its
error messages embed values, so only the observed *type name* is kept.
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import enum
import functools
import inspect
import itertools
import random
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typeguard
import typing_extensions

from shadowguard._shapes import type_name

__all__ = ["TypeCheck", "compile_annotation", "resolve_annotations"]

Deep = Callable[[object], "str | None"]

_rng = random.Random()
SMALL = 8
"""Sequences up to this length are checked item by item; longer ones are sampled."""
WHOLE = 32
"""Up to this length, a sequence whose items take one ``isinstance`` each is checked whole:
cheaper than drawing a sample, and it misses nothing."""
_SAMPLED_RANDOM = 1
"""Random items read per call from a longer sequence, besides its first and last: each read of a
big list is a cache miss, so more would make the cost grow with the size (repeated calls still
reach every item: see docs/performance.md for the odds)."""
_MAPPING_SAMPLE = 4


@dataclass(frozen=True, slots=True)
class TypeCheck:
    """A compiled annotation: ``isinstance(value, outer)`` then, if set, ``deep(value)``."""

    text: str
    outer: tuple[type, ...]
    deep: Deep | None
    items: tuple[type, ...] | None = None
    """Set when ``deep`` only checks ``isinstance(item, items)`` on each item of a container
    (all of a small one): generated checkers then inline that loop for small lists and tuples."""

    def observe(self, value: object) -> str | None:
        """The observed shape when ``value`` does not match, else ``None``."""
        try:
            matches = isinstance(value, self.outer)
        except Exception:  # a proxy whose ``__class__`` raises (unbound LocalProxy): unobservable
            return None
        if not matches:
            return type_name(value)
        if self.deep is not None:
            return self.deep(value)
        return None


class Unresolved:
    """An annotation that could not be evaluated (a name only imported under TYPE_CHECKING...)."""

    __slots__ = ("reason", "text")

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason


# -- annotation text ---------------------------------------------------------------------------


def annotation_text(tp: object) -> str:
    """A short, readable rendering: ``list[int]``, ``int | None``, ``UserRow``.

    Classes are named by their qualified name at every depth (``list[UserRow]``, not
    ``list[app.models.UserRow]``), as ``UserRow`` alone already was.
    """
    if isinstance(tp, str):
        return tp
    if tp is None or tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    if isinstance(tp, list):  # Callable's parameter list
        return "[" + ", ".join(annotation_text(item) for item in tp) + "]"
    args = typing.get_args(tp)
    if isinstance(tp, type) and not args:
        return tp.__qualname__
    if isinstance(tp, typing.TypeVar) or getattr(tp, "__supertype__", None) is not None:
        return str(getattr(tp, "__name__", tp))  # TypeVar, NewType
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(annotation_text(arg) for arg in args)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(_literal_text(arg) for arg in args) + "]"
    if origin is typing.Annotated:
        return annotation_text(args[0])
    if args and isinstance(origin, type):
        return f"{origin.__qualname__}[{', '.join(annotation_text(arg) for arg in args)}]"
    text = repr(tp)
    for prefix in ("typing.", "collections.abc.", "typing_extensions."):
        text = text.replace(prefix, "")
    return text


def _literal_text(value: object) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    return repr(value)


# -- resolution ---------------------------------------------------------------------------------


def _raw_annotations(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        raw = inspect.get_annotations(func)
    except Exception:
        try:  # Python 3.14: lazily evaluated annotations that reference missing names
            import annotationlib  # type: ignore[import-not-found,unused-ignore]

            raw = annotationlib.get_annotations(func, format=annotationlib.Format.STRING)
        except Exception:
            return {}
    return dict(raw)


def _annotated(func: Callable[..., Any]) -> Callable[..., Any]:
    """Where the annotations of a call live: a partial's function, an instance's ``__call__``."""
    if isinstance(func, functools.partial):
        return _annotated(func.func)
    if not (inspect.isfunction(func) or inspect.ismethod(func) or isinstance(func, type)):
        call = inspect.getattr_static(type(func), "__call__", None)
        if inspect.isfunction(call):
            return call
    return func


def resolve_annotations(func: Callable[..., Any]) -> dict[str, object]:
    """Evaluate ``func``'s annotations; each one that fails becomes an :class:`Unresolved`."""
    func = _annotated(func)
    raw = _raw_annotations(func)
    if not raw:
        return {}
    target = inspect.unwrap(func)
    globalns = getattr(target, "__globals__", {})
    try:
        hints = typing.get_type_hints(func, globalns=globalns, include_extras=True)
        return {name: hints.get(name, raw[name]) for name in raw}
    except Exception:
        pass
    resolved: dict[str, object] = {}
    for name, annotation in raw.items():
        probe = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            resolved[name] = typing.get_type_hints(probe, globalns=globalns, include_extras=True)[
                name
            ]
        except Exception as exc:
            text = annotation if isinstance(annotation, str) else annotation_text(annotation)
            resolved[name] = Unresolved(text, f"{type(exc).__name__}: {exc}")
    return resolved


# -- compilation --------------------------------------------------------------------------------

_SEQUENCE_ORIGINS: tuple[Any, ...] = (
    list,
    collections.deque,
    cabc.Sequence,
    cabc.MutableSequence,
)
_SET_ORIGINS: tuple[Any, ...] = (set, frozenset, cabc.Set, cabc.MutableSet, cabc.KeysView)
_MAPPING_ORIGINS: tuple[Any, ...] = (
    dict,
    collections.defaultdict,
    collections.OrderedDict,
    collections.Counter,
    collections.ChainMap,
    cabc.Mapping,
    cabc.MutableMapping,
)
_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)
_NUMERIC_TOWER: dict[type, tuple[type, ...]] = {
    float: (float, int),
    complex: (complex, float, int),
    bytes: (bytes, bytearray, memoryview),
}
_NONE = type(None)


def compile_annotation(tp: object) -> TypeCheck | None:
    """A :class:`TypeCheck` for ``tp``, or ``None`` when any value passes (``Any``, ``object``)."""
    return _compile(tp, depth=0)


def _compile(tp: object, depth: int) -> TypeCheck | None:
    if depth > 8:
        return None
    text = annotation_text(tp)
    if tp is typing.Any or tp is object or isinstance(tp, (str, Unresolved)):
        return None
    if tp is None or tp is _NONE:
        return TypeCheck("None", (_NONE,), None)
    if isinstance(tp, typing.TypeVar):
        if tp.__bound__ is not None:
            return _compile(tp.__bound__, depth + 1)
        if tp.__constraints__:
            return _union(text, tp.__constraints__, depth)
        return None
    supertype = getattr(tp, "__supertype__", None)
    if supertype is not None and callable(tp):  # typing.NewType
        inner = _compile(supertype, depth + 1)
        return None if inner is None else TypeCheck(text, inner.outer, inner.deep, inner.items)
    if isinstance(tp, typing.ForwardRef):
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        inner = _compile(args[0], depth + 1)
        return None if inner is None else TypeCheck(text, inner.outer, inner.deep, inner.items)
    if origin in _UNION_TYPES:
        return _union(text, args, depth)
    if origin is typing.Literal:
        return _literal(text, args)
    if origin is type:
        return _type_of(text, args)
    if origin is cabc.Callable or tp is cabc.Callable or tp is typing.Callable:
        return TypeCheck(text, (object,), _callable)
    if origin is tuple:
        if not args and tp is not typing.Tuple:  # noqa: UP006 - tuple[()] has no args on 3.11+
            args = ((),)
        return _tuple(text, args, depth)
    if origin in _SEQUENCE_ORIGINS:
        return _sequence(text, origin, args, depth)
    if origin in _SET_ORIGINS:
        return _set(text, origin, args, depth)
    if origin in _MAPPING_ORIGINS:
        return _mapping(text, origin, args, depth)
    if isinstance(tp, type) and origin is None:  # on 3.10 list[int] & co. pass for types
        if typing_extensions.is_typeddict(tp):  # typing.is_typeddict misses theirs
            return _typed_dict(text, tp, depth)
        if getattr(tp, "_is_protocol", False):
            return _fallback(text, tp)
        if tp.__module__ == "typing":  # typing.List and friends without arguments
            return _fallback(text, tp)
        return TypeCheck(text, _NUMERIC_TOWER.get(tp, (tp,)), None)
    if isinstance(origin, type):
        # user generics, Iterable[X], Iterator[X]...: the class decides; items are not consumed
        if getattr(origin, "_is_protocol", False) and origin.__module__ != "collections.abc":
            return _fallback(text, tp)
        return TypeCheck(text, (origin,), None)
    return _fallback(text, tp)


def _union(text: str, members: tuple[Any, ...], depth: int) -> TypeCheck | None:
    checks: list[TypeCheck] = []
    for member in members:
        check = _compile(member, depth + 1)
        if check is None:
            return None  # Any (or something unresolvable) in a union accepts everything
        checks.append(check)
    outer: tuple[type, ...] = tuple(dict.fromkeys(t for c in checks for t in c.outer))
    if all(c.deep is None for c in checks):
        return TypeCheck(text, outer, None)
    options = tuple(checks)

    def deep(value: object) -> str | None:
        first: str | None = None
        for option in options:
            if isinstance(value, option.outer):
                if option.deep is None:
                    return None
                found = option.deep(value)
                if found is None:
                    return None
                first = first or found
        return first or type_name(value)

    return TypeCheck(text, outer, deep)


def _literal(text: str, values: tuple[Any, ...]) -> TypeCheck:
    allowed_types = tuple({type(v) for v in values})
    by_type: dict[type, list[Any]] = {}
    for v in values:
        by_type.setdefault(type(v), []).append(v)

    def deep(value: object) -> str | None:
        candidates = by_type.get(type(value))  # exact types only: no user __eq__ is ever called
        if candidates is not None:
            for candidate in candidates:
                if value is candidate or value == candidate:
                    return None
        return f"{type_name(value)} not in literal"

    return TypeCheck(text, allowed_types or (object,), deep)


def _type_of(text: str, args: tuple[Any, ...]) -> TypeCheck:
    target = args[0] if args else None
    if not isinstance(target, type) or target is object or target is typing.Any:  # a class on 3.11+
        return TypeCheck(text, (type,), None)

    def deep(value: object) -> str | None:
        try:
            ok = issubclass(value, target)  # type: ignore[arg-type]
        except Exception:
            return None
        if ok:
            return None
        name = value.__qualname__ if isinstance(value, type) else type_name(value)
        return f"type[{name}]"

    return TypeCheck(text, (type,), deep)


def _callable(value: object) -> str | None:
    return None if callable(value) else type_name(value)


def _nest(observed: str, location: str) -> str:
    shape, sep, rest = observed.partition(" at ")
    return f"{shape} at {location}{rest}" if sep else f"{observed} at {location}"


def _sequence(text: str, origin: Any, args: tuple[Any, ...], depth: int) -> TypeCheck:
    item = _compile(args[0], depth + 1) if args else None
    outer = (origin,)
    if item is None:
        return TypeCheck(text, outer, None)
    return TypeCheck(text, outer, _items(item), item.outer if item.deep is None else None)


def item_at(element: object, index: int) -> str:
    """The observation of a container item that fails its check: ``str at [3]``."""
    return f"{type_name(element)} at [{index}]"


def _items(item: TypeCheck) -> Deep:
    item_outer, item_deep = item.outer, item.deep
    rand = _rng.random

    def deep(value: object) -> str | None:
        seq: Any = value
        try:
            n = len(seq)
            if n <= SMALL or (n <= WHOLE and item_deep is None):
                if item_deep is None:  # the common case: one isinstance per item, no indexing
                    for element in seq:
                        if not isinstance(element, item_outer):
                            break
                    else:
                        return None
                indices: Any = range(n)
            else:  # both ends and _SAMPLED_RANDOM (1) random item
                indices = (0, n - 1, int(rand() * n))
            for i in indices:
                element = seq[i]
                if not isinstance(element, item_outer):
                    return item_at(element, i)
                if item_deep is not None:
                    found = item_deep(element)
                    if found is not None:
                        return _nest(found, f"[{i}]")
        except Exception:  # a hostile __len__/__getitem__/__iter__: not observable
            return None
        return None

    return deep


def _tuple(text: str, args: tuple[Any, ...], depth: int) -> TypeCheck:
    if not args:
        return TypeCheck(text, (tuple,), None)
    if len(args) == 2 and args[1] is Ellipsis:
        item = _compile(args[0], depth + 1)
        if item is None:
            return TypeCheck(text, (tuple,), None)
        return TypeCheck(text, (tuple,), _items(item), item.outer if item.deep is None else None)
    if args == ((),):
        args = ()
    checks = tuple(_compile(a, depth + 1) for a in args)
    expected_len = len(checks)

    def deep(value: object) -> str | None:
        seq: Any = value
        try:
            if len(seq) != expected_len:
                return f"tuple len={len(seq)}"
            for i, check in enumerate(checks):
                if check is None:
                    continue
                found = check.observe(seq[i])
                if found is not None:
                    return _nest(found, f"[{i}]")
        except Exception:  # a hostile tuple subclass: not observable
            return None
        return None

    return TypeCheck(text, (tuple,), deep)


def _set(text: str, origin: Any, args: tuple[Any, ...], depth: int) -> TypeCheck:
    item = _compile(args[0], depth + 1) if args else None
    if item is None:
        return TypeCheck(text, (origin,), None)

    def deep(value: object) -> str | None:
        try:
            for element in itertools.islice(value, SMALL):  # type: ignore[call-overload]
                found = item.observe(element)
                if found is not None:
                    return _nest(found, "{*}")
        except Exception:  # a hostile set subclass: not observable
            return None
        return None

    return TypeCheck(text, (origin,), deep)


def _mapping(text: str, origin: Any, args: tuple[Any, ...], depth: int) -> TypeCheck:
    key = _compile(args[0], depth + 1) if len(args) == 2 else None
    val = _compile(args[1], depth + 1) if len(args) == 2 else None
    if origin is collections.Counter and len(args) == 1:
        key, val = _compile(args[0], depth + 1), TypeCheck("int", (int,), None)
    if key is None and val is None:
        return TypeCheck(text, (origin,), None)
    rand = _rng.random

    def deep(value: object) -> str | None:
        mapping: Any = value
        try:
            n = len(mapping)
            picks: Any = itertools.islice(mapping.items(), _MAPPING_SAMPLE)
            if n > _MAPPING_SAMPLE:  # plus one item further in (bounded walk), for better odds
                offset = _MAPPING_SAMPLE + int(rand() * min(n - _MAPPING_SAMPLE, 256))
                picks = itertools.chain(
                    picks, itertools.islice(mapping.items(), offset, offset + 1)
                )
            for k, v in picks:
                if key is not None:
                    found = key.observe(k)
                    if found is not None:
                        return _nest(found, "(key)")
                if val is not None:
                    found = val.observe(v)
                    if found is not None:
                        return _nest(found, "[*]")
        except Exception:  # a hostile mapping: not observable
            return None
        return None

    return TypeCheck(text, (origin,), deep)


_NO_EXTRA_ITEMS: Any = getattr(typing_extensions, "NoExtraItems", object())
"""PEP 728's marker of a TypedDict that allows no keys beyond its declared ones."""


def _typed_dict(text: str, tp: type, depth: int) -> TypeCheck:
    try:
        hints = typing.get_type_hints(tp, include_extras=True)
    except Exception:
        hints = {}
    keys = set(getattr(tp, "__required_keys__", ()))
    for name, hint in hints.items():  # typing.TypedDict on 3.10 ignores typing_extensions' marks
        qualifiers = _qualifiers(hint)
        if "Required" in qualifiers:
            keys.add(name)
        elif "NotRequired" in qualifiers:
            keys.discard(name)
    required = tuple(sorted(keys))
    declared = frozenset(getattr(tp, "__annotations__", ()))
    closed = getattr(tp, "__extra_items__", _NO_EXTRA_ITEMS) is _NO_EXTRA_ITEMS
    fields = tuple(
        (name, check)
        for name, hint in sorted(hints.items())
        if (check := _compile(_strip_required(hint), depth + 1)) is not None
    )

    def deep(value: object) -> str | None:
        mapping: Any = value
        try:
            for name in required:
                if name not in mapping:
                    return f"missing key {name!r}"
            if closed and (  # typeguard: undeclared keys break the type (names not reported)
                len(mapping) > len(declared) or any(k not in declared for k in mapping)
            ):
                return "extra key"
            for name, check in fields:
                if name in mapping:
                    found = check.observe(mapping[name])
                    if found is not None:
                        return _nest(found, f"[{name!r}]")
        except Exception:  # a hostile dict subclass: not observable
            return None
        return None

    return TypeCheck(text, (dict,), deep)


def _qualifiers(hint: Any) -> set[object]:
    origin = typing.get_origin(hint)
    return {getattr(origin, "_name", None), getattr(origin, "__name__", None)}


def _strip_required(hint: Any) -> Any:
    if _qualifiers(hint) & {"Required", "NotRequired", "ReadOnly"}:
        return typing.get_args(hint)[0]
    return hint


def _fallback(text: str, tp: Any) -> TypeCheck:
    """typeguard decides; only the type name of the value is ever reported."""

    def deep(value: object) -> str | None:
        try:
            typeguard.check_type(
                value,
                tp,
                forward_ref_policy=typeguard.ForwardRefPolicy.IGNORE,
                collection_check_strategy=typeguard.CollectionCheckStrategy.FIRST_ITEM,
            )
        except typeguard.TypeCheckError:
            return type_name(value)
        return None

    return TypeCheck(text, (object,), deep)


def generator_types(annotation: object) -> tuple[object, object]:
    """(yield type, return type) of a generator function's return annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (cabc.Generator,) and len(args) == 3:
        return args[0], args[2]
    if origin in (cabc.AsyncGenerator,) and args:
        return args[0], None
    if origin in (cabc.Iterator, cabc.Iterable, cabc.AsyncIterator, cabc.AsyncIterable) and args:
        return args[0], None
    return None, None
