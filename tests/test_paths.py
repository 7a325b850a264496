"""The path language: syntax, reading mappings vs attributes, ``[*]`` fan-out and hostile values."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadowguard import assume, guarded
from shadowguard._paths import (
    ATTR,
    FULL_SCAN,
    INDEX,
    KEY,
    MISSING,
    STAR,
    Unobservable,
    parse_path,
    sample_indices,
)
from shadowguard.testing import capture_violations

# -- syntax -------------------------------------------------------------------------------------


def test_every_segment_syntax_parses() -> None:
    """``.field``, ``[int]``, ``['key']``, ``["key"]`` and ``[*]`` each become one step."""
    path = parse_path("""order.lines[0]['sku']["name"][*][-1]""")
    assert path.root == "order"
    assert path.steps == (
        (ATTR, "lines"),
        (INDEX, 0),
        (KEY, "sku"),
        (KEY, "name"),
        (STAR, None),
        (INDEX, -1),
    )
    assert path.fans_out


def test_blanks_inside_brackets_and_around_the_path_are_allowed() -> None:
    """``[ 0 ]``, ``[ * ]``, ``[ 'k' ]`` and surrounding blanks parse like the compact form."""
    assert parse_path("  a[ 0 ][ * ][ 'k' ]  ").steps == ((INDEX, 0), (STAR, None), (KEY, "k"))


def test_quoted_keys_may_hold_any_character_with_escapes() -> None:
    """A quoted key may contain dots, brackets, blanks and escaped quotes."""
    path = parse_path(r"""d['a.b[0] c']["it\"s"]['x\'y']""")
    assert path.steps == ((KEY, "a.b[0] c"), (KEY, 'it"s'), (KEY, "x'y"))


def test_root_alone_and_return_root() -> None:
    """A bare parameter name and ``return`` are paths without steps."""
    assert parse_path("users").steps == ()
    assert parse_path("return").root == "return"
    assert not parse_path("return.id").fans_out


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "1abc",
        ".a",
        "a.",
        "a..b",
        "a[",
        "a[*",
        "a[x]",
        "a b",
        "a['k]",
        "a[1.5]",
        "a-b",
        "a[]",
        "a.1",
        "[0]",
    ],
)
def test_bad_syntax_is_a_value_error_naming_the_path(text: str) -> None:
    """Malformed paths raise ``ValueError`` quoting the path."""
    with pytest.raises(ValueError, match="bad path"):
        parse_path(text)


def test_non_string_path_is_a_type_error() -> None:
    """A path that is not a string is a ``TypeError``."""
    with pytest.raises(TypeError, match="must be a string"):
        parse_path(["a"])


def test_where_renders_concrete_locations() -> None:
    """``where`` fills ``[*]`` with the index that failed and quotes keys."""
    path = parse_path("a.b[*]['k'][2]")
    assert path.where((7,), 4) == "a.b[7]['k'][2]"
    assert path.where((), 4) == "a.b[*]['k'][2]"
    assert path.where((), 1) == "a.b"


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
_keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)
_segments = st.one_of(
    _names.map(lambda n: ((ATTR, n), f".{n}")),
    st.integers(-5, 50).map(lambda i: ((INDEX, i), f"[{i}]")),
    _keys.map(lambda k: ((KEY, k), "['" + k.replace("\\", "\\\\").replace("'", "\\'") + "']")),
    _keys.map(lambda k: ((KEY, k), '["' + k.replace("\\", "\\\\").replace('"', '\\"') + '"]')),
    st.just(((STAR, None), "[*]")),
)


@given(_names, st.lists(_segments, max_size=6))
def test_generated_paths_parse_to_their_steps(root: str, segments: list[Any]) -> None:
    """Any path assembled from valid segments parses back to exactly those steps."""
    text = root + "".join(source for _, source in segments)
    path = parse_path(text)
    assert path.root == root
    assert path.steps == tuple(step for step, _ in segments)


@given(st.text(max_size=30))
def test_arbitrary_text_parses_or_raises_value_error(text: str) -> None:
    """The parser never fails with anything but ``ValueError``."""
    with contextlib.suppress(ValueError):
        parse_path(text)


# -- reading ------------------------------------------------------------------------------------


def _observe(path: str, **arguments: Any) -> list[str]:
    """The observations of ``present`` and ``not_none`` on ``path`` for one call."""

    def target(**kwargs: Any) -> None:
        return None

    params = ", ".join(arguments)
    namespace: dict[str, Any] = {}
    exec(f"def f({params}): return None", namespace)  # a function with exactly these parameters
    func = guarded(assume.present(path), assume.not_none(path), name="paths")(namespace["f"])
    with capture_violations() as violations:
        assert func(**arguments) is None
    return [f"{v.assumption.split('(')[0]}: {v.observed}" for v in violations]


def test_dot_reads_a_mapping_key_not_an_attribute() -> None:
    """``.field`` on a Mapping reads the key, even when an attribute of that name exists."""
    assert _observe("row.items", row={"items": 1}) == []
    assert _observe("row.items", row={}) == ["present: missing", "not_none: missing"]


def test_dot_reads_an_attribute_on_other_objects() -> None:
    """``.field`` on a non-mapping reads the attribute."""
    assert _observe("user.email", user=SimpleNamespace(email="a")) == []
    assert _observe("user.email", user=SimpleNamespace(email=None)) == ["not_none: None"]
    assert _observe("user.email", user=SimpleNamespace()) == [
        "present: missing",
        "not_none: missing",
    ]


def test_key_syntax_does_not_read_attributes() -> None:
    """``['key']`` on an object that is not a mapping finds nothing."""
    assert _observe("user['email']", user=SimpleNamespace(email="a")) == [
        "present: missing",
        "not_none: missing",
    ]


def test_index_on_sequences_and_int_keys_on_mappings() -> None:
    """``[i]`` indexes sequences (negatives too), reads int keys of mappings, else is missing."""
    assert _observe("xs[-1]", xs=[1, 2]) == []
    assert _observe("xs[5]", xs=[1, 2]) == ["present: missing", "not_none: missing"]
    assert _observe("xs[1]", xs={1: None}) == ["not_none: None"]
    assert _observe("xs[0]", xs=42) == ["present: missing", "not_none: missing"]


def test_missing_and_none_are_different_observations() -> None:
    """A key that holds ``None`` and a key that does not exist are reported differently."""
    assert _observe("row.last_login", row={"last_login": None}) == ["not_none: None"]
    assert _observe("row.last_login", row={}) == ["present: missing", "not_none: missing"]


def test_none_or_missing_on_the_way_is_located() -> None:
    """A ``None`` or missing intermediate value is reported with where it happened."""
    assert _observe("user.address.city", user=None) == [
        "present: None at user",
        "not_none: None at user",
    ]
    assert _observe("user.address.city", user={"address": None}) == [
        "present: None at user.address",
        "not_none: None at user.address",
    ]
    assert _observe("user.address.city", user={}) == [
        "present: missing at user.address",
        "not_none: missing at user.address",
    ]


def test_star_over_lists_tuples_and_sequences_names_the_index() -> None:
    """``[*]`` fans out over lists, tuples and other Sequences; the first bad item decides."""

    class Rows(Sequence[Any]):
        def __init__(self, items: list[Any]) -> None:
            self._items = items

        def __len__(self) -> int:
            return len(self._items)

        def __getitem__(self, i: Any) -> Any:
            return self._items[i]

    rows = [{"v": 1}, {"v": None}, {}]
    expected = ["present: missing at rows[2].v", "not_none: None at rows[1].v"]
    assert _observe("rows[*].v", rows=rows) == expected
    assert _observe("rows[*].v", rows=tuple(rows)) == expected
    assert _observe("rows[*].v", rows=Rows(rows)) == expected


def test_star_over_mapping_values() -> None:
    """``[*]`` over a Mapping reads its values, never naming the key (a key can be a value)."""
    accounts = {"secret-key-1": {"owner": "a"}, "secret-key-2": {}}
    observed = _observe("accounts[*].owner", accounts=accounts)
    assert observed == [
        "present: missing at accounts[*].owner",
        "not_none: missing at accounts[*].owner",
    ]
    assert "secret" not in "".join(observed)


def test_nested_stars() -> None:
    """Two ``[*]`` steps locate the failing item with both indexes."""
    grid = [[1, 2], [3, None]]
    assert _observe("grid[*][*]", grid=grid) == ["not_none: None at grid[1][1]"]


def test_star_on_strings_scalars_and_sets_observes_nothing() -> None:
    """Strings, bytes, scalars and sets are not fanned out over."""
    assert _observe("x[*].a", x="abc") == []
    assert _observe("x[*].a", x=b"abc") == []
    assert _observe("x[*].a", x=5) == []
    assert _observe("x[*].a", x={1, 2}) == []


def test_star_never_iterates_iterators() -> None:
    """A one-shot iterator or generator argument is neither consumed nor advanced."""

    def gen() -> Iterator[dict[str, Any]]:
        yield {}
        yield {}

    iterator = iter([{}, {}])
    generator = gen()
    assert _observe("x[*].a", x=iterator) == []
    assert _observe("x[*].a", x=generator) == []
    assert _observe("x[*].a", x=map(dict, [{}])) == []
    assert next(iterator) == {}
    assert next(generator) == {}


def test_empty_containers_have_nothing_to_check() -> None:
    """``[*]`` over an empty list or mapping observes nothing."""
    assert _observe("x[*].a", x=[]) == []
    assert _observe("x[*].a", x={}) == []


# -- hostile objects ----------------------------------------------------------------------------


class Hostile:
    """Every way of reading it raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("getattr")

    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("getitem")

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __iter__(self) -> Any:
        raise RuntimeError("iter")

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    __hash__ = None  # type: ignore[assignment]


