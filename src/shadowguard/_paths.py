"""The path language: ``name ( .field | [int] | ['key'] | ["key"] | [*] )*``.

Paths are parsed once, at decoration. Reading one never iterates an iterator, never calls
``__repr__``/``__eq__`` and treats a user object that raises as unobservable (no violation).
``[*]`` over a large sequence reads a bounded sample: the first and last items plus a few
random ones, so the cost does not grow with the container and repeated calls still find a bad
item anywhere.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Final

__all__ = ["MISSING", "Path", "parse_path", "sample_indices"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
"""A key or attribute that does not exist (as opposed to one that holds ``None``)."""


class Unobservable(Exception):
    """Reading a user object raised: the value cannot be observed, so nothing is reported."""


ATTR, INDEX, KEY, STAR = 0, 1, 2, 3
Step = tuple[int, object]

_TOKEN = re.compile(
    r"""\.(?P<attr>[A-Za-z_][A-Za-z_0-9]*)
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]
      | \[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]
      | \[\s*(?P<star>\*)\s*\]""",
    re.VERBOSE,
)
_ROOT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")

FULL_SCAN = 32
"""Containers up to this many items are read in full; larger ones are sampled."""
_HEAD = 8
_RANDOM = 16
_rng = random.Random()
dict_get: Callable[[Any, Any], Any] = dict.get
"""Reads a dict item's own entries at C speed (a subclass's ``get``/``__missing__`` not called)."""
dict_contains: Callable[[Any, Any], bool] = dict.__contains__


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed path: the parameter (or ``return``) it starts from and the steps below it."""

    text: str
    root: str
    steps: tuple[Step, ...]

    def walk(self, value: object, leaf: Callable[[object], str | None], strict: bool) -> str | None:
        """Read the path from ``value`` (the root's value) and apply ``leaf`` to what is found.

        ``leaf`` returns an observed shape for a failing value, else ``None``. With ``strict``,
        a missing key or a ``None`` on the way is itself an observation (``None at user``);
        otherwise such a path has nothing to check. For ``[*]`` the first failing item decides.
        Raises :class:`Unobservable` when a user object raised while being read.
        """
        return _walk(self, value, 0, (), leaf, strict)

    def compile(
        self, leaf: Callable[[object], str | None], strict: bool, present_passes: bool = False
    ) -> Callable[[object], str | None]:
        """:meth:`walk` with ``leaf`` and ``strict`` bound, specialised for the common shapes.

        ``name`` alone is ``leaf`` itself; ``name[*].field`` over a list or tuple of plain
        dicts reads each item with ``dict.get`` instead of a generic walk (anything else, and
        the description of a failure, still goes through :meth:`walk`: same observations).
        ``present_passes`` says that ``leaf`` accepts every value that exists, ``None`` too (a
        batch of dicts that all have the field then passes at C speed). Raises
        :class:`Unobservable` as :meth:`walk` does.
        """
        steps = self.steps
        if not steps:
            return leaf
        if len(steps) == 2 and steps[0][0] == STAR and steps[1][0] in (ATTR, KEY):
            return _star_field(self, steps[1][1], leaf, strict, present_passes)

        def walk(value: object) -> str | None:
            return _walk(self, value, 0, (), leaf, strict)

        return walk

    def read(self, value: object) -> object:
        """The single value at this path (no ``[*]``), :data:`MISSING` when absent.

        Raises :class:`Unobservable` when a user object raised while being read.
        """
        try:
            for kind, arg in self.steps:
                if value is None or value is MISSING:
                    return MISSING
                value = _step(value, kind, arg)
        except Exception as exc:
            raise Unobservable from exc
        return value

    @property
    def fans_out(self) -> bool:
        """True when the path has a ``[*]`` step."""
        return any(kind == STAR for kind, _ in self.steps)

    def where(self, trail: tuple[object, ...], upto: int) -> str:
        """The concrete location after ``upto`` steps, with the ``[*]`` indexes in ``trail``."""
        parts = [self.root]
        stars = iter(trail)
        for kind, arg in self.steps[:upto]:
            if kind == ATTR:
                parts.append(f".{arg}")
            elif kind == INDEX:
                parts.append(f"[{arg}]")
            elif kind == KEY:
                parts.append(f"[{arg!r}]")
            else:
                parts.append(f"[{next(stars, '*')}]")
        return "".join(parts)


