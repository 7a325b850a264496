"""``shadowguard.testing``: helpers for users' own tests."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shadowguard import Violation, _faults, assume, configure, guarded
from shadowguard._config import settings
from shadowguard.testing import (
    InternalError,
    capture_violations,
    configured,
    strict_internal_errors,
)


@guarded(assume.present("users[*].last_login"), name="testing.active")
def active(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The docstring example of ``shadowguard.testing``."""
    return [u for u in users if u.get("last_login")]


def test_capture_violations_collects_what_the_block_reports() -> None:
    """Violations reported inside the block are collected as ``Violation`` objects."""
    with capture_violations() as violations:
        active([{"last_login": "x"}, {}])
    assert [v.observed for v in violations] == ["missing at users[1].last_login"]
    assert all(isinstance(v, Violation) for v in violations)


def test_capture_violations_only_sees_its_block() -> None:
    """Before and after the block nothing is collected."""
    active([{}])
    with capture_violations() as violations:
        pass
    active([{}])
    assert violations == []


def test_capture_violations_is_not_rate_limited() -> None:
    """Unlike logs, every violation is captured."""
    with capture_violations() as violations:
        for _ in range(100):
            active([{}])
    assert len(violations) == 100


def test_capture_violations_sees_other_threads() -> None:
    """Violations from any thread are captured."""
    with capture_violations() as violations:
        thread = threading.Thread(target=active, args=([{}],))
        thread.start()
        thread.join(10)
    assert len(violations) == 1


def test_nested_captures_both_collect() -> None:
    """Nested blocks each collect what happens inside them."""
    with capture_violations() as outer:
        active([{}])
        with capture_violations() as inner:
            active([{}])
    assert (len(outer), len(inner)) == (2, 1)


def test_capture_violations_stops_after_an_exception() -> None:
    """The listener is removed even when the block raises."""
    with pytest.raises(RuntimeError), capture_violations() as violations:
        raise RuntimeError("boom")
    active([{}])
    assert violations == []


def test_capture_violations_in_enforce_mode() -> None:
    """Enforce-mode violations are captured before they are raised."""
    configure(mode="enforce")
    with capture_violations() as violations, pytest.raises(AssertionError):
        active([{}])
    assert [v.mode for v in violations] == ["enforce"]


def test_strict_internal_errors_records_faults_and_restores_the_hook() -> None:
    """Inside the block faults are recorded instead of logged; the previous hook comes back."""
    before = _faults.set_strict_hook(None)
    _faults.set_strict_hook(before)
    error = RuntimeError("x")
    with strict_internal_errors() as faults:
        _faults.internal_error("test.site", error)
    assert faults == [("test.site", error)]
    after = _faults.set_strict_hook(None)
    _faults.set_strict_hook(after)
    assert after is before


@pytest.mark.internal_errors
def test_strict_internal_errors_sees_a_crashing_check() -> None:
    """A crashing check shows up in the strict record with its site."""

    @guarded(assume.that(lambda x: 1 / x, "inverse"), name="testing.crash")
    def f(x: int) -> int:
        return x

    with strict_internal_errors() as faults:
        assert f(0) == 0
    assert len(faults) == 1
    site, exc = faults[0]
    assert "testing.crash" in site
    assert isinstance(exc, ZeroDivisionError)


def test_internal_error_class_is_an_assertion_error() -> None:
    """``InternalError`` fails a test like an assertion."""
    assert issubclass(InternalError, AssertionError)


def test_configured_applies_then_restores() -> None:
    """``configured(...)`` changes settings for the block and puts them back after."""
    assert settings.sample_rate == 1.0
    with configured(sample_rate=0.25, mode="enforce"):
        assert settings.sample_rate == 0.25
        assert settings.mode == "enforce"
    assert settings.sample_rate == 1.0
    assert settings.mode == "observe"


def test_configured_restores_after_an_exception() -> None:
    """Settings come back even when the block raises."""
    with pytest.raises(RuntimeError), configured(mode="off"):
        raise RuntimeError("boom")
    assert settings.mode == "observe"


def test_configured_rejects_bad_values() -> None:
    """Bad settings raise ``ValueError`` before the block runs."""
    with pytest.raises(ValueError), configured(mode="sometimes"):
        raise AssertionError("the block must not run")
    assert settings.mode == "observe"


def test_configured_drives_existing_guards() -> None:
    """Guards follow ``configured`` inside the block and the old mode after it."""
    with configured(mode="enforce"), pytest.raises(AssertionError):
        active([{}])
    with capture_violations() as violations:
        active([{}])
    assert [v.mode for v in violations] == ["observe"]
