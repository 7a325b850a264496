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
from typing import TYPE_CHECKING, Any, Final

from shadowguard._faults import internal_error
from shadowguard._paths import MISSING, Unobservable
from shadowguard._shapes import type_name
from shadowguard._typecheck import WHOLE, item_at
from shadowguard._typecheck import _rng as _items_rng

if TYPE_CHECKING:
    from shadowguard._assumptions import Shapes

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
        fetch = _fetch(position, name, keyword_ok, "_M")
        checks = [  # the same value: fetched once
            (None if default is MISSING else source.bind("m", default), check, on)
            for *_, default, check, on in by_name.pop(name, ())
        ]
        first = source.inline(checks[0][2]) if checks else None
        if first is not None and _implies(first[1], outer, deep, assumption):
            # What the first data check accepts inline passes the annotation too: such a value
            # skips the type check (and the findings keep their order).
            source.emit(0, f"v = {fetch}")
            source.accept(first[0])
            source.depth += 1
            source.typed("v", outer, deep, assumption)
            source.data(checks[0][0], checks[0][1], checks[0][2], None)
            source.depth -= 1
        else:
            source.typed(fetch, outer, deep, assumption)
            if checks:
                source.data(*checks[0], None if first is None else first[0])
        for bound, check, on in checks[1:]:
            source.data(bound, check, on, source.inline_lines(on))
    for specs_of_one in by_name.values():
        for position, name, keyword_ok, default, check, assumption in specs_of_one:
            default_name = source.bind("m", default)
            source.emit(0, f"v = {_fetch(position, name, keyword_ok, default_name)}")
            source.data(None, check, assumption, source.inline_lines(assumption))
    return source.compile()


def _implies(shapes: Shapes | None, outer: tuple[type, ...], deep: Any, assumption: Any) -> bool:
    """Whether every value of the exact ``shapes`` passes the annotation check ``outer`` (an
    ``isinstance`` tuple) and ``deep`` (only a list's or tuple's items, ``isinstance`` each)."""
    if not shapes:
        return False
    items = getattr(getattr(assumption, "type_check", None), "items", None)
    try:
        for kind, members in shapes.items():
            if not issubclass(kind, outer):
                return False
            if deep is None:
                continue
            if items is None or members is None or not (kind is list or kind is tuple):
                return False
            if not all(issubclass(member, items) for member in members):
                return False
    except Exception:  # an odd class in the annotation: no promise
        return False
    return True


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
        source.data(None, check, assumption, source.inline_lines(assumption))
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
        self.depth = 0
        """Levels of indentation below the ``try`` that :meth:`emit` adds to its own."""

    def bind(self, prefix: str, value: object) -> str:
        """A fresh global name of the checker for ``value``."""
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def emit(self, depth: int, *texts: str) -> None:
        indent = "    " * (depth + 2 + self.depth)
        self.lines.extend(indent + text for text in texts)

    def found(self, depth: int, assumption: str, observed: str) -> None:
        self.emit(depth, "f = f or []", f"f.append(({assumption}, {observed}))")

    def typed(self, fetch: str, outer: tuple[type, ...], deep: Any, assumption: Any) -> None:
        """``isinstance`` of one value, then its deep check (list and tuple items inline)."""
        emit = self.emit
        t = self.bind("t", outer[0] if len(outer) == 1 else outer)
        a = self.bind("a", assumption)
        if fetch != "v":
            emit(0, f"v = {fetch}")
        emit(0, "if v is not _M:")
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
        self,
        default: str | None,
        check: Callable[[object], str | None],
        assumption: Any,
        accept: list[str] | None,
    ) -> None:
        """One check of the value ``v`` (its :class:`Unobservable` means: nothing to say);
        ``default``: the name of the value ``v`` stands for when it is ``MISSING``; ``accept``:
        lines deciding the commonest values inline (see :meth:`inline`)."""
        emit = self.emit
        c = self.bind("c", check)
        b = self.bind("b", assumption)
        if default is not None:
            emit(0, "if v is _M:", f"    v = {default}")
        depth = 0
        if accept:
            self.accept(accept)
            depth = 1
        emit(depth, "try:")
        emit(depth + 1, f"o = {c}(v)")
        emit(depth, "except _Unobservable:")
        emit(depth + 1, "o = None")
        emit(depth, "if o is not None:")
        self.found(depth + 1, b, "o")

    def accept(self, lines: list[str]) -> None:
        """Lines setting ``ok``, then the test opening what runs when it is false (one level
        deeper): the commonest values decided inline."""
        if len(lines) == 1 and lines[0].startswith("ok = "):
            self.emit(0, f"if not ({lines[0][5:]}):")
        else:
            self.emit(0, *lines)
            self.emit(0, "if not ok:")

    def inline_lines(self, assumption: Any) -> list[str] | None:
        """:meth:`inline`'s lines alone."""
        found = self.inline(assumption)
        return None if found is None else found[0]

    def inline(self, assumption: Any) -> tuple[list[str], Shapes | None] | None:
        """``assumption.accepts()`` with its names bound to fresh globals of the checker, and
        what ``accepted_types()`` promises of them."""
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
            if not lines:
                return None
            promised = getattr(assumption, "accepted_types", None)
            shapes = promised() if promised is not None else None
            return lines, dict(shapes) if shapes else None
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
