"""The tested envelope: what recording notes about real calls, and what watching reports."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import attrs
import pydantic
import pytest

import shadowguard
from shadowguard import AssumptionViolation, envelope, guarded
from shadowguard.envelope import Envelope, Facts, GuardEnvelope, _record, _wiring
from shadowguard.envelope._facts import ANY, MAX_PATHS, MAX_TYPES
from shadowguard.envelope._record import BUDGET, STALE_AFTER, GuardRecorder
from shadowguard.testing import capture_violations

# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def record() -> Iterator[Callable[[], Envelope]]:
    """Record every guard while the test runs; calling the fixture's value stops and returns."""
    recorder = envelope.start_recording()
    done: list[Envelope] = []

    def stop() -> Envelope:
        if not done:
            done.append(envelope.stop_recording(recorder))
        return done[0]

    yield stop
    stop()


def facts_of(recorded: Envelope, func: Any) -> GuardEnvelope:
    """The recorded envelope of a guarded function."""
    return recorded.guards[func.__shadowguard__.name]


def watch(tmp_path: Path, recorded: Envelope) -> Path:
    """Save ``recorded`` and watch it, as production would with SHADOWGUARD_ENVELOPE."""
    path = tmp_path / "envelope.json"
    envelope.save(recorded, path)
    shadowguard.configure(envelope=path)
    return path


def one(violations: list[Any]) -> Any:
    assert len(violations) == 1, violations
    return violations[0]


# -- recording ---------------------------------------------------------------------------------


def test_records_types_none_lengths_and_emptiness(record: Callable[[], Envelope]) -> None:
    """Each parameter and the return value get their type names, None, lengths and emptiness."""

    @guarded
    def greet(name: str | None, tags: list[str]) -> str:
        return f"hi {name}"

    greet("ada", ["x", "yy"])
    greet(None, [])
    paths = facts_of(record(), greet).paths
    assert paths["name"] == Facts(types=frozenset({"str"}), none=True, max_len=3)
    assert paths["tags"] == Facts(types=frozenset({"list"}), empty=True, max_len=2)
    assert paths["tags[*]"].types == {"str"} and paths["tags[*]"].max_len == 2
    assert paths["return"].types == {"str"} and paths["return"].max_len == 7


def test_missing_field_is_recorded_whichever_record_came_first(
    record: Callable[[], Envelope],
) -> None:
    """A key that one record has and another lacks is ``missing``, in either order."""

    @guarded
    def first(row: dict[str, Any]) -> None: ...

    @guarded
    def second(row: dict[str, Any]) -> None: ...

    first({"id": 1})
    first({"id": 2, "email": "a@b"})
    second({"id": 2, "email": "a@b"})
    second({"id": 1})
    recorded = record()
    for func in (first, second):
        paths = facts_of(recorded, func).paths
        assert paths["row"].record
        assert paths["row.email"].missing
        assert not paths["row.id"].missing


def test_signs_of_numbers_not_of_bools_or_nan(record: Callable[[], Envelope]) -> None:
    """ints and floats note negative/zero/positive; bools and NaN note no sign."""

    @guarded
    def amount(value: object) -> None: ...

    for value in (-3, 0.0, True, math.nan, 2**80):
        amount(value)
    facts = facts_of(record(), amount).paths["value"]
    assert facts.signs == {"negative", "zero", "positive"}
    assert facts.types == {"int", "float", "bool"}


def test_sorted_evidence_counts_distinct_pairs_only(record: Callable[[], Envelope]) -> None:
    """The same sorted list passed again proves nothing new; a descending pair rules it out."""

    @guarded
    def same(ids: list[int]) -> None: ...

    @guarded
    def varied(ids: list[int]) -> None: ...

    @guarded
    def broken(ids: list[int]) -> None: ...

    for _ in range(20):
        same([1, 2, 3])
    for start in range(0, 40, 5):
        varied([start, start + 1, start + 2])
    broken(list(range(10)))
    broken([3, 1])
    recorded = record()
    assert facts_of(recorded, same).paths["ids[*]"].evidence == 2
    assert not facts_of(recorded, same).paths["ids[*]"].always_sorted
    assert facts_of(recorded, varied).paths["ids[*]"].always_sorted
    assert facts_of(recorded, broken).paths["ids[*]"].unsorted


