"""``shadowguard demo``: the seed incident end to end, on a real server, in a few seconds.

A small FastAPI service (``examples/fastapi_app.py``) whose tests pass is served by uvicorn on
127.0.0.1 twice: once with shadowguard switched off, for the answers an unguarded app gives,
then in observe mode under production-like traffic that breaks what its tests assumed (a key
missing instead of ``None``, two requests at once, an out-of-order batch, a slow dependency, an
oversized payload). The demo checks that every request got the same answer both times and
prints each broken assumption, read back from the ``shadowguard.violation`` span events.

Telemetry stays in the process unless asked: ``--jsonl PATH`` writes the spans and the
``assumption_violated`` logs as JSON lines (``shadowguard report PATH`` ranks them), and with
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) set the spans go to that OTLP/HTTP
endpoint, configured by the standard OpenTelemetry environment variables.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["DemoError", "Request", "Scenario", "main", "run"]

INSTALL_HINT = (
    'pip install "shadowguard[otlp,fastapi]" uvicorn opentelemetry-instrumentation-fastapi'
)
APP_FILE = Path("examples", "fastapi_app.py")
SERVICE_NAME = "shadowguard-demo"
START_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 15.0
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class DemoError(Exception):
    """Something the demo needs is missing: one line for the user, exit status 2."""


# -- the traffic -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request of the demo traffic."""

    method: str
    path: str
    json: Any = None
    body: bytes | None = None

    def payload(self) -> bytes | None:
        """The request body: ``body`` as given, else ``json`` encoded, else none."""
        if self.body is not None:
            return self.body
        return None if self.json is None else json.dumps(self.json).encode()


@dataclass(frozen=True)
class Scenario:
    """Production traffic that breaks one assumption the tests made without saying so."""

    title: str
    requests: tuple[Request, ...]
    at_once: bool = False
    """Send the requests all at once (a barrier starts them together), else one by one."""


@dataclass(frozen=True)
class Answer:
    """What the service answered: all a client can see of a request."""

    status: int
    body: bytes


ORDER = {"user_id": 1, "items": [{"sku": "tea", "qty": 2, "price": 3.5}]}
LEGACY_ROW = {"id": 7, "name": "Old", "email": "old@example.com"}  # no last_login at all
BIG_ORDER = {"user_id": 1, "items": [{"sku": f"s{i}", "qty": 1, "price": 1.0} for i in range(150)]}


def seed_plan() -> tuple[Scenario, ...]:
    """The traffic for ``examples/fastapi_app.py``: first what its tests sent, then what
    production sends and the tests never did (see the example's docstring)."""
    return (
        Scenario(
            "tidy traffic, like the tests'",
            (
                Request("GET", "/health"),
                Request("GET", "/users/active"),
                Request("POST", "/orders", json=ORDER),
                Request("POST", "/orders/1/events", json=[{"ts": 10, "status": "paid"}]),
                Request("GET", "/orders/1/quote?currency=EUR"),
            ),
        ),
        Scenario(
            "a key missing instead of None (a legacy import)",
            (
                Request("POST", "/users/import", json=[LEGACY_ROW]),
                *(Request("GET", "/users/active") for _ in range(4)),
            ),
        ),
        Scenario(
            "two orders at once on a path tested serially",
            (Request("POST", "/orders", json=ORDER), Request("POST", "/orders", json=ORDER)),
            at_once=True,
        ),
        Scenario(
            "an out-of-order event batch",
            (
                Request(
                    "POST",
                    "/orders/1/events",
                    json=[{"ts": 30, "status": "shipped"}, {"ts": 20, "status": "packed"}],
                ),
            ),
        ),
        Scenario(
            "a slow dependency (the legacy JPY rate feed)",
            tuple(Request("GET", "/orders/1/quote?currency=JPY") for _ in range(3)),
        ),
        Scenario("an oversized order (150 items)", (Request("POST", "/orders", json=BIG_ORDER),)),
    )


# -- dependencies and the service ------------------------------------------------------------


REQUIREMENTS = {
    # module: the distribution that brings it
    "fastapi": "fastapi",
    "shadowguard_fastapi": "shadowguard-fastapi",
    "uvicorn": "uvicorn",
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.instrumentation.fastapi": "opentelemetry-instrumentation-fastapi",
}
OTLP_REQUIREMENT = {
    "opentelemetry.exporter.otlp.proto.http": "opentelemetry-exporter-otlp-proto-http"
}


