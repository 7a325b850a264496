"""The demo against a real tracing backend: Arize Phoenix, over OTLP/HTTP, read back by REST.

Skipped only where Phoenix cannot be installed (see ``phoenix.ensure_installed``).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .phoenix import Phoenix, PhoenixUnavailable, demo_command, demo_env, ensure_installed, running

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

CONTRACT_ATTRIBUTES = {
    "shadowguard.guard",
    "shadowguard.assumption",
    "shadowguard.kind",
    "shadowguard.mode",
    "shadowguard.expected",
    "shadowguard.observed",
}
CODE_ATTRIBUTES = {"code.function.name", "code.file.path", "code.line.number"}
DEMO_KINDS = {"nullability", "concurrency", "ordering", "latency", "volume"}
"""What the demo's traffic breaks: a missing key, requests at once, an unsorted batch, a slow
dependency, an oversized payload."""


@pytest.fixture(scope="module")
def phoenix() -> Iterator[Phoenix]:
    """A Phoenix server of its own for this module, stopped at its end."""
    try:
        executable = ensure_installed()
    except PhoenixUnavailable as exc:
        pytest.skip(f"Arize Phoenix cannot be installed here, so no end-to-end run: {exc}")
    with running(executable) as server:
        yield server


def _hex(value: str) -> str:
    return value.removeprefix("0x")


def _local_spans(jsonl: Path) -> dict[str, dict[str, Any]]:
    """The spans the demo exported, by span id, from its ``--jsonl`` record (logs skipped)."""
    spans: dict[str, dict[str, Any]] = {}
    for line in jsonl.read_text().splitlines():
        record = json.loads(line)
        if "context" in record and "events" in record:
            spans[_hex(record["context"]["span_id"])] = record
    return spans


def _template(route: str) -> re.Pattern[str]:
    """A route template (``/orders/{sku}``) as a regex of the paths it matches."""
    return re.compile(re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(route)))


def _violations(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["attributes"] for e in events if e["name"] == "shadowguard.violation"]


def test_every_demo_violation_arrives_on_its_request_span(phoenix: Phoenix, tmp_path: Path) -> None:
    """Each violation the demo reports reaches Phoenix as a ``shadowguard.violation`` event with
    the contract's attributes, on the server span of the request's route."""
    jsonl = tmp_path / "demo.jsonl"
    done = subprocess.run(
        demo_command("--jsonl", str(jsonl)),
        env=demo_env(phoenix),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exported to " + phoenix.url + "/v1/traces: SUCCESS" in done.stdout, done.stdout

    local = {
        span_id: span
        for span_id, span in _local_spans(jsonl).items()
        if _violations(span["events"])
    }
    sent = sum(len(_violations(span["events"])) for span in local.values())
    assert {
        event["shadowguard.kind"]
        for span in local.values()
        for event in _violations(span["events"])
    } == DEMO_KINDS

    def arrived(spans: list[dict[str, Any]]) -> bool:
        return sum(len(_violations(span["events"])) for span in spans) >= sent

    stored = {
        span["context"]["span_id"]: span for span in phoenix.wait_for_spans(arrived, timeout=60)
    }
    assert set(local) <= set(stored), phoenix.log_tail()
    for span_id, sent_span in local.items():
        span = stored[span_id]
        route = span["attributes"]["http.route"]
        assert route == sent_span["attributes"]["http.route"]
        assert span["name"] == sent_span["name"]
        assert span["name"].endswith(" " + route)  # the server span: "POST /orders/{sku}"
        assert span["attributes"]["shadowguard.violations"] >= len(_violations(span["events"]))
        events = _violations(span["events"])
        assert events == _violations(sent_span["events"])
        for event in events:
            assert set(event) >= CONTRACT_ATTRIBUTES, event
            assert event["shadowguard.mode"] == "observe"
            # A check made before routing (the declared Content-Length) knows only the path.
            where = event.get("http.route") or event["url.path"]
            assert _template(route).fullmatch(where), event
            if event["shadowguard.guard"] != "http":  # a guarded function, not the middleware
                assert set(event) >= CODE_ATTRIBUTES, event
