"""Requests per second of a hello app, bare and behind each middleware, measured with wrk.

    python tests/benchmarks/web_bench.py                  # ASGI and WSGI, ~10 minutes
    python tests/benchmarks/web_bench.py --only wsgi --rounds 120 \
        --variants pass-through,floor,shadowguard         # with the floor, ~10 minutes
    python tests/benchmarks/web_bench.py --only asgi --rounds 3
    python tests/benchmarks/web_bench.py --instructions  # under valgrind: no noise, ~20 minutes

FastAPI on uvicorn and Flask on gunicorn (one sync worker) serve ``GET /hello`` on 127.0.0.1,
one server per variant at a time (bare, a pure pass-through middleware, shadowguard's
middleware and its framework adapter, OpenTelemetry's middleware with an SDK exporting in
batches to nowhere).
``wrk`` (Debian package ``wrk``) loads them in turn, round after round, in a shuffled order; the
table gives medians, the ratio to the bare app (median of per-round ratios) and the server's
CPU time per request (user + system, read from the server's own processes around each run),
with what a variant adds to it (median of per-round differences to the bare app): on
a shared machine throughput swings with the neighbours' load, CPU time per request much less,
and for a one-process server the two ratios agree. The spread of the per-round CPU ratios
(interquartile range, under the table) says how far a ratio can be trusted: the pass-through
middleware, which cannot be faster than the bare app, is the control. From that spread comes the
standard error given with shadowguard's ratio. ``--variants`` may add ``floor``, a hand-written
middleware doing the least of shadowguard's work (context, clock, in-flight count, status):
what any middleware of its kind costs at least.

Runs are short (one second) and many: the machine's speed drifts over seconds (successive
runs of one server correlate), so ratios of runs close in time carry less of the drift. Two
identical bare servers measured this way (an A/A test, 7 December) differed by 0.5% over
120 one-second rounds, by 1.8% over 30 four-second ones.

Each process is also fast or slow in its own way, for as long as it lives: where its memory
landed (address space randomisation), its hash seed, which cache sets its hot objects share.
Rounds do not average that out, so the servers are restarted, all of them, every
``--rounds-per-process`` rounds (20 by default, as pyperf runs a benchmark in 20 processes):
a long run then measures each variant in many processes. Its standard error is the larger of
the rounds' (above) and the one the processes' own median ratios give (from their spread, once
there are four processes or more), so a run whose processes disagree says so.

Where the machine has two CPUs or more (and ``taskset``, util-linux), the servers are pinned to
one and wrk to another: neither then migrates, nor competes with the other for a core.

On a machine shared with other work even that spread can exceed the few percent a middleware
costs. ``--instructions`` then counts instead of timing: each server runs under valgrind's
cachegrind (Debian package ``valgrind``) and serves ``GET /hello`` over the socket, once 50
and once 50 + ``--requests`` times, from four client threads; the difference of the instructions
its processes executed, less what an idle server executes in the time the longer run took
more (its timers), divided by ``--requests``, is the server's cost per request, HTTP parsing
and socket work included: nearly the same count every time, whatever the neighbours do.

Every server is started here, bounded in time and stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import now, table  # noqa: E402
from _web_apps import ASGI_EXTRA, ASGI_VARIANTS, WSGI_EXTRA, WSGI_VARIANTS  # noqa: E402

TARGETS = {"asgi": 0.95, "wsgi": 0.97}


def cpu_plan() -> tuple[str | None, str | None]:
    """The CPUs for the servers and for wrk: one each, apart, where there are two to pin."""
    if not hasattr(os, "sched_getaffinity") or shutil.which("taskset") is None:
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return str(cpus[0]), str(cpus[1])


SERVER_CPU, WRK_CPU = cpu_plan()


def pinned(cpu: str | None, cmd: list[str]) -> list[str]:
    """``cmd`` run on ``cpu`` (``taskset`` execs it: same PID, children inherit the pin)."""
    return cmd if cpu is None else ["taskset", "-c", cpu, *cmd]


@dataclass
class Server:
    """One server process we started, serving one variant on one port."""

    variant: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    generation: list[int] = field(default_factory=list)
    """For each round, which of the variant's successive processes served it (0 first)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hello"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(kind: str, variant: str, logs: Path, prefix: tuple[str, ...] = ()) -> Server:
    """A server for ``variant`` on a free port; ``prefix`` runs it under a tool (valgrind)."""
    port = free_port()
    env = dict(os.environ, SG_BENCH_VARIANT=variant, PYTHONPATH=str(HERE))
    env.pop("SHADOWGUARD_MODE", None)
    if kind == "asgi":
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "_web_apps:asgi_from_env"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        cmd += ["--log-level", "warning"]
    else:
        cmd = [sys.executable, "-m", "gunicorn", "_web_apps:wsgi_from_env()", "--workers", "1"]
        cmd += ["--worker-class", "sync", "--bind", f"127.0.0.1:{port}"]
        cmd += ["--log-level", "warning"]
    log = logs / f"{kind}-{variant}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            pinned(SERVER_CPU, [*prefix, *cmd]),
            cwd=HERE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(variant, port, process, log)