def require(otlp: bool) -> None:
    """Fail with one line and the install command if an optional dependency is missing, before
    anything starts (the demo imports them lazily: they are no dependencies of the library)."""
    wanted = {**REQUIREMENTS, **(OTLP_REQUIREMENT if otlp else {})}
    missing = [dist for module, dist in wanted.items() if not _importable(module)]
    if missing:
        raise DemoError(f"the demo needs {', '.join(missing)}: {INSTALL_HINT}")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def _find_app_file(explicit: str | None) -> Path:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise DemoError(f"{explicit}: no such file")
        return path
    checkout = Path(__file__).resolve().parents[2]  # src/shadowguard/_demo.py in a clone
    for root in (Path.cwd(), checkout):
        candidate = root / APP_FILE
        if candidate.is_file():
            return candidate
    raise DemoError(
        f"the demo's service, {APP_FILE.as_posix()}, ships with shadowguard's source:"
        " run `make demo` in a clone of the repository, or pass --app PATH"
    )


def load_app_factory(path: Path) -> Callable[[], Any]:
    """``create_app`` of the example service file at ``path``."""
    spec = importlib.util.spec_from_file_location("shadowguard_demo_service", path)
    if spec is None or spec.loader is None:
        raise DemoError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise DemoError(f"{path}: cannot be imported: {exc}") from None
    factory = getattr(module, "create_app", None)
    if not callable(factory):
        raise DemoError(f"{path}: has no create_app() factory")
    return factory  # type: ignore[no-any-return]


class Server:
    """An ASGI app served by uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        # log_config=None: uvicorn leaves the host's logging configuration alone.
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", loop="asyncio", http="h11"
        )
        self._server = uvicorn.Server(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits when the app's start-up fails
            self._server.run(sockets=[self._socket])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._stop()
                raise DemoError("the demo's service did not start (see the output above)")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def _stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(START_TIMEOUT_S)
        self._socket.close()

    def send(self, request: Request) -> Answer:
        """Send one request on a fresh connection and read the whole answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            payload = request.payload()
            headers = {"content-type": "application/json"} if payload is not None else {}
            connection.request(request.method, request.path, body=payload, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, response.read())
        finally:
            connection.close()

    def drive(self, scenario: Scenario) -> list[Answer]:
        """Every request of ``scenario``; answers in the order of its requests."""
        if not scenario.at_once:
            return [self.send(request) for request in scenario.requests]
        barrier = threading.Barrier(len(scenario.requests))

        def send_together(request: Request) -> Answer:
            barrier.wait(REQUEST_TIMEOUT_S)
            return self.send(request)

        with ThreadPoolExecutor(len(scenario.requests)) as pool:
            return list(pool.map(send_together, scenario.requests))


# -- telemetry ---------------------------------------------------------------------------------


def otlp_endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """The OTLP/HTTP traces endpoint the standard environment variables name, if any."""
    traces = environ.get(ENDPOINT_VARIABLES[0], "").strip()
    if traces:
        return traces
    base = environ.get(ENDPOINT_VARIABLES[1], "").strip()
    return base.rstrip("/") + "/v1/traces" if base else None


@dataclass
class Telemetry:
    """The demo's OpenTelemetry SDK: every span kept in memory, exported when the run ends."""

    provider: TracerProvider
    memory: InMemorySpanExporter

    @classmethod
    def create(cls) -> Telemetry:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        resource = Resource.create()  # honours OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        provider = TracerProvider(resource=resource)
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        return cls(provider, memory)

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.memory.get_finished_spans()

    def shutdown(self) -> None:
        self.provider.shutdown()


def _otlp_exporter() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: from the OTEL_* variables


def _instrument(app: Any, provider: TracerProvider) -> None:
    """OpenTelemetry's own FastAPI instrumentation: one server span per request."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, exclude_spans=["receive", "send"]
    )


@contextlib.contextmanager
def _logs_to(sink: TextIO | None) -> Iterator[None]:
    """shadowguard's structlog events as JSON lines into ``sink`` (dropped without one), for the
    run only: the host's structlog configuration is restored afterwards."""
    import structlog

    was_configured = structlog.is_configured()
    saved = structlog.get_config()

    def drop(*_: object) -> Any:
        raise structlog.DropEvent

    processors: list[Any] = [drop]
    if sink is not None:
        processors = [
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(sort_keys=True),
        ]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.WriteLoggerFactory(sink or sys.stderr),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        if was_configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


@contextlib.contextmanager
def _settings() -> Iterator[None]:
    """shadowguard's settings for the run, restored afterwards (the demo may run in a host)."""
    from shadowguard import _config

    saved = _config.snapshot()
    try:
        yield
    finally:
        _config.restore(saved)


