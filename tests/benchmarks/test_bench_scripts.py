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
