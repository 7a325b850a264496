"""The envelope file: deterministic, reviewable JSON with a version, and clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shadowguard import envelope
from shadowguard.envelope import Envelope, EnvelopeError, Facts, GuardEnvelope
from shadowguard.envelope._facts import ANY


def _sample() -> Envelope:
    return Envelope(
        {
            "b.guard": GuardEnvelope(
                paths={
                    "users[*].last_login": Facts(types=frozenset({"str"}), none=True, max_len=19),
                    "users": Facts(types=frozenset({"list"}), max_len=3, empty=True),
                    "users[*]": Facts(types=frozenset({"dict"}), record=True, max_len=2),
                    "users[*].id": Facts(
                        types=frozenset({"int"}), signs=frozenset({"positive", "zero"}), sorted=True
                    ),
                    "users[*].name": Facts(pairs=frozenset({"0000beef", "00c0ffee"})),
                    "limit": Facts(types=ANY, unsorted=True, missing=True),
                },
                exceptions=frozenset({"KeyError", "ValueError"}),
                in_flight=2,
            ),
            "a.guard": GuardEnvelope(exceptions=ANY, in_flight=1),
        }
    )


def test_file_text_is_sorted_one_line_per_path_and_versioned() -> None:
    """Keys are sorted, each path's facts sit on one line, and the version is 1."""
    text = envelope.dumps(_sample())
    assert text == (
        "{\n"
        '  "guards": {\n'
        '    "a.guard": {\n'
        '      "exceptions": "any",\n'
        '      "in_flight": 1,\n'
        '      "paths": {}\n'
        "    },\n"
        '    "b.guard": {\n'
        '      "exceptions": ["KeyError", "ValueError"],\n'
        '      "in_flight": 2,\n'
        '      "paths": {\n'
        '        "limit": {"missing": true, "types": "any", "unsorted": true},\n'
        '        "users": {"empty": true, "max_len": 3, "types": ["list"]},\n'
        '        "users[*]": {"max_len": 2, "record": true, "types": ["dict"]},\n'
        '        "users[*].id": {"signs": ["zero", "positive"], "sorted": true, '
        '"types": ["int"]},\n'
        '        "users[*].last_login": {"max_len": 19, "none": true, "types": ["str"]},\n'
        '        "users[*].name": {}\n'
        "      },\n"
        '      "sorted_evidence": {\n'
        '        "users[*].name": ["0000beef", "00c0ffee"]\n'
        "      }\n"
        "    }\n"
        "  },\n"
        '  "version": 1\n'
        "}\n"
    )
    assert json.loads(text)["version"] == envelope.VERSION == 1


def test_round_trip_is_exact_and_stable() -> None:
    """Parsing the text gives the same envelope, and writing it again gives the same bytes."""
    text = envelope.dumps(_sample())
    assert envelope.loads(text) == _sample()
    assert envelope.dumps(envelope.loads(text)) == text
    assert envelope.dumps(Envelope()) == '{\n  "guards": {},\n  "version": 1\n}\n'
    assert envelope.loads(envelope.dumps(Envelope())) == Envelope()


def test_save_is_atomic_and_creates_directories(tmp_path: Path) -> None:
    """``save`` writes through a temporary file and leaves nothing else behind."""
    target = tmp_path / "deep" / "dir" / "envelope.json"
    envelope.save(_sample(), target)
    assert envelope.load(target) == _sample()
    assert os.listdir(target.parent) == ["envelope.json"]


def test_save_cleans_up_when_the_write_fails(tmp_path: Path) -> None:
    """A target that cannot be replaced leaves no temporary file behind."""
    target = tmp_path / "taken"
    target.mkdir()
    (target / "x").write_text("")
    with pytest.raises(OSError):
        envelope.save(_sample(), target)
    assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_merge_into_joins_with_the_file_and_replaces_junk(tmp_path: Path) -> None:
    """``merge_into`` adds to a valid file and overwrites one that is not an envelope."""
    target = tmp_path / "prod.json"
    first = Envelope({"g": GuardEnvelope(paths={"x": Facts(types=frozenset({"int"}))})})
    second = Envelope({"g": GuardEnvelope(paths={"x": Facts(none=True)}, in_flight=4)})
    envelope.merge_into(first, target)
    envelope.merge_into(second, target)
    merged = envelope.load(target).guards["g"]
    assert merged.paths["x"] == Facts(types=frozenset({"int"}), none=True)
    assert merged.in_flight == 4
    target.write_text("garbage")
    envelope.merge_into(first, target)
    assert envelope.load(target) == first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{nope", "not valid JSON"),
        ("[1]", "the top level must be a JSON object"),
        ("{}", 'no "version" key'),
        ('{"version": 2}', "unsupported envelope version 2 (this shadowguard reads version 1)"),
        ('{"version": true}', "unsupported envelope version True"),
        ('{"version": 1, "guards": []}', '"guards" must be an object'),
        ('{"version": 1, "guards": {"g": 3}}', "guard 'g': must be an object"),
        ('{"version": 1, "guards": {"g": {"in_flight": -1}}}', "in_flight must be a non-negative"),
        (
            '{"version": 1, "guards": {"g": {"in_flight": true}}}',
            "in_flight must be a non-negative",
        ),
        ('{"version": 1, "guards": {"g": {"exceptions": [1]}}}', "exceptions must be a list of"),
        ('{"version": 1, "guards": {"g": {"paths": []}}}', "paths must be an object"),
        ('{"version": 1, "guards": {"g": {"paths": {"a..b": {}}}}}', "bad path 'a..b'"),
        ('{"version": 1, "guards": {"g": {"paths": {"x[0]": {}}}}}', "bad path 'x[0]'"),
        ('{"version": 1, "guards": {"g": {"paths": {"x": 1}}}}', "path 'x': must be an object"),
        ('{"version": 1, "guards": {"g": {"paths": {"x": {"none": 1}}}}}', "none must be true"),
        ('{"version": 1, "guards": {"g": {"paths": {"x": {"max_len": -2}}}}}', "max_len must"),
        ('{"version": 1, "guards": {"g": {"paths": {"x": {"signs": ["big"]}}}}}', "signs must"),
        ('{"version": 1, "guards": {"g": {"paths": {"x": {"sorted": 8}}}}}', "sorted must"),
        ('{"version": 1, "guards": {"g": {"sorted_evidence": []}}}', "sorted_evidence must"),
        (
            '{"version": 1, "guards": {"g": {"sorted_evidence": {"x[*]": [""]}}}}',
            "sorted_evidence 'x[*]' must be a list",
        ),
        ('{"version": 1, "guards": {"g": {"paths": {"x": {"types": "str"}}}}}', "types must"),
    ],
)
def test_bad_files_are_rejected_with_a_precise_message(text: str, message: str) -> None:
    """Every malformed file raises EnvelopeError naming the fault (and the guard and path)."""
    with pytest.raises(EnvelopeError) as raised:
        envelope.loads(text)
    assert message in str(raised.value)


