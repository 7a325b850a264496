"""How the envelope looks inside a value, shared by recording and watching.

Only builtin containers (``list``, ``tuple``, ``dict``, ``set``, ``frozenset``) and objects with
declared fields (dataclasses, attrs, pydantic models, named tuples, ``SimpleNamespace``) are
looked into, through the builtin methods, so no user ``__len__``, ``__iter__``, ``__eq__`` or
``__repr__`` runs and no iterator is consumed. Lengths, signs and order are only read from
builtin scalars.
"""

from __future__ import annotations

import dataclasses
import types
import zlib
from collections.abc import Sequence
from typing import Any

from shadowguard._paths import MISSING, _rng, sample_indices

__all__ = [
    "MAX_DEPTH",
    "MAX_FIELDS",
    "compare",
    "declared_fields",
    "descending",
    "field_value",
    "fingerprint",
    "fingerprint_number",
    "is_record_dict",
    "is_sequence",
    "item",
    "item_indices",
    "length",
    "members",
    "record_fields",
    "sign",
    "spot_indices",
]

MAX_DEPTH = 3
"""Steps below a parameter that are looked into: ``users[*].address.city`` is the deepest."""
MAX_FIELDS = 32
"""Fields read per record; a mapping with more keys is treated as a collection."""

_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)
_SIZED_EXACT = frozenset(_SIZED)
_ORDERED = (int, float, str, bytes)


def length(value: object) -> int:
    """``len(value)`` for builtin strings and containers, else -1 (nothing user-defined runs)."""
    if type(value) in _SIZED_EXACT:
        return len(value)  # type: ignore[arg-type]
    if not isinstance(value, _SIZED):
        return -1
    for base in _SIZED:
        if isinstance(value, base):
            return base.__len__(value)  # type: ignore[arg-type]
    return -1  # pragma: no cover - isinstance above found one of them


def sign(value: object) -> str | None:
    """``negative``, ``zero`` or ``positive`` for an ``int`` or ``float`` (not bool, not NaN)."""
    cls = type(value)
    if cls is int or cls is float:
        if value > 0:  # type: ignore[operator]
            return "positive"
        if value < 0:  # type: ignore[operator]
            return "negative"
        if value == 0:
            return "zero"
    return None


_SAME_KIND = frozenset({int, float, str, bytes})


def descending(before: object, after: object) -> bool:
    """``compare(before, after) < 0``, with the commonest case (one exact kind) inline."""
    kind = type(before)
    if kind is type(after) and kind in _SAME_KIND:
        return bool(after < before)  # type: ignore[operator]
    return compare(before, after) < 0


def compare(before: object, after: object) -> int:
    """-1 when ``after < before``, 1 when ``before < after``, 0 when equal or not comparable.

    Only builtin scalars of one kind are compared (numbers with numbers, text with text).
    """
    a, b = type(before), type(after)
    if a is not b and not ((a is int or a is float) and (b is int or b is float)):
        return 0
    if a not in _ORDERED:
        return 0
    if after < before:  # type: ignore[operator]
        return -1
    if before < after:  # type: ignore[operator]
        return 1
    return 0


_FINGERPRINT_TEXT = 64


def fingerprint(before: object, after: object) -> str:
    """A short, stable name for an ordered pair of builtin scalars (the same in every process,
    unlike ``hash``), so that sortedness evidence from different workers adds up exactly."""
    return f"{fingerprint_number(before, after):08x}"


def fingerprint_number(before: object, after: object) -> int:
    """:func:`fingerprint` as the number it spells in hex (cheaper to compare with)."""
    if (
        type(before) is int
        and type(after) is int
        and before.bit_length() <= 256
        and after.bit_length() <= 256
    ):  # the commonest pair, spelled at once
        return zlib.crc32(_INT_PAIR % (before, after))
    text = _fingerprint_part(before) + "\x00" + _fingerprint_part(after)
    return zlib.crc32(text.encode("utf-8", "backslashreplace"))


_INT_PAIR = b"int:%d\x00int:%d"
_PLAIN_KINDS: dict[type, str] = {int: "int:", float: "float:", str: "str:", bytes: "bytes:"}


def _fingerprint_part(value: object) -> str:
    """``kind:repr`` of one scalar; long text and huge ints by a bounded digest of them."""
    kind = _PLAIN_KINDS.get(type(value))
    if kind is not None:  # the exact builtins compare() orders: no user code runs
        if type(value) is int:
            if value.bit_length() <= 256:
                return kind + int.__repr__(value)
        elif type(value) is float or len(value) <= _FINGERPRINT_TEXT:  # type: ignore[arg-type]
            return kind + repr(value)
    name = type(value).__name__
    if isinstance(value, (str, bytes)) and len(value) > _FINGERPRINT_TEXT:
        return f"{name}:{value[:_FINGERPRINT_TEXT]!r}+{len(value)}"
    if isinstance(value, int) and value.bit_length() > 256:
        return f"{name}:{value.bit_length()}:{value % 2_305_843_009_213_693_951}"
    return f"{name}:{value!r}"


_fields_cache: dict[int, tuple[type, tuple[str, ...] | None]] = {}
_CACHE_LIMIT = 1024


