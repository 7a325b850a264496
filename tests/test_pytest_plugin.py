"""The pytest plugin: enforce mode under pytest, its overrides, recording, xdist, the fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shadowguard import _config, envelope
from shadowguard._config import Mode, settings

pytest_plugins = ["pytester"]

APP = """
from shadowguard import guarded

@guarded
def active(users: list) -> list:
    return [u for u in users if u["last_login"] is not None]

@guarded
def parse(text: str) -> int:
    return int(text)
"""

TESTS = """
import pytest
from app import active, parse

@pytest.mark.parametrize("n", range(6))
def test_active(n):
    rows = [
        {"id": 3 * n + 1, "last_login": "2024-05-01"},
        {"id": 3 * n + 2, "last_login": None},
        {"id": 3 * n + 3, "last_login": None},
    ]
    assert len(active(rows)) == 1

def test_parse_rejects_words():
    with pytest.raises(ValueError):
        parse("twelve")
"""

WRONG_TYPE = """
from app import parse

def test_wrong_type():
    assert parse(12) == 12
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A small project with two guards, and no SHADOWGUARD_* variable from the outside."""
    for name in ("SHADOWGUARD_MODE", "SHADOWGUARD_RECORD", "SHADOWGUARD_ENVELOPE"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(app=APP)
    pytester.syspathinsert()
    return pytester


def test_guards_enforce_under_pytest_by_default(project: pytest.Pytester) -> None:
    """A broken assumption fails the test that broke it, without any configuration."""
    project.makepyfile(test_wrong=WRONG_TYPE)
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssumptionViolation*type(text)*expected str, observed int*"])


@pytest.mark.parametrize(
    ("ini", "args", "env", "outcome"),
    [
        ("observe", (), None, "passed"),
        (None, ("--shadowguard-mode=observe",), None, "passed"),
        ("observe", ("--shadowguard-mode=enforce",), None, "failed"),
        (None, (), "observe", "passed"),
        ("enforce", (), "observe", "passed"),
        (None, ("--shadowguard-mode=enforce",), "observe", "failed"),
        (None, ("--shadowguard-mode=enforce",), "off", "passed"),
        (None, (), "nonsense", "failed"),
    ],
)
def test_mode_comes_from_option_environment_ini_then_enforce(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ini: str | None,
    args: tuple[str, ...],
    env: str | None,
    outcome: str,
) -> None:
    """Off in the environment wins; then the option; then the environment; then the ini key."""
    project.makepyfile(test_wrong=WRONG_TYPE)
    if ini is not None:
        project.makeini(f"[pytest]\nshadowguard_mode = {ini}\n")
    if env is not None:
        monkeypatch.setenv("SHADOWGUARD_MODE", env)
    result = project.runpytest(*args)
    result.assert_outcomes(**{outcome: 1})


@pytest.mark.e2e
def test_kill_switch_in_a_real_run(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SHADOWGUARD_MODE=off`` in a fresh process beats ``--shadowguard-mode=enforce``."""
    project.makepyfile(test_wrong=WRONG_TYPE)
    monkeypatch.setenv("SHADOWGUARD_MODE", "off")
    result = project.runpytest_subprocess("--shadowguard-mode=enforce")
    result.assert_outcomes(passed=1)


def test_bad_ini_mode_is_a_usage_error(project: pytest.Pytester) -> None:
    """An unknown ``shadowguard_mode`` stops the run with a clear message."""
    project.makeini("[pytest]\nshadowguard_mode = strict\n")
    project.makepyfile(test_ok="def test_ok(): pass")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*shadowguard_mode must be one of observe, enforce, off*"])


def test_settings_are_restored_after_the_run(project: pytest.Pytester) -> None:
    """The session's enforce mode does not leak out of the pytest run that set it."""
    project.makepyfile(test_ok="def test_ok(): pass")
    generation = settings.generation
    project.runpytest().assert_outcomes(passed=1)
    assert settings.mode is Mode.OBSERVE
    assert settings.generation > generation
    assert _config.snapshot()["record"] is None


def test_record_writes_the_envelope_of_every_guard(project: pytest.Pytester) -> None:
    """``--shadowguard-record`` writes what the tests passed, returned and raised, per guard."""
    project.makepyfile(test_app=TESTS)
    result = project.runpytest("--shadowguard-record=out/envelope.json")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["shadowguard: recorded the tested envelope of 2 guards to *"])
    recorded = envelope.load(project.path / "out" / "envelope.json")
    assert set(recorded.guards) == {"app.active", "app.parse"}
    login = recorded.guards["app.active"].paths["users[*].last_login"]
    assert login.types == {"str"} and login.none and not login.missing
    assert recorded.guards["app.parse"].exceptions == {"ValueError"}
    assert recorded.guards["app.active"].paths["users[*].id"].always_sorted


