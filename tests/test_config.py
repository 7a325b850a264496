"""Modes and configuration: precedence, run-time changes, validation, environment, sampling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import shadowguard
from shadowguard import AssumptionViolation, Mode, Violation, assume, configure, guarded
from shadowguard._config import resolve_mode, restore, settings, snapshot
from shadowguard.testing import capture_violations


def _not_none_guard(name: str, **options: Any) -> Any:
    @guarded(assume.not_none("x"), name=name, **options)
    def f(x: object) -> str:
        return "called"

    return f


def _outcome(func: Any) -> str:
    """``reported``, ``raised`` or ``silent`` for a call that breaks its assumption."""
    with capture_violations() as violations:
        try:
            result = func(None)
        except AssumptionViolation:
            return "raised"
    assert result == "called"
    return "reported" if violations else "silent"


# -- the Mode enum ------------------------------------------------------------------------------


def test_mode_is_a_str_enum() -> None:
    """``Mode`` members equal their strings and print as them."""
    assert Mode.OFF == "off"
    assert Mode.OBSERVE == "observe"
    assert Mode.ENFORCE == "enforce"
    assert str(Mode.ENFORCE) == "enforce"
    assert isinstance(Mode.OBSERVE, str)
    assert [m.value for m in Mode] == ["off", "observe", "enforce"]


# -- precedence ---------------------------------------------------------------------------------


def test_observe_is_the_default() -> None:
    """Out of the box a violation is reported and the call goes on."""
    assert _outcome(_not_none_guard("cfg.default")) == "reported"


def test_global_enforce_raises_an_assertion_error_with_violations() -> None:
    """Global ``enforce``: ``AssumptionViolation`` (an ``AssertionError``) lists the violations."""
    configure(mode="enforce")
    f = _not_none_guard("cfg.enforce")
    with capture_violations() as reported, pytest.raises(AssertionError) as info:
        f(None)
    error = info.value
    assert isinstance(error, AssumptionViolation)
    assert [v.observed for v in error.violations] == ["None"]
    assert all(isinstance(v, Violation) for v in error.violations)
    assert [v.mode for v in reported] == ["enforce"]
    assert "cfg.enforce" in str(error) and "not_none(x)" in str(error)


def test_enforce_before_the_call_does_not_run_the_function() -> None:
    """An argument already broken in enforce mode stops the call before the function runs."""
    ran: list[int] = []

    @guarded(assume.not_none("x"), name="cfg.before", mode="enforce")
    def f(x: object) -> None:
        ran.append(1)

    with pytest.raises(AssumptionViolation):
        f(None)
    assert ran == []


def test_enforce_after_the_call_discards_the_result_only_after_it_ran() -> None:
    """A broken return value in enforce mode raises after the function ran."""
    ran: list[int] = []

    @guarded(assume.not_none("return"), name="cfg.after", mode="enforce")
    def f() -> None:
        ran.append(1)

    with pytest.raises(AssumptionViolation) as info:
        f()
    assert ran == [1]
    assert info.value.__cause__ is None


def test_decorator_mode_beats_the_global_mode() -> None:
    """``mode=`` on the decorator wins over the global mode."""
    assert _outcome(_not_none_guard("cfg.dec.enforce", mode="enforce")) == "raised"
    configure(mode="enforce")
    assert _outcome(_not_none_guard("cfg.dec.observe", mode="observe")) == "reported"
    assert _outcome(_not_none_guard("cfg.dec.off", mode=Mode.OFF)) == "silent"


def test_overrides_beat_the_decorator_mode_and_first_match_wins() -> None:
    """The first matching override pattern decides, before the decorator's ``mode=``."""
    configure(overrides={"payments.*": "enforce", "payments.refund": "off", "*": "observe"})
    assert _outcome(_not_none_guard("payments.refund")) == "raised"
    assert _outcome(_not_none_guard("payments.charge", mode="off")) == "raised"
    assert _outcome(_not_none_guard("users.list", mode="enforce")) == "reported"


