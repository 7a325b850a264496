"""Per-request cost of each middleware around a hello app, in process (target 6 of issue 5).

The same apps as ``web_bench.py`` (which measures req/s over the wire with wrk), called straight
through their ASGI/WSGI interface. ``make bench`` times them; ``make test`` runs each once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _web_apps import (
    ASGI_EXTRA,
    ASGI_VARIANTS,
    WSGI_EXTRA,
    WSGI_VARIANTS,
    asgi_app,
    asgi_requests,
    tiny_wsgi,
    wsgi_app,
    wsgi_requests,
    wsgi_requests_between,
)

pytestmark = pytest.mark.bench

BATCH = 20
"""Requests per timed round: one request is too short for a stable timing."""


@pytest.mark.benchmark(group="6 ASGI middleware (20 requests)")
@pytest.mark.parametrize("variant", [*ASGI_VARIANTS, *ASGI_EXTRA])
def test_asgi(benchmark: Any, variant: str) -> None:
    """FastAPI ``GET /hello``, bare and behind each middleware (and the hand-written floor)."""
    app = asgi_app(variant)
    loop = asyncio.new_event_loop()
    try:
        benchmark(lambda: loop.run_until_complete(asgi_requests(app, BATCH)))
    finally:
        loop.close()


@pytest.mark.benchmark(group="6 WSGI middleware (20 requests)")
@pytest.mark.parametrize("variant", [*WSGI_VARIANTS, *WSGI_EXTRA])
def test_wsgi(benchmark: Any, variant: str) -> None:
    """Flask ``GET /hello``, bare and behind each middleware (and the hand-written floor)."""
    app = wsgi_app(variant)
    benchmark(wsgi_requests, app, BATCH)


@pytest.mark.benchmark(group="6 WSGI middleware alone, warm and cold (20 requests)")
@pytest.mark.parametrize("variant", ["bare", "floor", "shadowguard"])
@pytest.mark.parametrize("caches", ["warm", "cold"])
def test_wsgi_alone(benchmark: Any, variant: str, caches: str) -> None:
    """shadowguard's WSGI middleware (and a hand-written floor) in front of an app doing next to
    nothing, in a tight loop (warm) and each request after a Flask one (cold; the Flask request
    is timed too: subtract the cold bare row). Instruction counts miss what the cold rows show,
    and wrk sees it; ``wsgi_cold.py`` times the cold request alone."""
    app = tiny_wsgi(variant)
    flask = wsgi_app("bare") if caches == "cold" else None
    benchmark(wsgi_requests_between, app, flask, BATCH)
