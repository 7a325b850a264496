"""The pytest plugin (entry point ``shadowguard``): guards enforce under pytest, and the tested
envelope is recorded on request.

- Guards run in ``enforce`` mode for the whole session, so a broken assumption fails the test
  that broke it. ``SHADOWGUARD_MODE`` (the environment) or ``--shadowguard-mode`` (the command
  line) say otherwise; ``SHADOWGUARD_MODE=off`` wins over everything, as everywhere.
- ``--shadowguard-record=PATH`` writes the envelope of every guard the tests exercised (what the
  suite actually passed, returned and raised) to ``PATH``; under pytest-xdist each worker
  records and the controller merges them into the one file.
- The ``shadowguard_violations`` fixture lists the violations reported during a test.

Every option has an ini key of the same name with underscores (``shadowguard_mode``,
``shadowguard_record``); the command line wins over the ini file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shadowguard import _config
from shadowguard._config import ENV_MODE, Mode, parse_mode
from shadowguard._violation import Violation
from shadowguard.testing import capture_violations

__all__ = ["shadowguard_violations"]

_MODES = ("observe", "enforce", "off")
_WORKER_KEY = "shadowguard_envelope"
_state_key = pytest.StashKey["_Session"]()


class _Session:
    """What the plugin changed for one pytest run, to put it back and to write the envelope."""

    def __init__(self, saved: dict[str, Any], mode: str | None) -> None:
        self.saved = saved
        self.mode = mode
        self.record_to: Path | None = None
        self.recorder: Any = None
        self.worker_envelopes: list[str] = []
        self.written: tuple[Path, int] | None = None
        self.error: str | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--shadowguard-mode`` and ``--shadowguard-record``, each with its ini key."""
    group = parser.getgroup("shadowguard", "shadowguard: assumptions and the tested envelope")
    group.addoption(
        "--shadowguard-mode",
        choices=_MODES,
        default=None,
        help="mode of every guard during the run (default: enforce; SHADOWGUARD_MODE also sets it)",
    )
    parser.addini(
        "shadowguard_mode",
        "mode of every guard during the run: observe, enforce or off (default: enforce)",
        default=None,
    )
    group.addoption(
        "--shadowguard-record",
        metavar="PATH",
        default=None,
        help="write the tested envelope of every guard exercised to PATH (JSON)",
    )
    parser.addini(
        "shadowguard_record",
        "write the tested envelope to this path, relative to the rootdir",
        default=None,
    )


def _session_mode(config: pytest.Config) -> str | None:
    """The mode to set for the run, or ``None`` to leave the current one in place.

    ``SHADOWGUARD_MODE=off`` wins over everything; then ``--shadowguard-mode``; then the
    environment; then the ini key; then ``enforce``.
    """
    option = config.getoption("shadowguard_mode")
    env = os.environ.get(ENV_MODE)
    from_env: str | None = None
    if env is not None:
        try:
            from_env = parse_mode(env).value
        except ValueError:
            from_env = None  # already reported as config_invalid: as if unset
        if from_env == Mode.OFF.value:
            return None  # the kill switch: guards were not even installed
    if option is not None:
        return str(option)
    if from_env is not None:
        return from_env
    ini = config.getini("shadowguard_mode")
    if ini:
        text = str(ini).strip().lower()
        if text not in _MODES:
            raise pytest.UsageError(
                f"shadowguard_mode must be one of {', '.join(_MODES)}, got {ini!r}"
            )
        return text
    return Mode.ENFORCE.value


def _record_path(config: pytest.Config) -> Path | None:
    """Where to write the envelope: the option (from the invocation directory), else the ini
    key (from the rootdir), else nowhere."""
    option = config.getoption("shadowguard_record")
    if option:
        return config.invocation_params.dir / str(option)
    ini = config.getini("shadowguard_record")
    if ini:
        return config.rootpath / str(ini)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Set the session's mode and start recording, before any test module is imported."""
    mode = _session_mode(config)
    session = _Session(_config.snapshot(), mode)
    config.stash[_state_key] = session
    if mode is not None:
        _config.configure(mode=mode)
    session.record_to = _record_path(config)
    if session.record_to is not None:
        from shadowguard import envelope

        session.recorder = envelope.start_recording()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect the envelope a worker recorded."""
    config = node.config
    session = config.stash.get(_state_key, None)
    output = getattr(node, "workeroutput", None)
    if session is None or not isinstance(output, dict):
        return
    text = output.get(_WORKER_KEY)
    if isinstance(text, str):
        session.worker_envelopes.append(text)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop recording; a worker hands its envelope to the controller, which writes the file."""
    config = session.config
    state = config.stash.get(_state_key, None)
    if state is None or state.recorder is None:
        return
    from shadowguard import envelope

    recorded = envelope.stop_recording(state.recorder)
    state.recorder = None
    workeroutput = getattr(config, "workeroutput", None)
    if isinstance(workeroutput, dict):  # an xdist worker: the controller writes the file
        workeroutput[_WORKER_KEY] = envelope.dumps(recorded)
        return
    try:
        merged = recorded
        for text in state.worker_envelopes:
            merged = envelope.merge(merged, envelope.loads(text))
        assert state.record_to is not None
        envelope.save(merged, state.record_to)
        state.written = (state.record_to, len(merged.guards))
    except (OSError, ValueError) as exc:
        state.error = f"shadowguard: could not write the envelope to {state.record_to}: {exc}"
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR  # the run asked for a file


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line saying where the envelope went, or why it could not be written."""
    state = config.stash.get(_state_key, None)
    if state is None:
        return
    if state.written is not None:
        path, count = state.written
        noun = "guard" if count == 1 else "guards"
        terminalreporter.write_line(
            f"shadowguard: recorded the tested envelope of {count} {noun} to {path}"
        )
    if state.error is not None:
        terminalreporter.write_line(state.error, red=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the settings back as they were before the run (pytester runs share a process)."""
    state = config.stash.get(_state_key, None)
    if state is None:
        return
    if state.recorder is not None:  # the session ended before sessionfinish (usage error)
        from shadowguard import envelope

        envelope.stop_recording(state.recorder)
        state.recorder = None
    if state.mode is not None:
        _config.restore(state.saved)
    del config.stash[_state_key]


@pytest.fixture
def shadowguard_violations() -> Iterator[list[Violation]]:
    """The violations reported while the test runs (any thread), as
    :class:`shadowguard.Violation` objects, unthrottled."""
    with capture_violations() as violations:
        yield violations