def test_overrides_in_env_string_form() -> None:
    """``pattern=mode,pattern=mode`` is accepted by ``configure`` as in the environment."""
    configure(overrides=" payments.*=enforce , legacy.*=OFF ,")
    assert settings.overrides == (("payments.*", Mode.ENFORCE), ("legacy.*", Mode.OFF))
    assert _outcome(_not_none_guard("payments.charge")) == "raised"
    assert _outcome(_not_none_guard("legacy.report")) == "silent"
    assert _outcome(_not_none_guard("other.thing")) == "reported"


def test_global_off_is_a_kill_switch_that_wins_over_everything() -> None:
    """Global ``off`` silences guards whatever their overrides and ``mode=``."""
    configure(mode="off", overrides={"*": "enforce"})
    assert _outcome(_not_none_guard("cfg.kill", mode="enforce")) == "silent"


def test_resolve_mode_order() -> None:
    """``resolve_mode``: off, then overrides, then the decorator, then the global mode."""
    configure(mode="observe", overrides="a.*=enforce")
    assert resolve_mode("a.b", Mode.OFF) is Mode.ENFORCE
    assert resolve_mode("b.c", Mode.OFF) is Mode.OFF
    assert resolve_mode("b.c", None) is Mode.OBSERVE
    configure(mode="off")
    assert resolve_mode("a.b", Mode.ENFORCE) is Mode.OFF


def test_configure_takes_effect_on_the_next_call_of_existing_guards() -> None:
    """Guards decorated before ``configure`` follow it on their next call."""
    f = _not_none_guard("cfg.live")
    assert _outcome(f) == "reported"
    configure(mode="enforce")
    assert _outcome(f) == "raised"
    configure(mode="off")
    assert _outcome(f) == "silent"
    configure(mode="observe", overrides={"cfg.live": "enforce"})
    assert _outcome(f) == "raised"
    configure(overrides=None)
    assert _outcome(f) == "reported"


def test_mode_strings_are_case_insensitive() -> None:
    """`` Enforce `` and ``Mode.ENFORCE`` are the same mode."""
    configure(mode=" Enforce ")
    assert settings.mode is Mode.ENFORCE
    configure(mode=Mode.OBSERVE)
    assert settings.mode is Mode.OBSERVE


@pytest.mark.parametrize(
    "settings_kwargs",
    [
        {"mode": "loud"},
        {"mode": 3},
        {"overrides": "payments"},
        {"overrides": "=enforce"},
        {"overrides": "a=sometimes"},
        {"overrides": {"": "enforce"}},
        {"overrides": {"a": "nope"}},
        {"overrides": ["a=enforce"]},
        {"sample_rate": 1.5},
        {"sample_rate": -0.1},
        {"sample_rate": float("nan")},
        {"sample_rate": "abc"},
        {"sample_rate": True},
        {"capture_values": "yes"},
        {"overhead_budget": 2},
        {"envelope": 42},
        {"record": ["x"]},
    ],
)
def test_configure_rejects_bad_values_and_changes_nothing(settings_kwargs: dict[str, Any]) -> None:
    """A bad value raises ``ValueError`` and leaves every setting as it was."""
    before = snapshot()
    generation = settings.generation
    with pytest.raises(ValueError):
        configure(**{"mode": "enforce", **settings_kwargs})
    assert snapshot() == before
    assert settings.generation == generation


