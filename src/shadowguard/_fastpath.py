"""Generated per-call checkers: the checks made before a call, as straight-line code.

For the common guard (annotated parameters and path assumptions on them, nothing that needs
the whole call) the checks are compiled into one small function per guard, like beartype's
generated wrappers: each argument is fetched inline from ``(args, kwargs)`` and handed to its
``isinstance`` test and to each path check directly, with no ``Call`` object in between. It
returns every finding at once, so nothing is checked twice (a sampled check may not repeat).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from shadowguard._paths import MISSING, Unobservable
from shadowguard._shapes import type_name
from shadowguard._typecheck import WHOLE, item_at
from shadowguard._typecheck import _rng as _items_rng

__all__ = ["UNDECIDED", "ArgSpec", "DataSpec", "Findings", "build_checker"]

ArgSpec = tuple[int, str, bool, tuple[type, ...], Any, Any]
"""(position or -1, name, may be passed by keyword, isinstance tuple, deep check, assumption)"""

DataSpec = tuple[int, str, bool, object, Callable[[object], "str | None"], Any]
"""(position or -1, name, may be passed by keyword, default or ``MISSING``, check of the value
(may raise :class:`~shadowguard._paths.Unobservable`), assumption)"""

Findings = Sequence[tuple[Any, str]]
"""(assumption, observed) of every check that failed."""

UNDECIDED: Final[Findings] = ()
"""No findings at all: a check raised, so the general path runs every check again, under its
fault handling."""

Checker = Callable[[tuple[Any, ...], dict[str, Any]], "Findings | None"]


def _always(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Findings | None:
    return None


def _fetch(position: int, name: str, keyword_ok: bool, default: str) -> str:
    """The expression of one argument's value (``default`` when it was not passed)."""
    fallback = f"kwargs.get({name!r}, {default})" if keyword_ok else default
    if position >= 0:
        return f"args[{position}] if n > {position} else {fallback}"
    return fallback


def build_checker(specs: Sequence[ArgSpec], data: Sequence[DataSpec] = ()) -> Checker:
    """A function ``(args, kwargs)``: ``None`` when every check passes, else the findings
    (:data:`UNDECIDED` when a check raised)."""
    if not specs and not data:
        return _always
    namespace: dict[str, Any] = {
        "_M": MISSING,
        "_U": UNDECIDED,
        "_Unobservable": Unobservable,
        "_name": type_name,
        "_at": item_at,
        "_r": _items_rng.random,
    }
    lines = ["def check(args, kwargs):", "    f = None", "    try:", "        n = len(args)"]

    def emit(depth: int, *texts: str) -> None:
        lines.extend("    " * (depth + 2) + text for text in texts)

    def found(depth: int, assumption: str, observed: str) -> None:
        emit(depth, "f = f or []", f"f.append(({assumption}, {observed}))")

    for i, (position, name, keyword_ok, outer, deep, assumption) in enumerate(specs):
        namespace[f"t{i}"] = outer[0] if len(outer) == 1 else outer
        namespace[f"a{i}"] = assumption
        emit(0, f"v = {_fetch(position, name, keyword_ok, '_M')}", "if v is not _M:")
        emit(1, f"if not isinstance(v, t{i}):")
        found(2, f"a{i}", "_name(v)")
        if deep is None:
            continue
        namespace[f"d{i}"] = deep
        emit(1, "else:")
        items = getattr(getattr(assumption, "type_check", None), "items", None)
        if items is None:
            emit(2, f"o = d{i}(v)")
        else:  # items of a list or tuple inline: all of a small one, else ends and one random
            namespace[f"i{i}"] = items[0] if len(items) == 1 else items
            emit(2, "if type(v) is list or type(v) is tuple:")
            emit(3, "k = len(v)", "o = None", f"if k <= {WHOLE}:")
            emit(4, "for e in v:")
            emit(5, f"if not isinstance(e, i{i}):")
            emit(6, f"o = d{i}(v)  # the first that fails, and what it is", "break")
            emit(3, "else:  # as the deep check samples, unrolled: first, last, one random")
            emit(4, "e = v[0]", f"if not isinstance(e, i{i}):")
            emit(5, "o = _at(e, 0)")
            emit(4, "else:")
            emit(5, "j = k - 1", "e = v[j]", f"if not isinstance(e, i{i}):")
            emit(6, "o = _at(e, j)")
            emit(5, "else:")
            emit(6, "j = int(_r() * k)", "e = v[j]", f"if not isinstance(e, i{i}):")
            emit(7, "o = _at(e, j)")
            emit(2, "else:")
            emit(3, f"o = d{i}(v)")
        emit(2, "if o is not None:")
        found(3, f"a{i}", "o")
    for i, (position, name, keyword_ok, default, check, assumption) in enumerate(data):
        namespace[f"c{i}"] = check
        namespace[f"b{i}"] = assumption
        namespace[f"m{i}"] = default
        emit(0, f"v = {_fetch(position, name, keyword_ok, f'm{i}')}", "try:")
        emit(1, f"o = c{i}(v)")
        emit(0, "except _Unobservable:")
        emit(1, "o = None")
        emit(0, "if o is not None:")
        found(1, f"b{i}", "o")
    lines += ["    except Exception:", "        return _U", "    return f"]
    source = "\n".join(lines)
    exec(compile(source, "<shadowguard checker>", "exec"), namespace)
    checker: Checker = namespace["check"]
    checker.__doc__ = source  # what the guard runs, for a curious reader (and debugging)
    return checker
