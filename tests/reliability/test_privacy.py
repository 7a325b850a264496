"""O7, privacy: canary secrets put everywhere a production value can hide (argument values, dict
keys, set members, URLs with userinfo and signed query strings, headers, bodies, exception
messages) never reach span names, attributes, events, metrics or logs by default, in process and
through a real server. With value capture on, redaction holds for compound secret names and
URLs. Enforce-mode messages name the type, path and expectation, never a value.

Everything exported is serialised and searched for the canary, so a leak anywhere fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, TypedDict

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shadowguard import AssumptionViolation, assume, configure, guarded
from shadowguard.asgi import GuardMiddleware
from shadowguard.testing import capture_violations

from .conftest import HERE, Reported, ServerProcess, clean_env, start_privacy_app

CANARY = "sg-canary-7f3a9c"
SECRET = f"{CANARY}-secret"
URLS = [
    f"https://alice:{SECRET}@api.example.com/v1/items",
    f"https://api.example.com/v1/items?page=2&token={SECRET}",
    f"https://bucket.s3.amazonaws.com/o?X-Amz-Credential={SECRET}&X-Amz-Signature={SECRET}",
    f"https://acct.blob.core.windows.net/c/b?sv=2024&sig={SECRET}",
    f"https://app.example.com/callback#access_token={SECRET}&state=1",
    f"postgres://svc:{SECRET}@db.internal:5432/prod",
]


class Row(TypedDict):
    id: int
    email: str


def _exported(otel: Any) -> str:
    """Every finished span (name, attributes, events, status) and every metric, as JSON."""
    spans = [span.to_json(indent=None) for span in otel.spans()]
    metrics = otel.reader.get_metrics_data()
    return "\n".join([*spans, metrics.to_json(indent=None) if metrics else ""])


def _logged(logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> str:
    """Every structlog event and every stdlib log record, the test client's own aside."""
    records = [
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))
    ]
    return "\n".join([*(json.dumps(entry, default=repr) for entry in logs), *records])


# -- guarded functions ----------------------------------------------------------------------------


@guarded(
    assume.not_none("user.email"),
    assume.present("user.address.city"),
    assume.size("tags", max=0),
    assume.ordered("rows", key="id"),
    assume.monotonic("seq", per="user.api_token"),
    assume.raises_only(KeyError),
    assume.that(lambda url: url.startswith("ftp"), "ftp only"),
    name="privacy.everything",
)
def everything(
    user: dict[str, Any],
    tags: set[str],
    rows: list[Row],
    seq: int,
    url: Literal["https://example.com"],
    headers: dict[str, int],
    row: Row,
    fail: bool,
) -> int:
    """Breaks every assumption above and its annotations with secret-laden arguments."""
    if fail:
        raise ValueError(f"upstream rejected {url} with {headers}")
    return "not an int"  # type: ignore[return-value]


def _call_everything(fail: bool, seq: int) -> None:
    everything(
        {"email": None, "api_token": SECRET, SECRET: SECRET, "address": {}},
        {SECRET, f"tag-{SECRET}"},
        [{"id": 2, "email": SECRET}, {"id": 1, "email": SECRET}],
        seq,
        URLS[seq % len(URLS)],  # type: ignore[arg-type]
        {"Authorization": f"Bearer {SECRET}", "Cookie": f"session={SECRET}"},  # type: ignore[dict-item]
        {"id": SECRET, "email": SECRET, SECRET: 1},  # type: ignore[typeddict-unknown-key]
        fail,
    )