def wait_ready(server: Server, timeout: float = 60.0, answer_within: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.variant} exited:\n{server.log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(server.url, timeout=answer_within) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{server.variant} did not answer within {timeout:g} s")


def stop(server: Server, timeout: float = 15) -> None:
    """SIGTERM to the process we started (gunicorn's master stops its worker), then SIGKILL to
    the session it leads if it lingers."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def server_cpu(server: Server) -> float:
    """CPU seconds used so far by the server and its workers (gunicorn forks one)."""
    import psutil

    process = psutil.Process(server.process.pid)
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            times = each.cpu_times()
            total += times.user + times.system
    return total


def wrk(url: str, seconds: float, connections: int) -> tuple[float, int]:
    """Requests per second and requests served in one wrk run (one thread: the other core
    serves)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url]
    done = subprocess.run(
        pinned(WRK_CPU, cmd), capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    found = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{done.stdout}\n{done.stderr}")
    errors = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", done.stdout)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses")
    served = re.search(r"(\d+) requests in", done.stdout)
    return float(found.group(1)), int(served.group(1)) if served else 0


def bench(kind: str, variants: tuple[str, ...], args: argparse.Namespace, logs: Path) -> str:
    """The report of ``args.rounds`` shuffled rounds over ``variants``, the servers started
    afresh every ``args.rounds_per_process`` rounds (see the module's docstring)."""
    servers: list[Server] = []
    try:
        for generation, first, last in process_plan(args.rounds, args.rounds_per_process):
            if servers:
                for server in servers:
                    stop(server)
                for server in servers:
                    renew(server, kind, logs)
            else:
                for variant in variants:  # one by one: a failed start leaves the others stoppable
                    servers.append(start(kind, variant, logs))
            for server in servers:
                wait_ready(server)
            for server in servers:  # warm up: imports done, caches filled, JIT-less but warm
                wrk(server.url, 1, args.connections)
            for r in range(first, last):
                for server in round_order(servers, r):
                    before = server_cpu(server)
                    rps, served = wrk(server.url, args.duration, args.connections)
                    server.rps.append(rps)
                    server.cpu_us.append((server_cpu(server) - before) * 1e6 / max(served, 1))
                    server.generation.append(generation)
                    print(
                        f"  {kind} round {r + 1}: {server.variant} {server.rps[-1]:,.0f} req/s",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for server in servers:
            stop(server)
    return report(kind, servers)


def process_plan(rounds: int, per_process: int) -> list[tuple[int, int, int]]:
    """``(generation, first round, end)`` for each set of server processes: ``per_process``
    rounds each (at least one), the last set taking what is left over as well when that is
    under half a set (a process measured for two rounds would add its luck, not a figure)."""
    if rounds <= 0:
        return []
    per_process = max(1, per_process)
    starts = list(range(0, rounds, per_process))
    if len(starts) > 1 and rounds - starts[-1] < per_process / 2:
        starts.pop()
    ends = [*starts[1:], rounds]
    return [(generation, a, b) for generation, (a, b) in enumerate(zip(starts, ends, strict=True))]


def renew(server: Server, kind: str, logs: Path) -> None:
    """``server``'s variant in a new process (the old one stopped), its figures kept."""
    fresh = start(kind, server.variant, logs)
    server.port, server.process, server.log = fresh.port, fresh.process, fresh.log


def round_order(servers: list[Server], round_: int) -> list[Server]:
    """The servers in the order round ``round_`` loads them: shuffled, the same way for a given
    round in every run. A rotation would leave each server always after the same one, and a
    server still winding down its run (closing connections, a batch exporter's thread) slows
    the next one on its CPU: every variant gets every neighbour in turn instead."""
    order = list(servers)
    random.Random(round_).shuffle(order)
    return order


# -- instructions per request (--instructions) --------------------------------------------------

WARM_REQUESTS = 50
IDLE_SECONDS = 20.0


CLIENTS = 4


def serve_requests(url: str, count: int) -> None:
    """``count`` requests from ``CLIENTS`` threads, each request on its own connection
    (gunicorn's sync worker closes every one anyway): the next connection always waits in the
    backlog, so the server never counts a failed ``accept`` or an idle pass of its loop, whose
    number would depend on timing."""
    import threading

    def client(share: int) -> None:
        for _ in range(share):
            with urllib.request.urlopen(url, timeout=120) as answer:
                answer.read()

    shares = [count // CLIENTS + (1 if i < count % CLIENTS else 0) for i in range(CLIENTS)]
    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)


def counted_run(
    kind: str, variant: str, count: int, logs: Path, idle: float = 0.0
) -> tuple[int, float]:
    """Instructions executed by a server (all its processes, start to exit) that answered
    ``count`` requests after it was ready (then idled ``idle`` seconds), under cachegrind; and
    how many seconds it ran its loop (from ready to stopped: its timers tick meanwhile)."""
    stem = logs / f"cg-{kind}-{variant}-{count}-{idle:g}"
    for old in logs.glob(f"{stem.name}.*.out"):
        old.unlink()
    prefix = (
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        f"--cachegrind-out-file={stem}.%p.out",
    )
    server = start(kind, variant, logs, prefix)
    started = time.monotonic()
    try:
        # one answered request, counted in both runs alike (none may time out: it would be
        # served all the same, and counted in one run only)
        wait_ready(server, timeout=300, answer_within=120)
        started = time.monotonic()
        serve_requests(server.url, count)
        time.sleep(idle)
    finally:
        stop(server, timeout=120)
    lived = time.monotonic() - started
    total = 0
    for out in logs.glob(f"{stem.name}.*.out"):
        found = re.search(r"^summary:\s*(\d+)", out.read_text(), re.MULTILINE)
        if found:
            total += int(found.group(1))
    if not total:
        raise RuntimeError(f"no cachegrind output for {kind} {variant}: see {server.log}")
    return total, lived


def idle_rate(kind: str, logs: Path) -> float:
    """Instructions per second a bare server spends on its timers while it waits (uvicorn
    ticks ten times a second): what a run's length adds whatever it serves. Under valgrind a
    request lasts tens of milliseconds, longer when neighbours load the machine, so the runs
    are corrected by it."""
    quick, quick_s = counted_run(kind, "bare", 0, logs)
    idled, idled_s = counted_run(kind, "bare", 0, logs, idle=IDLE_SECONDS)
    return max(0.0, (idled - quick) / max(idled_s - quick_s, 1e-3))


def instructions(kind: str, variants: tuple[str, ...], args: argparse.Namespace, logs: Path) -> str:
    """The table of instructions per request over the socket, each variant against bare."""
    per_request: dict[str, float] = {}
    rate = idle_rate(kind, logs)
    print(f"  {kind}: idle server {rate:,.0f} instructions/s", file=sys.stderr)
    for variant in variants:
        low, low_s = counted_run(kind, variant, WARM_REQUESTS, logs)
        high, high_s = counted_run(kind, variant, WARM_REQUESTS + args.requests, logs)
        per_request[variant] = (high - low - rate * (high_s - low_s)) / args.requests
        print(
            f"  {kind}: {variant} {per_request[variant]:,.0f} instructions/request", file=sys.stderr
        )
    bare = per_request["bare"]
    rows = [
        [
            variant,
            f"{count:,.0f}",
            f"{bare / count:.3f}",
            "" if variant == "bare" else f"{count - bare:+,.0f}",
        ]
        for variant, count in per_request.items()
    ]
    server_name = "FastAPI on uvicorn" if kind == "asgi" else "Flask on gunicorn (1 sync worker)"
    lines = [f"### {kind.upper()}: {server_name}, instructions per request (cachegrind)\n"]
    lines.append(table(["variant", "instructions/request", "throughput kept", "added"], rows))
    if "shadowguard" in per_request:
        kept = bare / per_request["shadowguard"]
        goal = TARGETS[kind]
        verdict = "met" if kept >= goal else "**not met**"
        lines.append(
            f"\nshadowguard keeps **{kept:.3f}** of the bare server's throughput by instructions "
            f"per request (target ≥ {goal}: {verdict})."
        )
    return "\n".join(lines) + "\n"


def report(kind: str, servers: list[Server]) -> str:
    bare = next(s for s in servers if s.variant == "bare")
    bare_cpu = statistics.median(bare.cpu_us or [0.0])
    rows = []
    added: dict[str, float] = {}
    ratios: dict[str, float] = {}
    cpu_ratios: dict[str, float] = {}
    spreads: dict[str, str] = {}
    errors: dict[str, str] = {}
    round_ratios: dict[str, list[float]] = {}
    for server in servers:
        median = statistics.median(server.rps)
        cpu = statistics.median(server.cpu_us or [0.0])
        rps_per_round = round_ratios[server.variant] = [
            a / b for a, b in zip(server.rps, bare.rps, strict=True)
        ]
        ratios[server.variant] = statistics.median(rps_per_round)
        per_round = [b / a if a else 1.0 for a, b in zip(server.cpu_us, bare.cpu_us, strict=True)]
        cpu_ratios[server.variant] = (
            statistics.median(per_round) if per_round else ratios[server.variant]
        )
        spreads[server.variant] = _spread(per_round) if server is not bare else ""
        errors[server.variant] = _error(rps_per_round, server.generation)
        # paired, round by round: the medians of two series swing apart in a noisy run
        paired = [a - b for a, b in zip(server.cpu_us, bare.cpu_us, strict=True)]
        added[server.variant] = statistics.median(paired) if paired else cpu - bare_cpu
        rows.append(
            [
                server.variant,
                f"{median:,.0f}",
                f"{min(server.rps):,.0f} .. {max(server.rps):,.0f}",
                f"{ratios[server.variant]:.3f}",
                f"{cpu:,.0f}",
                f"{cpu_ratios[server.variant]:.3f}",
                "" if server is bare else f"{added[server.variant]:+.1f}",
            ]
        )
    server_name = "FastAPI on uvicorn" if kind == "asgi" else "Flask on gunicorn (1 sync worker)"
    lines = [f"### {kind.upper()}: {server_name}\n"]
    headers = ["variant", "median req/s", "range", "vs bare (req/s)", "server CPU µs/req"]
    headers += ["vs bare (CPU)", "CPU µs/req added"]
    lines.append(table(headers, rows))
    noise = ", ".join(f"{variant} {spread}" for variant, spread in spreads.items() if spread)
    if noise:
        lines.append(f"\nPer-round CPU ratios, interquartile range (the noise): {noise}.")
    goal = TARGETS[kind]
    sg, sg_cpu = ratios["shadowguard"], cpu_ratios["shadowguard"]
    verdict = "met" if min(sg, sg_cpu) >= goal else "**not met**"
    if max(sg, sg_cpu) >= goal > min(sg, sg_cpu):
        verdict = "met by one measure only"
    lines.append(
        f"\nshadowguard keeps **{sg:.3f}**{errors['shadowguard']} of the bare app's req/s and "
        f"**{sg_cpu:.3f}** by server CPU per request (target ≥ {goal}: {verdict})."
    )
    if errors["shadowguard"]:
        lines.append(
            "(± the standard error of the median of per-round ratios, from their spread, or "
            "from the spread of each server process's own median where that is larger: the "
            "ratio the machine would give over many rounds lies within twice that of this "
            "one about 19 times in 20, as far as rounds and processes are independent.)"
        )
    guarded = next(s for s in servers if s.variant == "shadowguard")  # as ratios[] above
    per_process = _process_medians(round_ratios["shadowguard"], guarded.generation)
    if len(per_process) > 1:
        lines.append(
            f"shadowguard's ratio in each of its {len(per_process)} processes (req/s, median "
            f"of its rounds): {', '.join(f'{m:.3f}' for m in per_process)}."
        )
    if "otel" in added and added["shadowguard"] > 0:
        lines.append(
            f"OpenTelemetry's middleware adds {added['otel'] / added['shadowguard']:.0f}x the "
            "server CPU per request that shadowguard's adds."
        )
    elif "otel" in added:
        lines.append("shadowguard's added CPU per request is below this run's noise.")
    return "\n".join(lines) + "\n"


def _spread(values: list[float]) -> str:
    """The interquartile range of per-round ratios (the noise a ratio carries)."""
    if len(values) < 4:
        return f"{min(values):.3f} .. {max(values):.3f}" if values else ""
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{q1:.3f} .. {q3:.3f}"


def _error(ratios: list[float], generations: list[int] | None = None) -> str:
    """`` ± `` the standard error of the median of ``ratios``, estimated from their
    interquartile range (robust to the odd round a neighbour spoiled); empty under 8 rounds.
    With ``generations`` (the process of each round) from four processes or more, the error is
    at least the one their own median ratios give: the standard deviation of those medians over
    the root of their number (each process's luck counts once, however many rounds it served)."""
    if len(ratios) < 8:
        return ""
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    sigma = (q3 - q1) / 1.349  # the IQR of a normal distribution is 1.349 sigma
    error = 1.2533 * sigma / len(ratios) ** 0.5  # the median's SE: 1.2533 s/sqrt(n)
    medians = _process_medians(ratios, generations)
    if len(medians) >= 4:
        error = max(error, statistics.stdev(medians) / len(medians) ** 0.5)
    return f" ± {error:.3f}"


def _process_medians(ratios: list[float], generations: list[int] | None) -> list[float]:
    """The median of the per-round ratios each process served (none without ``generations``)."""
    if not generations or len(generations) != len(ratios):
        return []
    by_process: dict[int, list[float]] = {}
    for ratio, generation in zip(ratios, generations, strict=True):
        by_process.setdefault(generation, []).append(ratio)
    return [statistics.median(values) for values in by_process.values()]


def versions() -> str:
    names = ["fastapi", "starlette", "uvicorn", "flask", "gunicorn", "opentelemetry-sdk"]
    names.append("opentelemetry-instrumentation-asgi")
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    if shutil.which("wrk") is not None:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk_version = done.stdout.split()
        found.append(" ".join(wrk_version[:2]) if wrk_version else "wrk")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="asgi,wsgi", help="asgi, wsgi or both")
    parser.add_argument(
        "--duration", type=float, default=1.0, help="seconds per wrk run (whole seconds)"
    )
    parser.add_argument("--rounds", type=int, default=40, help="alternating rounds")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--rounds-per-process",
        type=int,
        default=20,
        help="rounds before every server is restarted (each process is fast or slow its own way)",
    )
    parser.add_argument("--variants", default=None, help="comma-separated subset (with bare)")
    parser.add_argument("--logs", default=None, help="directory for the servers' output")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under valgrind"
    )
    parser.add_argument("--requests", type=int, default=500, help="counted requests")
    args = parser.parse_args(argv)
    if args.instructions:
        return main_instructions(args)
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    logs = _logs(args)
    print(f"# Web benchmark, {now()}\n")
    print(f"- wrk -t1 -c{args.connections}, {args.duration:g} s per run, {args.rounds} rounds")
    processes = len(process_plan(args.rounds, args.rounds_per_process))
    each = f"{args.rounds_per_process} rounds each"
    print(f"- {processes} server process(es) per variant, one after the other ({each})")
    if SERVER_CPU is not None:
        print(f"- servers pinned to CPU {SERVER_CPU}, wrk to CPU {WRK_CPU} (taskset)")
    print(f"- {versions()}\n", flush=True)
    for kind, variants in _selected(args):
        print(bench(kind, variants, args, logs), flush=True)
    return 0


