"""How the envelope looks inside values: builtin containers and declared fields only, no user
code, and the comparison of collections, records and order in production."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shadowguard
from _hostile import Unorderable
from shadowguard import envelope, guarded
from shadowguard._paths import MISSING
from shadowguard.envelope import Envelope, Facts, GuardEnvelope, _walk
from shadowguard.envelope._compare import BUDGET, compile_roots
from shadowguard.envelope._facts import ANY
from shadowguard.envelope._record import GuardRecorder
from shadowguard.testing import capture_violations

# -- reading values --------------------------------------------------------------------------------


def test_length_and_sign_read_only_builtins() -> None:
    """Lengths come from builtin types (subclasses through the builtin method), signs from
    ints and floats only."""

    class Loud(list[int]):
        def __len__(self) -> int:
            raise AssertionError("user __len__")

    assert _walk.length("abc") == 3
    assert _walk.length(Loud([1, 2])) == 2
    assert _walk.length(object()) == -1
    assert [_walk.sign(v) for v in (-1, 0, 0.5, True, float("nan"), "1")] == [
        "negative",
        "zero",
        "positive",
        None,
        None,
        None,
    ]


def test_compare_only_orders_scalars_of_one_kind() -> None:
    """Numbers compare with numbers and text with text; anything else is not ordered."""
    assert _walk.compare(1, 2.5) == 1
    assert _walk.compare("b", "a") == -1
    assert _walk.compare(b"a", b"a") == 0
    assert _walk.compare(1, "1") == 0
    assert _walk.compare(True, False) == 0
    assert _walk.compare((1,), (2,)) == 0


def test_fingerprints_are_stable_short_and_bounded() -> None:
    """Pair names do not depend on the process and stay cheap for huge values."""
    assert _walk.fingerprint(1, 2) == "c93b8461"  # no hash randomisation: same in every run
    assert _walk.fingerprint(1, 2) != _walk.fingerprint(1.0, 2)
    long_text = "x" * 10_000
    assert len(_walk.fingerprint(long_text, long_text + "y")) == 8
    assert _walk.fingerprint(long_text, long_text + "y") != _walk.fingerprint(long_text, long_text)
    huge = 10**5000
    assert _walk.fingerprint(huge, huge + 1) != _walk.fingerprint(huge, huge + 2)


class PydanticV1Like:
    """The shape of a pydantic v1 model: ``__fields__`` and ``__config__`` on the class."""

    __fields__: ClassVar[dict[str, Any]] = {"name": object(), "not an identifier": object()}
    __config__: ClassVar[object] = object()

    def __init__(self) -> None:
        self.name = "v1"


class HostileMeta(type):
    def __getattr__(cls, name: str) -> Any:
        raise RuntimeError(f"metaclass lookup of {name}")


class HostileClass(metaclass=HostileMeta):
    pass


@dataclasses.dataclass
class WithProperty:
    a: int

    @property
    def b(self) -> int:
        raise RuntimeError("lazy load")


def test_declared_fields_of_every_supported_kind() -> None:
    """pydantic v1 shapes count, hostile metaclasses do not, and the cache stays bounded."""
    assert _walk.declared_fields(PydanticV1Like) == ("name",)
    assert _walk.declared_fields(HostileClass) is None
    assert _walk.declared_fields(int) is None
    for i in range(_walk._CACHE_LIMIT + 5):
        _walk.declared_fields(type(f"C{i}", (), {}))
    assert len(_walk._fields_cache) <= _walk._CACHE_LIMIT


def test_field_values_of_records() -> None:
    """Fields come from dicts, namespaces and declared fields; anything else is missing."""
    assert _walk.field_value({"a": 1}, "a") == 1
    assert _walk.field_value(SimpleNamespace(a=2), "a") == 2
    assert _walk.field_value(SimpleNamespace(), "a") is MISSING
    assert _walk.field_value(WithProperty(3), "a") == 3
    assert _walk.field_value(WithProperty(3), "b") is MISSING  # not a declared field
    assert _walk.field_value(object(), "a") is MISSING
    broken = WithProperty(1)
    del broken.a
    assert _walk.field_value(broken, "a") is MISSING


def test_members_of_sets_and_collections_are_bounded() -> None:
    """Sets and dicts used as collections give at most 32 members, without user code."""
    assert len(_walk.members(set(range(100))) or []) == _walk.MAX_FIELDS
    assert len(_walk.members(frozenset(range(5))) or []) == 5
    assert len(_walk.members({i: i for i in range(50)}) or []) == _walk.MAX_FIELDS
    assert _walk.members([1]) is None
    assert _walk.item((1, 2), 1) == 2


# -- recording details -----------------------------------------------------------------------------


def test_tuples_sets_and_collections_are_recorded_as_items() -> None:
    """Tuples and sets record items; a dict keyed by ids records its values under ``[*]``."""
    recorder = GuardRecorder("g", thin=False)
    recorder.see("pair", (1, 2))
    recorder.see("tags", {"a", "b"})
    recorder.see("scores", {"alice-1": 3, "bob-2": 4})
    recorder.see("legacy", PydanticV1Like())
    paths = recorder.envelope().paths
    assert paths["pair[*]"].types == {"int"}
    assert paths["tags[*]"].types == {"str"}
    assert paths["scores[*]"].types == {"int"}
    assert paths["legacy.name"].types == {"str"}


def test_a_deleted_dataclass_field_is_missing() -> None:
    """A declared field that an instance lacks is recorded as missing, first call or later."""
    broken = WithProperty(2)
    del broken.a
    for order in ([WithProperty(1), broken], [broken, WithProperty(1)]):
        recorder = GuardRecorder("g", thin=False)
        for row in order:
            recorder.see("row", row)
        assert recorder.envelope().paths["row.a"].missing


def test_recording_stops_at_its_budget_and_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    """A walk reads at most its budget of values; an empty record at the deepest level counts."""
    from shadowguard.envelope import _record

    monkeypatch.setattr(_record, "BUDGET", 3)
    recorder = GuardRecorder("g", thin=False)
    recorder.see("rows", [[1, 2], [3, 4], [5, 6]])
    assert set(recorder.envelope().paths) == {"rows", "rows[*]", "rows[*][*]"}
    monkeypatch.setattr(_record, "BUDGET", 100)
    recorder.see("deep", {"a": {"b": {"c": {}}}})
    recorder.see("deep", {"a": {"b": {"c": {"d": 1}}}})
    paths = recorder.envelope().paths
    assert paths["deep.a.b.c"].record and paths["deep.a.b.c"].empty
    assert "deep.a.b.c.d" not in paths


def test_exception_names_are_capped() -> None:
    """Past 16 exception types a guard accepts any exception."""
    recorder = GuardRecorder("g", thin=False)
    for i in range(20):
        recorder.raised(type(f"E{i}", (Exception,), {})())
    recorder.raised(KeyError())
    assert recorder.envelope().exceptions is ANY


# -- watching details ------------------------------------------------------------------------------


def _watch(tmp_path: Path, paths: dict[str, Facts], name: str) -> None:
    target = tmp_path / "e.json"
    envelope.save(Envelope({name: GuardEnvelope(paths=paths, in_flight=1)}), target)
    shadowguard.configure(envelope=target)


def _observed(func: Any, *args: Any) -> list[tuple[str | None, str]]:
    with capture_violations() as violations:
        func(*args)
    return [(v.path, v.observed) for v in violations]


def test_collections_sets_and_records_are_compared(tmp_path: Path) -> None:
    """Members of sets and id-keyed dicts, and fields of objects, are compared with the tests'."""

    @guarded(types=False, name="walk.g")
    def g(tags: Any, scores: Any, row: Any, ns: Any) -> None: ...

    _watch(
        tmp_path,
        {
            "tags": Facts(types=frozenset({"set"}), max_len=3),
            "tags[*]": Facts(types=frozenset({"str"}), max_len=3),
            "scores": Facts(types=frozenset({"dict"}), max_len=2),
            "scores[*]": Facts(types=frozenset({"int"}), signs=frozenset({"positive"})),
            "row": Facts(types=frozenset({"WithProperty"}), record=True),
            "row.a": Facts(types=frozenset({"int"}), signs=frozenset({"positive"})),
            "ns": Facts(types=frozenset({"SimpleNamespace"}), record=True),
            "ns.x": Facts(types=frozenset({"str"}), max_len=2),
        },
        "walk.g",
    )
    fine = ({"ab"}, {"k-1": 1}, WithProperty(1), SimpleNamespace(x="ab"))
    assert _observed(g, *fine) == []
    assert _observed(g, {"ab", 3}, *fine[1:]) == [("tags[*]", "int")]
    assert _observed(g, fine[0], {"k-2": -1}, *fine[2:]) == [("scores[*]", "negative")]
    assert _observed(g, *fine[:2], WithProperty(-1), fine[3]) == [("row.a", "negative")]
    assert _observed(g, *fine[:3], SimpleNamespace()) == [("ns.x", "missing")]


