"""Load and concurrency: exact counts under forced contention, no cross-request attribution.

Threads are released together by a ``Barrier`` while the interpreter switches threads as often
as it can (``sys.setswitchinterval(1e-6)``, restored afterwards); asyncio tasks interleave at
every ``await``. Every count is asserted exactly, in the violations seen, the in-process tallies
and the exported metrics; every violation must land on its own request's span.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry import context, trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from shadowguard import _tallies, assume, configure, guarded
from shadowguard._context import RequestScope, current_request
from shadowguard._report import RateLimiter
from shadowguard.asgi import GuardMiddleware
from shadowguard.testing import capture_violations

THREADS = 64
CALLS = 40


def _race(target: Callable[[int], None], threads: int = THREADS) -> list[BaseException]:
    """Run ``target(i)`` in ``threads`` threads released together; the errors they raised."""
    barrier = threading.Barrier(threads, timeout=30)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(worker.is_alive() for worker in workers), "a thread hung"
    return errors


@pytest.mark.usefixtures("contention")
def test_first_call_of_a_fresh_guard_from_many_threads_counts_exactly(otel: Any) -> None:
    """64 threads race into the first call of a fresh guard (annotations compiled, plan built
    under the race): no exception, every call checked once, every violation counted once in
    the tallies and in the exported metrics."""

    @guarded(assume.not_none("user.email"), assume.size("items", max=2), name="race.fresh")
    def handle(user: dict[str, Any], items: list[int]) -> int:
        return len(items)

    def calls(i: int) -> None:
        for j in range(CALLS):
            assert handle({"email": None if j % 2 else "x"}, [1, 2, 3]) == 3

    with capture_violations() as violations:
        errors = _race(calls)
    assert errors == []
    total = THREADS * CALLS
    kinds = Counter(v.assumption for v in violations)
    assert kinds == {"not_none(user.email)": total // 2, "size(items, max=2)": total}
    assert _tallies.check_counts()["race.fresh"] == total
    metric = otel.metric("shadowguard.violations")
    key = (
        ("shadowguard.assumption", "not_none(user.email)"),
        ("shadowguard.guard", "race.fresh"),
        ("shadowguard.kind", "nullability"),
    )
    assert metric[key] == total // 2
    assert otel.metric("shadowguard.checks")[(("shadowguard.guard", "race.fresh"),)] == total


@pytest.mark.usefixtures("contention")
def test_max_concurrency_sees_every_overlap() -> None:
    """All 64 threads are inside the call at once (a barrier inside it): every one but the very
    first to be counted sees more than one call in flight (calls are counted without a lock, so
    two that start at the same instant may both see the other: 63 or 64 violations, each a real
    overlap), the last sees all 64, and the counter is back to zero afterwards."""
    inside = threading.Barrier(THREADS, timeout=30)

    @guarded(assume.max_concurrency(1), name="race.concurrency")
    def critical(i: int) -> int:
        inside.wait()
        return i

    with capture_violations() as violations:
        results: list[int] = []
        errors = _race(lambda i: results.append(critical(i)))
    assert errors == []
    assert sorted(results) == list(range(THREADS))
    assert THREADS - 1 <= len(violations) <= THREADS
    seen = [int(v.observed.split()[0]) for v in violations]
    assert all(2 <= n <= THREADS for n in seen)
    assert max(seen) == THREADS
    assert critical.__shadowguard__.in_flight == 0


@pytest.mark.usefixtures("contention")
def test_sampled_checks_and_violations_agree_under_contention(otel: Any) -> None:
    """At a 50% sample rate, each checked call breaks the assumption once: the checks metric
    and the violations metric move together, exactly, however the threads interleave."""
    configure(sample_rate=0.5)

    @guarded(assume.not_none("x"), name="race.sampled")
    def f(x: object) -> None:
        return None

    with capture_violations() as violations:
        errors = _race(lambda i: [f(None) for _ in range(CALLS)] and None)
    assert errors == []
    checks = otel.metric("shadowguard.checks")[(("shadowguard.guard", "race.sampled"),)]
    assert 0 < checks < THREADS * CALLS
    assert len(violations) == checks
    assert _tallies.violation_counts()[("race.sampled", "nullability", "not_none(x)")] == checks


@pytest.mark.usefixtures("contention")
def test_one_log_line_per_fingerprint_however_many_threads(logs: list[dict[str, Any]]) -> None:
    """The rate limiter admits a fingerprint once, even when 64 threads report it at once."""

    @guarded(assume.not_none("x"), name="race.logs")
    def f(x: object) -> None:
        return None

    errors = _race(lambda i: [f(None) for _ in range(CALLS)] and None)
    assert errors == []
    assert [e["guard"] for e in logs if e["event"] == "assumption_violated"] == ["race.logs"]


@pytest.mark.usefixtures("contention")
def test_reconfiguring_while_threads_call_never_breaks_a_call() -> None:
    """One thread flips the mode between observe and off and changes the sample rate while 63
    threads call: every call returns its own result, and no more violations than calls."""
    stop = threading.Event()

    @guarded(assume.not_none("x"), assume.latency(ms=60_000), name="race.reconfigure")
    def f(x: object, i: int) -> int:
        return i

    def flip() -> None:
        modes = ["observe", "off"]
        k = 0
        while not stop.is_set():
            configure(mode=modes[k % 2], sample_rate=(k % 4) / 3)
            k += 1

    def work(i: int) -> None:
        if i == 0:
            flip()
            return
        for _ in range(CALLS):
            assert f(None, i) == i
        if i == 1:
            stop.set()

    with capture_violations() as violations:
        errors = _race(work)
    stop.set()
    assert errors == []
    assert len(violations) <= (THREADS - 1) * CALLS


def test_ten_thousand_tasks_keep_their_own_request_scope() -> None:
    """10,000 asyncio tasks, each serving its own request scope and breaking an assumption a
    task-specific number of times between awaits: every scope counts exactly its own."""
    tasks_count = 10_000

    @guarded(assume.not_none("value"), name="tasks.scoped")
    async def step(value: object) -> None:
        await asyncio.sleep(0)

    async def serve(i: int) -> RequestScope:
        scope = RequestScope("GET", None, f"/tasks/{i}")
        current_request.set(scope)
        for _ in range(i % 3 + 1):
            await step(None)
            await asyncio.sleep(0)
        return scope

    async def main() -> list[RequestScope]:
        return await asyncio.gather(*(serve(i) for i in range(tasks_count)))

    with capture_violations() as violations:
        scopes = asyncio.run(main())
    expected = [i % 3 + 1 for i in range(tasks_count)]
    assert [scope.violations for scope in scopes] == expected
    assert len(violations) == sum(expected)
    assert _tallies.violation_counts()[("tasks.scoped", "nullability", "not_none(value)")] == sum(
        expected
    )


@guarded(assume.not_none("order.customer"), name="orders.load")
async def load_order(order: dict[str, Any]) -> dict[str, Any]:
    """A guarded coroutine the app calls once per broken row of a request."""
    await asyncio.sleep(0)
    return order


def test_each_request_s_violations_land_on_its_own_server_span(otel: Any) -> None:
    """400 concurrent requests through OpenTelemetry's ASGI middleware and shadowguard's, each
    breaking an assumption a path-specific number of times, interleaved at every await: each
    server span carries exactly its own request's events (same ``url.path``) and count."""
    requests_count = 400

    async def app(scope: Any, receive: Any, send: Any) -> None:
        n = int(scope["path"].rsplit("/", 1)[1])
        for _ in range(n % 4 + 1):
            await load_order({"customer": None})
            await asyncio.sleep(0)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(n).encode(), "more_body": False})

    stack = OpenTelemetryMiddleware(GuardMiddleware(app), tracer_provider=otel.tracer_provider)

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=stack)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(
                *(client.get(f"/orders/{n}") for n in range(requests_count))
            )

    responses = asyncio.run(main())
    assert [r.text for r in responses] == [str(n) for n in range(requests_count)]
    servers = [s for s in otel.spans() if s.kind.name == "SERVER"]
    assert len(servers) == requests_count
    for span in servers:
        attributes = dict(span.attributes or {})
        path = attributes.get("http.target") or attributes.get("url.path")
        n = int(str(path).rsplit("/", 1)[1])
        events = [e for e in span.events if e.name == "shadowguard.violation"]
        assert len(events) == n % 4 + 1, path
        assert {dict(e.attributes or {})["url.path"] for e in events} == {path}
        assert attributes["shadowguard.violations"] == n % 4 + 1
    own = [s for s in otel.spans() if s.name.startswith("shadowguard ")]
    assert own == [], "a violation left its request's span"


