"""The package's public face is exactly the contract's API, listed in a sorted ``__all__``."""

from __future__ import annotations

import importlib
import types

import pytest

import shadowguard

PUBLIC_API = {
    "AssumptionViolation",
    "Mode",
    "Violation",
    "__version__",
    "assume",
    "configure",
    "guarded",
}

PUBLIC_MODULES = [
    "shadowguard.assume",
    "shadowguard.testing",
    "shadowguard.asgi",
    "shadowguard.wsgi",
]


def test_all_is_exactly_the_public_api() -> None:
    """``shadowguard.__all__`` names the contract's API, nothing more, nothing less."""
    assert set(shadowguard.__all__) == PUBLIC_API
    assert len(shadowguard.__all__) == len(PUBLIC_API)


def test_all_is_sorted() -> None:
    """``__all__`` is kept sorted."""
    assert shadowguard.__all__ == sorted(shadowguard.__all__)


def test_every_public_attribute_is_exported() -> None:
    """No public-looking name leaks out of the package besides ``__all__`` and submodules."""
    leaked = {
        name
        for name, value in vars(shadowguard).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert leaked <= set(shadowguard.__all__)


def test_every_exported_name_exists() -> None:
    """Each name in ``__all__`` resolves."""
    for name in shadowguard.__all__:
        assert getattr(shadowguard, name) is not None


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_modules_have_a_sorted_all_that_resolves(module_name: str) -> None:
    """Public submodules declare a sorted ``__all__`` whose names all exist."""
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert exported == sorted(exported)
    for name in exported:
        assert hasattr(module, name), name


def test_assume_offers_the_catalogue() -> None:
    """``shadowguard.assume`` has one constructor per documented kind and the base class."""
    assert {
        "Assumption",
        "latency",
        "max_concurrency",
        "monotonic",
        "not_none",
        "ordered",
        "present",
        "raises_only",
        "size",
        "that",
    } <= set(shadowguard.assume.__all__)


def test_testing_helpers() -> None:
    """``shadowguard.testing`` offers the capture helpers for users' own tests."""
    from shadowguard import testing

    assert {"capture_violations", "configured", "strict_internal_errors"} <= set(testing.__all__)


def test_version() -> None:
    """``__version__`` is the distribution's version."""
    from importlib.metadata import version

    assert shadowguard.__version__ == version("shadowguard")


def test_assumption_violation_is_an_assertion_error() -> None:
    """``AssumptionViolation`` subclasses ``AssertionError``; ``Mode`` is a ``str`` enum."""
    assert issubclass(shadowguard.AssumptionViolation, AssertionError)
    assert issubclass(shadowguard.Mode, str)


@pytest.mark.slow
def test_typing_example_passes_mypy_strict() -> None:
    """``tests/typing/api.py`` type-checks under ``mypy --strict`` (signatures survive)."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("mypy")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "tests/typing/api.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