def main_instructions(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is needed: apt-get install -y valgrind", file=sys.stderr)
        return 2
    logs = _logs(args)
    print(f"# Web benchmark, instructions per request, {now()}\n")
    print(f"- {args.requests} requests counted (after {WARM_REQUESTS}), from {CLIENTS} clients")
    print(f"- {versions()}\n", flush=True)
    for kind, variants in _selected(args):
        print(instructions(kind, variants, args, logs), flush=True)
    return 0


def _logs(args: argparse.Namespace) -> Path:
    """The directory for the servers' output (``--logs``, else $TMPDIR/sg-web), created."""
    logs = Path(args.logs) if args.logs else Path(os.environ.get("TMPDIR", "/tmp")) / "sg-web"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def _selected(args: argparse.Namespace) -> list[tuple[str, tuple[str, ...]]]:
    """Each kind asked for (``--only``) with its variants (``--variants``, bare always)."""
    selected = []
    for kind in [k.strip() for k in args.only.split(",") if k.strip()]:
        variants, extra = (
            (ASGI_VARIANTS, ASGI_EXTRA) if kind == "asgi" else (WSGI_VARIANTS, WSGI_EXTRA)
        )
        if args.variants:  # the extra variants (the floor) after the pass-through
            wanted = {"bare", *args.variants.split(",")}
            known = (*variants[:2], *extra, *variants[2:])
            variants = tuple(v for v in known if v in wanted)
        selected.append((kind, variants))
    return selected


if __name__ == "__main__":
    sys.exit(main())
