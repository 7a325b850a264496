"""Arize Phoenix as a real OpenTelemetry backend for end-to-end runs, on loopback only.

Phoenix lives in its own cached virtual environment (``.venv-phoenix``, about 850 MB: never the
project's), installed on first use with uv when there is one, else pip. :func:`running` starts
``phoenix serve`` on free ports with the offline settings of ``/work/shared/BACKEND.md``, waits
for ``/healthz`` and stops the server by PID (SIGTERM, then SIGKILL). :class:`Phoenix` reads
spans back through the REST API.

Run as a script, it is ``make demo-phoenix``: Phoenix, the demo exporting to it over OTLP/HTTP,
the UI's address, and Phoenix kept up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PHOENIX_VERSION = "20.26.1"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-phoenix"
STAMP = ".shadowguard-phoenix"
INSTALL_TIMEOUT_S = 900.0
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0
PROJECT = "shadowguard-demo"


class PhoenixUnavailable(RuntimeError):
    """Phoenix could not be installed here (no Python >= 3.11, or the install failed)."""


# -- install ------------------------------------------------------------------------------------


def ensure_installed(venv: Path = VENV) -> Path:
    """The ``phoenix`` executable of ``venv``, installing ``arize-phoenix`` there if needed.

    A lock file serialises concurrent callers; a stamp written after a successful install marks
    the environment as complete, so a half-done install is redone rather than trusted.
    """
    executable = venv / "bin" / "phoenix"
    lock_path = venv.with_name(venv.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = venv / STAMP
        if executable.exists() and stamp.exists() and stamp.read_text() == PHOENIX_VERSION:
            return executable
        interpreter = _python_for_phoenix()
        shutil.rmtree(venv, ignore_errors=True)
        _install(interpreter, venv)
        stamp.write_text(PHOENIX_VERSION)
    return executable


def _python_for_phoenix() -> str:
    """An interpreter Phoenix supports (it needs Python >= 3.11): this one, else one on PATH."""
    if sys.version_info >= (3, 11):
        return sys.executable
    for name in ("python3.13", "python3.12", "python3.11", "python3"):
        found = shutil.which(name)
        if found is None:
            continue
        probe = subprocess.run(
            [found, "-c", "import sys; print(sys.version_info >= (3, 11))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return found
    raise PhoenixUnavailable("Phoenix needs Python >= 3.11 and none was found on PATH")


def _install(interpreter: str, venv: Path) -> None:
    steps: list[list[str]] = [[interpreter, "-m", "venv", str(venv)]]
    python = str(venv / "bin" / "python")
    requirement = f"arize-phoenix=={PHOENIX_VERSION}"
    uv = _find_uv()
    if uv is not None:
        steps.append([uv, "pip", "install", "--quiet", "--python", python, requirement])
    else:
        steps.append([python, "-m", "pip", "install", "--quiet", requirement])
    print(f"installing {requirement} into {venv} (once; about 30 s) ...", file=sys.stderr)
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    for command in steps:
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
                env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(venv, ignore_errors=True)
            raise PhoenixUnavailable(f"{' '.join(command)}: {exc}") from exc
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
            raise PhoenixUnavailable(
                f"{' '.join(command)} failed (exit {done.returncode}):\n" + "\n".join(tail)
            )


def _find_uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"  # .ci/dev.py puts uv into .venv
    if beside.exists():
        return str(beside)
    return shutil.which("uv")


# -- the server ---------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (``host=""`` checks every interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Phoenix:
    """A running ``phoenix serve``: its address, its process and a REST client."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def otlp_endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the SDK appends ``/v1/traces``)."""
        return self.url

    def ui_url(self, project: str = PROJECT) -> str:
        """Where a person sees the project's traces (the UI redirects by name to its id)."""
        return f"{self.url}/redirects/projects/{urllib.parse.quote(project)}"

    def span_url(self, span_id: str) -> str:
        """The UI page of one span: its trace, with the span selected."""
        return f"{self.url}/redirects/spans/{span_id}"

    def get_json(self, path: str) -> Any:
        """``GET`` a REST path; ``None`` for 404 (a project exists once its first span arrived)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def spans(self, project: str = PROJECT) -> list[dict[str, Any]]:
        """Every span of ``project`` stored so far (following the REST API's cursor)."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        base = f"/v1/projects/{urllib.parse.quote(project)}/spans?limit=100"
        while True:
            page = self.get_json(base + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""))
            if page is None:
                return found
            found.extend(page.get("data") or ())
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    def wait_for_spans(
        self,
        ready: Callable[[list[dict[str, Any]]], bool],
        project: str = PROJECT,
        timeout: float = 60.0,
    ) -> list[dict[str, Any]]:
        """Poll :meth:`spans` until ``ready(spans)``; the last spans read if the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans(project)
            if ready(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.25)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def phoenix_env(workdir: Path, port: int, grpc_port: int) -> dict[str, str]:
    """The environment of a loopback-only, offline Phoenix storing into ``workdir``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PHOENIX_", "OTEL_", "COVERAGE_", "SHADOWGUARD_"))
    }
    env.pop("VIRTUAL_ENV", None)
    env.update(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_WORKING_DIR=str(workdir),
        PHOENIX_SQL_DATABASE_URL=f"sqlite:///{workdir}/phoenix.db",
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_DISABLE_AGENT_ASSISTANT="true",
        PHOENIX_LOG_MIGRATIONS="false",
    )
    return env