def declared_fields(cls: type) -> tuple[str, ...] | None:
    """The field names a class declares (dataclass, attrs, pydantic, named tuple), else None."""
    cached = _fields_cache.get(id(cls))
    if cached is not None and cached[0] is cls:
        return cached[1]
    names: tuple[str, ...] | None = None
    try:
        if dataclasses.is_dataclass(cls):
            names = tuple(f.name for f in dataclasses.fields(cls))
        elif isinstance(getattr(cls, "__attrs_attrs__", None), tuple):
            names = tuple(str(a.name) for a in cls.__attrs_attrs__)  # type: ignore[attr-defined]
        elif isinstance(getattr(cls, "__pydantic_fields__", None), dict):
            names = tuple(cls.__pydantic_fields__)  # type: ignore[attr-defined]
        elif isinstance(getattr(cls, "__fields__", None), dict) and hasattr(cls, "__config__"):
            names = tuple(cls.__fields__)  # type: ignore[attr-defined]  # pydantic v1
        elif issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple):
            names = tuple(cls._fields)  # type: ignore[attr-defined]
    except Exception:
        names = None
    if names is not None:
        names = tuple(n for n in names if isinstance(n, str) and n.isidentifier())[:MAX_FIELDS]
    if len(_fields_cache) >= _CACHE_LIMIT:
        _fields_cache.clear()
    _fields_cache[id(cls)] = (cls, names)
    return names


def is_record_dict(value: dict[Any, Any]) -> bool:
    """A dict of at most :data:`MAX_FIELDS` identifier keys: a record, not a collection."""
    if dict.__len__(value) > MAX_FIELDS:
        return False
    for key in dict.keys(value):  # noqa: SIM110 - a plain loop: no generator per record
        if type(key) is not str or not key.isidentifier():
            return False
    return True


def record_fields(value: object) -> list[tuple[str, object]] | None:
    """``(name, value)`` of each field when ``value`` is a record, else ``None``.

    A record is a ``dict`` of at most :data:`MAX_FIELDS` identifier keys, an object with
    declared fields, or a ``SimpleNamespace``. A dict keyed by ids or free text is a collection.
    """
    if isinstance(value, dict):
        return list(dict.items(value)) if is_record_dict(value) else None
    if type(value) is types.SimpleNamespace:
        pairs = [
            (k, v)
            for k, v in dict.items(object.__getattribute__(value, "__dict__"))
            if type(k) is str and k.isidentifier()
        ]
        return pairs[:MAX_FIELDS]
    names = declared_fields(type(value))
    if names is None:
        return None
    return [(name, _getattr(value, name)) for name in names]


def field_value(value: object, name: str) -> object:
    """The field ``name`` of a record, :data:`MISSING` when absent (or not a record)."""
    if isinstance(value, dict):
        return dict.get(value, name, MISSING)
    if type(value) is types.SimpleNamespace:
        return dict.get(object.__getattribute__(value, "__dict__"), name, MISSING)
    names = declared_fields(type(value))
    if names is None or name not in names:
        return MISSING
    return _getattr(value, name)


def _getattr(value: object, name: str) -> object:
    try:
        return getattr(value, name, MISSING)
    except Exception:
        return MISSING


def is_sequence(value: object) -> bool:
    """A ``list`` or a ``tuple`` that is not a named tuple (those are records)."""
    return isinstance(value, list) or (
        isinstance(value, tuple) and declared_fields(type(value)) is None
    )


def item_indices(value: Sequence[Any]) -> range | list[int]:
    """Which items of a list or tuple to read: all of a small one, a sample of a big one."""
    return sample_indices(list.__len__(value) if isinstance(value, list) else len(value))


_SPOT_FULL = 4
_SPOT_EDGE = 1


def spot_indices(value: Sequence[Any]) -> range | list[int]:
    """A light sample for watching every production call: all of up to 4 items, else the first,
    the last and two at random (repeated calls still reach every item; the cost stays flat)."""
    n = list.__len__(value) if isinstance(value, list) else len(value)
    if n <= _SPOT_FULL:
        return range(n)
    rand = _rng.random
    span = n - 2 * _SPOT_EDGE
    return [
        *range(_SPOT_EDGE),
        *range(n - _SPOT_EDGE, n),
        *(_SPOT_EDGE + int(rand() * span) for _ in range(_SPOT_FULL - 2 * _SPOT_EDGE)),
    ]


def item(value: Sequence[Any], index: int) -> object:
    """Item ``index`` through the builtin method (a subclass's ``__getitem__`` is not run)."""
    if isinstance(value, list):
        return list.__getitem__(value, index)
    return tuple.__getitem__(value, index)  # type: ignore[call-overload]


def members(value: object) -> list[object] | None:
    """The first :data:`MAX_FIELDS` members of a set, or values of a dict used as a collection."""
    if isinstance(value, dict):
        out: list[object] = []
        for member in dict.values(value):
            if len(out) >= MAX_FIELDS:
                break
            out.append(member)
        return out
    if isinstance(value, (set, frozenset)):
        out = []
        iterate: Any = set.__iter__ if isinstance(value, set) else frozenset.__iter__
        for member in iterate(value):
            if len(out) >= MAX_FIELDS:
                break
            out.append(member)
        return out
    return None