def test_configure_accepts_every_documented_setting(tmp_path: Any) -> None:
    """Every setting of the contract can be set at run time."""
    configure(
        mode="enforce",
        overrides={"a.*": "off"},
        sample_rate="0.5",
        envelope=tmp_path / "envelope.json",
        record=str(tmp_path / "record.json"),
        capture_values=True,
        overhead_budget=0.25,
    )
    assert settings.mode is Mode.ENFORCE
    assert settings.overrides == (("a.*", Mode.OFF),)
    assert settings.sample_rate == 0.5
    assert settings.envelope == str(tmp_path / "envelope.json")
    assert settings.record == str(tmp_path / "record.json")
    assert settings.capture_values is True
    assert settings.overhead_budget == 0.25
    configure(envelope="", record=None, overhead_budget=0.0)
    assert settings.envelope is None
    assert settings.record is None
    assert settings.overhead_budget is None


def test_snapshot_and_restore_round_trip() -> None:
    """``restore(snapshot())`` puts every setting back."""
    saved = snapshot()
    configure(mode="enforce", sample_rate=0.1, overrides="x=off")
    restore(saved)
    assert snapshot() == saved


# -- sampling -----------------------------------------------------------------------------------


def test_sample_rate_zero_thins_data_checks_but_not_every_call_checks() -> None:
    """At ``sample_rate=0`` data checks stop; latency, concurrency and exception checks go on."""
    from shadowguard import _guard

    configure(sample_rate=0.0)
    ticks = iter(range(10**9, 10**12, 10**9))  # every clock read is one second later

    @guarded(
        assume.not_none("x"),
        assume.latency(ms=1),
        assume.max_concurrency(1),
        assume.raises_only(KeyError),
        name="cfg.sampled",
    )
    def f(x: object) -> None:
        if x is None:
            f(1)  # re-entrant: two calls in flight
            raise ValueError("x")

    original = _guard._perf_ns
    _guard._perf_ns = lambda: next(ticks)
    try:
        with capture_violations() as violations, pytest.raises(ValueError):
            f(None)
    finally:
        _guard._perf_ns = original
    assert sorted(v.kind for v in violations) == ["concurrency", "exception", "latency", "latency"]


def test_sample_rate_thins_data_checks_in_proportion() -> None:
    """At 0.5 about half the calls are data-checked (and counted as checked)."""
    from shadowguard import _tallies

    configure(sample_rate=0.5)
    f = _not_none_guard("cfg.half")
    with capture_violations() as violations:
        for _ in range(2000):
            f(None)
    assert 800 < len(violations) < 1200
    assert _tallies.check_counts()["cfg.half"] == len(violations)


def test_decorator_sample_rate_beats_the_global_one() -> None:
    """``sample_rate=`` on the decorator overrides the global rate."""
    configure(sample_rate=0.0)
    always = _not_none_guard("cfg.rate.always", sample_rate=1.0)
    with capture_violations() as violations:
        for _ in range(10):
            always(None)
    assert len(violations) == 10
    configure(sample_rate=1.0)
    never = _not_none_guard("cfg.rate.never", sample_rate=0)
    with capture_violations() as violations:
        for _ in range(10):
            never(None)
    assert violations == []


def test_sample_rate_change_applies_to_existing_guards() -> None:
    """A new global rate is picked up by guards on their next call."""
    f = _not_none_guard("cfg.rate.live")
    assert _outcome(f) == "reported"
    configure(sample_rate=0.0)
    assert _outcome(f) == "silent"


def test_overhead_budget_lowers_the_sampling_rate() -> None:
    """With a budget, a guard whose checks cost as much as the call samples ~budget of calls."""
    from shadowguard import _guard
    from shadowguard.assume import Assumption, Call

    clock = [0]

    def now() -> int:
        return clock[0]

    class Costly(Assumption):
        def check(self, call: Call) -> str | None:
            clock[0] += 1_000_000  # each data check costs 1 ms
            return None

    configure(overhead_budget=0.1)

    @guarded(Costly("costly()", "cheap"), name="cfg.budget")
    def f() -> None:
        clock[0] += 1_000_000  # the function itself takes 1 ms

    original = _guard._perf_ns
    _guard._perf_ns = now
    try:
        for _ in range(3000):
            f()
    finally:
        _guard._perf_ns = original
    guard = f.__shadowguard__
    assert guard.rate == pytest.approx(0.1, rel=0.05)
    from shadowguard import _tallies

    assert 150 < _tallies.check_counts()["cfg.budget"] < 600


