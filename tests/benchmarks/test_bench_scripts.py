"""The standalone benchmark scripts still run (briefly): the published figures come from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

HERE = Path(__file__).resolve().parent


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_run_all_quick_prints_its_tables_and_targets() -> None:
    """``run_all.py --quick`` measures every target and ends with the targets table, one row
    per check (tools of the ``bench`` group that are missing show as ``n/a``)."""
    out = run(str(HERE / "run_all.py"), "--quick")
    for title in ("1. mode=off", "2. Observe", "3. Data", "4. Container size", "5. Reporting"):
        assert f"## {title}" in out
    for title in ("6. Middleware", "7. `SHADOWGUARD_OVERHEAD_BUDGET", "8. The tested envelope"):
        assert f"## {title}" in out
    targets = out[out.index("## Targets") :]
    rows = [line for line in targets.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row[2] for row in rows] == sorted(row[2] for row in rows)
    assert {row[2] for row in rows} == set("12345678")
    assert "identity True" in out


def test_plot_sizes_writes_a_png(tmp_path: Path) -> None:
    """``plot_sizes.py`` writes the PNG it is asked for (matplotlib from the bench group)."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "sizes.png"
    printed = run(
        str(HERE / "plot_sizes.py"), "--out", str(out), "--rounds", "1", "--batch-ms", "1"
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| shadowguard |" in printed


def test_wsgi_cold_times_the_floor_and_shadowguard() -> None:
    """``wsgi_cold.py`` prints the cold and warm cost of each variant, and shadowguard's beyond
    the floor (a brief run: the figures mean nothing at this size)."""
    out = run(str(HERE / "wsgi_cold.py"), "--requests", "20", "--rounds", "1")
    for variant in ("bare", "floor", "shadowguard"):
        assert f"| {variant} |" in out
    assert "shadowguard beyond the floor: " in out


def test_the_floor_middleware_keeps_the_request_and_closes_once() -> None:
    """The floor is a fair one: the app sees its request context, the body passes unchanged,
    the app's ``close()`` runs once and the in-flight count drains."""
    sys.path.insert(0, str(HERE))
    from _web_apps import WsgiFloor, wsgi_requests

    seen: list[object] = []
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> object:
            seen.append(floor.request.get(None))
            yield b"x"

        def close(self) -> None:
            closed.append(floor.request.get(None) is not None)

    def app(environ: dict[str, object], start_response: object) -> Body:
        seen.append(floor.request.get(None))
        start_response("200 OK", [])  # type: ignore[operator]
        return Body()

    floor = WsgiFloor(app)
    wsgi_requests(floor, 3)
    assert len(seen) == 6 and all(item is not None for item in seen)
    assert closed == [True, True, True]
    assert len(floor.flight) == 0
    assert floor.request.get(None) is None


def test_the_asgi_floor_keeps_the_request_and_ends_at_the_last_chunk() -> None:
    """The ASGI floor is a fair one too: the app sees its request context, the messages pass
    unchanged, the status is kept, the clock stops at the last chunk and the count drains;
    other scopes pass untouched."""
    import asyncio

    sys.path.insert(0, str(HERE))
    from _web_apps import AsgiFloor

    seen: list[object] = []
    sent: list[dict[str, object]] = []
    flights: list[int] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(floor.request.get(None))
        await send({"type": "http.response.start", "status": 201})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"a", "more_body": True})  # type: ignore[operator]
        flights.append(len(floor.flight))
        await send({"type": "http.response.body", "body": b"b"})  # type: ignore[operator]
        flights.append(len(floor.flight))

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request"}

    floor = AsgiFloor(app)
    asyncio.run(floor({"type": "http"}, receive, send))
    asyncio.run(floor({"type": "lifespan"}, receive, send))
    assert seen[0] is not None and seen[0].status == 201 and not seen[0].late  # type: ignore[attr-defined]
    assert seen[1] is None
    assert [message.get("body") for message in sent] == [None, b"a", b"b"] * 2
    assert flights == [1, 0, 0, 0]
    assert floor.request.get(None) is None


def test_web_bench_report_gives_ratios_and_added_time() -> None:
    """The web report: medians, ratio to bare and time added per request, target verdict."""
    sys.path.insert(0, str(HERE))
    from web_bench import Server, report

    servers = []
    for variant, rps, cpu in (
        ("bare", [1000.0, 1100.0], [100.0, 90.0]),
        ("shadowguard", [990.0, 1078.0], [102.0, 92.0]),
    ):
        server = Server(variant, 0, None, Path("/dev/null"))  # type: ignore[arg-type]
        server.rps, server.cpu_us = rps, cpu
        servers.append(server)
    text = report("asgi", servers)
    assert "| shadowguard | 1,034 | 990 .. 1,078 | 0.985 | 97 | 0.979 | +2.0 |" in text
    assert "**0.985** of the bare app's req/s and **0.979**" in text
    assert "(target ≥ 0.95: met)" in text