class HostileMapping(Mapping[str, Any]):
    """A Mapping whose every read raises."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("getitem")

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __iter__(self) -> Any:
        raise RuntimeError("iter")

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("get")


class HostileSequence(Sequence[Any]):
    """A Sequence whose length or items raise."""

    def __init__(self, fail_len: bool) -> None:
        self.fail_len = fail_len

    def __len__(self) -> int:
        if self.fail_len:
            raise RuntimeError("len")
        return 3

    def __getitem__(self, i: Any) -> Any:
        raise RuntimeError("getitem")


_HOSTILE_READS = [
    (Hostile(), "x.a"),
    (Hostile(), "x.a.b"),
    (Hostile(), "x[*]"),
    (HostileMapping(), "x.a"),
    (HostileMapping(), "x[0]"),
    (HostileMapping(), "x['k']"),
    (HostileMapping(), "x[*]"),
    (HostileMapping(), "x[*].a"),
    (HostileSequence(True), "x[*]"),
    (HostileSequence(True), "x[*].a"),
    (HostileSequence(False), "x[0]"),
    (HostileSequence(False), "x[*].a"),
    ([Hostile()], "x[*].a"),
    ({"k": HostileMapping()}, "x.k.a"),
]


@pytest.mark.parametrize(
    ("value", "path"), _HOSTILE_READS, ids=[f"{type(v).__name__}-{p}" for v, p in _HOSTILE_READS]
)
def test_hostile_objects_are_unobservable_not_violations(value: Any, path: str) -> None:
    """A value whose reads raise yields no violation and no internal error."""
    assert _observe(path, x=value) == []


def test_paths_that_do_not_apply_to_a_hostile_object_are_missing() -> None:
    """A read the path language does not do on that type (no raising involved) is missing."""
    assert _observe("x.a", x=HostileSequence(True)) == ["present: missing", "not_none: missing"]
    assert _observe("x['k']", x=Hostile()) == ["present: missing", "not_none: missing"]


def test_hostile_objects_with_every_path_assumption() -> None:
    """size, ordered and monotonic also treat a hostile value as unobservable."""

    @guarded(
        assume.size("x", max=10),
        assume.ordered("x"),
        assume.ordered("y", key="k"),
        assume.monotonic("x.a"),
        assume.monotonic("z", per="x.a"),
        name="hostile",
    )
    def f(x: Any, y: Any, z: int) -> str:
        return "ok"

    with capture_violations() as violations:
        for value in (Hostile(), HostileMapping(), HostileSequence(True), HostileSequence(False)):
            assert f(value, value, 1) == "ok"
    assert violations == []


def test_read_raises_unobservable_for_hostile_values() -> None:
    """``Path.read`` wraps a raising read in ``Unobservable``."""
    with pytest.raises(Unobservable):
        parse_path("x.a").read(Hostile())
    assert parse_path("x.a.b").read(None) is MISSING
    assert parse_path("x.a.b").read({"a": None}) is MISSING
    assert parse_path("x.a").read({"a": 0}) == 0


# -- sampling -----------------------------------------------------------------------------------


def test_small_containers_are_read_in_full() -> None:
    """Up to ``FULL_SCAN`` items every index is read, in order."""
    assert list(sample_indices(FULL_SCAN)) == list(range(FULL_SCAN))
    assert list(sample_indices(0)) == []


def test_large_containers_are_sampled_with_a_bounded_count() -> None:
    """A million items are read through a bounded number of indexes, head and tail included."""
    picks = sample_indices(1_000_000)
    assert len(picks) <= FULL_SCAN
    assert {0, 1, 999_999} <= set(picks)
    assert all(0 <= i < 1_000_000 for i in picks)


class CountingRows(Sequence[Any]):
    """A huge sequence that counts how many items were read."""

    def __init__(self, n: int, bad: int) -> None:
        self.n = n
        self.bad = bad
        self.reads = 0
        self.indexes: set[int] = set()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            raise TypeError("no slicing")
        self.reads += 1
        self.indexes.add(i)
        return {} if i == self.bad else {"v": 1}


def test_star_over_a_huge_sequence_reads_a_bounded_sample_spread_over_the_whole_range() -> None:
    """A million-item ``[*]`` reads at most ``FULL_SCAN`` items per call, drawn from everywhere."""
    rows = CountingRows(1_000_000, bad=-1)

    @guarded(assume.present("rows[*].v"), name="huge")
    def f(rows: Any) -> None:
        return None

    for calls in range(1, 501):
        f(rows)
        assert rows.reads <= calls * FULL_SCAN
    buckets = {i * 100 // rows.n for i in rows.indexes}
    assert buckets == set(range(100)), "some part of the sequence is never sampled"


def test_star_over_a_large_sequence_eventually_finds_a_single_bad_item() -> None:
    """Repeated calls find one bad item in the middle of a large sequence."""
    rows = CountingRows(20_000, bad=12_345)

    @guarded(assume.present("rows[*].v"), name="large")
    def f(rows: Any) -> None:
        return None

    calls = 0
    with capture_violations() as violations:
        while not violations and calls < 50_000:
            f(rows)
            calls += 1
    assert [v.observed for v in violations] == ["missing at rows[12345].v"]
    assert rows.reads <= calls * FULL_SCAN


def test_star_over_a_huge_mapping_reads_a_bounded_number_of_values() -> None:
    """``[*]`` over a large Mapping reads at most ``FULL_SCAN`` values per call."""

    class CountingMapping(Mapping[int, Any]):
        def __init__(self) -> None:
            self.reads = 0

        def __getitem__(self, key: int) -> Any:
            self.reads += 1
            return {"v": 1}

        def __iter__(self) -> Iterator[int]:
            return iter(range(10_000))

        def __len__(self) -> int:
            return 10_000

    mapping = CountingMapping()

    @guarded(assume.present("m[*].v"), name="huge.map")
    def f(m: Any) -> None:
        return None

    f(mapping)
    assert 0 < mapping.reads <= FULL_SCAN


def test_an_assumption_reports_once_per_call_even_with_many_bad_items() -> None:
    """A ``[*]`` path with many failing items yields a single violation per call."""

    @guarded(assume.present("rows[*].v"), name="once")
    def f(rows: list[Any]) -> None:
        return None

    with capture_violations() as violations:
        f([{}] * 10)
    assert [v.observed for v in violations] == ["missing at rows[0].v"]


def test_itertools_count_argument_is_never_touched() -> None:
    """An infinite iterator argument does not hang a ``[*]`` path and is not advanced."""
    counter = itertools.count()
    assert _observe("x[*]", x=counter) == []
    assert next(counter) == 0


def test_missing_is_a_falsy_singleton_with_a_readable_repr() -> None:
    """``MISSING`` prints as such and is falsy, so it never reads as a value."""
    assert repr(MISSING) == "MISSING"
    assert not MISSING