@contextlib.contextmanager
def running(executable: Path | None = None, timeout: float = START_TIMEOUT_S) -> Iterator[Phoenix]:
    """Start Phoenix (installing it first if needed), yield it once healthy, then stop it."""
    executable = executable or ensure_installed()
    with tempfile.TemporaryDirectory(prefix="shadowguard-phoenix-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        grpc_port = free_port("")  # the gRPC receiver listens on every interface
        log_path = workdir / "phoenix.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(executable), "serve"],
                cwd=workdir,
                env=phoenix_env(workdir, port, grpc_port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        phoenix = Phoenix(f"http://127.0.0.1:{port}", process, log_path)
        try:
            _wait_healthy(phoenix, timeout)
            yield phoenix
        finally:
            stop(process)


def _wait_healthy(phoenix: Phoenix, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = phoenix.process.poll()
        if code is not None:
            raise RuntimeError(f"phoenix serve exited with {code}:\n{phoenix.log_tail()}")
        try:
            with urllib.request.urlopen(phoenix.url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"phoenix serve not healthy after {timeout:.0f} s:\n{phoenix.log_tail()}"
            )
        time.sleep(0.25)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's PID, SIGKILL it if it is still there after a grace period."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


# -- the demo against it ------------------------------------------------------------------------


def demo_env(phoenix: Phoenix, project: str = PROJECT) -> dict[str, str]:
    """The demo's environment: standard OTel variables pointing its exporter at Phoenix."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = phoenix.otlp_endpoint
    env["OTEL_EXPORTER_OTLP_HEADERS"] = f"x-project-name={project}"  # Phoenix's project header
    return env


def demo_command(*args: str) -> list[str]:
    """``python -m shadowguard demo`` as this interpreter runs it."""
    return [sys.executable, "-m", "shadowguard", "demo", *args]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``make demo-phoenix``: the demo exporting to a local Phoenix, kept up until Ctrl-C;
    arguments go to the demo."""
    demo_args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops Phoenix too, like Ctrl-C
    try:
        executable = ensure_installed()
    except PhoenixUnavailable as exc:
        print(f"cannot install Phoenix: {exc}", file=sys.stderr)
        return 1
    print("starting Phoenix (the first start takes up to half a minute) ...", flush=True)
    try:
        with running(executable) as phoenix:
            done = subprocess.run(demo_command(*demo_args), env=demo_env(phoenix), check=False)
            if done.returncode != 0:
                return done.returncode
            print(f"\nOpen the traces in Phoenix: {phoenix.ui_url()}", flush=True)
            print("Pick a request span, then its Events tab. Ctrl-C stops Phoenix.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while phoenix.process.poll() is None:
                    time.sleep(0.5)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