def test_web_bench_report_gives_the_ratios_standard_error() -> None:
    """With enough rounds the verdict carries the standard error of the median ratio: the
    per-round ratios' interquartile range / 1.349 * 1.2533 / sqrt(rounds)."""
    sys.path.insert(0, str(HERE))
    from web_bench import Server, report

    bare = Server("bare", 0, None, Path("/dev/null"))  # type: ignore[arg-type]
    guarded = Server("shadowguard", 0, None, Path("/dev/null"))  # type: ignore[arg-type]
    bare.rps = [1000.0] * 16
    guarded.rps = [1000.0 * (0.90 + 0.01 * (i % 8)) for i in range(16)]  # 0.90 .. 0.97
    bare.cpu_us = guarded.cpu_us = [100.0] * 16
    text = report("asgi", [bare, guarded])
    # quartiles of 0.90..0.97 (each twice), n=16: 0.9125 and 0.9575; (0.045/1.349)*1.2533/4
    assert "**0.935** ± 0.010 of the bare app's req/s" in text
    assert "standard error of the median" in text


def test_web_bench_restarts_the_servers_every_so_many_rounds() -> None:
    """Rounds are split among successive server processes, ``per_process`` each; a remainder
    under half a set joins the last set rather than getting a process of its own."""
    sys.path.insert(0, str(HERE))
    from web_bench import process_plan

    assert process_plan(240, 20) == [(g, 20 * g, 20 * g + 20) for g in range(12)]
    assert process_plan(40, 20) == [(0, 0, 20), (1, 20, 40)]
    assert process_plan(15, 20) == [(0, 0, 15)]
    assert process_plan(45, 20) == [(0, 0, 20), (1, 20, 45)]  # 5 left over: joins the last
    assert process_plan(50, 20) == [(0, 0, 20), (1, 20, 40), (2, 40, 50)]
    assert process_plan(0, 20) == []
    assert process_plan(3, 0) == [(0, 0, 1), (1, 1, 2), (2, 2, 3)]  # at least one round each


def test_web_bench_error_counts_each_processs_luck_once() -> None:
    """Processes whose median ratios disagree widen the standard error beyond what the
    rounds' spread says; processes that agree leave the rounds' error as it is."""
    sys.path.insert(0, str(HERE))
    from web_bench import Server, _error, report

    alternating = [0.95 + 0.01 * (i % 2) for i in range(40)]  # 0.95, 0.96, ...
    agree = [i // 10 for i in range(40)]  # four processes, each 0.95 and 0.96 alike
    rounds_only = _error(alternating)
    assert _error(alternating, agree) == rounds_only == " ± 0.001"
    # four processes, each steady, at 0.93, 0.95, 0.97 and 0.99: stdev 0.0258 / 2
    stepped = [0.93 + 0.02 * (i // 10) for i in range(40)]
    assert _error(stepped) == " ± 0.007"  # IQR 0.935 .. 0.985: 0.05 / 1.349 * 1.2533 / sqrt(40)
    assert _error(stepped, agree) == " ± 0.013"
    assert _error(stepped, [0] * 20 + [1] * 20) == " ± 0.007"  # two processes: too few to tell

    bare = Server("bare", 0, None, Path("/dev/null"))  # type: ignore[arg-type]
    guarded = Server("shadowguard", 0, None, Path("/dev/null"))  # type: ignore[arg-type]
    bare.rps = [1000.0] * 40
    guarded.rps = [1000.0 * ratio for ratio in stepped]
    bare.cpu_us = guarded.cpu_us = [100.0] * 40
    bare.generation = guarded.generation = agree
    text = report("asgi", [bare, guarded])
    assert "**0.960** ± 0.013 of the bare app's req/s" in text
    assert "its 4 processes (req/s, median of its rounds): 0.930, 0.950, 0.970, 0.990" in text


def test_web_bench_runs_the_floor_only_when_asked() -> None:
    """``--variants`` may name the hand-written floors (not run by default), placed after the
    pass-through; bare is always measured."""
    import argparse

    sys.path.insert(0, str(HERE))
    from web_bench import _selected

    def chosen(only: str, variants: str | None) -> list[tuple[str, tuple[str, ...]]]:
        return _selected(argparse.Namespace(only=only, variants=variants))

    assert "floor" not in chosen("wsgi", None)[0][1]
    assert chosen("wsgi", "shadowguard,floor,pass-through") == [
        ("wsgi", ("bare", "pass-through", "floor", "shadowguard"))
    ]
    assert chosen("asgi", "floor,shadowguard") == [("asgi", ("bare", "floor", "shadowguard"))]
