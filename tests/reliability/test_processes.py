"""Process models: guards keep working, and report, in ``multiprocessing`` children (fork, spawn,
forkserver, pools), in gunicorn ``--preload`` workers and in Flask's debug-reloader child; a
fork taken while other threads are reporting leaves a child that neither hangs nor inherits
their calls in flight; servers shut down cleanly with one exporter thread per process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from shadowguard import assume, guarded
from shadowguard.testing import capture_violations

from . import procs_workload
from .conftest import HERE, ROOT, ServerProcess, clean_env, free_port

USERS = [{"id": 1, "email": "a@example.com"}, {"id": 2, "email": None}, {"id": 3}]
EXPECTED = {
    "results": ["sent to 1", "sent to 2", "sent to 3"],
    "violations": [
        ("procs.notify", "not_none(user.email)", "None"),
        ("procs.notify", "not_none(user.email)", "missing"),
    ],
}


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_guards_work_and_report_in_multiprocessing_children(method: str) -> None:
    """A child made by ``method`` runs the guarded function, sees the same violations and
    counts them in its own tallies; nothing is left in flight."""
    context = multiprocessing.get_context(method)
    with context.Pool(1) as pool:
        outcome = pool.apply(procs_workload.in_child, (USERS,))
    assert outcome["pid"] != os.getpid()
    assert {k: outcome[k] for k in EXPECTED} == EXPECTED
    assert outcome["tallied"] == 2
    assert outcome["in_flight"] == 0


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_guarded_function_travels_to_a_process_pool_by_reference(method: str) -> None:
    """``ProcessPoolExecutor`` pickles the guarded function by reference (every protocol
    round-trips to the same object) and the workers run it guarded."""
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(procs_workload.notify, protocol)) is procs_workload.notify
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        results = list(pool.map(procs_workload.call_guard, USERS))
    assert results == EXPECTED["results"]


def _fork_and_check(child_check: Any, timeout: float = 5.0) -> int | None:
    """Fork; the child runs ``child_check()`` and exits with its code. The child's exit code,
    or ``None`` when it hung (then it is killed by its PID)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            code = child_check()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.005)


def _under_coverage() -> bool:
    coverage = sys.modules.get("coverage")
    return coverage is not None and coverage.Coverage.current() is not None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.skipif(
    _under_coverage(),
    reason="coverage.py's tracer is not fork-safe with threads running: children of a process"
    " measured by it hang without shadowguard too; `make test` runs this under Python 3.10",
)
@pytest.mark.usefixtures("contention")
def test_fork_while_other_threads_report_leaves_a_working_child() -> None:
    """Forking 25 times while three threads report violations as fast as they can (holding
    shadowguard's locks and calls in flight at random moments): every child calls the guard,
    reports exactly its own violation and exits; none hangs on a lock another thread held, none
    inherits the other threads' calls in flight."""

    @guarded(assume.not_none("x"), assume.max_concurrency(100), name="procs.busy")
    def busy(x: object) -> object:
        return x

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            busy(None)

    def child() -> int:
        from shadowguard.testing import capture_violations

        with capture_violations() as violations:
            busy(None)
        if [v.assumption for v in violations] != ["not_none(x)"]:
            return 3
        return 4 if busy.__shadowguard__.in_flight else 0

    spinners = [threading.Thread(target=spin) for _ in range(3)]
    for spinner in spinners:
        spinner.start()
    try:
        codes = [_fork_and_check(child) for _ in range(25)]
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join(30)
    assert codes.count(None) == 0, f"{codes.count(None)} of 25 children hung on a lock"
    assert codes == [0] * 25, "children inherited calls in flight or lost reports"


# -- gunicorn --preload -------------------------------------------------------------------------


def _big_order() -> dict[str, Any]:
    items = [{"sku": f"s{i}", "qty": 1, "price": 1.0} for i in range(101)]
    return {"user_id": 1, "items": items}