def parse_path(text: object) -> Path:
    """Parse ``text`` or raise ``ValueError`` saying where it goes wrong."""
    if not isinstance(text, str):
        raise TypeError(f"a path must be a string, got {type(text).__name__}")
    source = text.strip()
    root = _ROOT.match(source)
    if root is None:
        raise ValueError(f"bad path {text!r}: must start with a parameter name or 'return'")
    steps: list[Step] = []
    pos = root.end()
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ValueError(f"bad path {text!r}: unexpected {source[pos:]!r} at position {pos}")
        if match.group("attr") is not None:
            steps.append((ATTR, match.group("attr")))
        elif match.group("index") is not None:
            steps.append((INDEX, int(match.group("index"))))
        elif match.group("sq") is not None:
            steps.append((KEY, _unescape(match.group("sq"))))
        elif match.group("dq") is not None:
            steps.append((KEY, _unescape(match.group("dq"))))
        else:
            steps.append((STAR, None))
        pos = match.end()
    return Path(source, root.group(), tuple(steps))


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def sample_indices(length: int) -> range | list[int]:
    """Which items of a sequence of ``length`` to read: all of a small one, a sample otherwise."""
    if length <= FULL_SCAN:
        return range(length)
    picks = list(range(_HEAD))
    picks.extend(range(length - _HEAD, length))
    span = length - 2 * _HEAD
    rand = _rng.random
    picks.extend(_HEAD + int(rand() * span) for _ in range(_RANDOM))
    return picks


def _walk(
    path: Path,
    value: object,
    i: int,
    trail: tuple[object, ...],
    leaf: Callable[[object], str | None],
    strict: bool,
) -> str | None:
    steps = path.steps
    n = len(steps)
    try:
        while i < n:
            if value is None or value is MISSING:
                if not strict:
                    return None
                shape = "None" if value is None else "missing"
                return f"{shape} at {path.where(trail, i)}"
            kind, arg = steps[i]
            if kind == STAR:
                return _fan_out(path, value, i, trail, leaf, strict)
            value = _step(value, kind, arg)
            i += 1
    except Unobservable:
        raise
    except Exception as exc:  # a hostile __getitem__/__getattr__/get
        raise Unobservable from exc
    if value is MISSING and not strict:
        return None
    observed = leaf(value)
    if observed is not None and trail:
        return f"{observed} at {path.where(trail, n)}"
    return observed


def _step(value: object, kind: int, arg: object) -> object:
    if type(value) is dict:  # the common case, without the Mapping ABC check
        return value.get(arg, MISSING)
    if kind == ATTR:
        if isinstance(value, Mapping):
            return value.get(arg, MISSING)
        return getattr(value, arg, MISSING)  # type: ignore[call-overload]
    if kind == INDEX:
        if isinstance(value, Mapping):
            return value.get(arg, MISSING)
        if isinstance(value, Sequence):
            try:
                return value[arg]  # type: ignore[call-overload]
            except IndexError:
                return MISSING
        return MISSING
    # KEY
    if isinstance(value, Mapping):
        return value.get(arg, MISSING)
    return MISSING


def _fan_out(
    path: Path,
    value: object,
    i: int,
    trail: tuple[object, ...],
    leaf: Callable[[object], str | None],
    strict: bool,
) -> str | None:
    if isinstance(value, (list, tuple)) or (
        isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray, memoryview))
    ):
        for index in sample_indices(len(value)):
            item = value[index]
            found = _walk(path, item, i + 1, (*trail, index), leaf, strict)
            if found is not None:
                return found
        return None
    if isinstance(value, Mapping):
        for count, key in enumerate(value):
            if count >= FULL_SCAN:
                break
            item = value.get(key, MISSING)
            found = _walk(path, item, i + 1, (*trail, "*"), leaf, strict)
            if found is not None:
                return found
        return None
    return None  # an iterator, a set, a scalar: never consumed, nothing to fan out over


def _star_field(
    path: Path,
    field: object,
    leaf: Callable[[object], str | None],
    strict: bool,
    present_passes: bool,
) -> Callable[[object], str | None]:
    """``name[*].field``: plain dict items read inline, everything else walked generically."""

    def run(value: object) -> str | None:
        kind = type(value)
        if kind is not list and kind is not tuple:
            return _walk(path, value, 0, (), leaf, strict)
        items: Sequence[object] = value  # type: ignore[assignment]
        n = len(items)
        if n <= FULL_SCAN and present_passes:  # decide the usual "all fine" at C speed
            try:
                if all(map(dict_contains, items, repeat(field))):
                    return None
            except TypeError:
                pass  # an item is not a dict: the loop below looks closer
        try:
            for index in range(n) if n <= FULL_SCAN else sample_indices(n):
                item = items[index]
                if type(item) is dict:
                    found = item.get(field, MISSING)
                    if found is MISSING and not strict:
                        continue
                    if leaf(found) is None:
                        continue
                observed = _walk(path, item, 1, (index,), leaf, strict)  # describes it
                if observed is not None:
                    return observed
        except Unobservable:
            raise
        except Exception as exc:  # the list changed size under us (another thread)
            raise Unobservable from exc
        return None

    return run
