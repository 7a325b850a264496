"""Merging envelopes is a join: any grouping, any order, any repetition gives the same file."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shadowguard import envelope
from shadowguard.envelope import Envelope, Facts, GuardEnvelope
from shadowguard.envelope._facts import ANY, MAX_PATHS, MAX_TYPES, SIGNS
from shadowguard.envelope._record import GuardRecorder

_names = st.frozensets(st.sampled_from(["int", "str", "dict", "list", "float", "bool"]), max_size=4)
_types = st.one_of(
    _names,
    st.just(ANY),
    # Near the cap, so that unions cross it.
    st.sampled_from([frozenset(f"T{i + k}" for i in range(MAX_TYPES - 2)) for k in range(4)]),
)


_PAIRS = [frozenset(f"{i + k:08x}" for i in range(n)) for n in (0, 1, 3, 7) for k in (0, 4)]


@st.composite
def facts(draw: Any) -> Facts:
    flags = draw(st.integers(0, 63))  # one draw for six booleans keeps generation fast
    return Facts(
        types=draw(_types),
        none=bool(flags & 1),
        missing=bool(flags & 2),
        empty=bool(flags & 4),
        max_len=draw(st.integers(-1, 50)),
        signs=draw(st.sampled_from([frozenset(SIGNS[i:j]) for i in range(3) for j in range(4)])),
        sorted=bool(flags & 8),
        pairs=draw(st.sampled_from(_PAIRS)),
        unsorted=bool(flags & 16),
        record=bool(flags & 32),
    )


# Paths from a small tree, so that envelopes share paths, parents and records.
_PATHS = [
    "users",
    "users[*]",
    "users[*].id",
    "users[*].email",
    "users[*].tags",
    "users[*].tags[*]",
    "return",
    "return.total",
    "return.items",
    "limit",
]


@st.composite
def guards(draw: Any) -> GuardEnvelope:
    chosen = draw(st.lists(st.sampled_from(_PATHS), unique=True, max_size=6))
    return GuardEnvelope(
        paths={path: draw(facts()) for path in sorted(chosen)},
        exceptions=draw(st.one_of(st.just(ANY), _names)),
        in_flight=draw(st.integers(0, 5)),
    )


envelopes = st.builds(
    Envelope, st.dictionaries(st.sampled_from(["a", "b", "c"]), guards(), max_size=3)
)


def _text(value: Envelope) -> str:
    return envelope.dumps(value)


@settings(max_examples=200)
@given(envelopes, envelopes, envelopes)
def test_merge_is_associative(a: Envelope, b: Envelope, c: Envelope) -> None:
    """(a + b) + c and a + (b + c) write the same file."""
    assert _text(envelope.merge(envelope.merge(a, b), c)) == _text(
        envelope.merge(a, envelope.merge(b, c))
    )


@settings(max_examples=200)
@given(envelopes, envelopes)
def test_merge_is_commutative_and_idempotent(a: Envelope, b: Envelope) -> None:
    """a + b == b + a, and merging in what is already there changes nothing."""
    ab = envelope.merge(a, b)
    assert _text(ab) == _text(envelope.merge(b, a))
    assert _text(envelope.merge(ab, b)) == _text(ab)


@given(envelopes, envelopes)
def test_merge_survives_the_file(a: Envelope, b: Envelope) -> None:
    """Merging envelopes read back from their files equals merging the originals."""
    reread = envelope.merge(envelope.loads(_text(a)), envelope.loads(_text(b)))
    assert _text(reread) == _text(envelope.merge(a, b))


_json_values = st.recursive(
    st.none() | st.integers(-5, 5) | st.text("ab", max_size=3) | st.floats(-2, 2) | st.booleans(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["id", "email", "tags"]), inner, max_size=3)
    ),
    max_leaves=12,
)


def _recorded(values: list[Any]) -> Envelope:
    recorder = GuardRecorder("g", thin=False)
    for value in values:
        recorder.see("x", value)
    return Envelope({"g": recorder.envelope()}) if values else Envelope()


@settings(max_examples=200)
@given(st.lists(_json_values, max_size=5), st.lists(_json_values, max_size=5))
def test_two_workers_merged_equal_one_process(first: list[Any], second: list[Any]) -> None:
    """Recording calls in two xdist workers and merging gives exactly what one process records."""
    together = _recorded(first + second)
    merged = envelope.merge(_recorded(first), _recorded(second))
    assert _text(merged) == _text(together)


def test_merge_keeps_the_smallest_paths_per_parameter() -> None:
    """Past the cap a merge keeps the lexically smallest paths, so parents outlive children."""
    left = GuardEnvelope(paths={f"x.f{i:03d}": Facts(none=True) for i in range(0, MAX_PATHS, 2)})
    right = GuardEnvelope(
        paths={
            "x": Facts(record=True),
            "y": Facts(none=True),
            **{f"x.f{i:03d}": Facts(none=True) for i in range(1, MAX_PATHS + 40, 2)},
        }
    )
    merged = left.join(right)
    x_paths = [p for p in merged.paths if p.startswith("x")]
    assert len(x_paths) == MAX_PATHS
    assert x_paths == sorted(x_paths) and x_paths[0] == "x"
    assert "y" in merged.paths


def test_a_field_one_side_never_had_becomes_missing() -> None:
    """When one side saw the record without a field, the merged field is ``missing``."""
    with_email = GuardEnvelope(
        paths={"u": Facts(record=True), "u.email": Facts(types=frozenset({"str"}))}
    )
    without = GuardEnvelope(paths={"u": Facts(record=True)})
    never_a_record = GuardEnvelope(paths={"u": Facts(none=True)})
    assert with_email.join(without).paths["u.email"].missing
    assert not with_email.join(never_a_record).paths["u.email"].missing


def test_merge_accepts_iterables_and_caps_names() -> None:
    """``merge`` takes envelopes or iterables of them; too many type names become any."""
    many = [
        Envelope({"g": GuardEnvelope(paths={"x": Facts(types=frozenset({f"T{i}"}))})})
        for i in range(MAX_TYPES + 1)
    ]
    merged = envelope.merge(many[0], many[1:])
    assert merged.guards["g"].paths["x"].types is ANY
    assert envelope.merge() == Envelope()