# -- the summary -------------------------------------------------------------------------------


@dataclass
class Finding:
    """One broken assumption on one route, with every observation of it."""

    route: str
    guard: str
    assumption: str
    kind: str
    expected: str
    observed: list[str] = field(default_factory=list)


def findings(spans: Sequence[ReadableSpan]) -> list[Finding]:
    """The ``shadowguard.violation`` events of ``spans``, grouped by route and assumption,
    most frequent first."""
    found: dict[tuple[str, str, str], Finding] = {}
    for span in spans:
        span_attributes = dict(span.attributes or {})
        for event in span.events:
            if event.name != "shadowguard.violation":
                continue
            attributes = {**span_attributes, **dict(event.attributes or {})}
            route = str(attributes.get("http.route") or attributes.get("url.path") or "-")
            method = attributes.get("http.request.method") or attributes.get("http.method")
            if method:
                route = f"{method} {route}"
            guard = str(attributes.get("shadowguard.guard", "?"))
            assumption = str(attributes.get("shadowguard.assumption", "?"))
            key = (route, guard, assumption)
            finding = found.get(key)
            if finding is None:
                finding = found[key] = Finding(
                    route,
                    guard,
                    assumption,
                    str(attributes.get("shadowguard.kind", "?")),
                    str(attributes.get("shadowguard.expected", "?")),
                )
            finding.observed.append(str(attributes.get("shadowguard.observed", "?")))
    return sorted(found.values(), key=lambda f: (-len(f.observed), f.route, f.assumption))


def _observed_text(observed: list[str]) -> str:
    distinct = list(dict.fromkeys(observed))
    if len(distinct) == 1:
        return distinct[0]
    shown = ", ".join(distinct[:3])
    return f"{shown}, ..." if len(distinct) > 3 else shown


def _print_findings(found: list[Finding], out: TextIO) -> None:
    if not found:
        out.write("\nNo assumption was broken.\n")
        return
    total = sum(len(finding.observed) for finding in found)
    out.write(
        f"\n{_plural(len(found), 'assumption')} broken, {_plural(total, 'violation')} in all"
        " (read back from the shadowguard.violation span events):\n"
    )
    for finding in found:
        out.write(f"\n  {len(finding.observed):>3}x  {finding.assumption}  [{finding.kind}]\n")
        out.write(f"        route     {finding.route}   guard {finding.guard}\n")
        out.write(f"        expected  {finding.expected}\n")
        out.write(f"        observed  {_observed_text(finding.observed)}\n")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# -- the run -----------------------------------------------------------------------------------


def _differences(
    plan: Sequence[Scenario], reference: list[list[Answer]], observed: list[list[Answer]]
) -> list[str]:
    """One line per request whose answer under shadowguard differs from the unguarded one."""
    lines: list[str] = []
    for scenario, refs, gots in zip(plan, reference, observed, strict=True):
        for request, ref, got in zip(scenario.requests, refs, gots, strict=True):
            if ref != got:
                same_status = ref.status == got.status
                what = "another body" if same_status else f"{got.status} instead of {ref.status}"
                lines.append(f"  {scenario.title}: {request.method} {request.path}: {what}\n")
    return lines


def _serve(
    create_app: Callable[[], Any], plan: Sequence[Scenario], telemetry: Telemetry, out: TextIO
) -> tuple[list[list[Answer]], list[list[Answer]]]:
    """The plan against a fresh app with shadowguard off (the reference answers), then against
    another one in observe mode, with progress on ``out``."""
    import shadowguard

    total = sum(len(scenario.requests) for scenario in plan)
    out.write(
        "shadowguard demo: a FastAPI service whose tests pass meets production traffic that"
        " breaks what they assumed.\n\n"
        f"  reference: the {_plural(total, 'request')} with shadowguard switched off ..."
    )
    out.flush()
    begun = time.perf_counter()
    shadowguard.configure(mode="off")  # the kill switch: the app as if unguarded
    with Server(create_app()) as server:
        reference = [server.drive(scenario) for scenario in plan]
    out.write(f" answered ({time.perf_counter() - begun:.2f} s)\n")

    shadowguard.configure(
        mode="observe",
        overrides=None,
        sample_rate=1.0,
        overhead_budget=None,
        envelope=None,
        record=None,
        capture_values=False,
        tracer_provider=telemetry.provider,
    )
    app = create_app()
    _instrument(app, telemetry.provider)
    observed: list[list[Answer]] = []
    with Server(app) as server:
        out.write(f"  production: shadowguard in observe mode, serving at {server.url}\n")
        out.flush()
        for index, scenario in enumerate(plan):
            begun = time.perf_counter()
            answers = server.drive(scenario)
            observed.append(answers)
            statuses = ", ".join(map(str, sorted({answer.status for answer in answers})))
            how = "at once" if scenario.at_once else "one by one"
            out.write(
                f"    [{index + 1}/{len(plan)}] {scenario.title}: "
                f"{_plural(len(answers), 'request')} {how}, status {statuses}"
                f" ({time.perf_counter() - begun:.2f} s)\n"
            )
            out.flush()
    return reference, observed