def test_records_are_not_treated_as_collections(tmp_path: Path) -> None:
    """A dict the tests passed both as a record and as a collection is read as what it is."""

    @guarded(types=False, name="walk.h")
    def h(data: Any) -> None: ...

    _watch(
        tmp_path,
        {
            "data": Facts(types=frozenset({"dict"}), max_len=40, record=True),
            "data.a": Facts(types=frozenset({"int"})),
            "data[*]": Facts(types=frozenset({"int"})),
        },
        "walk.h",
    )
    assert _observed(h, {"a": 1}) == []
    assert _observed(h, {"a": "x"}) == [("data.a", "str")]
    assert _observed(h, {"a": 1, "b-c": "x"}) == [("data[*]", "str")]


def test_order_of_a_field_along_a_sequence_is_watched(tmp_path: Path) -> None:
    """Tests that only passed events sorted by ``ts`` make an unsorted batch a departure."""

    @guarded(types=False, name="walk.events")
    def replay(events: Any) -> None: ...

    _watch(
        tmp_path,
        {
            "events": Facts(types=frozenset({"tuple"}), max_len=5),
            "events[*]": Facts(types=frozenset({"dict"}), record=True, max_len=1),
            "events[*].ts": Facts(
                types=frozenset({"int"}), signs=frozenset({"positive"}), sorted=True
            ),
        },
        "walk.events",
    )
    assert _observed(replay, ({"ts": 1}, {"ts": 2}, {"ts": 2})) == []
    assert _observed(replay, ({"ts": 1}, {"ts": 3}, {"ts": 2})) == [
        ("events[*].ts", "items[2] < items[1]")
    ]


