"""A bounded soak: a real uvicorn process on 127.0.0.1 serves requests that each carry a distinct
value through shadowguard's ASGI middleware and a guarded function breaking three assumptions.

Memory must plateau once the bounded structures are full (RSS, allocated blocks and GC objects
sampled in the server, tracemalloc in the long run), every bounded structure must sit at or
under its cap, and the log must stay at one line per fingerprint (the rate limiter) however many
violations there are. The run is bounded in requests and in seconds, and the server must stop
cleanly on SIGINT.

The default run is sized for CI (``SG_SOAK_REQUESTS``, default 10,000 requests); the long run
(``-m slow`` with ``SG_SOAK_REQUESTS=200000``) also traces allocations with tracemalloc.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import HERE, ServerProcess, clean_env, free_port

REQUESTS = int(os.environ.get("SG_SOAK_REQUESTS", "10000"))
DEADLINE_SECONDS = float(os.environ.get("SG_SOAK_SECONDS", "60"))
SAMPLES = 5
MONOTONIC_KEYS = 2_000  # soak_app's monotonic(max_keys=...)
SPAN_COUNTS_CAP = 4_096  # shadowguard._otel._MAX_TRACKED_SPANS
FINGERPRINTS = 3  # not_none(user.email), size(items) with masked len, monotonic
REQUEST = b"GET /items/%d HTTP/1.1\r\nHost: soak\r\n\r\n"


def _pipelined(port: int, values: list[int], batch: int = 50) -> list[tuple[str, bytes]]:
    """GET /items/<value> for every value over one keep-alive connection, ``batch`` requests
    pipelined at a time; (status, body) of each response, in order."""
    responses: list[tuple[str, bytes]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        buffer = b""
        for start in range(0, len(values), batch):
            chunk = values[start : start + batch]
            sock.sendall(
                b"".join(b"GET /items/%d HTTP/1.1\r\nHost: soak\r\n\r\n" % v for v in chunk)
            )
            got = 0
            while got < len(chunk):
                end = buffer.find(b"\r\n\r\n")
                head = buffer[:end].decode("latin-1").split("\r\n") if end >= 0 else []
                lengths = [
                    h.split(":", 1)[1] for h in head if h.lower().startswith("content-length")
                ]
                if end < 0 or len(buffer) < end + 4 + int(lengths[0]):
                    data = sock.recv(65536)
                    assert data, "the server closed the connection"
                    buffer += data
                    continue
                size = int(lengths[0])
                responses.append((head[0].split()[1], buffer[end + 4 : end + 4 + size]))
                buffer = buffer[end + 4 + size :]
                got += 1
    return responses


def _stats(port: int) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/_stats", timeout=30).json()
    return stats


def _soak(tmp_path: Path, servers: list[ServerProcess], requests: int, tracemalloc: bool) -> None:
    port = free_port()
    log = tmp_path / "shadowguard.jsonl"
    args = [sys.executable, "-m", "reliability.soak_app", str(port), str(log)]
    env = clean_env()
    env.pop("COVERAGE_PROCESS_CONFIG", None)  # a load test: coverage's tracer would only slow it
    server = ServerProcess(
        [*args, "--tracemalloc"] if tracemalloc else args,
        env,
        HERE.parent,
        tmp_path / "server.out",
    )
    servers.append(server)
    server.wait_until(lambda: _stats(port)["exported_spans"] >= 0)

    started = time.monotonic()
    count = max(SAMPLES, requests // 10_000)  # at most 10,000 requests between samples
    per_sample = requests // count
    samples: list[dict[str, Any]] = []
    for sample in range(count):
        values = list(range(sample * per_sample, (sample + 1) * per_sample))
        results: list[Any] = [None, None]

        def drive(k: int, values: list[int] = values, results: list[Any] = results) -> None:
            try:
                results[k] = _pipelined(port, values[k::2])
            except Exception as exc:  # reported by the assertion below
                results[k] = exc

        workers = [threading.Thread(target=drive, args=(k,)) for k in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(DEADLINE_SECONDS + 120)
        for k in range(2):
            assert results[k] == [("200", str(v).encode()) for v in values[k::2]], results[k]
        samples.append({"requests": (sample + 1) * per_sample, **_stats(port)})
        if time.monotonic() - started > DEADLINE_SECONDS:
            break  # bounded in time: judge what was served
    elapsed = time.monotonic() - started
    code = server.stop(signal.SIGINT)
    output = server.output()

    served = samples[-1]["requests"]
    figures = {
        "requests": served,
        "seconds": round(elapsed, 1),
        "rss_kb": [s["rss_kb"] for s in samples],
        "allocated_blocks": [s["allocated_blocks"] for s in samples],
        "gc_objects": [s["gc_objects"] for s in samples],
        "traced": [s["traced"] for s in samples],
    }
    print("soak figures:", json.dumps(figures))
    assert len(samples) >= 4, f"too few samples within {DEADLINE_SECONDS} s: {figures}"

    # bounded structures sit at their caps, however many distinct values went through
    last = samples[-1]
    assert last["monotonic_keys"] == MONOTONIC_KEYS
    assert last["span_counts"] <= SPAN_COUNTS_CAP
    assert last["limiter_keys"] == FINGERPRINTS
    assert last["violation_series"] == FINGERPRINTS
    assert last["exported_spans"] >= served  # every request's violations were exported

    # memory plateaus once they are full (the first sample fills them): what the last two
    # samples hold at least (a leak only grows; the batch processor's queue comes and goes)
    settled = samples[1]
    between = samples[-2]["requests"] - settled["requests"]

    def growth(key: str) -> int:
        return int(min(samples[-1][key], samples[-2][key]) - settled[key])

    assert growth("rss_kb") <= 4096, figures
    # Allocated blocks swing by about 3,500 between samples with no trend (the server's
    # allocator and buffers; measured on these 2-CPU machines): a leak of one block per request
    # still shows, as at least ``between`` blocks.
    assert growth("allocated_blocks") <= max(4000, between // 2), figures
    assert growth("gc_objects") <= max(500, between // 16), figures
    if tracemalloc:
        assert growth("traced") <= 2 * 1024 * 1024, figures

    # the log: one line per fingerprint (then one a minute at most), no internal faults
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    events = [r["event"] for r in records]
    assert "internal_error" not in events
    minutes = int(elapsed // 60) + 1
    assert 1 <= events.count("assumption_violated") <= FINGERPRINTS * minutes, events

    # a clean stop
    assert code == 0, output
    assert "Traceback" not in output, output


@pytest.mark.e2e
def test_soak_through_a_real_uvicorn_memory_plateaus_and_logs_stay_bounded(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """``SG_SOAK_REQUESTS`` (10,000) requests with as many distinct values: memory flat after
    the bounded caches fill, caches at their caps, three log lines, clean SIGINT stop."""
    _soak(tmp_path, servers, REQUESTS, tracemalloc=False)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(DEADLINE_SECONDS + 180)
@pytest.mark.skipif(
    "SG_SOAK_REQUESTS" not in os.environ,
    reason="the long soak runs on demand: SG_SOAK_REQUESTS=200000 pytest -m slow",
)
def test_long_soak_with_tracemalloc(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """The long run: as many requests as asked, allocations traced in the server too."""
    _soak(tmp_path, servers, REQUESTS, tracemalloc=True)