def test_sortedness_of_a_field_along_a_sequence(record: Callable[[], Envelope]) -> None:
    """Records in a list are checked for order on each scalar field (``events[*].ts``)."""

    @guarded
    def replay(events: list[dict[str, Any]]) -> None: ...

    for day in range(3):
        replay([{"ts": day * 10 + i, "kind": "zyx"[i]} for i in range(3)])
        replay([{"ts": day * 10 + 5 + i, "kind": "cba"[i]} for i in range(3)])
    paths = facts_of(record(), replay).paths
    assert paths["events[*].ts"].always_sorted
    assert paths["events[*].kind"].unsorted


@dataclasses.dataclass
class UserRow:
    id: int
    email: str | None


@attrs.define
class Address:
    city: str


class Order(pydantic.BaseModel):
    total: float
    note: str | None = None


class Point(NamedTuple):
    x: int
    y: int


def test_fields_of_dataclasses_attrs_pydantic_namedtuples_namespaces(
    record: Callable[[], Envelope],
) -> None:
    """Objects with declared fields are records: each field gets its own path."""

    @guarded
    def take(user: Any, address: Any, order: Any, point: Any, extra: Any) -> None: ...

    take(UserRow(1, None), Address("Oslo"), Order(total=9.5), Point(1, -2), SimpleNamespace(a=1))
    paths = facts_of(record(), take).paths
    assert paths["user.email"].none and paths["user.id"].types == {"int"}
    assert paths["address.city"].types == {"str"}
    assert paths["order.total"].types == {"float"} and paths["order.note"].none
    assert paths["point.y"].signs == {"negative"}
    assert paths["extra.a"].types == {"int"}
    assert "point[*]" not in paths  # a named tuple is a record, not a sequence


def test_depth_and_width_are_bounded(record: Callable[[], Envelope]) -> None:
    """Nothing deeper than three steps; a dict of more than 32 keys (or of ids) is a collection."""

    @guarded
    def nested(tree: Any, wide: dict[str, int], by_id: dict[int, str]) -> None: ...

    nested({"a": {"b": {"c": {"d": {"e": 1}}}}}, {f"k{i}": i for i in range(40)}, {7: "x"})
    paths = facts_of(record(), nested).paths
    assert "tree.a.b.c" in paths
    assert not [p for p in paths if p.startswith("tree.a.b.c.")]
    assert "wide[*]" in paths and not [p for p in paths if p.startswith("wide.")]
    assert paths["by_id[*]"].types == {"str"}