def run(
    *,
    create_app: Callable[[], Any],
    plan: Sequence[Scenario],
    out: TextIO,
    jsonl: str | None = None,
    exporters: Sequence[SpanExporter] = (),
) -> int:
    """The demo: reference answers, production traffic in observe mode, the summary, export.

    ``exporters`` receive every span of the run at its end (the tests pass an in-memory one).
    Exit status 0 when every answer equals the unguarded app's, 1 when one differs or the
    export to an OTLP endpoint named by the environment failed.
    """
    started = time.perf_counter()
    endpoint = otlp_endpoint()
    otlp = _otlp_exporter() if endpoint is not None else None
    telemetry = Telemetry.create()
    sink = open(jsonl, "w", encoding="utf-8") if jsonl else None  # noqa: SIM115
    try:
        with _settings(), _logs_to(sink):
            reference, observed = _serve(create_app, plan, telemetry, out)
        spans = telemetry.spans()

        total = sum(len(scenario.requests) for scenario in plan)
        differing = _differences(plan, reference, observed)
        if differing:
            out.write(f"\n{len(differing)} of {total} answers differ from the unguarded app's:\n")
            out.writelines(differing)
        else:
            out.write(
                f"\nEvery request got its normal answer: {total}/{total} responses have the status"
                " and body of the same app with shadowguard switched off.\n"
            )
        _print_findings(findings(spans), out)

        out.write("\n")
        for exporter in exporters:
            exporter.export(spans)
        if sink is not None:
            sink.writelines(span.to_json(indent=None) + "\n" for span in spans)
            out.write(
                f"Telemetry: {_plural(len(spans), 'span')} and the assumption_violated logs"
                f" written to {jsonl} (`shadowguard report {jsonl}` ranks them).\n"
            )
        exported = True
        if otlp is not None:
            result = otlp.export(spans)
            exported = result.name == "SUCCESS"
            out.write(
                f"Telemetry: {_plural(len(spans), 'span')} exported to {endpoint}: {result.name}\n"
            )
        elif sink is None:
            out.write(
                "Telemetry stayed in this process: --jsonl PATH keeps it, and"
                " OTEL_EXPORTER_OTLP_ENDPOINT=http://host:4318 sends it to a tracing backend\n"
                "(in a clone of shadowguard, `make demo-phoenix` shows this run in a local"
                " Arize Phoenix UI).\n"
            )
        out.write(f"Done in {time.perf_counter() - started:.1f} s.\n")
        return 0 if exported and not differing else 1
    finally:
        telemetry.shutdown()
        if otlp is not None:
            otlp.shutdown()
        if sink is not None:
            sink.close()


class _Parser(argparse.ArgumentParser):
    """A usage error is one line (like the rest of the ``shadowguard`` command)."""

    def error(self, message: str) -> NoReturn:
        raise DemoError(f"{message} (see 'shadowguard demo --help')")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="shadowguard demo",
        description="Serve a small FastAPI app, break its tests' assumptions with production-like"
        " traffic, and show what shadowguard reports while every request still succeeds.",
        epilog="With OTEL_EXPORTER_OTLP_ENDPOINT set, the spans go to that OTLP/HTTP endpoint.",
    )
    parser.add_argument(
        "--jsonl", metavar="PATH", help="write the run's spans and logs to PATH, one JSON a line"
    )
    parser.add_argument(
        "--app", metavar="PATH", help=f"the service to run (default: {APP_FILE.as_posix()})"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``shadowguard demo [--jsonl PATH] [--app PATH]``; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        require(otlp=otlp_endpoint() is not None)
        factory = load_app_factory(_find_app_file(args.app))
        return run(create_app=factory, plan=seed_plan(), out=sys.stdout, jsonl=args.jsonl)
    except DemoError as exc:
        print(f"shadowguard demo: error: {exc}", file=sys.stderr)
        return 2
