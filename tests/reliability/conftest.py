"""Fixtures of the reliability suite: reported internal faults and server processes on loopback
that are always stopped by PID within a bound (forced thread contention, ``contention``, is in
the suite-wide conftest)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, settings

from shadowguard import _faults

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

ORACLE_SETTINGS = settings(
    max_examples=int(os.environ.get("SG_ORACLE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
    print_blob=True,
)
"""Hypothesis settings of the oracle tests: bounded examples (``SG_ORACLE_EXAMPLES`` raises
them for a longer local run), no per-example deadline (a loaded CI box is not a failure)."""


@dataclass
class Reported:
    """shadowguard's internal faults as production sees them: the ``internal_error`` log lines
    and the ``shadowguard.internal_errors`` total, with the tests' strict hook set aside."""

    logs: list[dict[str, Any]]
    start_total: int = field(default_factory=_faults.internal_errors_total)

    def faults(self) -> list[dict[str, Any]]:
        """Every ``internal_error`` log entry so far."""
        return [entry for entry in self.logs if entry.get("event") == "internal_error"]

    def sites(self) -> list[str]:
        """The site of every logged internal fault, in order."""
        return [entry["site"] for entry in self.faults()]

    def total(self) -> int:
        """Internal faults counted since the fixture started (what the metric exports)."""
        return _faults.internal_errors_total() - self.start_total


@pytest.fixture
def reported() -> Iterator[Reported]:
    """Internal faults go down the production path (logged once per site, counted) instead of
    failing the test; the test asserts on them."""
    previous = _faults.set_strict_hook(None)
    _faults.reset()
    try:
        with structlog.testing.capture_logs() as logs:
            yield Reported(logs)
    finally:
        _faults.set_strict_hook(previous)
        _faults.reset()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no inherited ``SHADOWGUARD_*``/coverage surprises
    beyond what the test sets, the repository's tests importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHADOWGUARD_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class ServerProcess:
    """A server started by a test on loopback: waited for, then stopped by its PID."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self._log_handle = log.open("wb")
        self.process = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_until(self, probe: Any, timeout: float = 30.0) -> None:
        """Poll ``probe()`` until it is true; fail with the server's output if it died."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if probe():
                    return
            except Exception:  # not listening yet (connection refused, reset...)
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not come up:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the server (by PID) and wait for it; killed if it outlives ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log_handle.close()
        return int(self.process.returncode)

    def output(self) -> str:
        """Everything the server wrote so far."""
        if not self._log_handle.closed:
            self._log_handle.flush()
        return self.log.read_text(errors="replace")


def start_privacy_app(
    tmp_path: Path, servers: list[ServerProcess]
) -> tuple[ServerProcess, int, Path, Path]:
    """``reliability.privacy_app`` (a plain ASGI app on uvicorn, exporting to files) on a free
    loopback port, up and listening: the server, its port, spans file and log file."""
    port = free_port()
    spans, log = tmp_path / "spans.jsonl", tmp_path / "log.jsonl"
    server = ServerProcess(
        [sys.executable, "-m", "reliability.privacy_app", str(port), str(spans), str(log)],
        clean_env(),
        HERE.parent,
        tmp_path / "server.out",
    )
    servers.append(server)
    server.wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or 1)
    return server, port, spans, log


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Server processes a test starts; any still running at the end are stopped by PID."""
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop(timeout=5)