@pytest.mark.usefixtures("contention")
def test_logs_held_back_from_many_threads_are_counted_exactly() -> None:
    """Holding a log back takes no lock, yet the next line's ``suppressed`` counts every one."""
    limiter = RateLimiter(interval=60.0)
    now = [0.0]
    limiter.clock = lambda: now[0]
    assert limiter.admit(("g", "a", "None")) == 0

    def hold(i: int) -> None:
        assert all(limiter.admit(("g", "a", "None")) is None for _ in range(CALLS))

    assert _race(hold) == []
    now[0] = 60.0
    assert limiter.admit(("g", "a", "None")) == THREADS * CALLS
    assert limiter.admit(("g", "a", "None")) is None


@pytest.mark.usefixtures("contention")
def test_one_span_gets_exactly_32_events_from_many_threads(otel: Any) -> None:
    """Threads reporting on one span share its counter: exactly the first 32 get events, and
    every violation is counted."""

    @guarded(assume.not_none("x"), name="race.span")
    def f(x: object) -> None:
        return None

    with otel.tracer.start_as_current_span("shared") as span:
        shared = trace.set_span_in_context(span)

        def report(i: int) -> None:
            token = context.attach(shared)
            try:
                for _ in range(CALLS):
                    f(None)
            finally:
                context.detach(token)

        assert _race(report) == []
    (finished,) = otel.spans()
    assert len(finished.events) == 32
    assert _tallies.violation_counts()[("race.span", "nullability", "not_none(x)")] == (
        THREADS * CALLS
    )