def test_anything_goes_where_the_tests_saw_too_many_types(tmp_path: Path) -> None:
    """A path whose type list overflowed accepts every type, and None."""

    @guarded(types=False, name="walk.loose")
    def loose(x: Any) -> None: ...

    _watch(tmp_path, {"x": Facts(types=ANY)}, "walk.loose")
    assert _observed(loose, None) == []
    assert _observed(loose, object()) == []


def test_comparison_stops_when_its_budget_is_spent() -> None:
    """Each comparison reads a bounded number of values; past the budget it reports nothing."""
    from shadowguard.envelope._compare import _Walk

    roots = compile_roots(
        GuardEnvelope(
            paths={
                "rows": Facts(types=frozenset({"list"}), max_len=10**6),
                "rows[*]": Facts(types=frozenset({"int"}), signs=frozenset({"positive"})),
            }
        )
    )
    rows = [1] * 10 + [-1]
    assert _Walk().value(roots["rows"], rows) is not None
    walk = _Walk()
    walk.budget = 1  # the list itself, then nothing left for its items
    assert walk.value(roots["rows"], rows) is None
    assert walk.budget <= 0 < BUDGET


@pytest.mark.parametrize(
    ("seen", "observed"),
    [
        (Facts(types=frozenset({"int", "str"})), "str"),
        (Facts(types=frozenset({"int"}), none=True), "None"),
    ],
)
def test_diff_reports_new_types_and_none(seen: Facts, observed: str) -> None:
    """The offline diff reports types and None the tests never had."""
    tested = GuardEnvelope(paths={"x": Facts(types=frozenset({"int"}))})
    other = GuardEnvelope(paths={"x": seen})
    assert list(envelope.departures(tested, other)) == [("x", observed, "tests only saw: int")]


# -- anything at all -------------------------------------------------------------------------------


_anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
    | st.binary(max_size=5)
    | st.builds(Unorderable)
    | st.builds(WithProperty, st.integers())
    | st.builds(SimpleNamespace, a=st.integers()),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=4)
        | st.frozensets(st.integers(), max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_anything, min_size=1, max_size=4), _anything)
def test_recording_and_watching_never_raise(tested: list[Any], other: Any) -> None:
    """Whatever the tests passed and production passes, recording and comparing never raise."""
    from shadowguard.envelope._compare import _Walk

    recorder = GuardRecorder("g", thin=False)
    for value in tested:
        recorder.see("x", value)
    recorded = recorder.envelope()
    roots = compile_roots(recorded)
    for value in (*tested, other):
        _Walk().value(roots["x"], value)
    for value in tested:  # what the tests passed is inside their own envelope
        assert _Walk().value(roots["x"], value) is None
    envelope.loads(envelope.dumps(Envelope({"g": recorded})))


def test_self_referencing_containers_stop_at_the_depth_limit() -> None:
    """A list that contains itself is read three levels deep, no further."""
    loop: list[Any] = []
    loop.append(loop)
    recorder = GuardRecorder("g", thin=False)
    recorder.see("x", loop)
    assert sorted(recorder.envelope().paths) == ["x", "x[*]", "x[*][*]", "x[*][*][*]"]


def test_recording_reads_every_item_of_a_list_up_to_256() -> None:
    """A rare value or a single descending pair in the middle of a test's list is not missed,
    so production never finds the tests' own data outside their envelope."""
    rows: list[Any] = list(range(200))
    rows[100] = None
    rows[150], rows[151] = rows[151], rows[150]
    recorder = GuardRecorder("g", thin=False)
    recorder.see("x", rows)
    facts = recorder.envelope().paths["x[*]"]
    assert facts.none and facts.unsorted


def test_only_fully_compared_sequences_prove_order() -> None:
    """A sampled long list adds no sortedness evidence; a descending pair still counts."""
    recorder = GuardRecorder("g", thin=False)
    for start in range(0, 10_000, 1000):
        recorder.see("x", list(range(start, start + 1000)))
    facts = recorder.envelope().paths["x[*]"]
    assert facts.evidence == 0 and not facts.unsorted
    recorder.see("x", [5, 3, *range(1000)])  # the first items are always read
    assert recorder.envelope().paths["x[*]"].unsorted