def test_load_names_the_file(tmp_path: Path) -> None:
    """Errors from ``load`` start with the file's path; a missing file is an OSError."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 7}')
    with pytest.raises(EnvelopeError, match=r"bad\.json: unsupported envelope version 7"):
        envelope.load(bad)
    with pytest.raises(FileNotFoundError):
        envelope.load(tmp_path / "absent.json")


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    """A newer writer may add facts; this reader keeps the ones it knows."""
    text = json.dumps(
        {"version": 1, "generator": "x", "guards": {"g": {"paths": {"x": {"none": True, "n": 1}}}}}
    )
    assert envelope.loads(text).guards["g"].paths["x"] == Facts(none=True)


def test_order_facts_are_read_in_their_canonical_form() -> None:
    """Unsorted beats sorted; eight or more pair fingerprints read as established order."""
    text = (
        '{"version": 1, "guards": {"g": {"paths": {"x[*]": {"sorted": true, "unsorted": true}}}}}'
    )
    facts = envelope.loads(text).guards["g"].paths["x[*]"]
    assert facts.unsorted and not facts.always_sorted and facts.evidence == 0
    pairs = [f"p{i}" for i in range(9)]
    text = json.dumps({"version": 1, "guards": {"g": {"sorted_evidence": {"x[*]": pairs}}}})
    facts = envelope.loads(text).guards["g"].paths["x[*]"]
    assert facts.always_sorted and facts.pairs == frozenset() and facts.evidence == 8
    text = json.dumps({"version": 1, "guards": {"g": {"sorted_evidence": {"x[*]": pairs[:2]}}}})
    assert envelope.loads(text).guards["g"].paths["x[*]"] == Facts(pairs=frozenset(pairs[:2]))


def test_evidence_stays_out_of_the_path_lines() -> None:
    """A new ascending pair changes the evidence block, never a path's line of facts."""
    before = GuardEnvelope(paths={"x[*]": Facts(types=frozenset({"int"}), pairs=frozenset({"a"}))})
    after = before.join(GuardEnvelope(paths={"x[*]": Facts(pairs=frozenset({"b"}))}))
    old, new = (envelope.dumps(Envelope({"g": g})).splitlines() for g in (before, after))
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert changed == [('        "x[*]": ["a"]', '        "x[*]": ["a", "b"]')]


def test_merge_into_gives_up_waiting_for_the_lock(tmp_path: Path) -> None:
    """A lock held elsewhere delays ``merge_into`` by its timeout at most, then it writes."""
    import fcntl

    target = tmp_path / "prod.json"
    first = Envelope({"g": GuardEnvelope(in_flight=1)})
    with open(tmp_path / ".prod.json.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        envelope.merge_into(first, target, timeout=0.05)
    assert envelope.load(target) == first


def test_every_field_name_the_walk_records_can_be_read_back() -> None:
    """A record key is a field when ``str.isidentifier()`` says so (``A·`` too, which ``\\w``
    misses): the file written with it must load."""
    from shadowguard.envelope._record import GuardRecorder

    recorder = GuardRecorder("g", thin=False)
    recorder.see("x", {"A·": None, "é": [{"b·c": 1}]})
    recorded = Envelope({"g": recorder.envelope()})
    assert envelope.loads(envelope.dumps(recorded)) == recorded
    for bad in ("x.", "x..a", "x[*]a", "x.1a", "1x", "x[0]"):
        text = envelope.dumps(Envelope({"g": GuardEnvelope(paths={bad: Facts()})}))
        with pytest.raises(EnvelopeError, match="bad path"):
            envelope.loads(text)
