"""``shadowguard demo``: the example service on a real uvicorn, production traffic, the summary,
and its telemetry (in memory, JSON lines, OTLP/HTTP)."""

from __future__ import annotations

import http.server
import io
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shadowguard import _cli, _config, _demo, assume, guarded
from shadowguard._demo import DemoError, Request, Scenario

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"
SEED_ASSUMPTIONS = {
    # assumption: (kind, route of the request span)
    "present(users[*].last_login)": ("nullability", "GET /users/active"),
    "max_concurrency(1)": ("concurrency", "POST /orders"),
    "ordered(events, key=ts)": ("ordering", "POST /orders/{order_id}/events"),
    "latency(ms=100)": ("latency", "GET /orders/{order_id}/quote"),
    "size(items, max=100)": ("volume", "POST /orders"),
}
LEGACY = Scenario(
    "a legacy row",
    (
        Request("POST", "/users/import", json=[_demo.LEGACY_ROW]),
        Request("GET", "/users/active"),
    ),
)


@pytest.fixture(scope="module")
def create_app() -> Any:
    """The example service's factory, loaded the way the demo loads it."""
    return _demo.load_app_factory(EXAMPLE)


def _violations(exporter: InMemorySpanExporter) -> list[tuple[str, dict[str, Any]]]:
    return [
        (span.name, dict(event.attributes or {}))
        for span in exporter.get_finished_spans()
        for event in span.events
        if event.name == "shadowguard.violation"
    ]


def test_the_seed_story(create_app: Any) -> None:
    """Each production scenario breaks its assumption on its route's server span, every answer
    equals the unguarded app's, and the summary says so."""
    exporter = InMemorySpanExporter()
    out = io.StringIO()
    settings_before = _config.snapshot()

    code = _demo.run(create_app=create_app, plan=_demo.seed_plan(), out=out, exporters=[exporter])

    text = out.getvalue()
    assert code == 0, text
    for line in (
        "[1/6] tidy traffic, like the tests': 5 requests one by one, status 200, 201",
        "[3/6] two orders at once on a path tested serially: 2 requests at once, status 201",
        "Every request got its normal answer: 17/17 responses",
        "Telemetry stayed in this process",
        # Counts that do not depend on timing: the data decides them.
        "  4x  present(users[*].last_login)  [nullability]\n        route     GET /users/active",
        "  1x  ordered(events, key=ts)  [ordering]",
        "  1x  size(items, max=100)  [volume]",
        "observed  len=150",
    ):
        assert line in text, text
    for assumption, (kind, route) in SEED_ASSUMPTIONS.items():
        assert f"x  {assumption}  [{kind}]\n        route     {route}   guard" in text, text

    seen = _violations(exporter)
    broken = {(span, event["shadowguard.assumption"]) for span, event in seen}
    assert broken >= {(route, assumption) for assumption, (_, route) in SEED_ASSUMPTIONS.items()}
    for span, event in seen:
        assert span == f"{event['http.request.method']} {event['http.route']}"
        assert event["shadowguard.mode"] == "observe"
        # Nothing else breaks, unless a loaded machine makes a fast call slow.
        assert event["shadowguard.assumption"] in SEED_ASSUMPTIONS or (
            event["shadowguard.kind"] == "latency"
        )
    assert _config.snapshot() == settings_before  # the demo leaves shadowguard as it found it


def test_the_cli_writes_json_lines_that_report_ranks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``shadowguard demo --jsonl`` keeps every span and the violation logs, which
    ``shadowguard report`` reads; the host's structlog configuration survives the run."""
    jsonl = tmp_path / "demo.jsonl"
    with structlog.testing.capture_logs() as host_logs:
        config_before = structlog.get_config()
        assert _cli.main(["demo", "--app", str(EXAMPLE), "--jsonl", str(jsonl)]) == 0
        assert structlog.get_config() == config_before
    assert host_logs == []
    assert f"written to {jsonl}" in capsys.readouterr().out

    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    logs = [r for r in records if r.get("event") == "assumption_violated"]
    spans = [r for r in records if "context" in r]
    assert {log["assumption"] for log in logs} >= set(SEED_ASSUMPTIONS)
    assert len(spans) == 17  # one server span per request
    assert spans[0]["resource"]["attributes"]["service.name"] == "shadowguard-demo"
    assert _cli.main(["report", str(jsonl)]) == 0
    report = capsys.readouterr().out
    for assumption in SEED_ASSUMPTIONS:
        assert assumption in report


@dataclass
class Collector:
    """A local OTLP/HTTP receiver: its base URL and the bodies posted to it."""

    url: str
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def _collector(status: int) -> Iterator[Collector]:
    """A collector answering every POST with ``status``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    collector = Collector(f"http://127.0.0.1:{server.server_port}")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            collector.headers.append({k.lower(): v for k, v in self.headers.items()})
            collector.bodies.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_otlp_export_follows_the_standard_environment(
    create_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, the spans and their violation events are posted
    as OTLP protobuf to ``<endpoint>/v1/traces``, with the headers the environment names."""
    out = io.StringIO()
    with _collector(200) as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-project-name=demo-test")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "orders")
        assert _demo.run(create_app=create_app, plan=(LEGACY,), out=out) == 0
    assert f"2 spans exported to {collector.url}/v1/traces: SUCCESS" in out.getvalue()
    (body,) = collector.bodies
    (resource,) = ExportTraceServiceRequest.FromString(body).resource_spans
    resource_attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert resource_attributes["service.name"] == "orders"
    assert collector.headers[0]["x-project-name"] == "demo-test"
    assert collector.headers[0]["content-type"] == "application/x-protobuf"
    events = [
        {a.key: a.value.string_value for a in event.attributes}
        for scope in resource.scope_spans
        for span in scope.spans
        for event in span.events
        if event.name == "shadowguard.violation"
    ]
    assert [e["shadowguard.assumption"] for e in events] == ["present(users[*].last_login)"]