def test_canaries_in_arguments_never_leave_the_process_by_default(
    otel: Any, logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """Secrets in values, dict keys, set members, URLs, headers and exception messages break
    every assumption, and none of them is in any span, event, metric or log."""
    caplog.set_level(logging.DEBUG)
    with capture_violations() as violations:
        for seq in (5, 4, 3, 2, 1, 0):
            with contextlib.suppress(ValueError):
                _call_everything(fail=seq % 2 == 0, seq=seq)
        with otel.tracer.start_as_current_span("host request"):
            _call_everything(fail=False, seq=-1)
    kinds = {v.kind for v in violations}
    assert kinds >= {"nullability", "volume", "ordering", "exception", "predicate", "type"}
    assert all(v.value is None for v in violations)
    exported, logged = _exported(otel), _logged(logs, caplog)
    assert "shadowguard.violation" in exported and "assumption_violated" in logged
    assert CANARY not in exported
    assert CANARY not in logged
    assert CANARY not in repr(violations)


@pytest.mark.internal_errors
def test_canaries_in_internal_faults_are_not_logged(reported: Reported) -> None:
    """A predicate that crashes with a secret in its message is logged by type only."""

    def numeric(x: str) -> int:
        return int(x)  # ValueError: invalid literal for int() with base 10: 'sg-canary-...'

    @guarded(assume.that(numeric), name="privacy.crash")
    def f(x: str) -> str:
        return x

    assert f(SECRET) == SECRET
    assert reported.sites() and CANARY not in json.dumps(reported.logs, default=repr)


def _starlette_app() -> Any:
    async def item(request: Request) -> PlainTextResponse:
        body = await request.body()
        everything(
            {"email": None, "api_token": request.headers.get("authorization")},
            {request.cookies.get("session", "")},
            [],
            int(request.path_params["value"]),
            str(request.url),  # type: ignore[arg-type]
            dict(request.headers),  # type: ignore[arg-type]
            {"id": 1, "email": body.decode()},
            False,
        )
        raise RuntimeError(f"crashed with {body!r}")

    return Starlette(routes=[Route("/items/{value}", item, methods=["POST"])])


def test_canaries_in_requests_never_leave_the_process_by_default(
    otel: Any, logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """Through the ASGI middleware: secrets in the path, query string, headers, cookies and body
    of requests that break the request and guard assumptions (and crash the app with a secret
    in the message) reach no telemetry; the route template names the request."""
    caplog.set_level(logging.DEBUG)
    app = GuardMiddleware(_starlette_app(), latency_ms=1e-6, max_body_bytes=1)

    async def main() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for n in range(3):
                response = await client.post(
                    f"/items/{n}?token={SECRET}&X-Amz-Signature={SECRET}",
                    content=SECRET.encode(),
                    headers={
                        "Authorization": f"Bearer {SECRET}",
                        "Cookie": f"session={SECRET}",
                        "X-Api-Key": SECRET,
                    },
                )
                assert response.status_code == 500

    asyncio.run(main())
    exported, logged = _exported(otel), _logged(logs, caplog)
    assert '"http.route": "/items/{value}"' in exported
    assert '"shadowguard.kind": "status"' in exported
    assert CANARY not in exported
    assert CANARY not in logged


@pytest.mark.e2e
def test_canaries_through_a_real_server_never_reach_telemetry(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """A real uvicorn on loopback, a plain ASGI app: an absolute-form request target with
    credentials in its userinfo, a signed query string, secret headers and body; the exported
    spans, metrics and logs carry ``url.path`` without them."""
    server, port, spans, log = start_privacy_app(tmp_path, servers)
    targets = [
        f"http://alice:{SECRET}@api.example.com/charge?token={SECRET}",
        f"/charge?X-Amz-Signature={SECRET}&sig={SECRET}",
    ]
    for target in targets:
        request = (
            f"POST {target} HTTP/1.1\r\nHost: api.example.com\r\n"
            f"Authorization: Basic {SECRET}\r\nCookie: session={SECRET}\r\n"
            f"X-Api-Key: {SECRET}\r\nContent-Length: {len(SECRET)}\r\n"
            f"Connection: close\r\n\r\n{SECRET}"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request.encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200")
    assert server.stop(signal.SIGINT) == 0, server.output()
    exported, logged = spans.read_text(), log.read_text()
    assert '"url.path": "/charge"' in exported
    assert "privacy.charge" in exported and "assumption_violated" in logged
    assert CANARY not in exported
    assert CANARY not in logged
    assert CANARY not in server.output()


# -- value capture on -----------------------------------------------------------------------------


@guarded(
    assume.not_none("api_token"),
    assume.not_none("client_secret"),
    assume.not_none("refresh_token"),
    assume.not_none("credentials.password"),
    assume.size("form", max=0),
    assume.size("urls", max=0),
    assume.size("pairs", max=0),
    assume.size("note", max=0),
    name="privacy.capture",
)
def login(
    api_token: int,
    client_secret: int,
    refresh_token: int,
    credentials: dict[str, Any],
    form: dict[str, str],
    urls: list[str],
    pairs: list[tuple[str, str]],
    note: str | None,
) -> None:
    """Every secret-named parameter gets a wrong-typed secret; containers hold more."""


def _call_login() -> None:
    login(
        api_token=SECRET,  # type: ignore[arg-type]
        client_secret=SECRET,  # type: ignore[arg-type]
        refresh_token=SECRET,  # type: ignore[arg-type]
        credentials={"user": "alice", "password": None, "otp_secret": SECRET},
        form={"api_token": SECRET, "client_secret": SECRET, "refresh_token": SECRET},
        urls=URLS,
        pairs=[("Authorization", f"Bearer {SECRET}"), ("X-Api-Key", SECRET)],
        note="visible-marker",
    )


def test_capture_on_redacts_compound_names_urls_and_pairs(
    otel: Any, logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """``configure(capture_values=True)``: values do reach ``shadowguard.value`` (the harmless
    marker shows), but ``api_token``, ``client_secret``, ``refresh_token``, secret dict keys,
    URL credentials and signatures, and (name, secret) pairs are redacted."""
    configure(capture_values=True)
    with capture_violations() as violations:
        _call_login()
    values = {v.assumption: v.value for v in violations}
    assert values["type(api_token)"] == "[REDACTED]"
    assert values["type(client_secret)"] == "[REDACTED]"
    assert values["type(refresh_token)"] == "[REDACTED]"
    assert values["size(note, max=0)"] == "'visible-marker'"
    exported, logged = _exported(otel), _logged(logs, caplog)
    assert "visible-marker" in exported, "capture is on: values are exported"
    assert "[REDACTED]" in exported
    assert CANARY not in exported
    assert CANARY not in logged
    assert CANARY not in repr(violations)


def test_capture_from_the_environment_redacts_too(tmp_path: Path) -> None:
    """``SHADOWGUARD_CAPTURE_VALUES=1`` in a fresh process: the same redaction holds."""
    script = tmp_path / "capture.py"
    script.write_text(
        "import json, sys\n"
        "from reliability import test_privacy as t\n"
        "from shadowguard.testing import capture_violations\n"
        "with capture_violations() as seen:\n"
        "    t._call_login()\n"
        "print(json.dumps([v.value for v in seen]))\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=clean_env(SHADOWGUARD_CAPTURE_VALUES="1"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=HERE.parent,
    )
    assert proc.returncode == 0, proc.stderr
    values = json.loads(proc.stdout.splitlines()[-1])
    assert any(value and "visible-marker" in value for value in values)
    assert CANARY not in proc.stdout + proc.stderr


# -- enforce mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", [False, True])
def test_enforce_messages_name_type_path_and_hint_but_no_value(otel: Any, capture: bool) -> None:
    """The ``AssumptionViolation`` raised to the caller, and the exception its span records,
    carry the guard, kind, path, expectation and observed shape, never the secret."""
    configure(mode="enforce", capture_values=capture)

    @guarded(assume.not_none("user.email"), name="privacy.enforce")
    def send(user: dict[str, Any], token: int) -> None:
        return None

    tracer = otel.tracer
    with pytest.raises(AssumptionViolation) as info, tracer.start_as_current_span("host request"):
        send({"email": None, "password": SECRET}, SECRET)  # type: ignore[arg-type]
    message = str(info.value)
    for part in ("privacy.enforce", "not_none(user.email)", "user.email", "not None", "token"):
        assert part in message
    assert "expected int, observed str" in message
    assert CANARY not in message
    recorded = [e for s in otel.spans() for e in s.events if e.name == "exception"]
    assert recorded, "the host span recorded the exception"
    assert CANARY not in json.dumps([dict(e.attributes or {}) for e in recorded])
    assert CANARY not in _exported(otel)  # with capture on, ``token`` is a secret name


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        (f"http://alice:{SECRET}@api.example.com/pay", "/pay"),
        (f"https://{SECRET}.example.com", "/"),
        ("*", "*"),
    ],
    ids=["absolute with userinfo", "absolute without path", "asterisk"],
)
def test_the_request_path_never_carries_a_scheme_host_or_credentials(
    otel: Any, target: str, shown: str
) -> None:
    """Whatever request target the server hands over as the path, ``url.path`` keeps only the
    path part."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "OPTIONS", "path": target, "headers": []}
    asyncio.run(GuardMiddleware(app, error_status=200)(scope, receive, send))
    paths = {e["url.path"] for e in otel.events()}
    assert paths == {shown}
    assert CANARY not in _exported(otel)


def test_captured_values_whose_methods_raise_show_their_type_only() -> None:
    """With capture on, a mapping that raises when read, and a list holding a proxy whose
    ``__class__`` raises, are shown by their type name, and nothing is an internal fault."""
    from .oracle import ClassRaises, HostileMapping

    configure(capture_values=True)

    @guarded(assume.size("x", max=0), assume.present("x.missing"), name="privacy.hostile")
    def f(x: int) -> None:
        return None

    with capture_violations() as violations:
        f(HostileMapping())  # type: ignore[arg-type]
        f([ClassRaises()])  # type: ignore[arg-type]
    values = {v.value for v in violations}
    assert values == {"<HostileMapping>", "<list>"}  # the item's isinstance raised in the list
