"""The functions every benchmark times, plain and wrapped by each tool, defined once.

Shared by the pytest-benchmark suites and the standalone scripts (``run_all.py``,
``plot_sizes.py``), so the published figures and ``make bench`` time the same code. The
comparison tools (beartype, typeguard, pydantic, icontract, deal) are optional: a variant whose
tool is not installed is ``None``.
"""

from __future__ import annotations

import functools
import importlib
import os
import random
import time
from collections.abc import Callable
from typing import Any

import wrapt

from shadowguard import assume, guarded

__all__ = [
    "ROWS",
    "SIGNATURE_ARGS",
    "busy",
    "optional",
    "rows_variants",
    "signature_variants",
    "sized_variants",
]


def optional(module: str) -> Any:
    """The module, or ``None`` when that comparison tool is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _passthrough(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return wrapped(*args, **kwargs)


def _closure(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


# -- target 1 and 2: f(a: int, b: str, items: list[int]) -> int -----------------------------

SIGNATURE_ARGS = (1, "x", [1, 2, 3])


def _signature_function() -> Callable[..., Any]:
    """A fresh function object each time, so that no two tools wrap the same one."""

    def f(a: int, b: str, items: list[int]) -> int:
        return a

    return f


def signature_variants() -> dict[str, Callable[..., Any] | None]:
    """``f(a: int, b: str, items: list[int]) -> int`` plain and under every tool (observe mode
    for shadowguard, types only, sample rate 1)."""
    beartype = optional("beartype")
    typeguard = optional("typeguard")
    pydantic = optional("pydantic")
    deal = optional("deal")
    variants: dict[str, Callable[..., Any] | None] = {
        "plain call": _signature_function(),
        "functools.wraps closure": _closure(_signature_function()),
        "wrapt pass-through": wrapt.FunctionWrapper(_signature_function(), _passthrough),
        "shadowguard observe (types)": guarded(name="bench.types")(_signature_function()),
        "shadowguard mode='off'": guarded(name="bench.off", mode="off")(_signature_function()),
        "beartype": beartype.beartype(_signature_function()) if beartype else None,
        "typeguard @typechecked": _typechecked(typeguard),
        "pydantic validate_call": (
            pydantic.validate_call(validate_return=True)(_signature_function())
            if pydantic
            else None
        ),
        "deal @pre": (
            deal.pre(lambda a, b, items: a >= 0)(_signature_function()) if deal else None
        ),
    }
    return variants


def _typechecked(typeguard: Any) -> Callable[..., Any] | None:
    """``@typechecked`` instruments the function's source, so it needs a module-level one."""
    if typeguard is None:
        return None
    return typeguard.typechecked(_module_signature_function)


def _module_signature_function(a: int, b: str, items: list[int]) -> int:
    return a


# -- target 3: three data assumptions over 10 rows and a latency budget ------------------------

ROWS = [{"id": i, "ts": 1_700_000_000 + i, "name": f"user{i}"} for i in range(10)]


def _rows_function() -> Callable[..., Any]:
    def handle(rows, limit):  # unannotated: only the three assumptions are checked
        return limit

    return handle


def rows_variants() -> dict[str, Callable[..., Any] | None]:
    """``handle(rows, limit)`` over 10 dict rows: shadowguard with ``present``, ``size``,
    ``ordered`` and a latency budget against icontract's and deal's single precondition."""
    icontract = optional("icontract")
    deal = optional("deal")
    guard = guarded(
        assume.present("rows[*].id"),
        assume.size("rows", max=1_000),
        assume.ordered("rows", key="ts"),
        assume.latency(ms=250),
        name="bench.rows",
    )
    return {
        "plain call": _rows_function(),
        "shadowguard present+size+ordered+latency": guard(_rows_function()),
        "icontract @require (one)": (
            icontract.require(lambda rows: len(rows) <= 1_000)(_rows_function())
            if icontract
            else None
        ),
        "deal @pre (one)": (
            deal.pre(lambda rows, limit: len(rows) <= 1_000)(_rows_function()) if deal else None
        ),
    }


# -- target 4: list[int] of any size -----------------------------------------------------------


def _sized_function() -> Callable[..., Any]:
    def total(items: list[int]) -> int:
        return 0

    return total


def _module_sized_function(items: list[int]) -> int:
    return 0


def sized_variants() -> dict[str, Callable[..., Any] | None]:
    """``total(items: list[int]) -> int`` under shadowguard and the type checkers."""
    beartype = optional("beartype")
    typeguard = optional("typeguard")
    pydantic = optional("pydantic")
    return {
        "shadowguard": guarded(name="bench.sized")(_sized_function()),
        "typeguard @typechecked": (
            typeguard.typechecked(_module_sized_function) if typeguard else None
        ),
        "beartype": beartype.beartype(_sized_function()) if beartype else None,
        "pydantic validate_call": (
            pydantic.validate_call(validate_return=True)(_sized_function()) if pydantic else None
        ),
    }


def with_bad_item(size: int, rng: random.Random) -> tuple[list[Any], int]:
    """A list of ``size`` ints with one ``str`` at a random position (and that position)."""
    items: list[Any] = list(range(size))
    position = rng.randrange(size)
    items[position] = "bad"
    return items, position


# -- target 7: an expensive check on a 50 µs function -----------------------------------------


def busy(microseconds: float) -> Callable[[], int]:
    """A pure-Python function that runs about ``microseconds`` on this machine (calibrated)."""
    loops = 1_000
    while True:
        started = time.process_time()
        for _ in range(20):
            _spin(loops)
        per_call = (time.process_time() - started) / 20 * 1e6
        if per_call >= 5:
            break
        loops *= 4
    loops = max(1, int(loops * microseconds / per_call))
    return functools.partial(_spin, loops)


def _spin(loops: int) -> int:
    total = 0
    for i in range(loops):
        total += i & 7
    return total


def environment_off_probe() -> dict[str, Any]:
    """Run in a child started with ``SHADOWGUARD_MODE=off``: is the decorator a no-op?"""
    assert os.environ.get("SHADOWGUARD_MODE") == "off"
    func = _signature_function()
    decorated = guarded(assume.size("items", max=10), name="bench.env_off")(func)
    return {"identical": decorated is func}