def test_big_containers_are_sampled(
    record: Callable[[], Envelope], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A million-item list costs a bounded number of reads, never one per item."""
    reads = []
    real = _record.length

    def counting(value: object) -> int:
        reads.append(1)
        return real(value)

    monkeypatch.setattr(_record, "length", counting)

    @guarded
    def total(rows: list[dict[str, int]]) -> None: ...

    total([{"n": i} for i in range(1_000_000)])
    paths = facts_of(record(), total).paths
    assert paths["rows"].max_len == 1_000_000
    assert len(reads) < 200
    assert len(reads) <= BUDGET


class Hostile:
    """A value whose every hook fails the test if shadowguard calls it."""

    def __repr__(self) -> str:
        raise AssertionError("__repr__ called")

    def __eq__(self, other: object) -> bool:
        raise AssertionError("__eq__ called")

    def __hash__(self) -> int:
        return 1

    def __len__(self) -> int:
        raise AssertionError("__len__ called")

    def __iter__(self) -> Iterator[int]:
        raise AssertionError("__iter__ called")

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"__getattr__({name}) called")


class SneakyList(list[int]):
    def __len__(self) -> int:
        raise AssertionError("list __len__ called")

    def __getitem__(self, index: Any) -> Any:
        raise AssertionError("list __getitem__ called")


def test_recording_runs_no_user_code_and_consumes_no_iterator(
    record: Callable[[], Envelope],
) -> None:
    """Iterators stay unconsumed, defaultdicts unchanged, user hooks uncalled."""
    seen: list[Any] = []

    @guarded
    def take(items: Any, hostile: Any, sneaky: Any, counts: Any, keyed: Any) -> Any:
        seen.append(list(items))
        return hostile

    counts: collections.defaultdict[str, int] = collections.defaultdict(int, {"a": 1})
    generator = (i for i in range(3))
    take(generator, Hostile(), SneakyList([3, 1, 2]), counts, {Hostile(): 1})
    take(iter([1, 2]), [Hostile(), Hostile()], SneakyList(), counts, {Hostile(): 2})
    assert seen == [[0, 1, 2], [1, 2]]
    assert dict(counts) == {"a": 1}
    paths = facts_of(record(), take).paths
    assert paths["items"].types == {"generator", "list_iterator"}
    assert paths["hostile"].types == {"Hostile", "list"}
    assert paths["sneaky"].max_len == 3 and paths["sneaky[*]"].unsorted


def test_exceptions_and_calls_in_flight(record: Callable[[], Envelope]) -> None:
    """Exception type names and the most calls in flight at once are recorded."""
    barrier = threading.Barrier(3)

    @guarded
    def work(fail: bool) -> None:
        if fail:
            raise KeyError("k")
        barrier.wait(timeout=10)

    with pytest.raises(KeyError):
        work(True)
    threads = [threading.Thread(target=work, args=(False,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    facts = facts_of(record(), work)
    assert facts.exceptions == {"KeyError"}
    assert facts.in_flight == 3


def test_generators_record_arguments_but_no_return_and_methods_skip_self(
    record: Callable[[], Envelope],
) -> None:
    """Generators have no return value to record; ``self`` is not a parameter worth noting."""

    @guarded
    def count(n: int) -> Iterator[int]:
        yield from range(n)

    class Repo:
        @guarded
        async def fetch(self, key: str) -> int:
            return len(key)

    assert list(count(2)) == [0, 1]
    assert asyncio.run(Repo().fetch("abc")) == 3
    recorded = record()
    assert set(facts_of(recorded, count).paths) == {"n"}
    assert set(recorded.guards[Repo.fetch.__shadowguard__.name].paths) == {"key", "return"}


def test_type_names_and_paths_are_capped() -> None:
    """Past 16 type names a path accepts anything; past 128 paths a parameter grows no more."""
    recorder = GuardRecorder("g", thin=False)
    for i in range(MAX_TYPES + 1):
        recorder.see("value", type(f"T{i}", (), {})())
    recorder.see("wide", {f"k{i}": {f"j{j}": j for j in range(20)} for i in range(30)})
    facts = recorder.envelope()
    assert facts.paths["value"].types is ANY
    assert len([p for p in facts.paths if p.startswith("wide")]) == MAX_PATHS


def test_thinned_recorder_slows_down_once_nothing_is_new(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production recording walks fewer calls once they teach nothing, and all calls again after."""
    monkeypatch.setattr(_record._rng, "random", lambda: 0.5)
    recorder = GuardRecorder("g", thin=True)
    assert recorder.admit()
    for _ in range(STALE_AFTER + 1):
        recorder.see("x", 1)
    assert not recorder.admit()
    recorder.see("x", "new")
    assert recorder.admit()
    assert GuardRecorder("g", thin=False).admit()


# -- watching ------------------------------------------------------------------------------------


@guarded
def active_users(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed story's function: the tests always passed rows with ``last_login``."""
    return [u for u in users if u.get("last_login")]


def _tested_rows(n: int) -> list[dict[str, Any]]:
    return [
        {"id": 1 + 3 * n, "last_login": "2024-05-01T10:00:00"},
        {"id": 2 + 3 * n, "last_login": None},
        {"id": 3 + 3 * n, "last_login": "2024-06-11T08:30:00"},
    ]


@pytest.fixture
def watched(tmp_path: Path, record: Callable[[], Envelope]) -> Path:
    """The envelope of the seed story's tests, watched."""
    for n in range(5):
        active_users(_tested_rows(n))
    return watch(tmp_path, record())


def test_seed_story_missing_key_is_a_departure(watched: Path) -> None:
    """Production rows without ``last_login`` are reported though nobody wrote an assumption."""
    with capture_violations() as violations:
        active_users([{"id": 7, "last_login": "2024-07-01T00:00:00"}, {"id": 8}])
    found = one(violations)
    assert found.kind == "envelope"
    assert found.assumption == "envelope(users[*].last_login)"
    assert found.path == "users[*].last_login"
    assert found.observed == "missing"
    assert found.expected == "tests only saw: str, None"
    assert found.mode == "observe"


def test_in_envelope_values_never_raise_an_alarm(watched: Path) -> None:
    """Thousands of calls with other ids, other strings of tested lengths, None: no violation."""
    rng = random.Random(20241125)
    with capture_violations() as violations:
        for _ in range(2000):
            rows = []
            for i in range(rng.randint(1, 3)):
                login = None
                if i == 0 or rng.random() < 0.5:  # the tests always had someone logged in
                    login = "".join(rng.choice("0123456789-T:") for _ in range(rng.randint(1, 19)))
                rows.append({"id": rng.randint(1, 10**9) + i, "last_login": login})
            rows.sort(key=lambda row: row["id"])
            active_users(rows)
    assert violations == []


def test_departures_report_what_the_tests_saw(
    tmp_path: Path, record: Callable[[], Envelope]
) -> None:
    """Every kind of departure names its path, what production did and what the tests saw."""

    @guarded(types=False)
    def handle(name: Any, ids: Any, amount: Any, rows: Any) -> Any:
        if name == "boom":
            raise ValueError("boom")
        if name == "key":
            raise KeyError(name)
        return name

    for n in range(6):
        handle(f"n{n}", [n * 10, n * 10 + 1, n * 10 + 2], 1.5 + n, [{"v": None}, {"v": "x"}])
    with pytest.raises(KeyError):
        handle("key", [1, 2], 1.0, [{"v": None}])
    watch(tmp_path, record())
    tested = ([1, 2], 2.0, [{"v": "x"}])
    cases: list[tuple[tuple[Any, ...], str, str, str]] = [
        ((7, [1], 1.0, []), "name", "int", "tests only saw: str"),
        (("", [1], 1.0, []), "name", "empty", "tests only saw: len 1..3"),
        (("x" * 31, [1], 1.0, []), "name", "len=31", "tests only saw: len 1..3"),
        (("ok", [1, None], 1.0, []), "ids[*]", "None", "tests only saw: int"),
        (("ok", [5, 3], 1.0, []), "ids[*]", "items[1] < items[0]", "tests only saw: sorted"),
        (("ok", [1], -1.0, []), "amount", "negative", "tests only saw: positive"),
        (("ok", [1], 0, []), "amount", "int", "tests only saw: float"),
        (("ok", [1], 1.0, [{"w": 1}]), "rows[*].v", "missing", "tests only saw: str, None"),
        (("ok", [1], 1.0, [{"v": 3}]), "rows[*].v", "int", "tests only saw: str, None"),
        (("ok", [], 1.0, []), "ids", "empty", "tests only saw: len 1..3"),
    ]
    for args, path, observed, expected in cases:
        with capture_violations() as violations:
            handle(*args)
        found = one([v for v in violations if v.path == path])
        assert (found.assumption, found.observed, found.expected) == (
            f"envelope({path})",
            observed,
            expected,
        ), args
    with capture_violations() as violations, pytest.raises(ValueError):
        handle("boom", *tested)
    found = one(violations)
    assert (found.assumption, found.observed, found.expected) == (
        "envelope(raises)",
        "ValueError",
        "tests only saw: KeyError",
    )


def test_length_within_ten_times_the_longest_tested_is_fine(
    tmp_path: Path, record: Callable[[], Envelope]
) -> None:
    """Up to ten times the longest tested length is normal variation; beyond it, a departure."""

    @guarded
    def store(text: str) -> None: ...

    store("abcd")
    watch(tmp_path, record())
    with capture_violations() as violations:
        store("x" * 40)
        store("x" * 41)
    assert [v.observed for v in violations] == ["len=41"]


def test_more_calls_in_flight_than_tested(tmp_path: Path, record: Callable[[], Envelope]) -> None:
    """Tests ran one call at a time; three at once in production is a departure."""
    barrier = threading.Barrier(3)

    @guarded
    def serve(wait: bool) -> None:
        if wait:
            barrier.wait(timeout=10)

    serve(False)
    watch(tmp_path, record())
    with capture_violations() as violations:
        threads = [threading.Thread(target=serve, args=(True,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    observed = sorted(v.observed for v in violations)
    assert observed in (  # counted without a lock: the first may see the others too
        ["2 in flight", "3 in flight"],
        ["3 in flight", "3 in flight"],
        ["2 in flight", "2 in flight", "3 in flight"],
        ["2 in flight", "3 in flight", "3 in flight"],
        ["3 in flight", "3 in flight", "3 in flight"],
    )
    assert {v.expected for v in violations} == {"tests only saw: <= 1 in flight"}
    assert {v.assumption for v in violations} == {"envelope(in_flight)"}


def test_guard_never_tested_is_reported_once(
    tmp_path: Path, record: Callable[[], Envelope]
) -> None:
    """A guard the tests never called is itself a departure, reported on its first call only."""

    @guarded
    def tested(x: int) -> None: ...

    @guarded
    def untested(x: int) -> None: ...

    tested(1)
    watch(tmp_path, record())
    with capture_violations() as violations:
        for _ in range(3):
            untested(-5)
            tested(2)
    found = one(violations)
    assert found.guard == untested.__shadowguard__.name
    assert (found.assumption, found.observed, found.expected) == (
        "envelope",
        "never tested",
        "exercised by tests",
    )


def test_enforce_mode_raises_on_a_departure(watched: Path) -> None:
    """In enforce mode a departure raises AssumptionViolation before the function runs."""
    shadowguard.configure(mode="enforce")
    with pytest.raises(AssumptionViolation) as raised:
        active_users([{"id": 1}])
    assert [v.observed for v in raised.value.violations] == ["missing"]


def test_sampling_thins_data_checks_not_exceptions(
    tmp_path: Path, record: Callable[[], Envelope]
) -> None:
    """With sample_rate 0 values go unchecked, but an untested exception is still reported."""

    @guarded
    def parse(text: str) -> int:
        return int(text)

    parse("12")
    watch(tmp_path, record())
    shadowguard.configure(sample_rate=0.0)
    with capture_violations() as violations, pytest.raises(ValueError):
        parse("")
    assert [v.observed for v in violations] == ["ValueError"]


def test_value_capture_never_adds_values_to_envelope_violations(watched: Path) -> None:
    """Even with value capture on, an envelope violation carries shapes only."""
    shadowguard.configure(capture_values=True)
    with capture_violations() as violations:
        active_users([{"id": 1, "password": "hunter2"}])
    assert [v.value for v in violations if v.kind == "envelope"] == [None, None]


def test_unreadable_envelope_is_reported_once_and_watches_nothing(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    """A missing or broken file logs ``config_invalid`` once; calls go on unwatched."""

    @guarded
    def f(x: int) -> int:
        return x

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for path in (tmp_path / "absent.json", bad):
        shadowguard.configure(envelope=path)
        with capture_violations() as violations:
            f(1)
            shadowguard.configure(sample_rate=1.0)  # a refresh: the file is not re-reported
            f(2)
        assert violations == []
    events = [e for e in logs if e["event"] == "config_invalid"]
    assert [e["variable"] for e in events] == ["SHADOWGUARD_ENVELOPE"] * 2
    assert "No such file" in events[0]["reason"] and "not valid JSON" in events[1]["reason"]


def test_envelope_file_is_reread_when_it_changes(
    tmp_path: Path, record: Callable[[], Envelope]
) -> None:
    """Writing a new envelope to the watched path takes effect on the next configuration."""

    @guarded
    def f(x: int) -> None: ...

    f(1)
    path = watch(tmp_path, record())
    with capture_violations() as violations:
        f(-1)
    assert [v.observed for v in violations] == ["negative"]
    envelope.save(Envelope({}), path)
    shadowguard.configure(envelope=path)
    with capture_violations() as violations:
        f(-1)
    assert [v.observed for v in violations] == ["never tested"]


def test_recording_and_watching_stop_with_their_settings(
    tmp_path: Path, record: Callable[[], Envelope]
) -> None:
    """Once the envelope setting is cleared, guards carry no envelope assumption any more."""

    @guarded
    def f(x: int) -> None: ...

    f(1)
    watch(tmp_path, record())
    f(2)
    assert any(a.kind == "envelope" for a in f.__shadowguard__.extra)
    shadowguard.configure(envelope=None)
    f(3)
    assert f.__shadowguard__.extra == ()


def test_process_recorder_writes_and_merges(tmp_path: Path) -> None:
    """``record=`` feeds a thinned recorder that ``write_recorded`` merges into the file."""

    @guarded
    def f(x: int) -> None: ...

    target = tmp_path / "prod.json"
    shadowguard.configure(record=target)
    f(-1)
    assert envelope.write_recorded()
    shadowguard.configure(record=None)
    f(1)  # not recorded any more
    assert envelope.write_recorded(target)
    facts = envelope.load(target).guards[f.__shadowguard__.name].paths["x"]
    assert facts.signs == {"negative"}
    assert not envelope.write_recorded()  # no path configured
    assert envelope.process_recorder() is envelope.process_recorder()


def test_fork_gives_the_child_fresh_locks() -> None:
    """After fork a recorder lock held by another thread in the parent is usable in the child."""
    recorder = envelope.start_recording()
    try:
        guard = recorder.guard("g")
        guard.lock.acquire()
        _wiring._after_fork()
        assert guard.lock.acquire(timeout=1)
        guard.lock.release()
    finally:
        envelope.stop_recording(recorder)


def test_merge_of_recorded_envelopes_keeps_everything_seen() -> None:
    """Two recorders of the same guard merge into the facts of both."""
    first, second = GuardRecorder("g", thin=False), GuardRecorder("g", thin=False)
    first.see("x", {"a": 1})
    second.see("x", {"a": None, "b": "t"})
    merged = envelope.merge(
        Envelope({"g": first.envelope()}), Envelope({"g": second.envelope()})
    ).guards["g"]
    assert merged.paths["x.a"] == Facts(
        types=frozenset({"int"}), none=True, signs=frozenset({"positive"})
    )
    assert merged.paths["x.b"].missing


# -- real processes ------------------------------------------------------------------------------

_APP = """
import json, sys
from shadowguard import guarded

@guarded
def active_users(users: list) -> list:
    return [u for u in users if u.get("last_login")]

for line in sys.stdin:
    active_users(json.loads(line))
print("done")
"""


def _run(tmp_path: Path, env: dict[str, str], lines: list[Any]) -> Any:
    import os
    import subprocess
    import sys

    script = tmp_path / "app.py"
    script.write_text(_APP)
    full = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWGUARD_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, str(script)],
        input="".join(json_line(item) for item in lines),
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def json_line(item: Any) -> str:
    import json

    return json.dumps(item) + "\n"


@pytest.mark.e2e
def test_environment_records_at_exit_and_watches(tmp_path: Path) -> None:
    """SHADOWGUARD_RECORD writes the process's envelope at exit; SHADOWGUARD_ENVELOPE watches."""
    recorded = tmp_path / "tested.json"
    tested_rows = [[{"id": 1, "last_login": "2024-01-01"}, {"id": 2, "last_login": None}]]
    result = _run(tmp_path, {"SHADOWGUARD_RECORD": str(recorded)}, tested_rows * 3)
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr
    paths = envelope.load(recorded).guards["__main__.active_users"].paths
    assert paths["users[*].last_login"].none and not paths["users[*].last_login"].missing

    watched = _run(
        tmp_path,
        {"SHADOWGUARD_ENVELOPE": str(recorded)},
        [[{"id": 3, "last_login": "2024-02-02"}], [{"id": 4, "last_login": "2024-03"}, {"id": 5}]],
    )
    assert watched.returncode == 0, watched.stderr
    output = watched.stdout + watched.stderr
    assert output.count("assumption_violated") == 1
    assert "envelope(users[*].last_login)" in output and "observed=missing" in output


@pytest.mark.e2e
def test_record_at_exit_merges_and_never_crashes(tmp_path: Path) -> None:
    """A second process adds to the recorded file; an unwritable path costs no traceback."""
    recorded = tmp_path / "prod.json"
    for rows in ([{"id": 1}], [{"id": -1, "x": None}]):
        result = _run(tmp_path, {"SHADOWGUARD_RECORD": str(recorded)}, [rows])
        assert result.returncode == 0, result.stdout + result.stderr
    paths = envelope.load(recorded).guards["__main__.active_users"].paths
    assert paths["users[*].id"].signs == {"negative", "positive"}
    assert paths["users[*].x"].missing

    blocked = tmp_path / "dir"
    blocked.mkdir()
    result = _run(tmp_path, {"SHADOWGUARD_RECORD": str(blocked)}, [[{"id": 1}]])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert "internal_error" in output and "envelope.record_at_exit" in output
