"""The privacy test's server: a plain ASGI app (no router, so only ``url.path`` can name the
request) behind shadowguard's middleware, whose every response breaks ``error_status`` and
whose guarded function breaks assumptions about arguments full of secrets.

``python -m reliability.privacy_app PORT SPANS LOG`` serves on 127.0.0.1 with a real SDK
exporting every span (attributes, events, status) as JSON lines to SPANS, metrics dumped to
SPANS at exit, structlog JSON lines to LOG.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

import structlog
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import shadowguard
from shadowguard import assume, guarded
from shadowguard.asgi import GuardMiddleware

SPANS_PATH = sys.argv[2] if len(sys.argv) > 2 else "/dev/null"


class DumpingExporter(SpanExporter):
    """Writes everything a backend would receive of each span."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(SPANS_PATH, "a") as out:
            for span in spans:
                out.write(span.to_json(indent=None) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(DumpingExporter()))
READER = InMemoryMetricReader()
METERS = MeterProvider(metric_readers=[READER])
shadowguard.configure(tracer_provider=PROVIDER, meter_provider=METERS)


@guarded(
    assume.not_none("card.cvv"),
    assume.size("tags", max=0),
    assume.ordered("tokens"),
    assume.raises_only(KeyError),
    name="privacy.charge",
)
def charge(card: dict[str, Any], tags: set[str], tokens: list[str], header: str) -> int:
    """Breaks every assumption with the request's secrets, then raises with one."""
    raise ValueError(f"declined: {header}")


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    secret = headers.get("authorization", "")
    with contextlib.suppress(ValueError):
        charge(
            {"number": body.decode(), "cvv": None, headers.get("x-api-key", ""): 1},
            {headers.get("cookie", "")},
            [scope["query_string"].decode(), secret],
            secret,
        )
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


guarded_app = GuardMiddleware(app, error_status=200, max_body_bytes=1, latency_ms=1e-6)


def main(argv: list[str]) -> None:
    import uvicorn

    port, logfile = int(argv[1]), argv[3]
    with open(logfile, "w", buffering=1) as log:
        structlog.configure(
            processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
            logger_factory=structlog.WriteLoggerFactory(file=log),
        )
        try:
            uvicorn.run(guarded_app, host="127.0.0.1", port=port, log_level="warning")
        finally:
            data = READER.get_metrics_data()
            with open(SPANS_PATH, "a") as out:
                out.write(json.dumps({"metrics": data.to_json(indent=None) if data else None}))
                out.write("\n")


if __name__ == "__main__":
    main(sys.argv)
