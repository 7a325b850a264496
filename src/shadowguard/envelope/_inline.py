"""Source for the guard's generated checker: the commonest values decided inline.

Watching (``accept_plan``) and recording (``known_plan``) both describe, per exact builtin
type, when a value needs no closure call: nothing found, or nothing to learn. This module spells
those conditions as the lines the checker runs (an ``ok`` flag, or one expression).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from shadowguard._assumptions import Shapes

__all__ = ["Branches", "render", "shapes", "signs_condition"]

Branches = Mapping[str, "str | list[str]"]
"""Per exact type name (``int``, ``list``...): a condition on ``v``, or lines setting ``ok``."""

_TYPES: Mapping[str, type] = {"int": int, "float": float, "str": str, "list": list, "tuple": tuple}


def signs_condition(signs: Collection[str], x: str) -> str:
    """The condition on number ``x`` that its sign is among ``signs`` (empty: none is)."""
    return " or ".join(
        f"{x} {test}"
        for name, test in (("positive", "> 0"), ("negative", "< 0"), ("zero", "== 0"))
        if name in signs
    )


def render(branches: Branches, none_ok: bool) -> list[str] | None:
    """Lines over ``v`` that set ``ok`` by the branch of ``type(v)`` (``None`` is ok when
    ``none_ok``): one expression when every branch is one. ``None`` when nothing is ever ok."""
    if not branches and not none_ok:
        return None
    if all(isinstance(body, str) for body in branches.values()):
        tests = [
            f"type(v) is {name}" if body == "True" else f"(type(v) is {name} and ({body}))"
            for name, body in branches.items()
        ]
        return ["ok = " + " or ".join([*tests, *(["v is None"] if none_ok else [])])]
    lines = ["ok = False", "c = type(v)"]
    keyword = "if"
    for name, body in branches.items():
        lines.append(f"{keyword} c is {name}:")
        lines += ["    " + line for line in ([f"ok = {body}"] if isinstance(body, str) else body)]
        keyword = "elif"
    if none_ok:
        lines += [f"{keyword} v is None:", "    ok = True"]
    return lines


def shapes(branches: Iterable[str], members: Iterable[str] | None, none_ok: bool) -> Shapes:
    """The :data:`Shapes` of lines rendered from ``branches`` (names of exact types) whose list
    and tuple branches accept members of the exact types named by ``members`` only (``None``:
    members of any type)."""
    found: dict[type, tuple[type, ...] | None] = {}
    kinds = None if members is None else tuple(_TYPES[name] for name in members)
    for name in branches:
        kind = _TYPES[name]
        found[kind] = kinds if kind is list or kind is tuple else ()
    if none_ok:
        found[type(None)] = ()
    return found