@pytest.mark.e2e
def test_gunicorn_preload_workers_report_with_one_exporter_thread_each(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """``gunicorn --preload -w 2`` on the Flask example: the SDK and the app are set up in the
    master; each worker serves guarded requests, reports the broken ``size(items)`` on its own
    server span and exports it; each process runs exactly one exporter thread and shadowguard
    starts none; SIGTERM stops everything with exit code 0."""
    port = free_port()
    spans, log = tmp_path / "spans.jsonl", tmp_path / "log.jsonl"
    env = clean_env(SG_SPANS=str(spans), SG_LOG=str(log), OTEL_BSP_SCHEDULE_DELAY="200")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "examples"), env["PYTHONPATH"]])
    server = ServerProcess(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--preload",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "10",
            "reliability.gunicorn_app:app",
        ],
        env,
        HERE.parent,
        tmp_path / "gunicorn.out",
    )
    servers.append(server)
    base = f"http://127.0.0.1:{port}"
    server.wait_until(lambda: httpx.get(base + "/health", timeout=2).status_code == 200)

    workers: dict[int, list[str]] = {}  # the workers that served an order, and their threads
    deadline = time.monotonic() + 30
    while len(workers) < 2 and time.monotonic() < deadline:
        with httpx.Client(base_url=base, timeout=10, headers={"Connection": "close"}) as client:
            response = client.post("/orders", json=_big_order())
        assert response.status_code == 201
        workers[int(response.headers["X-Worker"])] = response.headers["X-Threads"].split(",")
    assert len(workers) == 2, "both workers should have served"
    for pid, threads in workers.items():
        assert pid != server.pid
        assert sum(name.startswith("OtelBatch") for name in threads) == 1, threads
        assert not any("shadowguard" in name.lower() for name in threads), threads

    deadline = time.monotonic() + 20  # each worker's batch processor exports every 200 ms
    reporting = _reporting_pids(spans, route="/orders")
    while reporting != set(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
        reporting = _reporting_pids(spans, route="/orders")
    assert server.stop(signal.SIGTERM, timeout=30) == 0, server.output()
    output = server.output()
    assert "Traceback" not in output, output
    assert reporting == set(workers), "each worker exports its own violations"
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["pid"] for r in logged if r.get("event") == "assumption_violated"} <= set(workers)
    assert not [r for r in logged if r.get("event") == "internal_error"]


# -- Flask's debug reloader -----------------------------------------------------------------------

RELOADER_SCRIPT = """
import os, sys
sys.path[:0] = [{examples!r}, {tests!r}]
os.environ.setdefault("SG_LOG", {log!r})
os.environ.setdefault("SG_SPANS", {spans!r})
from reliability.gunicorn_app import app
app.run(host="127.0.0.1", port={port}, debug=True, use_reloader=True, reloader_type="stat")
"""