def test_record_path_from_ini_is_relative_to_the_rootdir(project: pytest.Pytester) -> None:
    """The ``shadowguard_record`` ini key records too, relative to the rootdir."""
    project.makeini("[pytest]\nshadowguard_record = envelopes/tested.json\n")
    project.makepyfile(test_app=TESTS)
    sub = project.mkdir("sub")
    result = project.runpytest(str(project.path / "test_app.py"), "--rootdir", str(project.path))
    result.assert_outcomes(passed=7)
    assert (project.path / "envelopes" / "tested.json").is_file()
    assert not (sub / "envelopes").exists()


def test_a_failed_write_fails_the_run(project: pytest.Pytester) -> None:
    """When the envelope cannot be written the run says so and exits non-zero."""
    project.makepyfile(test_app=TESTS)
    (project.path / "taken").mkdir()
    (project.path / "taken" / "x").write_text("")
    result = project.runpytest("--shadowguard-record=taken")
    result.assert_outcomes(passed=7)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["shadowguard: could not write the envelope to *taken*"])


def test_no_recording_without_the_option(project: pytest.Pytester) -> None:
    """Without ``--shadowguard-record`` nothing is recorded and no file appears."""
    project.makepyfile(test_app=TESTS)
    result = project.runpytest()
    result.assert_outcomes(passed=7)
    assert "recorded the tested envelope" not in result.stdout.str()
    assert not list(project.path.glob("*.json"))


@pytest.mark.e2e
@pytest.mark.slow
def test_xdist_workers_merge_into_the_same_file(project: pytest.Pytester) -> None:
    """Under ``-n 2`` each worker records and the controller writes what a serial run writes."""
    project.makepyfile(test_app=TESTS)
    serial = project.runpytest_subprocess("-p", "no:randomly", "--shadowguard-record=serial.json")
    serial.assert_outcomes(passed=7)
    parallel = project.runpytest_subprocess("-n", "2", "--shadowguard-record=parallel.json")
    parallel.assert_outcomes(passed=7)
    parallel.stdout.fnmatch_lines(["shadowguard: recorded the tested envelope of 2 guards to *"])
    first = (project.path / "serial.json").read_text()
    assert (project.path / "parallel.json").read_text() == first
    assert json.loads(first)["version"] == 1


def test_violations_fixture_lists_what_the_test_broke(project: pytest.Pytester) -> None:
    """``shadowguard_violations`` holds the violations reported during the test."""
    project.makepyfile(
        test_fixture="""
        from app import parse

        def test_sees_violations(shadowguard_violations):
            assert parse(7) == 7
            [violation] = shadowguard_violations
            assert (violation.assumption, violation.observed) == ("type(text)", "int")
        """
    )
    project.runpytest("--shadowguard-mode=observe").assert_outcomes(passed=1)


def test_worker_envelopes_from_an_xdist_controller_are_merged(tmp_path: Path) -> None:
    """The controller hook keeps only text envelopes from workers' output."""
    from shadowguard import _pytest_plugin as plugin

    class Node:
        def __init__(self, config: object, output: object) -> None:
            self.config = config
            self.workeroutput = output

    class Config:
        def __init__(self) -> None:
            self.stash = pytest.Stash()

    config = Config()
    state = plugin._Session({}, None)
    config.stash[plugin._state_key] = state
    plugin.pytest_testnodedown(Node(config, {"shadowguard_envelope": "{}"}), None)
    plugin.pytest_testnodedown(Node(config, {"other": 1}), None)
    plugin.pytest_testnodedown(Node(config, None), None)
    plugin.pytest_testnodedown(Node(Config(), {"shadowguard_envelope": "{}"}), None)
    assert state.worker_envelopes == ["{}"]


def test_recording_stops_when_the_run_ends_before_the_session(project: pytest.Pytester) -> None:
    """A usage error raised after the plugin started recording still stops the recorder."""
    from shadowguard.envelope import _wiring

    project.makeconftest(
        """
        import pytest

        def pytest_configure(config):
            raise pytest.UsageError("stop here")
        """
    )
    result = project.runpytest("--shadowguard-record=never.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _wiring._recorders == ()
    assert not (project.path / "never.json").exists()