# -- the environment (subprocesses: the environment is read at import) ---------------------------


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWGUARD_")}
    clean.update(env)
    clean["PYTHONWARNINGS"] = "error"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_REPORT_SETTINGS = """
    import json
    import structlog
    events = []
    def keep(logger, method, event_dict):
        events.append(event_dict)
        raise structlog.DropEvent
    structlog.configure(processors=[structlog.processors.add_log_level, keep])
    import shadowguard
    from shadowguard._config import settings
    print(json.dumps({
        "mode": settings.mode.value,
        "overrides": [[p, m.value] for p, m in settings.overrides],
        "sample_rate": settings.sample_rate,
        "envelope": settings.envelope,
        "record": settings.record,
        "capture_values": settings.capture_values,
        "overhead_budget": settings.overhead_budget,
        "events": [e for e in events],
    }))
"""


def _settings_from_env(**env: str) -> dict[str, Any]:
    proc = _run(_REPORT_SETTINGS, **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_environment_sets_every_setting() -> None:
    """Each ``SHADOWGUARD_*`` variable is read at import."""
    got = _settings_from_env(
        SHADOWGUARD_MODE="enforce",
        SHADOWGUARD_OVERRIDES="payments.*=enforce,legacy.*=off",
        SHADOWGUARD_SAMPLE_RATE="0.25",
        SHADOWGUARD_ENVELOPE="/tmp/envelope.json",
        SHADOWGUARD_RECORD="/tmp/record.json",
        SHADOWGUARD_CAPTURE_VALUES="1",
        SHADOWGUARD_OVERHEAD_BUDGET="0.05",
    )
    assert got == {
        "mode": "enforce",
        "overrides": [["payments.*", "enforce"], ["legacy.*", "off"]],
        "sample_rate": 0.25,
        "envelope": "/tmp/envelope.json",
        "record": "/tmp/record.json",
        "capture_values": True,
        "overhead_budget": 0.05,
        "events": [],
    }


def test_environment_defaults() -> None:
    """Without variables the documented defaults apply."""
    got = _settings_from_env()
    assert got == {
        "mode": "observe",
        "overrides": [],
        "sample_rate": 1.0,
        "envelope": None,
        "record": None,
        "capture_values": False,
        "overhead_budget": None,
        "events": [],
    }


@pytest.mark.parametrize(
    ("variable", "value", "setting", "default"),
    [
        ("SHADOWGUARD_SAMPLE_RATE", "abc", "sample_rate", 1.0),
        ("SHADOWGUARD_SAMPLE_RATE", "1.5", "sample_rate", 1.0),
        ("SHADOWGUARD_MODE", "loud", "mode", "observe"),
        ("SHADOWGUARD_OVERRIDES", "payments", "overrides", []),
        ("SHADOWGUARD_OVERRIDES", "a=enforce,b=sometimes", "overrides", []),
        ("SHADOWGUARD_CAPTURE_VALUES", "maybe", "capture_values", False),
        ("SHADOWGUARD_OVERHEAD_BUDGET", "2", "overhead_budget", None),
    ],
)
def test_bad_environment_value_is_reported_once_and_defaulted(
    variable: str, value: str, setting: str, default: Any
) -> None:
    """A bad variable never crashes the host: one ``config_invalid`` naming it, then the default."""
    got = _settings_from_env(**{variable: value})
    assert got[setting] == default
    invalid = [e for e in got["events"] if e["event"] == "config_invalid"]
    assert len(invalid) == 1
    assert invalid[0]["variable"] == variable
    assert invalid[0]["value"] == value
    assert invalid[0]["level"] == "warning"
    assert [e["event"] for e in got["events"]] == ["config_invalid"]


def test_bad_environment_value_with_default_structlog_output() -> None:
    """With structlog unconfigured, the warning is printed once and the program runs on."""
    proc = _run(
        """
        import shadowguard
        from shadowguard import guarded
        @guarded
        def f(x: int) -> int:
            return x
        print("result", f(2))
        """,
        SHADOWGUARD_SAMPLE_RATE="abc",
    )
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert output.count("config_invalid") == 1
    assert "SHADOWGUARD_SAMPLE_RATE" in output
    assert "abc" in output
    assert "result 2" in output


def test_mode_off_at_import_returns_the_undecorated_function() -> None:
    """``SHADOWGUARD_MODE=off`` at start-up: ``@guarded`` hands back the function itself."""
    proc = _run(
        """
        import shadowguard
        from shadowguard import assume, guarded
        def original(x):
            return x
        decorated = guarded(assume.not_none("x"))(original)
        bare = guarded(original)
        try:
            guarded(assume.not_none("nope"))(original)
        except ValueError as exc:
            error = "ValueError" if "nope" in str(exc) else "wrong message"
        else:
            error = "no error"
        print(decorated is original, bare is original, error)
        """,
        SHADOWGUARD_MODE="off",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "ValueError"]


def test_mode_off_from_env_then_configure_guards_new_decorations() -> None:
    """After ``configure(mode=...)`` at run time, new decorations are real guards again."""
    proc = _run(
        """
        import shadowguard
        from shadowguard import assume, guarded
        shadowguard.configure(mode="enforce")
        @guarded(assume.not_none("x"))
        def f(x):
            return x
        try:
            f(None)
        except shadowguard.AssumptionViolation:
            print("raised")
        """,
        SHADOWGUARD_MODE="off",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "raised"


def test_env_overrides_apply_to_guards() -> None:
    """``SHADOWGUARD_OVERRIDES`` from the environment drives guard modes."""
    proc = _run(
        """
        from shadowguard import AssumptionViolation, assume, guarded
        @guarded(assume.not_none("x"), name="payments.charge")
        def charge(x):
            return x
        try:
            charge(None)
        except AssumptionViolation:
            print("enforced")
        """,
        SHADOWGUARD_OVERRIDES="payments.*=enforce",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "enforced"


def test_public_configure_is_the_one_in_the_package() -> None:
    """``shadowguard.configure`` is the settings' ``configure``."""
    from shadowguard import _config

    assert shadowguard.configure is _config.configure


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        (" Yes ", True),
        ("on", True),
        ("0", False),
        ("off", False),
        ("no", False),
        ("", False),
        (True, True),
        (False, False),
    ],
)
def test_parse_bool_forms(text: object, expected: bool) -> None:
    """``SHADOWGUARD_CAPTURE_VALUES`` accepts the usual spellings of yes and no."""
    from shadowguard._config import parse_bool

    assert parse_bool(text, "X") is expected


@pytest.mark.parametrize("text", ["2", "maybe", 1, None])
def test_parse_bool_rejects_the_rest(text: object) -> None:
    """Anything else is a ``ValueError`` naming the setting."""
    from shadowguard._config import parse_bool

    with pytest.raises(ValueError, match="X must be 0 or 1"):
        parse_bool(text, "X")


@pytest.mark.internal_errors
def test_a_settings_listener_that_raises_is_an_internal_fault() -> None:
    """A listener failing on a settings change does not fail ``configure``."""
    from shadowguard._config import add_listener
    from shadowguard.testing import strict_internal_errors

    calls: list[str] = []

    def explode(current: Any) -> None:
        calls.append("called")
        raise RuntimeError("listener")

    add_listener(explode)
    add_listener(explode)  # registering twice keeps one
    try:
        with strict_internal_errors() as faults:
            configure(sample_rate=0.5)
    finally:
        settings.listeners.remove(explode)
    assert calls == ["called"]
    assert [site for site, _ in faults] == ["config.listener"]
