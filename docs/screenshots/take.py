"""Take ``docs/phoenix-violation.png``: a request span's ``shadowguard.violation`` event in Phoenix.

    .venv/bin/python docs/screenshots/take.py [OUTPUT.png [DEMO ARGS...]]

Starts Arize Phoenix (``tests/e2e/phoenix.py``, installed into ``.venv-phoenix`` on first use),
runs ``shadowguard demo`` exporting to it, picks the span of the seed incident (a key missing
instead of ``None``), opens it in headless Debian chromium (``apt-get install -y chromium``),
clicks its **Events** tab and saves the screenshot. Chromium is driven through the DevTools
protocol over ``--remote-debugging-pipe`` (standard library only, no network), and every wait has
a deadline.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.phoenix import Phoenix, demo_command, demo_env, running  # noqa: E402

OUTPUT = ROOT / "docs" / "phoenix-violation.png"
CHROMIUM = "/usr/bin/chromium"
WINDOW = (1400, 940)
STORY_KIND = "nullability"  # the seed incident: a key missing instead of None
DEADLINE_S = 60.0


class Browser:
    """Headless chromium spoken to through the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, executable: str = CHROMIUM) -> None:
        self.profile = tempfile.mkdtemp(prefix="shadowguard-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def pipes_as_3_and_4() -> None:  # runs in the child, before exec
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={self.profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=pipes_as_3_and_4,  # noqa: PLW1509 (this script starts no threads)
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One command, its result (events that arrive meanwhile are dropped)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session is not None:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def open(self, url: str) -> None:
        """A new page at ``url``; later commands go to it."""
        target = self.send("Target.createTarget", {"url": url})
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]
        width, height = WINDOW
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        return until(lambda: self.evaluate(expression), what)

    def click(self, x: float, y: float) -> None:
        """A real mouse click (press and release) at page coordinates."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])

    def close(self) -> None:
        """Stop chromium by PID (SIGTERM, then SIGKILL) and remove its profile."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)


def until(probe: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    """Call ``probe`` until it returns something truthy; fail after the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.25)


def story_span(phoenix: Phoenix) -> dict[str, Any]:
    """The request span of the seed incident (its first ``nullability`` violation)."""

    def find() -> dict[str, Any] | None:
        for span in phoenix.spans():
            for event in span["events"]:
                attributes = event["attributes"]
                if (
                    event["name"] == "shadowguard.violation"
                    and attributes.get("shadowguard.kind") == STORY_KIND
                ):
                    return span
        return None

    span: dict[str, Any] = until(find, f"a span with a {STORY_KIND} violation in Phoenix")
    return span


def center_of(predicate: str) -> str:
    """JavaScript: the page coordinates of the centre of the first visible element matching
    ``predicate`` (an arrow function over elements), or null."""
    return f"""(() => {{
  const found = [...document.querySelectorAll('button, [role=tab]')].find({predicate});
  if (!found) return null;
  const r = found.getBoundingClientRect();
  return r.width > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null;
}})()"""


EVENTS_TAB = center_of("e => e.matches('[role=tab]') && e.textContent.trim().startsWith('Events')")
EVENT_ROW = center_of(
    "e => e.getAttribute('aria-expanded') === 'false'"
    " && e.textContent.includes('shadowguard.violation')"
)
EVENT_SHOWN = """[...document.querySelectorAll('[role=tabpanel]')].some(
  p => p.innerText.includes('shadowguard.observed'))"""


def take(output: Path, demo_args: list[str]) -> None:
    with running() as phoenix:
        done = subprocess.run(demo_command(*demo_args), env=demo_env(phoenix), check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the demo failed with exit status {done.returncode}")
        span = story_span(phoenix)
        browser = Browser()
        try:
            browser.open(phoenix.span_url(span["context"]["span_id"]))
            browser.click(*browser.wait_for(EVENTS_TAB, "the span's Events tab"))
            browser.click(*browser.wait_for(EVENT_ROW, "the shadowguard.violation event"))
            browser.wait_for(EVENT_SHOWN, "the attributes of the shadowguard.violation event")
            time.sleep(1.0)  # let the table finish its layout
            output.write_bytes(browser.screenshot())
        finally:
            browser.close()
    print(f"wrote {output} ({output.stat().st_size // 1024} KB): span {span['name']!r}")


if __name__ == "__main__":
    take(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT, sys.argv[2:])
