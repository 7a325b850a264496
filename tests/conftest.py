"""Shared fixtures: real OpenTelemetry SDK with in-memory exporters, clean shadowguard state per
test, and strict internal faults (a swallowed shadowguard error fails the test unless the test
is marked ``internal_errors``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import shadowguard
from shadowguard import _config, _faults, _otel, _report, _tallies
from shadowguard.testing import strict_internal_errors


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "internal_errors: the test expects shadowguard to swallow internal faults"
    )


@dataclass
class Otel:
    """The SDK pieces a test asserts on."""

    tracer_provider: TracerProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    @property
    def tracer(self) -> Any:
        return self.tracer_provider.get_tracer("tests")

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def events(self, name: str = "shadowguard.violation") -> list[dict[str, Any]]:
        """Attributes of every event called ``name`` on every finished span."""
        return [
            dict(event.attributes or {})
            for span in self.spans()
            for event in span.events
            if event.name == name
        ]

    def metric(self, name: str) -> dict[tuple[tuple[str, Any], ...], int]:
        """Current points of a metric, keyed by their sorted attributes."""
        data = self.reader.get_metrics_data()
        points: dict[tuple[tuple[str, Any], ...], int] = {}
        if data is None:
            return points
        for resource_metric in data.resource_metrics:
            for scope_metric in resource_metric.scope_metrics:
                for metric in scope_metric.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:  # type: ignore[union-attr]
                        key = tuple(sorted((point.attributes or {}).items()))
                        points[key] = int(point.value)  # type: ignore[union-attr]
        return points


@pytest.fixture(autouse=True)
def _clean_shadowguard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts from default settings and empty counters, and ends strict."""
    saved = _config.snapshot()
    _config.configure(
        mode="observe",
        overrides=None,
        sample_rate=1.0,
        envelope=None,
        record=None,
        capture_values=False,
        overhead_budget=None,
    )
    _tallies.reset()
    _report.log_limiter.reset()
    _faults.reset()
    with strict_internal_errors() as faults:
        yield
    _config.restore(saved)
    if faults and request.node.get_closest_marker("internal_errors") is None:
        site, exc = faults[0]
        pytest.fail(f"shadowguard swallowed an internal error at {site}: {exc!r}")


@pytest.fixture
def contention() -> Iterator[None]:
    """Force thread switches as often as the interpreter allows; restored afterwards."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.fixture
def otel() -> Iterator[Otel]:
    """A real SDK tracer and meter provider wired into shadowguard (not set globally)."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    _otel.reset()
    shadowguard.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
    _otel.ensure_instruments()
    yield Otel(tracer_provider, exporter, reader)
    shadowguard.configure(tracer_provider=None, meter_provider=None)
    _otel.reset()
    meter_provider.shutdown()
    tracer_provider.shutdown()


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """structlog events emitted by shadowguard (structlog's own capture helper)."""
    with structlog.testing.capture_logs() as captured:
        yield captured