def test_a_failed_export_fails_the_run(create_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A collector that refuses the spans turns into exit status 1 and says so."""
    out = io.StringIO()
    with _collector(400) as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.url + "/custom")
        assert _demo.run(create_app=create_app, plan=(LEGACY,), out=out) == 1
    assert f"exported to {collector.url}/custom: FAILURE" in out.getvalue()


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x",
            },
            "http://t:1/x",
        ),
    ],
)
def test_the_endpoint_is_read_as_the_sdk_reads_it(
    environ: dict[str, str], endpoint: str | None
) -> None:
    """The traces variable wins over the base one, which gets ``/v1/traces`` appended."""
    assert _demo.otlp_endpoint(environ) == endpoint


def test_an_answer_that_changes_is_reported() -> None:
    """The answer check can fail: an app whose answers differ between the two runs gives exit
    status 1 and names the request."""
    apps_made = 0

    def create_app() -> FastAPI:
        nonlocal apps_made
        apps_made += 1
        app = FastAPI()
        generation = apps_made

        @app.post("/echo")
        async def echo() -> dict[str, int]:
            return {"generation": generation}

        return app

    out = io.StringIO()
    plan = (Scenario("echo", (Request("POST", "/echo", body=b"{}"),)),)
    assert _demo.run(create_app=create_app, plan=plan, out=out) == 1
    assert "1 of 1 answers differ from the unguarded app's:\n  echo: POST /echo: another body" in (
        out.getvalue()
    )
    assert "No assumption was broken." in out.getvalue()


def test_a_service_that_does_not_start_is_an_error() -> None:
    """An app whose start-up fails stops the demo with a DemoError, not a hang."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("no database")

    with pytest.raises(DemoError, match="did not start"):
        _demo.run(create_app=lambda: app, plan=(), out=io.StringIO())


def test_findings_outside_a_request(otel: Any) -> None:
    """A violation on shadowguard's own span (no request) is listed with route ``-``, and many
    distinct observations are abbreviated."""

    @guarded(assume.size("rows", max=1), name="demo.rows")
    def load(rows: list[int]) -> int:
        return len(rows)

    for size in range(2, 7):
        load(list(range(size)))
    with otel.tracer.start_as_current_span("unrelated") as span:
        span.add_event("cache.miss")
    (finding,) = _demo.findings(otel.spans())
    assert (finding.route, finding.guard, finding.kind) == ("-", "demo.rows", "volume")
    out = io.StringIO()
    _demo._print_findings([finding], out)
    assert "observed  len=2, len=3, len=4, ...\n" in out.getvalue()
    assert "1 assumption broken, 5 violations in all" in out.getvalue()


def test_a_missing_dependency_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without uvicorn, the instrumentation or (OTLP asked for) the exporter, the demo stops
    before starting anything, with one line naming what is missing and how to install it."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    monkeypatch.delitem(sys.modules, "opentelemetry.instrumentation.fastapi", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http", None)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert _demo.main(["--app", str(EXAMPLE)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "shadowguard demo: error: the demo needs uvicorn, opentelemetry-instrumentation-fastapi,"
        " opentelemetry-exporter-otlp-proto-http: " + _demo.INSTALL_HINT
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus (see 'shadowguard demo --help')"),
        (["--app", "nowhere.py"], "nowhere.py: no such file"),
    ],
)
def test_usage_errors_are_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad arguments give exit status 2 and one line on stderr."""
    assert _demo.main(args) == 2
    assert capsys.readouterr().err == f"shadowguard demo: error: {message}\n"


def test_the_service_file_is_checked(tmp_path: Path) -> None:
    """A file that is no Python module, fails to import, or has no ``create_app`` is refused."""
    text = tmp_path / "app.txt"
    text.write_text("")
    broken = tmp_path / "broken.py"
    broken.write_text("import shadowguard_no_such_module\n")
    empty = tmp_path / "empty.py"
    empty.write_text("")
    with pytest.raises(DemoError, match=r"cannot be imported$"):
        _demo.load_app_factory(text)
    with pytest.raises(DemoError, match="cannot be imported: No module named"):
        _demo.load_app_factory(broken)
    with pytest.raises(DemoError, match="has no create_app"):
        _demo.load_app_factory(empty)


def test_the_default_service_is_found_from_anywhere_in_a_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the checkout the example is found next to the package's sources; where there is
    none, the error says where the service ships."""
    monkeypatch.chdir(tmp_path)
    assert _demo._find_app_file(None) == EXAMPLE
    monkeypatch.setattr(_demo, "APP_FILE", Path("examples", "no_such_app.py"))
    with pytest.raises(DemoError, match="ships with shadowguard's source: run `make demo`"):
        _demo._find_app_file(None)
