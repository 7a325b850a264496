"""Typing examples: mypy --strict must accept every documented use of the public API.

Like structlog's ``tests/typing``, this file is checked, not run: ``assert_type`` pins that
``@guarded`` keeps each signature for type checkers (``ParamSpec`` through the overloads).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypedDict

from typing_extensions import assert_type

import shadowguard
from shadowguard import AssumptionViolation, Mode, Violation, assume, configure, guarded
from shadowguard.assume import Assumption, Call
from shadowguard.testing import capture_violations, configured


class UserRow(TypedDict):
    id: int
    last_login: str | None


@guarded
def bare(users: list[UserRow], limit: int = 10) -> list[UserRow]:
    return users[:limit]


@guarded(
    assume.present("users[*].last_login"),
    assume.size("users", max=10_000),
    assume.latency(ms=250),
    assume.that(lambda users, result: len(result) <= len(users), "filter never grows"),
    name="users.active",
    types=True,
    mode="observe",
    sample_rate=0.5,
)
def called(users: list[UserRow]) -> list[UserRow]:
    return users


@guarded(mode=Mode.ENFORCE)
async def coroutine(x: int) -> str:
    return str(x)


@guarded
def generator(n: int) -> Iterator[int]:
    yield from range(n)


@guarded(assume.raises_only(KeyError))
async def async_generator(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class Service:
    @guarded
    def method(self, x: int) -> int:
        return x

    @classmethod
    @guarded
    def build(cls, x: int) -> Service:
        return cls()

    @staticmethod
    @guarded
    def helper(x: int) -> int:
        return x

    @guarded
    @classmethod
    def build_outer(cls, x: int) -> Service:
        return cls()

    @guarded
    @staticmethod
    def helper_outer(x: int) -> int:
        return x

    # mypy does not let decorators sit on top of @property: put @guarded beneath it.
    @property
    @guarded
    def value(self) -> int:
        return 1

    @functools.cached_property
    @guarded
    def cached(self) -> int:
        return 2


class EvenLength(Assumption):
    kind = "parity"

    def __init__(self) -> None:
        super().__init__("even_length(items)", "even length", path="items")

    def check(self, call: Call) -> str | None:
        items = call.argument("items")
        return None if len(items) % 2 == 0 else f"len={len(items)}"


@guarded(EvenLength())
def custom(items: list[int]) -> int:
    return len(items)


def use() -> None:
    rows: list[UserRow] = [{"id": 1, "last_login": None}]
    assert_type(bare(rows), list[UserRow])
    assert_type(bare(rows, limit=1), list[UserRow])
    assert_type(called(rows), list[UserRow])
    pending = assert_type(coroutine(1), Coroutine[Any, Any, str])
    pending.close()
    assert_type(generator(3), Iterator[int])
    assert_type(async_generator(3), AsyncIterator[int])
    assert_type(Service().method(1), int)
    assert_type(Service.build(1), Service)
    assert_type(Service.helper(1), int)
    assert_type(Service().value, int)
    assert_type(Service().cached, int)
    assert_type(custom([1, 2]), int)
    # The signature survives decoration: mistakes are still type errors (and with
    # warn_unused_ignores an ignore that is not needed is an error too).
    bare("not rows")  # type: ignore[arg-type]
    Service.helper(x="1")  # type: ignore[arg-type]

    configure(mode="enforce", overrides={"payments.*": Mode.ENFORCE}, sample_rate=1.0)
    configure(overrides="legacy.*=off", capture_values=False, overhead_budget=None)
    with configured(mode="observe"), capture_violations() as violations:
        bare(rows)
    for violation in violations:
        assert_type(violation, Violation)
        assert_type(violation.observed, str)
        assert_type(violation.path, str | None)
    try:
        called(rows)
    except AssumptionViolation as error:
        assert_type(error.violations, list[Violation])
    assert_type(shadowguard.__version__, str)
