"""Per-call cost of a guard against the tools it replaces (targets 1 to 4 of issue 5).

``make bench`` runs these with pytest-benchmark; compare within a group (``--benchmark-group-by``
is ``group`` by default). ``make test`` runs each once with ``--benchmark-disable``, only to
check that they still work. No assertion here is about time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _workloads import ROWS, SIGNATURE_ARGS, rows_variants, signature_variants, sized_variants

pytestmark = pytest.mark.bench

SIGNATURE = signature_variants()
ROWS_VARIANTS = rows_variants()
SIZED = sized_variants()
OPTIONAL = {
    "beartype": "beartype",
    "typeguard @typechecked": "typeguard",
    "pydantic validate_call": "pydantic",
    "deal @pre": "deal",
    "deal @pre (one)": "deal",
    "icontract @require (one)": "icontract",
}


def _variant(variants: dict[str, Any], name: str) -> Any:
    """The variant, skipping the test when its comparison tool is not installed."""
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    func = variants[name]
    assert func is not None
    return func


@pytest.mark.benchmark(group="1 mode=off")
@pytest.mark.parametrize(
    "name",
    ["plain call", "functools.wraps closure", "wrapt pass-through", "shadowguard mode='off'"],
)
def test_off(benchmark: Any, name: str) -> None:
    """A guard in mode=off against an undecorated call and the usual wrappers."""
    func = _variant(SIGNATURE, name)
    assert benchmark(func, *SIGNATURE_ARGS) == 1


def test_off_from_the_environment_is_the_function_itself() -> None:
    """With SHADOWGUARD_MODE=off at import the decorator returns the function: nothing to time."""
    here = str(Path(__file__).resolve().parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r});"
        "from _workloads import environment_off_probe; print(environment_off_probe())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**_environ(), "SHADOWGUARD_MODE": "off"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "'identical': True" in done.stdout


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SHADOWGUARD_")}


@pytest.mark.benchmark(group="2 types only")
@pytest.mark.parametrize(
    "name",
    [
        "plain call",
        "shadowguard observe (types)",
        "beartype",
        "typeguard @typechecked",
        "pydantic validate_call",
        "deal @pre",
    ],
)
def test_types(benchmark: Any, name: str) -> None:
    """``f(a: int, b: str, items: list[int]) -> int`` checked by each tool, no violation."""
    func = _variant(SIGNATURE, name)
    assert benchmark(func, *SIGNATURE_ARGS) == 1


@pytest.mark.benchmark(group="3 data assumptions")
@pytest.mark.parametrize(
    "name",
    [
        "plain call",
        "shadowguard present+size+ordered+latency",
        "icontract @require (one)",
        "deal @pre (one)",
    ],
)
def test_data(benchmark: Any, name: str) -> None:
    """Three data assumptions over 10 rows and a latency budget, against one precondition."""
    func = _variant(ROWS_VARIANTS, name)
    assert benchmark(func, ROWS, 5) == 5


@pytest.mark.benchmark(group="4 container size")
@pytest.mark.parametrize("size", [10, 1_000, 100_000])
@pytest.mark.parametrize(
    "name", ["shadowguard", "beartype", "typeguard @typechecked", "pydantic validate_call"]
)
def test_sizes(benchmark: Any, name: str, size: int) -> None:
    """``list[int]`` of growing size: sampled items keep shadowguard's cost flat."""
    func = _variant(SIZED, name)
    items = list(range(size))
    benchmark.extra_info["items"] = size
    assert benchmark(func, items) == 0