@pytest.mark.e2e
def test_flask_debug_reloader_child_serves_guarded_requests_and_reports(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """``app.run(debug=True)``: the reloader's serving child runs the guards and exports the
    violation with one exporter thread; after a code change the new child does too; the whole
    process group stops on SIGTERM."""
    port = free_port()
    spans, log = tmp_path / "spans.jsonl", tmp_path / "log.jsonl"
    script = tmp_path / "serve_debug.py"
    script.write_text(
        RELOADER_SCRIPT.format(
            examples=str(ROOT / "examples"),
            tests=str(ROOT / "tests"),
            log=str(log),
            spans=str(spans),
            port=port,
        )
    )
    env = clean_env(OTEL_BSP_SCHEDULE_DELAY="200")
    server = ServerProcess([sys.executable, str(script)], env, tmp_path, tmp_path / "debug.out")
    servers.append(server)
    base = f"http://127.0.0.1:{port}"
    server.wait_until(lambda: httpx.get(base + "/health", timeout=2).status_code == 200)

    def serve_once() -> dict[str, Any]:
        with httpx.Client(base_url=base, timeout=10) as client:
            response = client.post("/orders", json=_big_order())
        assert response.status_code == 201
        return {
            "pid": int(response.headers["X-Worker"]),
            "threads": response.headers["X-Threads"].split(","),
        }

    first = serve_once()
    assert first["pid"] != server.pid, "the reloader's child serves, not the watcher"
    assert sum(name.startswith("OtelBatch") for name in first["threads"]) == 1

    script.touch()  # a code change: the stat reloader restarts the serving child
    os.utime(script, (time.time() + 5, time.time() + 5))
    deadline = time.monotonic() + 30
    second = first
    while second["pid"] == first["pid"] and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            second = serve_once()
        except httpx.TransportError:
            continue
    assert second["pid"] != first["pid"], "the reloader did not restart its child"
    assert sum(name.startswith("OtelBatch") for name in second["threads"]) == 1

    deadline = time.monotonic() + 20  # the batch processor exports every 200 ms here
    reporting: set[int] = set()
    while time.monotonic() < deadline and not {first["pid"], second["pid"]} <= reporting:
        time.sleep(0.1)
        reporting = _reporting_pids(spans)
    os.killpg(server.pid, signal.SIGTERM)  # the group we started: watcher and child
    server.stop(timeout=20)
    assert {first["pid"], second["pid"]} <= reporting, server.output()


def _reporting_pids(spans: Path, route: str | None = None) -> set[int]:
    """PIDs that exported a violation of ``orders.create`` (on ``route``, if given)."""
    if not spans.exists():
        return set()
    lines = spans.read_text().splitlines()
    exported = [json.loads(line) for line in lines if line.strip().endswith("}")]
    return {
        entry["pid"]
        for entry in exported
        for event in entry["violations"]
        if event["shadowguard.guard"] == "orders.create"
        and (route is None or event.get("http.route") == route)
    }


def test_the_after_fork_hooks_give_fresh_locks_and_nothing_in_flight() -> None:
    """What each module's ``os.register_at_fork`` hook does in a child, run here directly: the
    locks another thread holds are replaced, the guard's calls in flight are forgotten, and
    the guard, the tallies, the limiter and monotonic keep working."""
    from shadowguard import _config, _faults, _guard, _otel, _report, _tallies

    monotonic = assume.monotonic("seq")

    @guarded(monotonic, assume.max_concurrency(1), name="procs.hooks")
    def step(seq: int) -> int:
        return seq

    guard = step.__shadowguard__  # type: ignore[attr-defined]
    assert step(1) == 1
    held = [
        _tallies._lock,
        _faults._lock,
        _otel._lock,
        _report._listeners_lock,
        _report.log_limiter._lock,
        _config._lock,
        _guard._registry_lock,
        guard._lock,
        monotonic._lock,
    ]
    for lock in held:
        assert lock.acquire(timeout=5)
    try:
        guard.flight.extend([None] * 3)  # calls of threads that do not exist in a child
        assert guard.in_flight == 3
        for module in (_tallies, _faults, _otel, _report, _config, _guard):
            module._after_fork_in_child()  # type: ignore[attr-defined]
        assert guard.in_flight == 0
        with capture_violations() as violations:
            assert step(0) == 0  # goes back: monotonic still judges, nothing hangs
        assert [v.assumption for v in violations] == ["monotonic(seq)"]
    finally:
        for lock in held:
            lock.release()


SHUTDOWN = """
import atexit, sys, threading
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from shadowguard import assume, configure, guarded

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=open("/dev/null", "w"))))
configure(tracer_provider=provider)

@guarded(assume.not_none("x"), assume.latency(ms=1e-6))
def f(x):
    return x

class Finaliser:
    def __del__(self):
        f(None)  # a guarded call from a finaliser run at interpreter shutdown

def spin():
    while True:
        f(None)  # a daemon thread still calling while the interpreter exits

keep = Finaliser()
threading.Thread(target=spin, daemon=True).start()
atexit.register(f, None)  # and one from an atexit handler
f(None)
# one write, on a line of its own: the daemon thread's log lines are printed in two writes
# (text, then newline) and may be cut between them by this one
sys.stdout.write("\\nmain done\\n")
"""


@pytest.mark.parametrize("flags", [[], ["-O"], ["-W", "error"]], ids=["plain", "-O", "-W error"])
def test_interpreter_shutdown_with_guarded_calls_in_flight_is_clean(flags: list[str]) -> None:
    """Guarded calls from an atexit handler, a finaliser and a daemon thread while the
    interpreter shuts down (with a batch span processor flushing): exit code 0, nothing on
    stderr (no "Exception ignored", no traceback), under ``-O`` and ``-W error`` too."""
    proc = subprocess.run(
        [sys.executable, *flags, "-c", SHUTDOWN],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "main done" in proc.stdout.splitlines()
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
