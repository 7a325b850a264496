"""Generated argument checkers: the per-call type check as straight-line code.

For the common guard (annotated parameters, nothing else to do before the call) the checks are
compiled into one small function per guard, so a call costs a few inlined ``isinstance`` calls,
like beartype's generated wrappers. It only *decides*; when it says no, the general path runs
again to describe what was observed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shadowguard._paths import MISSING

__all__ = ["ArgSpec", "Failure", "build_checker"]

ArgSpec = tuple[int, str, bool, tuple[type, ...], Any, Any]
"""(position or -1, name, may be passed by keyword, isinstance tuple, deep check, assumption)"""

Failure = tuple[int, "str | None"]
"""Which spec failed first and, when its deep check decided, what that check observed."""
Checker = Callable[[tuple[Any, ...], dict[str, Any]], "Failure | None"]
_FAILED: Failure = (-1, None)


def _always(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Failure | None:
    return None


def build_checker(specs: Sequence[ArgSpec]) -> Checker:
    """A function ``(args, kwargs)``: ``None`` when every annotated argument passes, else the
    first failure. A sampled deep check may not fail twice, so its observation is returned."""
    if not specs:
        return _always
    namespace: dict[str, Any] = {"_M": MISSING, "_F": _FAILED}
    lines = ["def check(args, kwargs):", "    try:", "        n = len(args)"]
    for i, (position, name, keyword_ok, outer, deep, _assumption) in enumerate(specs):
        namespace[f"t{i}"] = outer[0] if len(outer) == 1 else outer
        fallback = f"kwargs.get({name!r}, _M)" if keyword_ok else "_M"
        if position >= 0:
            lines.append(f"        v = args[{position}] if n > {position} else {fallback}")
        else:
            lines.append(f"        v = {fallback}")
        if deep is None:
            lines.append(f"        if v is not _M and not isinstance(v, t{i}):")
            lines.append(f"            return ({i}, None)")
            continue
        namespace[f"d{i}"] = deep
        lines.append("        if v is not _M:")
        lines.append(f"            if not isinstance(v, t{i}):")
        lines.append(f"                return ({i}, None)")
        lines.append(f"            o = d{i}(v)")
        lines.append("            if o is not None:")
        lines.append(f"                return ({i}, o)")
    lines += ["    except Exception:", "        return _F", "    return None"]
    exec(compile("\n".join(lines), "<shadowguard checker>", "exec"), namespace)
    checker: Checker = namespace["check"]
    return checker
