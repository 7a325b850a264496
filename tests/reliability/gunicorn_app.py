"""The Flask example (``examples/flask_app.py``) as gunicorn serves it with ``--preload``: the
OpenTelemetry SDK and the app are set up once in the master, then forked into the workers.

Spans go through a ``BatchSpanProcessor`` (one exporter thread per process, restarted by the
SDK in each forked worker) to ``SG_SPANS`` as JSON lines carrying the exporting PID; structlog
writes JSON lines with the PID to ``SG_LOG``. Every response names the worker that served it and
the threads it runs (``X-Worker``, ``X-Threads``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

import structlog
from flask import Response
from flask_app import create_app  # examples/ is on PYTHONPATH
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import shadowguard


class JsonLinesExporter(SpanExporter):
    """Appends one JSON line per span (name, PID, violation events) to a shared file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [
            json.dumps(
                {
                    "pid": os.getpid(),
                    "span": span.name,
                    "violations": [
                        dict(event.attributes or {})
                        for event in span.events
                        if event.name == "shadowguard.violation"
                    ],
                }
            )
            for span in spans
        ]
        with open(self.path, "a") as out:
            out.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _with_pid(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    event["pid"] = os.getpid()
    return event


structlog.configure(
    processors=[_with_pid, structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
    logger_factory=structlog.WriteLoggerFactory(file=open(os.environ["SG_LOG"], "a", buffering=1)),  # noqa: SIM115
)
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(BatchSpanProcessor(JsonLinesExporter(os.environ["SG_SPANS"])))
shadowguard.configure(tracer_provider=PROVIDER)

app = create_app()
FlaskInstrumentor().instrument_app(app, tracer_provider=PROVIDER)


@app.after_request
def tell_worker(response: Response) -> Response:
    """Every response names the worker that served it (``X-Worker``) and its threads."""
    response.headers["X-Worker"] = str(os.getpid())
    response.headers["X-Threads"] = ",".join(sorted(t.name for t in threading.enumerate()))
    return response
