"""The compiled fast paths of the envelope are the slow walks, only faster.

Watching compiles each expectation tree into closures (``compile_check``) and the commonest
values into source the guard's generated checker runs inline (``accept_plan``, which may only
accept what the walk finds nothing in); recording skips the walk of a value that would teach it
nothing (``GuardRecorder.known``). Both must give exactly what the plain walks give: the same
finding, the same envelope.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from _hostile import Unorderable
from shadowguard._paths import _rng
from shadowguard.envelope import Envelope, Facts, GuardEnvelope, dumps
from shadowguard.envelope._compare import (
    _Walk,
    accept_plan,
    compile_check,
    compile_roots,
)
from shadowguard.envelope._facts import ANY
from shadowguard.envelope._record import GuardRecorder, known_plan


@dataclasses.dataclass
class Row:
    id: Any
    ts: Any = 0


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=True, allow_infinity=False, width=16)
    | st.text("ab", max_size=3)
    | st.binary(max_size=2)
    | st.builds(Unorderable)
)
_records = st.fixed_dictionaries(
    {}, optional={"id": _scalars, "ts": st.integers(0, 5), "name": st.text("xy", max_size=2)}
)
_values = st.recursive(
    _scalars | _records | st.builds(Row, _scalars, st.integers(0, 5)),
    lambda inner: (
        st.lists(inner, max_size=7)
        | st.tuples(inner, inner)
        | st.lists(_records, max_size=6)
        | st.dictionaries(st.text("ab", max_size=2) | st.integers(0, 3), inner, max_size=3)
        | st.frozensets(st.integers(-2, 2), max_size=3)
        | st.builds(SimpleNamespace, id=inner)
        | _records
    ),
    max_leaves=12,
)

_PATHS = ("x", "x[*]", "x.id", "x.ts", "x[*].id", "x[*].ts", "x[*].name", "x[*][*]", "x.id[*]")
_facts = st.builds(
    Facts,
    types=st.sets(
        st.sampled_from(["int", "str", "float", "list", "dict", "tuple", "Row", "bool"]),
        min_size=1,
        max_size=5,
    ).map(frozenset)
    | st.just(ANY)
    | st.just(frozenset()),
    none=st.booleans(),
    missing=st.booleans(),
    empty=st.booleans(),
    max_len=st.integers(-1, 4),
    signs=st.sets(st.sampled_from(["negative", "zero", "positive", "other"])).map(frozenset),
    sorted=st.booleans(),
    record=st.booleans(),
)
_envelopes = st.builds(
    lambda root, below: GuardEnvelope(paths={**below, "x": root}),
    _facts,
    st.dictionaries(st.sampled_from(_PATHS[1:]), _facts),
)


def _inline(root: Any) -> Any:
    """The inline acceptance of ``root`` as a function (what the guard's checker runs)."""
    plan = accept_plan(root)
    if plan is None:
        return None
    lines = plan[0]
    namespace: dict[str, Any] = {}
    body = "\n".join("    " + line for line in lines)
    exec(f"def accept(v):\n{body}\n    return ok", namespace)
    return namespace["accept"]


def _within(shapes: Any, value: Any) -> None:
    """A value the inline lines accepted is of the exact types their shapes promise (what lets
    the guard's checker skip an annotation those types imply)."""
    if shapes is None:
        return
    kind = type(value)
    assert kind in shapes, (kind, shapes)
    members = shapes[kind]
    if members is not None and kind in (list, tuple):
        assert all(type(member) in members for member in value), (value, shapes)


def _same_finding(root: Any, value: Any, seed: int) -> None:
    compiled = compile_check(root)
    if compiled is None:
        return
    _rng.seed(seed)
    slow = _Walk().value(root, value)
    _rng.seed(seed)
    fast = compiled(value)
    assert (slow is None) == (fast is None), (slow, fast)
    accept = _inline(root)
    if accept is not None and accept(value):  # decided inline: only where nothing is found
        assert slow is None, (slow, accept_plan(root))
        plan = accept_plan(root)
        assert plan is not None
        _within(plan[1], value)
    if slow is not None and fast is not None:
        assert (str(slow), slow.path, slow.expected, slow.assumption) == (
            str(fast),
            fast.path,
            fast.expected,
            fast.assumption,
        )


@settings(max_examples=1000, deadline=None)
@given(_envelopes, st.lists(_scalars | _values, min_size=1, max_size=4), st.integers(0, 2**32))
def test_compiled_watch_finds_what_the_walk_finds(
    tested: GuardEnvelope, values: list[Any], seed: int
) -> None:
    """Any envelope (hand-made facts, odd signs, ANY types), any value: the same finding."""
    roots = compile_roots(tested)
    for value in values:
        _same_finding(roots["x"], value, seed)


@settings(max_examples=300, deadline=None)
@given(st.lists(_values, min_size=1, max_size=5), st.lists(_values, max_size=4), st.integers())
def test_compiled_watch_of_recorded_envelopes(
    tested: list[Any], other: list[Any], seed: int
) -> None:
    """Envelopes as recording makes them (records, order along fields): the same finding."""
    recorder = GuardRecorder("g", thin=False)
    for value in tested:
        recorder.see("x", value)
    roots = compile_roots(recorder.envelope())
    for value in (*tested, *other):
        _same_finding(roots["x"], value, seed)


def test_compiled_watch_of_a_sorted_sequence_of_records() -> None:
    """Order along a field is compared pair by pair, and reported on the field's path."""
    recorder = GuardRecorder("g", thin=False)
    for start in range(0, 100, 10):
        recorder.see("x", [{"ts": start + i, "id": i} for i in range(5)])
    roots = compile_roots(recorder.envelope())
    compiled = compile_check(roots["x"])
    assert compiled is not None
    assert compiled([{"ts": 1, "id": 0}, {"ts": 2, "id": 1}]) is None
    found = compiled([{"ts": 2, "id": 0}, {"ts": 1, "id": 1}])
    assert found is not None and found.path == "x[*].ts"
    for seed in range(20):
        _same_finding(roots["x"], [{"ts": i % 7, "id": i} for i in range(12)], seed)


def test_a_tree_the_budget_could_cut_short_is_not_compiled() -> None:
    """Where the walk's budget could run out, only the walk is exact: nothing is compiled."""
    paths = {"x": Facts(types=frozenset({"dict"}), record=True)}
    for a in "abcdefghijklmnop":
        paths[f"x.{a}"] = Facts(types=frozenset({"dict"}), record=True)
        for b in "abcdefghijklmnopqrstuvwxyzABCDEF":
            paths[f"x.{a}.{b}"] = Facts(types=frozenset({"int"}))
    roots = compile_roots(GuardEnvelope(paths=paths))
    assert compile_check(roots["x"]) is None


# -- recording: a value that teaches nothing is not walked -----------------------------------


def _recorded(values: list[Any], known: bool) -> str:
    recorder = GuardRecorder("g", thin=False)
    if not known:
        recorder.skip = False  # the plain walk, every time
    for value in values:
        recorder.see("x", value)
    return dumps(Envelope({"g": recorder.envelope()}))


@settings(max_examples=500, deadline=None)
@given(
    st.lists(_values, min_size=1, max_size=4),
    st.lists(_values, min_size=1, max_size=4),
    st.lists(st.integers(0, 7), max_size=12),
)
def test_skipping_known_values_records_the_same_envelope(
    values: list[Any], more: list[Any], replays: list[int]
) -> None:
    """Values passed again (the fast path's case), then new ones judged by the snapshot the
    replays left, record byte for byte what the plain walk records."""
    both = values + more
    sequence = values + values + more + [both[i % len(both)] for i in replays] + more
    assert _recorded(sequence, known=True) == _recorded(sequence, known=False)


_shallow = _scalars | _records | st.lists(_records, max_size=5) | st.lists(_scalars, max_size=6)


@settings(max_examples=500, deadline=None)
@given(st.lists(_shallow, min_size=1, max_size=3), st.lists(_shallow, min_size=1, max_size=4))
@example([{"name": "x"}], [{"name": "xy"}])
@example([{"id": -1}, [1, 2]], [{"id": 0}, [0, 1]])
@example([{"id": 0}, [0, 0]], [{"id": -1}, [-1, 0]])
@example([[{"ts": 1, "id": 0}, {"ts": 2, "id": 1}]], [[{"ts": 2, "id": 0}, {"ts": 3, "id": 1}]])
def test_skipping_judges_new_flat_values_exactly(values: list[Any], more: list[Any]) -> None:
    """Scalars, records and lists of them (where the fast path inlines most), new after a
    snapshot: the same envelope as the plain walk."""
    sequence = values + values + more + values + more
    assert _recorded(sequence, known=True) == _recorded(sequence, known=False)


def _known_inline(recorder: GuardRecorder) -> Any:
    """The recorder's inline knowledge of ``x`` as a function (what the guard's checker runs)."""
    node = recorder.roots.get("x")
    found = None if node is None else known_plan(node)
    if found is None:
        return None
    lines, names, _ = found
    body = "\n".join("    " + line for line in lines)
    namespace: dict[str, Any] = dict(names)
    exec(f"def known(v):\n{body}\n    return ok", namespace)
    return namespace["known"]


@settings(max_examples=500, deadline=None)
@given(st.lists(_shallow, min_size=1, max_size=4), st.lists(_shallow, min_size=1, max_size=6))
@example([[1, 2, 3], [3, 4], [5, 9]], [[1, 2, 3], [2, 3], [1, 3], [4, 2], [0, 1], [-1, 0]])
@example([[-1, 0, 7], ["a", "ab"], "abc", 3, None], [[0, 7], ["ab", "a"], "", 0, [None]])
def test_inline_knowledge_only_skips_what_teaches_nothing(
    values: list[Any], more: list[Any]
) -> None:
    """What the guard's checker decides inline for a test run's recorder: a value it calls known
    changes nothing when walked (the recorded envelope stays byte for byte the same)."""
    recorder = GuardRecorder("g", thin=False)
    recorder.skip = False  # every value walked: the envelope is the plain walk's
    for value in values:
        recorder.see("x", value)
    for value in more:
        known = _known_inline(recorder)
        node = recorder.roots.get("x")
        plan = None if node is None else known_plan(node)
        before = dumps(Envelope({"g": recorder.envelope()}))
        recorder.see("x", value)
        if known is not None and known(value):
            assert dumps(Envelope({"g": recorder.envelope()})) == before, value
            assert plan is not None
            _within(plan[2], value)


def test_skipping_keeps_sortedness_evidence_exact() -> None:
    """The same sorted list again adds nothing; new ascending pairs still count one by one."""
    values: list[Any] = [[1, 2, 3]] * 5 + [[3, 4], [1, 2, 3], [4, 5, 6, 7], [1, 2, 3], [9, 10]]
    values += [[{"ts": i, "id": -i} for i in range(3)]] * 4 + [[2, 1]]
    assert _recorded(values, known=True) == _recorded(values, known=False)


# -- arguments read from their slots ----------------------------------------------------------


def test_argument_readers_read_what_call_argument_reads() -> None:
    """Positional, keyword, default, positional-only, keyword-only, ``*args``, ``**kwargs`` and
    a parameter named ``result`` (which ``Call.argument`` reads as the return value)."""
    import inspect

    from shadowguard._call import Binder, Call
    from shadowguard.envelope._record import argument_reader

    def f(a, /, b, c=3, *rest, d, e=5, result=None, **more): ...  # type: ignore[no-untyped-def]

    binder = Binder(inspect.signature(f))
    calls = [
        ((1, 2), {"d": 4}),
        ((1,), {"b": 2, "d": 4, "result": 9, "x": 0}),
        ((1, 2, 3, 4, 5), {"d": 4, "e": 6}),
        ((), {}),
    ]
    for args, kwargs in calls:
        call = Call(binder, args, kwargs)
        call.result = "returned"
        for name in binder.names:
            assert argument_reader(binder, name)(call) == call.argument(name), (name, args)
            assert argument_reader(None, name)(call) == call.argument(name)


# -- fingerprints ---------------------------------------------------------------------------------


def _reference_fingerprint(before: object, after: object) -> str:
    """The fingerprint as first written (every recorded envelope depends on its spelling)."""
    import zlib

    parts = []
    for value in (before, after):
        kind = type(value).__name__
        if isinstance(value, (str, bytes)) and len(value) > 64:
            parts.append(f"{kind}:{value[:64]!r}+{len(value)}")
        elif isinstance(value, int) and value.bit_length() > 256:
            parts.append(f"{kind}:{value.bit_length()}:{value % 2_305_843_009_213_693_951}")
        else:
            parts.append(f"{kind}:{value!r}")
    digest = zlib.crc32("\x00".join(parts).encode("utf-8", "backslashreplace"))
    return f"{digest:08x}"


_orderable = (
    st.integers()
    | st.integers(min_value=2**250, max_value=2**260)
    | st.integers(max_value=-(2**250), min_value=-(2**260))
    | st.floats()
    | st.text(max_size=70)
    | st.binary(max_size=70)
)


@settings(max_examples=500, deadline=None)
@given(_orderable, _orderable)
def test_fingerprints_are_spelled_as_they_always_were(before: Any, after: Any) -> None:
    """The faster spelling gives the very same names (envelopes merge across versions)."""
    from shadowguard.envelope._walk import fingerprint, fingerprint_number

    assert fingerprint(before, after) == _reference_fingerprint(before, after)
    assert fingerprint_number(before, after) == int(_reference_fingerprint(before, after), 16)
