"""Generated per-call checkers: the checks made before a call, as straight-line code.

For the common guard (annotated parameters and path assumptions on them, nothing that needs
the whole call) the checks are compiled into one small function per guard, like beartype's
generated wrappers: each argument is fetched inline from ``(args, kwargs)`` and handed to its
``isinstance`` test and to each path check directly, with no ``Call`` object in between. It
returns every finding at once, so nothing is checked twice (a sampled check may not repeat).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from shadowguard._faults import internal_error
from shadowguard._paths import MISSING, Unobservable
from shadowguard._shapes import type_name
from shadowguard._typecheck import WHOLE, item_at
from shadowguard._typecheck import _rng as _items_rng

__all__ = [
    "UNDECIDED",
    "ArgSpec",
    "DataSpec",
    "Findings",
    "ResultChecker",
    "build_checker",
    "build_result_checker",
]

_BUILTIN_NAMES: Final[dict[type, str]] = {
    cls: type_name(cls())
    for cls in (int, float, complex, str, bytes, bytearray, bool, list, tuple, dict, set)
}
_BUILTIN_NAMES[type(None)] = "None"
"""What :func:`type_name` says of the commonest wrong types, read without calling it."""

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
    source = _Source("args, kwargs")
    source.lines.append("        n = len(args)")
    by_name: dict[str, list[DataSpec]] = {}
    for spec in data:
        by_name.setdefault(spec[1], []).append(spec)
    for position, name, keyword_ok, outer, deep, assumption in specs:
        source.typed(_fetch(position, name, keyword_ok, "_M"), outer, deep, assumption)
        for *_, default, check, on in by_name.pop(name, ()):  # the same value: fetched once
            source.data(None if default is MISSING else source.bind("m", default), check, on)
    for specs_of_one in by_name.values():
        for position, name, keyword_ok, default, check, assumption in specs_of_one:
            default_name = source.bind("m", default)
            source.emit(0, f"v = {_fetch(position, name, keyword_ok, default_name)}")
            source.data(None, check, assumption)
    return source.compile()


ResultChecker = Callable[[Any], "Findings | None"]


def build_result_checker(
    returns: tuple[Any, Any] | None, data: Sequence[tuple[Callable[[object], str | None], Any]]
) -> ResultChecker | None:
    """The return value's checks as one function ``(result)``, like :func:`build_checker`:
    ``returns`` is ``(type check, assumption)`` of the return annotation, ``data`` the
    ``(check of the value, assumption)`` of each check that reads only the return value.
    ``None`` when there is nothing to check."""
    if returns is None and not data:
        return None
    source = _Source("r")
    if returns is not None:
        check, assumption = returns
        outer, deep = check.outer, check.deep
        source.typed("r", outer, deep, assumption)
    else:
        source.emit(0, "v = r")
    for check, assumption in data:  # (``typed`` leaves ``v`` as it found it: the result)
        source.data(None, check, assumption)
    return source.compile()


class _Source:
    """The source of one generated checker, and the names it refers to."""

    def __init__(self, parameters: str) -> None:
        self.namespace: dict[str, Any] = {
            "_M": MISSING,
            "_U": UNDECIDED,
            "_Unobservable": Unobservable,
            "_name": type_name,
            "_names": _BUILTIN_NAMES,
            "_at": item_at,
            "_r": _items_rng.random,
        }
        self.lines = [f"def check({parameters}):", "    f = None", "    try:"]

    def bind(self, prefix: str, value: object) -> str:
        """A fresh global name of the checker for ``value``."""
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def emit(self, depth: int, *texts: str) -> None:
        self.lines.extend("    " * (depth + 2) + text for text in texts)

    def found(self, depth: int, assumption: str, observed: str) -> None:
        self.emit(depth, "f = f or []", f"f.append(({assumption}, {observed}))")

    def typed(self, fetch: str, outer: tuple[type, ...], deep: Any, assumption: Any) -> None:
        """``isinstance`` of one value, then its deep check (list and tuple items inline)."""
        emit = self.emit
        t = self.bind("t", outer[0] if len(outer) == 1 else outer)
        a = self.bind("a", assumption)
        emit(0, f"v = {fetch}", "if v is not _M:")
        emit(1, f"if not isinstance(v, {t}):")
        self.found(2, a, "_names.get(type(v)) or _name(v)")
        if deep is None:
            return
        d = self.bind("d", deep)
        emit(1, "else:")
        items = getattr(getattr(assumption, "type_check", None), "items", None)
        if items is None:
            emit(2, f"o = {d}(v)")
        else:  # items of a list or tuple inline: all of a small one, else ends and one random
            i = self.bind("i", items[0] if len(items) == 1 else items)
            emit(2, "if type(v) is list or type(v) is tuple:")
            emit(3, "k = len(v)", "o = None", f"if k <= {WHOLE}:")
            emit(4, "for e in v:")
            emit(5, f"if not isinstance(e, {i}):")
            emit(6, f"o = {d}(v)  # the first that fails, and what it is", "break")
            emit(3, "else:  # as the deep check samples, unrolled: first, last, one random")
            emit(4, "e = v[0]", f"if not isinstance(e, {i}):")
            emit(5, "o = _at(e, 0)")
            emit(4, "else:")
            emit(5, "j = k - 1", "e = v[j]", f"if not isinstance(e, {i}):")
            emit(6, "o = _at(e, j)")
            emit(5, "else:")
            emit(6, "j = int(_r() * k)", "e = v[j]", f"if not isinstance(e, {i}):")
            emit(7, "o = _at(e, j)")
            emit(2, "else:")
            emit(3, f"o = {d}(v)")
        emit(2, "if o is not None:")
        self.found(3, a, "o")

    def data(
        self, default: str | None, check: Callable[[object], str | None], assumption: Any
    ) -> None:
        """One check of the value ``v`` (its :class:`Unobservable` means: nothing to say);
        ``default``: the name of the value ``v`` stands for when it is ``MISSING``."""
        emit = self.emit
        c = self.bind("c", check)
        b = self.bind("b", assumption)
        if default is not None:
            emit(0, "if v is _M:", f"    v = {default}")
        accept = self.inline(assumption)
        depth = 0
        if accept and len(accept) == 1 and accept[0].startswith("ok = "):
            emit(0, f"if not ({accept[0][5:]}):")  # the commonest values decided inline
            depth = 1
        elif accept:
            emit(0, *accept)
            emit(0, "if not ok:")
            depth = 1
        emit(depth, "try:")
        emit(depth + 1, f"o = {c}(v)")
        emit(depth, "except _Unobservable:")
        emit(depth + 1, "o = None")
        emit(depth, "if o is not None:")
        self.found(depth + 1, b, "o")

    def inline(self, assumption: Any) -> list[str] | None:
        """``assumption.accepts()`` with its names bound to fresh globals of the checker."""
        accepts = getattr(assumption, "accepts", None)  # (any object carries a finding)
        if accepts is None:
            return None
        try:
            found = accepts()
            if found is None:
                return None
            lines, names = found
            lines = list(lines)
            for name, value in names.items():
                fresh = self.bind("n", value)
                lines = [re.sub(rf"\b{re.escape(name)}\b", fresh, line) for line in lines]
            compile("\n".join(lines), "<shadowguard inline>", "exec")  # one bad line: none
            return lines
        except Exception as exc:
            internal_error("guard.fastpath", exc)
            return None

    def compile(self) -> Callable[..., Any]:
        self.lines += ["    except Exception:", "        return _U", "    return f"]
        source = "\n".join(self.lines)
        exec(compile(source, "<shadowguard checker>", "exec"), self.namespace)
        checker: Callable[..., Any] = self.namespace["check"]
        checker.__doc__ = source  # what the guard runs, for a curious reader (and debugging)
        return checker
