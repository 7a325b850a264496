"""Guarded functions whose annotations are strings (PEP 563), used by ``test_typecheck``.

Covers the annotation matrix: forward references, a class defined after the function, a name
imported only for type checkers, and a class local to a function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from shadowguard import guarded

if TYPE_CHECKING:
    from decimal import Decimal


@guarded
def row_id(row: LaterRow) -> int:
    """``LaterRow`` is defined below: resolved on the first call, not at decoration."""
    return row["id"]  # type: ignore[no-any-return]


class LaterRow(TypedDict):
    """A row type defined after the function that uses it."""

    id: int
    name: str | None


@guarded
def keep(amount: Decimal, count: int) -> int:
    """``Decimal`` exists only for type checkers: that annotation is skipped, ``count`` is not."""
    return count


@guarded
def names(users: list[User]) -> list[str]:
    """A forward reference inside a generic."""
    return [getattr(user, "name", user) for user in users]


class User:
    """A plain class referenced before its definition."""

    def __init__(self, name: str) -> None:
        self.name = name


@guarded
def optional_count(items: list[int] | None = None) -> int:
    """PEP 604 unions in string form."""
    return len(items or [])


def local_class_guard() -> tuple[Any, type]:
    """A guarded function annotated with a class local to this function (unresolvable)."""

    class Local:
        pass

    @guarded(name="future.local")
    def use(value: Local, count: int) -> int:
        return count

    return use, Local
