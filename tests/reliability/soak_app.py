"""The soak test's server: a Starlette app behind shadowguard's ASGI middleware, served by a real
uvicorn on loopback (``python -m reliability.soak_app PORT LOGFILE``).

Every request carries a distinct value; the guarded function below breaks three assumptions
with it (a per-account monotonic sequence over ever new accounts, a size, a missing email), so
every cache that could grow with distinct values is exercised. A real OpenTelemetry SDK exports
through a batch processor to a counting exporter; structlog writes JSON lines to ``LOGFILE``.
``GET /_stats`` reports memory (RSS, tracemalloc) and the size of every bounded structure.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import tracemalloc
from collections.abc import Sequence
from typing import Any

import structlog
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

import shadowguard
from shadowguard import _otel, _report, _tallies, assume, guarded
from shadowguard.asgi import GuardMiddleware


class CountingExporter(SpanExporter):
    """Counts exported spans and events, keeps nothing."""

    def __init__(self) -> None:
        self.spans = 0
        self.events = 0
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self.spans += len(spans)
            self.events += sum(len(span.events) for span in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


EXPORTER = CountingExporter()
TRACER_PROVIDER = TracerProvider()
TRACER_PROVIDER.add_span_processor(BatchSpanProcessor(EXPORTER, max_queue_size=4096))
READER = InMemoryMetricReader()
METER_PROVIDER = MeterProvider(metric_readers=[READER])
shadowguard.configure(tracer_provider=TRACER_PROVIDER, meter_provider=METER_PROVIDER)

SEQUENCE = assume.monotonic("seq", per="account", max_keys=2_000)


@guarded(
    SEQUENCE,
    assume.size("items", max=3),
    assume.not_none("user.email"),
    name="soak.handle",
)
def handle(account: str, seq: int, items: list[int], user: dict[str, Any]) -> int:
    """The guarded domain function: returns the value it was given."""
    return seq


async def item(request: Request) -> PlainTextResponse:
    value = int(request.path_params["value"])
    items = list(range(value % 7))
    result = handle(f"acct-{value}", value, items, {"email": None, "id": value})
    handle(f"acct-{value}", value - 1, items, {"email": "x"})  # goes back: monotonic breaks
    return PlainTextResponse(str(result))


async def stats(request: Request) -> JSONResponse:
    TRACER_PROVIDER.force_flush()  # the batch queue is the host's memory, not shadowguard's
    gc.collect()
    current, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
    READER.get_metrics_data()
    return JSONResponse(
        {
            "rss_kb": _rss_kb(),
            "traced": current,
            "traced_peak": peak,
            "monotonic_keys": len(SEQUENCE._last),
            "span_counts": len(_otel._span_counts),
            "limiter_keys": len(_report.log_limiter._state),
            "violation_series": len(_tallies.violation_counts()),
            "exported_spans": EXPORTER.spans,
            "exported_events": EXPORTER.events,
            "gc_objects": len(gc.get_objects()),
            "allocated_blocks": sys.getallocatedblocks(),
            "threads": sorted(t.name for t in threading.enumerate()),
        }
    )


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


app = GuardMiddleware(
    Starlette(routes=[Route("/items/{value}", item), Route("/_stats", stats)]),
    latency_ms=10_000,
    max_body_bytes=1_000,
)


def main(argv: list[str]) -> None:
    """Serve on 127.0.0.1:PORT, logging JSON lines to LOGFILE, until SIGINT/SIGTERM."""
    import uvicorn

    port, logfile = int(argv[1]), argv[2]
    log = open(logfile, "w", buffering=1)  # noqa: SIM115 - open for the server's lifetime
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=structlog.WriteLoggerFactory(file=log),
        cache_logger_on_first_use=True,
    )
    if "--tracemalloc" in argv:
        tracemalloc.start()
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    finally:
        TRACER_PROVIDER.shutdown()
        METER_PROVIDER.shutdown()
        print(json.dumps({"exported_spans": EXPORTER.spans}), flush=True)
        log.close()


if __name__ == "__main__":
    main(sys.argv)
