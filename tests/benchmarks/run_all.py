"""Measure every performance target of shadowguard and print the figures as markdown.

    python tests/benchmarks/run_all.py              # all targets, ~3 minutes
    python tests/benchmarks/run_all.py --only 2,3   # some targets
    python tests/benchmarks/run_all.py --quick      # one short round each (smoke run)

Each group of variants is timed alternately, round after round, in this one process; a ratio is
the median of the per-round ratios against the baseline of the same round, so the figures hold
on a busy machine even when the absolute nanoseconds drift. The comparison tools (beartype,
pydantic, icontract, deal: the ``bench`` dependency group) are optional; missing ones show as
``n/a``. Web figures come from ``web_bench.py``, the size plot from ``plot_sizes.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog
from _harness import CLOCK, Case, Result, fmt_ns, measure, measure_loops, now, paired_ratio, table
from _workloads import (
    ROWS,
    SIGNATURE_ARGS,
    _spin,
    busy,
    environment_off_probe,
    optional,
    rows_variants,
    signature_variants,
    sized_variants,
    with_bad_item,
)

import shadowguard
from shadowguard import AssumptionViolation, assume, guarded
from shadowguard.testing import configured

TOOLS = (
    "shadowguard",
    "wrapt",
    "typeguard",
    "beartype",
    "pydantic",
    "icontract",
    "deal",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "structlog",
)


@dataclass
class Check:
    """One target of issue 5: what was measured against what was asked."""

    target: str
    measured: str
    goal: str
    met: bool | None


@dataclass
class Section:
    """The markdown of one target and its checks."""

    title: str
    body: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


@dataclass
class Options:
    rounds: int
    target_s: float
    quick: bool


def _rows(results: dict[str, Result], baseline: str | None) -> list[list[str]]:
    rows = []
    for name, result in results.items():
        ratio = "" if baseline is None else _x(paired_ratio(results, name, baseline))
        rows.append([name, fmt_ns(result.median), fmt_ns(result.best), ratio])
    return rows


def _cases(variants: dict[str, Any], args: str) -> list[Case]:
    """One :class:`Case` per installed variant, calling it as ``f(<args>)``."""
    return [
        Case(name, f"f({args})", {"f": func, "items": SIGNATURE_ARGS[2], "rows": ROWS})
        for name, func in variants.items()
        if func is not None
    ]


def _x(ratio: float) -> str:
    return f"{ratio:.2f}x"


def _met(value: float, limit: float, smaller: bool = True) -> bool:
    return value <= limit if smaller else value >= limit


# -- target 1 -----------------------------------------------------------------------------------


def target_off(opts: Options) -> Section:
    section = Section("1. mode=off")
    variants = signature_variants()
    chosen = {
        name: variants[name]
        for name in (
            "plain call",
            "functools.wraps closure",
            "wrapt pass-through",
            "shadowguard mode='off'",
        )
    }
    results = measure(_cases(chosen, "1, 'x', items"), opts.rounds, opts.target_s)
    with configured(mode="off"):
        glob = measure(
            _cases(
                {
                    "wrapt pass-through": variants["wrapt pass-through"],
                    "shadowguard, configure(mode='off')": variants["shadowguard observe (types)"],
                },
                "1, 'x', items",
            ),
            opts.rounds,
            opts.target_s,
        )
    section.body.append(
        table(
            ["variant", "median ns/call", "best ns/call", "vs wrapt"],
            _rows(results, "wrapt pass-through") + _rows(glob, "wrapt pass-through")[1:],
        )
    )
    child = _environment_off(opts)
    section.body.append(
        "\n`SHADOWGUARD_MODE=off` at import (child process): the decorator returns the function "
        f"itself: **{child['identical']}**; undecorated {fmt_ns(child['plain'])} ns, decorated "
        f"{fmt_ns(child['decorated'])} ns per call ({child['ratio']:.2f}x)."
    )
    off = paired_ratio(results, "shadowguard mode='off'", "wrapt pass-through")
    off_global = paired_ratio(glob, "shadowguard, configure(mode='off')", "wrapt pass-through")
    worst = max(off, off_global)
    section.checks.append(
        Check("1. off vs wrapt pass-through", _x(worst), "≤ 1.2x", _met(worst, 1.2))
    )
    section.checks.append(
        Check(
            "1. SHADOWGUARD_MODE=off at import",
            f"identity {child['identical']}, {child['ratio']:.2f}x",
            "nothing measurable",
            bool(child["identical"]),
        )
    )
    return section


def _environment_off(opts: Options) -> dict[str, Any]:
    env = dict(os.environ, SHADOWGUARD_MODE="off")
    cmd = [sys.executable, __file__, "--env-off-child", str(opts.rounds), str(opts.target_s)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=300)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _environment_off_child(rounds: int, target_s: float) -> None:
    from _workloads import _signature_function

    probe = environment_off_probe()
    plain = _signature_function()
    decorated = guarded(name="bench.env_off2")(_signature_function())
    results = measure(
        _cases({"plain": plain, "decorated": decorated}, "1, 'x', items"), rounds, target_s
    )
    print(
        json.dumps(
            {
                "identical": probe["identical"],
                "plain": results["plain"].median,
                "decorated": results["decorated"].median,
                "ratio": paired_ratio(results, "decorated", "plain"),
            }
        )
    )


# -- target 2 -----------------------------------------------------------------------------------


def target_types(opts: Options) -> Section:
    section = Section("2. Observe, types only: `f(a: int, b: str, items: list[int]) -> int`")
    variants = signature_variants()
    variants.pop("shadowguard mode='off'")
    results = measure(_cases(variants, "1, 'x', items"), opts.rounds, opts.target_s)
    section.body.append(
        table(
            ["variant", "median ns/call", "best ns/call", "vs plain"], _rows(results, "plain call")
        )
    )
    sg = "shadowguard observe (types)"
    if "beartype" in results:
        ratio = paired_ratio(results, sg, "beartype")
        section.checks.append(
            Check("2. types vs beartype", _x(ratio), "≤ 2x (aim 1.5x)", _met(ratio, 2.0))
        )
    else:
        section.checks.append(Check("2. types vs beartype", "n/a", "≤ 2x", None))
    faster = paired_ratio(results, "typeguard @typechecked", sg)
    section.checks.append(
        Check(
            "2. types vs typeguard @typechecked",
            f"{faster:.1f}x faster",
            "≥ 10x faster",
            _met(faster, 10.0, smaller=False),
        )
    )
    return section


# -- target 3 -----------------------------------------------------------------------------------


def target_data(opts: Options) -> Section:
    section = Section(
        "3. Data assumptions: `present(rows[*].id)`, `size(rows, max=1000)`, "
        "`ordered(rows, key=ts)` over 10 rows + `latency(ms=250)`"
    )
    results = measure(_cases(rows_variants(), "rows, 5"), opts.rounds, opts.target_s)
    section.body.append(
        table(
            ["variant", "median ns/call", "best ns/call", "vs plain"], _rows(results, "plain call")
        )
    )
    sg = "shadowguard present+size+ordered+latency"
    if "icontract @require (one)" in results:
        ratio = paired_ratio(results, sg, "icontract @require (one)")
        section.checks.append(
            Check("3. data + latency vs icontract @require", _x(ratio), "< 1x", ratio < 1.0)
        )
    else:
        section.checks.append(Check("3. data + latency vs icontract", "n/a", "< 1x", None))
    return section


# -- target 4 -----------------------------------------------------------------------------------

ODDS_CALLS = (1, 10, 100, 1_000)


def target_sizes(opts: Options) -> Section:
    section = Section("4. Container size: `total(items: list[int])`, 10 vs 100,000 items")
    guard = sized_variants()["shadowguard"]
    small, large = list(range(10)), list(range(100_000))
    cases = [
        Case("10 items", "f(small)", {"f": guard, "small": small}),
        Case("100,000 items", "f(large)", {"f": guard, "large": large}),
    ]
    results = measure(cases, opts.rounds, opts.target_s)
    section.body.append(
        table(
            ["shadowguard", "median ns/call", "best ns/call", "vs 10 items"],
            _rows(results, "10 items"),
        )
    )
    ratio = paired_ratio(results, "100,000 items", "10 items")
    section.checks.append(
        Check("4. list[int] 100,000 vs 10 items", _x(ratio), "≤ 1.5x", _met(ratio, 1.5))
    )
    odds = _bug_odds(opts)
    headers = [
        "checker",
        "items",
        *(f"found within {k} call{'s' if k > 1 else ''}" for k in ODDS_CALLS),
    ]
    section.body.append(
        "\nOdds that one bad item (a `str`) at a random position is reported within k calls of "
        f"the same list ({odds['trials']} random lists per size):\n"
    )
    section.body.append(
        table(
            headers,
            [
                [who, f"{size:,}", *(f"{p:.0%}" for p in probs)]
                for (who, size), probs in odds["rows"]
            ],
            right=2,
        )
    )
    sg100 = dict(odds["rows"])[("shadowguard", 100)]
    first100 = dict(odds["rows"])[("first item (typeguard default)", 100)]
    better = sg100[-1] > first100[-1]
    section.checks.append(
        Check(
            "4. bug-finding odds vs first-item check",
            f"{sg100[-1]:.0%} vs {first100[-1]:.0%} within {ODDS_CALLS[-1]} calls (100 items)",
            "better",
            better,
        )
    )
    return section


def _bug_odds(opts: Options) -> dict[str, Any]:
    import typeguard

    trials = 20 if opts.quick else 200
    rng = random.Random(5)
    beartype = optional("beartype")

    def item_total(items: list[int]) -> int:
        return 0

    checkers: dict[str, Callable[[list[Any]], bool]] = {}
    enforced = guarded(name="bench.odds", mode="enforce")(item_total)

    def shadowguard_found(items: list[Any]) -> bool:
        try:
            enforced(items)
        except AssumptionViolation:
            return True
        return False

    checkers["shadowguard"] = shadowguard_found

    def first_item(items: list[Any]) -> bool:
        try:
            typeguard.check_type(items, list[int])
        except typeguard.TypeCheckError:
            return True
        return False

    checkers["first item (typeguard default)"] = first_item
    if beartype is not None:
        from beartype.door import is_bearable

        checkers["beartype (one random item)"] = lambda items: not is_bearable(items, list[int])

    rows = []
    for who, found in checkers.items():
        for size in (100, 10_000):
            hits = [0] * len(ODDS_CALLS)
            for _ in range(trials):
                items, _position = with_bad_item(size, rng)
                first = None
                for call in range(1, ODDS_CALLS[-1] + 1):
                    if found(items):
                        first = call
                        break
                for i, k in enumerate(ODDS_CALLS):
                    hits[i] += first is not None and first <= k
            rows.append(((who, size), [h / trials for h in hits]))
    return {"trials": trials, "rows": rows}


# -- target 5 -----------------------------------------------------------------------------------


def target_violations(opts: Options) -> Section:
    section = Section("5. Reporting violations (OpenTelemetry SDK, structlog JSON)")
    from opentelemetry import context, trace
    from opentelemetry.sdk.trace import TracerProvider

    from shadowguard import _otel, _report
    from shadowguard.wsgi import GuardMiddleware

    provider = TracerProvider()
    tracer = provider.get_tracer("bench")
    sg = guarded(name="bench.violation")(_signature())
    items = SIGNATURE_ARGS[2]
    guard = sg.__shadowguard__
    code = guard.code
    with configured(tracer_provider=provider):
        sg(1, "x", items)
        with tracer.start_as_current_span("probe"), _captured() as seen:
            sg(1, 2, items)  # one violation (b is not a str), to copy its exact attributes
        violation = seen[0]
        attributes = _otel.event_attributes(violation, code, None)

        def one_loop(op: Callable[[Any], Any]) -> Callable[[int], float]:
            """``op`` once on each of ``n`` fresh current spans; spans made and ended untimed,
            making each current (attach/detach) timed: the "nothing" op measures that part."""

            def run(n: int) -> float:
                spans = [tracer.start_span("request") for _ in range(n)]
                current = [trace.set_span_in_context(span) for span in spans]
                attach, detach = context.attach, context.detach
                started = CLOCK()
                for span, ctx in zip(spans, current, strict=True):
                    token = attach(ctx)
                    op(span)
                    detach(token)
                elapsed = CLOCK() - started
                for span in spans:
                    span.end()
                return elapsed

            return run

        bare = "bare span.add_event (same attributes)"
        one = "guarded call, one violation (all sinks)"
        ops: dict[str, Callable[[int], float]] = {
            "nothing (attach/detach only)": one_loop(lambda span: None),
            bare: one_loop(
                lambda span: span.add_event("shadowguard.violation", attributes=attributes)
            ),
            "guarded call, no violation": one_loop(lambda span: sg(1, "x", items)),
            one: one_loop(lambda span: sg(1, 2, items)),
            "report only (_report.emit of one violation)": one_loop(
                lambda span: _report.emit(guard.name, [violation], code, None)
            ),
        }
        count = 100 if opts.quick else 1_000
        raw = measure_loops(ops, dict.fromkeys(ops, count), max(opts.rounds, 21))
        results = _net(raw, "nothing (attach/detach only)")
        section.body.append(
            table(
                ["one violation on a fresh current span", "median ns/op", "best ns/op", "vs bare"],
                _rows(results, bare),
            )
        )
        section.body.append(
            "\nNet of making the span current (the same in every variant, measured alone: "
            f"{fmt_ns(raw['nothing (attach/detach only)'].median)} ns)."
        )
        ratio = paired_ratio(results, one, bare)
        section.checks.append(
            Check(
                "5. one violation (event, metric, log) vs add_event",
                _x(ratio),
                "≤ 2x",
                _met(ratio, 2.0),
            )
        )

        # A flood: every call of one request violates (WSGI middleware, OTel server span).
        per_request = 200 if opts.quick else 2_000

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            for _ in range(per_request):
                sg(1, 2, items)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        def bare_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            for _ in range(per_request):
                sg(1, "x", items)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        def serve(wsgi: Any) -> Callable[[int], float]:
            def run(n: int) -> float:
                started = CLOCK()
                for _ in range(n):
                    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/flood"}
                    environ["wsgi.input"] = io.BytesIO()
                    with tracer.start_as_current_span("GET /flood"):
                        body = wsgi(environ, lambda status, headers, exc_info=None: None)
                        for _chunk in body:
                            pass
                        if hasattr(body, "close"):  # as a WSGI server does
                            body.close()
                return (CLOCK() - started) / per_request

            return run

        flood = {
            "every call violates": serve(GuardMiddleware(app)),
            "no call violates": serve(GuardMiddleware(bare_app)),
        }
        requests = 2 if opts.quick else 5
        flooded = measure_loops(flood, dict.fromkeys(flood, requests), opts.rounds)
        section.body.append(
            f"\nFlood: {per_request:,} guarded calls in one request (WSGI `GuardMiddleware`, "
            "OTel server span), amortised per call:\n"
        )
        section.body.append(
            table(
                ["calls of one request", "median ns/call", "best ns/call", "vs no violation"],
                _rows(flooded, "no call violates"),
            )
        )
        per_call = flooded["every call violates"].median / 1000
        section.checks.append(
            Check(
                "5. flood, every call violates", f"{per_call:.2f} µs/call", "≤ 3 µs", per_call <= 3
            )
        )
    return section


def _net(results: dict[str, Result], overhead: str) -> dict[str, Result]:
    """Each variant minus the ``overhead`` variant of the same round (which is dropped)."""
    base = results[overhead].samples
    return {
        name: Result(name, [x - b for x, b in zip(result.samples, base, strict=True)])
        for name, result in results.items()
        if name != overhead
    }


@contextlib.contextmanager
def _captured() -> Iterator[list[Any]]:
    from shadowguard.testing import capture_violations

    with capture_violations() as seen:
        yield seen


def _signature() -> Callable[..., Any]:
    def f(a: int, b: str, items: list[int]) -> int:
        return a

    return f


# -- target 6 -----------------------------------------------------------------------------------


def target_middleware(opts: Options) -> Section:
    """In-process cost per request of each middleware around a hello app: the same apps as
    ``web_bench.py`` called straight through their ASGI/WSGI interface, no sockets, so the
    figures hold on a busy machine (``web_bench.py`` gives the over-the-wire req/s)."""
    import asyncio

    from _web_apps import (
        ASGI_VARIANTS,
        WSGI_VARIANTS,
        asgi_app,
        asgi_requests,
        wsgi_app,
        wsgi_requests,
    )

    section = Section("6. Middleware, in process: `GET /hello` through each variant")
    count = 50 if opts.quick else 400
    loop = asyncio.new_event_loop()

    def asgi_loop(app: Any) -> Callable[[int], float]:
        def serve(n: int) -> float:
            started = CLOCK()
            loop.run_until_complete(asgi_requests(app, n))
            return CLOCK() - started

        return serve

    def wsgi_loop(app: Any) -> Callable[[int], float]:
        def serve(n: int) -> float:
            started = CLOCK()
            wsgi_requests(app, n)
            return CLOCK() - started

        return serve

    try:
        for kind, variants, make, driver, goal in (
            ("ASGI: FastAPI", ASGI_VARIANTS, asgi_app, asgi_loop, 0.95),
            ("WSGI: Flask", WSGI_VARIANTS, wsgi_app, wsgi_loop, 0.97),
        ):
            loops = {variant: driver(make(variant)) for variant in variants}
            results = measure_loops(loops, dict.fromkeys(loops, count), opts.rounds)
            bare = results["bare"].median
            rows = [
                [
                    name,
                    fmt_ns(result.median / 1000),
                    _x(paired_ratio(results, name, "bare")),
                    f"{1 / paired_ratio(results, name, 'bare'):.3f}",
                    "" if name == "bare" else f"{(result.median - bare) / 1000:+.1f}",
                ]
                for name, result in results.items()
            ]
            section.body.append(f"\n{kind}:\n")
            section.body.append(
                table(
                    ["variant", "µs/request", "time vs bare", "req/s kept", "µs added"],
                    rows,
                )
            )
            kept = 1 / paired_ratio(results, "shadowguard", "bare")
            added_sg = results["shadowguard"].median - bare
            added_otel = results["otel"].median - bare
            section.checks.append(
                Check(
                    f"6. {kind.split(':')[0]} middleware, share of bare throughput kept",
                    f"{kept:.3f}",
                    f"≥ {goal}",
                    _met(kept, goal, smaller=False),
                )
            )
            if added_sg > 0:
                section.checks.append(
                    Check(
                        f"6. {kind.split(':')[0]}: OTel middleware's added time / shadowguard's",
                        f"{added_otel / added_sg:.0f}x",
                        "≥ 20x" if kind.startswith("ASGI") else "(reported)",
                        _met(added_otel / added_sg, 20.0, smaller=False)
                        if kind.startswith("ASGI")
                        else None,
                    )
                )
    finally:
        loop.close()
    return section


# -- target 7 -----------------------------------------------------------------------------------


def _rows_valid_and_sorted(rows: list[dict[str, int]]) -> bool:
    """Target 7's expensive check: every row's id an int and v not negative, sorted by v."""
    return (
        all(isinstance(r.get("id"), int) and r["v"] >= 0 for r in rows)
        and sorted(rows, key=lambda r: r["v"]) == rows
    )


def _budget_workload(
    spin: Callable[[], int],
) -> tuple[Callable[..., int], Callable[..., int], list[dict[str, int]]]:
    """Target 7's function (``spin``, given 400 rows), the same guarded by the expensive check
    (``bench.budget``), and the rows."""

    def work(rows: list[dict[str, int]], limit: int) -> int:
        return spin()

    check = assume.that(_rows_valid_and_sorted, "rows valid and sorted")
    rows = [{"id": i, "v": i} for i in range(400)]
    return work, guarded(check, name="bench.budget")(work), rows


def target_budget(opts: Options) -> Section:
    section = Section("7. `SHADOWGUARD_OVERHEAD_BUDGET=0.01`: 50 µs function, expensive checks")
    from shadowguard import _tallies

    spin = busy(50)
    work, guarded_work, rows = _budget_workload(spin)
    check = functools.partial(_rows_valid_and_sorted, rows)
    check_ns = statistics.median(_time_once(check) for _ in range(50))
    with configured(overhead_budget=0.01):
        for _ in range(300 if opts.quick else 3_000):  # reach the steady state
            guarded_work(rows, 5)
        cases = [
            Case("plain function", "f(rows, 5)", {"f": work, "rows": rows}),
            Case("guarded, budget 0.01", "f(rows, 5)", {"f": guarded_work, "rows": rows}),
        ]
        rounds = max(opts.rounds, 3 if opts.quick else 21)
        results = measure(cases, rounds, opts.target_s)
        calls = 2_000 if opts.quick else 20_000
        checks_before = _tallies.check_counts().get("bench.budget", 0)
        for _ in range(calls):
            guarded_work(rows, 5)
        checks = _tallies.check_counts().get("bench.budget", 0) - checks_before
        # The same cost in parts, each large enough to time well: what an unchecked call adds
        # (the same guard at a sample rate of 0, around an instant function), plus the share of
        # checked calls times what one check costs.
        unchecked = guarded(
            assume.that(_rows_valid_and_sorted, "rows valid and sorted"),
            sample_rate=0.0,
            name="bench.budget0",
        )(_instant)
        instant = [
            Case("instant function", "f(rows, 5)", {"f": _instant, "rows": rows}),
            Case("unchecked guarded call", "f(rows, 5)", {"f": unchecked, "rows": rows}),
        ]
        parts = measure(instant, rounds, opts.target_s)
    share = checks / calls if calls else 0.0
    overhead = paired_ratio(results, "guarded, budget 0.01", "plain function") - 1
    wrapper_ns = parts["unchecked guarded call"].median - parts["instant function"].median
    section.body.append(
        table(
            ["variant", "median ns/call", "best ns/call", "vs plain"],
            _rows(results, "plain function"),
        )
    )
    fn_ns = results["plain function"].median
    section.body.append(
        f"\nThe checks cost {check_ns / 1000:.0f} µs per checked call, the function "
        f"{fn_ns / 1000:.0f} µs: the guard checked {share:.2%} of the calls "
        f"(the budget allows {0.01 * fn_ns / check_ns:.2%})."
    )
    in_parts = (wrapper_ns + share * check_ns) / fn_ns
    section.body.append(
        f"\nIn parts: an unchecked call adds {wrapper_ns:,.0f} ns (a sample rate of 0 around an "
        f"instant function), the sampled checks {share * check_ns:,.0f} ns per call on average "
        f"({share:.2%} of {check_ns / 1000:.0f} µs): {in_parts:.2%} of the function's "
        f"{fn_ns / 1000:.0f} µs."
    )
    section.checks.append(
        Check(
            "7. budget 0.01, steady-state overhead", f"{overhead:+.2%}", "≤ 1.5%", overhead <= 0.015
        )
    )
    section.checks.append(
        Check(
            "7. budget 0.01, overhead in parts (wrapper + sampled checks)",
            f"{in_parts:.2%}",
            "≤ 1.5%",
            in_parts <= 0.015,
        )
    )
    section.checks.append(
        Check("7. budget 0.01, share of calls checked", f"{share:.2%}", "a fair share", share > 0)
    )
    counted = None if opts.quick else _budget_instructions(spin.args[0])
    if counted is not None:
        plain_i, guarded_i, counted_share = counted
        direct = guarded_i / plain_i - 1
        section.body.append(
            f"\nMeasured directly in instructions (cachegrind: {_BUDGET_CALLS:,} steady-state "
            f"calls after {_BUDGET_WARM:,}, each run differenced against one with the warm-up "
            f"only): the plain function {plain_i:,.0f} instructions per call, guarded "
            f"{guarded_i:,.0f}: {direct:+.2%}, with {counted_share:.2%} of the calls checked. "
            "Instructions do not swing with the neighbours' load as time does here."
        )
        section.checks.append(
            Check(
                "7. budget 0.01, overhead in instructions (cachegrind)",
                f"{direct:+.2%}",
                "≤ 1.5%",
                direct <= 0.015,
            )
        )
    return section


_BUDGET_WARM = 1_000
_BUDGET_CALLS = 4_000


def _budget_child(kind: str, loops: int, calls: int) -> None:
    """In a child under cachegrind: target 7's function (plain or guarded with a budget of
    0.01), ``_BUDGET_WARM`` calls to reach the steady state, then ``calls`` more; prints the
    share of those calls that were checked."""
    from shadowguard import _tallies
    from shadowguard._paths import _rng

    _rng.seed(7)  # the same sampling draws in every run
    work, guarded_work, rows = _budget_workload(functools.partial(_spin, loops))
    f = guarded_work if kind == "guarded" else work
    with configured(overhead_budget=0.01):
        for _ in range(_BUDGET_WARM):
            f(rows, 5)
        before = _tallies.check_counts().get("bench.budget", 0)
        for _ in range(calls):
            f(rows, 5)
        checked = _tallies.check_counts().get("bench.budget", 0) - before
    print(json.dumps({"checked": checked}))


def _budget_instructions(loops: int) -> tuple[float, float, float] | None:
    """Instructions per call of target 7's plain and guarded function, and the share of the
    guarded calls checked; ``None`` without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    per_call: dict[str, float] = {}
    share = 0.0
    with tempfile.TemporaryDirectory(prefix="shadowguard-budget-") as tmp:
        for kind in ("plain", "guarded"):
            counts = []
            for calls in (0, _BUDGET_CALLS):
                out = os.path.join(tmp, f"{kind}-{calls}.out")
                done = subprocess.run(
                    [
                        valgrind,
                        "--tool=cachegrind",
                        "--cache-sim=no",
                        f"--cachegrind-out-file={out}",
                        sys.executable,
                        __file__,
                        "--budget-child",
                        kind,
                        str(loops),
                        str(calls),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=True,
                )
                counts.append(_instructions(out))
                if kind == "guarded" and calls:
                    share = json.loads(done.stdout.strip().splitlines()[-1])["checked"] / calls
            per_call[kind] = (counts[1] - counts[0]) / _BUDGET_CALLS
    return per_call["plain"], per_call["guarded"], share


def _instructions(path: str) -> int:
    """The total instruction count (``Ir``) of one cachegrind output file."""
    with open(path, encoding="utf-8") as out:
        for line in out:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no summary line in {path}")


def _instant(rows: Any, limit: int) -> int:
    return limit


def _time_once(func: Callable[[], Any]) -> float:
    started = CLOCK()
    func()
    return (CLOCK() - started) * 1e9


# -- target 8 -----------------------------------------------------------------------------------


def target_envelope(opts: Options) -> Section:
    section = Section("8. The tested envelope: recording (pytest) and watching (production)")
    from shadowguard.envelope import save, start_recording, stop_recording

    f = guarded(name="bench.envelope")(_signature())
    items = SIGNATURE_ARGS[2]
    samples = [(1, "x", [1, 2, 3]), (0, "", []), (-5, "yz", [3, 4, 5, 6]), (7, "abc", [9])]
    recorder = start_recording()
    for args in samples * 4:
        f(*args)
    envelope = stop_recording(recorder)
    workdir = tempfile.mkdtemp(prefix="shadowguard-bench-")
    path = os.path.join(workdir, "envelope.json")
    save(envelope, path)

    def timed(enter: Callable[[], Any], leave: Callable[[Any], None]) -> Callable[[int], float]:
        def run(n: int) -> float:
            state = enter()
            try:
                for _ in range(20):
                    f(1, "x", items)  # the guard refreshes on its first call after a change
                started = CLOCK()
                for _ in range(n):
                    f(1, "x", items)
                return CLOCK() - started
            finally:
                leave(state)

        return run

    loops = {
        "plain guarded call": timed(lambda: None, lambda state: None),
        "recording (pytest session)": timed(start_recording, stop_recording),
        "watching (SHADOWGUARD_ENVELOPE)": timed(
            lambda: shadowguard.configure(envelope=path),
            lambda state: shadowguard.configure(envelope=None),
        ),
        "recording, thinned (SHADOWGUARD_RECORD)": timed(
            lambda: shadowguard.configure(record=os.path.join(workdir, "prod.json")),
            lambda state: shadowguard.configure(record=None),
        ),
    }
    count = 500 if opts.quick else 5_000
    results = measure_loops(loops, dict.fromkeys(loops, count), opts.rounds)
    section.body.append(
        table(
            ["`f(1, 'x', [1, 2, 3])`", "median ns/call", "best ns/call", "vs plain guarded"],
            _rows(results, "plain guarded call"),
        )
    )
    recording = paired_ratio(results, "recording (pytest session)", "plain guarded call")
    watching = paired_ratio(results, "watching (SHADOWGUARD_ENVELOPE)", "plain guarded call")
    section.checks.append(
        Check("8. envelope recording under pytest", _x(recording), "≤ 3x", _met(recording, 3))
    )
    section.checks.append(
        Check("8. envelope watching in production", _x(watching), "≤ 1.5x", _met(watching, 1.5))
    )
    return section


# -- the report ---------------------------------------------------------------------------------

TARGETS: dict[str, Callable[[Options], Section]] = {
    "1": target_off,
    "2": target_types,
    "3": target_data,
    "4": target_sizes,
    "5": target_violations,
    "6": target_middleware,
    "7": target_budget,
    "8": target_envelope,
}


def versions() -> str:
    found = []
    for name in TOOLS:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def _quiet_logs() -> None:
    """structlog renders JSON to /dev/null: a violation log costs what it costs in production,
    without flooding the terminal (the host's configuration, not shadowguard's)."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=open(os.devnull, "w")),  # noqa: SIM115
        cache_logger_on_first_use=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds per group")
    parser.add_argument("--batch-ms", type=float, default=20.0, help="time per timed batch")
    parser.add_argument("--quick", action="store_true", help="one short round (smoke run)")
    parser.add_argument("--env-off-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--budget-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.budget_child:
        _quiet_logs()
        kind, loops, calls = args.budget_child
        _budget_child(kind, int(loops), int(calls))
        return 0
    if args.env_off_child:
        _environment_off_child(int(args.env_off_child[0]), float(args.env_off_child[1]))
        return 0
    opts = Options(
        rounds=1 if args.quick else args.rounds,
        target_s=0.002 if args.quick else args.batch_ms / 1000,
        quick=args.quick,
    )
    _quiet_logs()
    shadowguard.configure(mode="observe")
    wanted = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    print(f"# shadowguard benchmarks, {now()}\n")
    print(f"- Machine: {machine()}")
    print(f"- Python: {platform.python_implementation()} {platform.python_version()}")
    print(f"- Libraries: {versions()}")
    print(f"- Method: {opts.rounds} alternating rounds of ~{opts.target_s * 1000:g} ms batches;")
    print("  medians; ratios are medians of per-round ratios.\n", flush=True)
    checks: list[Check] = []
    for key in wanted:
        section = TARGETS[key](opts)
        print(f"## {section.title}\n")
        print("\n".join(section.body) + "\n", flush=True)
        checks += section.checks
    print("## Targets\n")
    print(
        table(
            ["target", "measured", "goal", "met"],
            [
                [
                    c.target,
                    c.measured,
                    c.goal,
                    "n/a" if c.met is None else ("yes" if c.met else "**no**"),
                ]
                for c in checks
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
