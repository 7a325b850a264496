"""The ``shadowguard`` command: envelope show/diff/merge, report, demo, and one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from shadowguard import _cli, envelope
from shadowguard.envelope import Envelope, Facts, GuardEnvelope
from shadowguard.envelope._facts import ANY

TESTED = Envelope(
    {
        "app.active_users": GuardEnvelope(
            paths={
                "users": Facts(types=frozenset({"list"}), max_len=3),
                "users[*]": Facts(types=frozenset({"dict"}), max_len=2, record=True),
                "users[*].id": Facts(
                    types=frozenset({"int"}), signs=frozenset({"positive"}), sorted=True
                ),
                "users[*].last_login": Facts(types=frozenset({"str"}), none=True, max_len=19),
            },
            exceptions=frozenset(),
            in_flight=1,
        ),
        "app.parse": GuardEnvelope(
            paths={"text": Facts(types=frozenset({"str"}), max_len=6, pairs=frozenset({"0a"}))},
            exceptions=frozenset({"ValueError"}),
            in_flight=1,
        ),
    }
)
PRODUCTION = Envelope(
    {
        "app.active_users": GuardEnvelope(
            paths={
                "users": Facts(types=frozenset({"list"}), max_len=25, empty=True),
                "users[*]": Facts(types=frozenset({"dict"}), max_len=2, record=True),
                "users[*].id": Facts(
                    types=frozenset({"int"}), unsorted=True, signs=frozenset({"zero"})
                ),
                "users[*].last_login": Facts(types=frozenset({"str"}), missing=True, max_len=200),
                "users[*].email": Facts(types=frozenset({"str"})),
            },
            exceptions=frozenset({"KeyError"}),
            in_flight=4,
        ),
        "app.parse": GuardEnvelope(paths={"text": Facts(types=frozenset({"str"}), max_len=5)}),
        "app.export": GuardEnvelope(paths={"rows": Facts(types=ANY)}),
    }
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; the exit status, stdout and stderr."""
    code = _cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    tested, production = tmp_path / "tested.json", tmp_path / "production.json"
    envelope.save(TESTED, tested)
    envelope.save(PRODUCTION, production)
    return {"tested": str(tested), "production": str(production), "dir": str(tmp_path)}


def test_show_prints_one_table_per_guard(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    """``envelope show`` lists each guard's paths with types, None, missing, lengths, order."""
    code, out, err = run(capsys, "envelope", "show", files["tested"])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "app.active_users"
    assert lines[1] == "  raised: nothing; most calls in flight at once: 1"
    assert lines[2].split() == [
        "PATH",
        "TYPES",
        "NONE",
        "MISSING",
        "EMPTY",
        "MAX",
        "LEN",
        "SIGNS",
        "ORDER",
    ]
    assert lines[5].split() == ["users[*].id", "int", "-", "-", "-", "-", "pos", "sorted"]
    assert lines[6].split() == ["users[*].last_login", "str", "yes", "-", "-", "19", "-", "-"]
    assert "  raised: ValueError; most calls in flight at once: 1" in lines
    assert any(line.split()[-2:] == ["sorted", "1/8"] for line in lines)
    assert lines[-1] == f"2 guards in {files['tested']}"


def test_show_handles_empty_and_any(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An empty envelope says so; capped names show as ``any``."""
    empty = tmp_path / "empty.json"
    envelope.save(Envelope(), empty)
    assert run(capsys, "envelope", "show", str(empty))[1] == f"{empty}: no guards recorded\n"
    loose = tmp_path / "loose.json"
    envelope.save(Envelope({"g": GuardEnvelope(exceptions=ANY)}), loose)
    code, out, _ = run(capsys, "envelope", "show", str(loose))
    assert code == 0
    assert "  raised: any; most calls in flight at once: 0" in out
    envelope.save(Envelope({"g": GuardEnvelope(paths={"x[*]": Facts(unsorted=True)})}), loose)
    assert run(capsys, "envelope", "show", str(loose))[1].splitlines()[3].split()[-1] == "unsorted"
    assert "  (no values recorded)" in out


def test_diff_lists_what_production_did_that_tests_never_did(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    """``envelope diff A B`` shows B's departures from A and exits 1."""
    code, out, err = run(capsys, "envelope", "diff", files["tested"], files["production"])
    assert (code, err) == (1, "")
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line[:2] == "  "]
    assert rows == [
        ["PATH", "OBSERVED", "EXPECTED"],
        ["users", "empty", "tests only saw: len 1..3"],
        ["users[*].id", "zero", "tests only saw: positive"],
        ["users[*].id", "unsorted", "tests only saw: sorted"],
        ["users[*].last_login", "missing", "tests only saw: str, None"],
        ["users[*].last_login", "len=200", "tests only saw: len 1..19"],
        ["raises", "KeyError", "tests only saw: no exception"],
        ["in_flight", "4 in flight", "tests only saw: <= 1 in flight"],
        ["PATH", "OBSERVED", "EXPECTED"],
        ["(guard)", "never tested", f"absent from {files['tested']}"],
    ]
    assert "app.parse" not in out  # a shorter text and a new path are no departures
    assert out.splitlines()[-1].startswith("8 departures in 2 guards")


def test_diff_of_an_envelope_with_itself_is_clean(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    """An envelope never departs from itself: exit 0 and a one-line all-clear."""
    code, out, _ = run(capsys, "envelope", "diff", files["tested"], files["tested"])
    assert code == 0
    assert out == f"{files['tested']} stays inside the envelope of {files['tested']}\n"


def test_merge_joins_files(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    """``envelope merge OUT IN...`` writes the join of its inputs."""
    out_path = str(Path(files["dir"]) / "merged.json")
    code, out, _ = run(capsys, "envelope", "merge", out_path, files["tested"], files["production"])
    assert (code, out) == (0, f"wrote {out_path}: 3 guards\n")
    assert envelope.load(out_path) == envelope.merge(TESTED, PRODUCTION)


def _log(tmp_path: Path, records: list[Any], extra: str = "") -> str:
    path = tmp_path / "app.jsonl"
    lines = [json.dumps(r) if not isinstance(r, str) else r for r in records]
    path.write_text("\n".join(lines) + "\n" + extra)
    return str(path)


def _violation(guard: str, assumption: str, observed: str, suppressed: Any = 0) -> dict[str, Any]:
    return {
        "event": "assumption_violated",
        "level": "warning",
        "guard": guard,
        "assumption": assumption,
        "kind": "envelope",
        "mode": "observe",
        "expected": "tests only saw: str, None",
        "observed": observed,
        "path": "users[*].last_login",
        "suppressed": suppressed,
    }


def test_report_groups_and_ranks_by_count_with_suppressed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Each group counts its lines plus what they say was suppressed, biggest first."""
    log = _log(
        tmp_path,
        [
            _violation("app.a", "envelope(users[*].last_login)", "missing"),
            {"event": "request_done", "status": 200},
            _violation("app.a", "envelope(users[*].last_login)", "missing", suppressed=41),
            _violation("app.a", "envelope(users[*].last_login)", "None", suppressed="7"),
            _violation("app.b", "not_none(user.email)", "None", suppressed=True),
            "uvicorn: started server process",
            '2024-05-01 12:00:00 INFO {"event": "assumption_violated", "guard": "app.c"}',
            "",
        ],
    )
    code, out, err = run(capsys, "report", log)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["COUNT", "GUARD", "ASSUMPTION", "KIND", "OBSERVED", "EXPECTED"]
    assert lines[1].split()[:5] == [
        "51",
        "app.a",
        "envelope(users[*].last_login)",
        "envelope",
        "missing",
    ]
    assert "missing x43, None x8" in lines[1]
    assert lines[2].split()[:2] == ["1", "app.b"]
    assert lines[3].split()[:5] == ["1", "app.c", "?", "?", "?"]
    assert lines[-1] == "53 violations in 3 groups from 5 log lines; 1 non-JSON line skipped"


def test_report_top_and_empty_logs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--top`` limits the rows; a log without violations says so."""
    log = _log(tmp_path, [_violation(f"g{i}", "a", "x", suppressed=i) for i in range(5)])
    code, out, _ = run(capsys, "report", log, "--top", "2")
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()[1:3]] == ["g4", "g3"]
    assert out.splitlines()[-1].endswith("(top 2 shown)")
    odd = _log(tmp_path, [_violation("g", "a", "x", suppressed=[1]), "{not json"])
    assert (
        "1 violation in 1 group from 1 log line; 1 non-JSON line skipped"
        in run(capsys, "report", odd)[1]
    )
    quiet = _log(tmp_path, [{"event": "hello"}])
    assert run(capsys, "report", quiet)[1] == f"no assumption_violated events in {quiet}\n"
    assert run(capsys, "report", log, "--top", "0")[0] == 2


def test_report_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``report -`` reads the log from standard input."""
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(_violation("g", "a", "x")) + "\n"))
    code, out, _ = run(capsys, "report", "-")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["1", "g"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["envelope", "show", "{missing}"], "{missing}: no such file"),
        (["envelope", "show", "{dir}"], "{dir}: is a directory, not an envelope file"),
        (["envelope", "show", "{bad}"], "{bad}: not valid JSON"),
        (["envelope", "show", "{v2}"], "{v2}: unsupported envelope version 2"),
        (["envelope", "show", "{binary}"], "{binary}: not a text file"),
        (["envelope", "diff", "{bad}", "{v2}"], "{bad}: not valid JSON"),
        (["envelope", "merge", "{dir}", "{v2}"], "{v2}: unsupported envelope version 2"),
        (["envelope", "merge", "{dir}", "{good}"], "{dir}: "),
        (["envelope"], "envelope needs an action: show, diff or merge"),
        (["envelope", "frob"], "invalid choice: 'frob'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "a command is required: envelope, report or demo"),
        (["report", "{missing}"], "{missing}: no such file"),
        (["report", "{dir}"], "{dir}: is a directory, not a log file"),
        (["report", "{text}"], "{text}: no JSON log lines found"),
        (["report", "{text}", "--top", "x"], "invalid int value: 'x'"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    """Missing files, bad JSON, wrong versions and unknown commands: one stderr line, exit 2."""
    names = {
        "missing": tmp_path / "missing.json",
        "dir": tmp_path,
        "bad": tmp_path / "bad.json",
        "v2": tmp_path / "v2.json",
        "binary": tmp_path / "binary.json",
        "text": tmp_path / "plain.log",
        "good": tmp_path / "good.json",
    }
    names["bad"].write_text("{oops")
    names["v2"].write_text('{"version": 2}')
    names["binary"].write_bytes(b"\xff\xfe\x00")
    names["text"].write_text("started\nlistening on 8000\n")
    envelope.save(TESTED, names["good"])
    fill = {key: str(value) for key, value in names.items()}
    code, out, err = run(capsys, *[arg.format(**fill) for arg in argv])
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("shadowguard: error: ")
    assert message.format(**fill) in err


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` prints the package version."""
    with pytest.raises(SystemExit) as exited:
        _cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"shadowguard {envelope.__name__ and _version()}"


def _version() -> str:
    import shadowguard

    return shadowguard.__version__


def test_demo_dispatches_to_the_demo_module(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``demo`` calls ``shadowguard._demo.main(argv)`` when that module exists."""
    calls: list[list[str]] = []
    fake = types.ModuleType("shadowguard._demo")
    fake.main = lambda argv: calls.append(argv) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shadowguard._demo", fake)
    assert _cli.main(["demo", "--fast"]) == 3
    assert calls == [["--fast"]]
    fake.main = lambda argv: None  # type: ignore[attr-defined]
    assert _cli.main(["demo"]) == 0


def test_demo_runs_the_seed_example_or_says_why_not(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the module, ``demo`` runs ./examples/seed_incident.py, else explains in one line."""
    import importlib

    real_import = importlib.import_module

    def no_demo(name: str, package: str | None = None) -> Any:
        if name == "shadowguard._demo":
            raise ModuleNotFoundError(name=name)
        return real_import(name, package)

    monkeypatch.setattr(_cli.importlib, "import_module", no_demo)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "demo")
    assert code == 2 and err.startswith("shadowguard: error: no demo in this installation")
    (tmp_path / "examples").mkdir()
    script = tmp_path / "examples" / "seed_incident.py"
    script.write_text("import sys\nprint('story', sys.argv[1:])\n")
    assert run(capsys, "demo", "x")[:2] == (0, "story ['x']\n")
    script.write_text("raise SystemExit(4)\n")
    assert run(capsys, "demo")[0] == 4
    script.write_text("raise SystemExit('bad')\n")
    assert run(capsys, "demo")[0] == 1
    script.write_text("raise SystemExit\n")
    assert run(capsys, "demo")[0] == 0


def test_demo_with_a_missing_dependency_says_which(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A demo module that needs something not installed gets a one-line error."""

    def broken(name: str, package: str | None = None) -> Any:
        raise ModuleNotFoundError(name="flask")

    monkeypatch.setattr(_cli.importlib, "import_module", broken)
    code, _, err = run(capsys, "demo")
    assert code == 2 and "the demo needs 'flask'" in err


def test_broken_pipe_and_interrupt_exit_quietly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, files: dict[str, str]
) -> None:
    """A closed pipe (``| head``) exits 0 silently; Ctrl-C exits 130."""

    def pipe(*args: Any) -> int:
        raise BrokenPipeError

    def interrupt(*args: Any) -> int:
        raise KeyboardInterrupt

    quieted: list[bool] = []
    monkeypatch.setattr(_cli, "_quiet_stdout", lambda: quieted.append(True))
    monkeypatch.setattr(_cli, "_show", pipe)
    assert _cli.main(["envelope", "show", files["tested"]]) == 0
    assert quieted == [True]
    monkeypatch.setattr(_cli, "_show", interrupt)
    assert _cli.main(["envelope", "show", files["tested"]]) == 130


@pytest.mark.e2e
def test_console_script_and_module_entry_points(files: dict[str, str]) -> None:
    """``python -m shadowguard`` and the ``shadowguard`` script run the same CLI, no traceback."""
    scripts = Path(sys.executable).parent
    for command in (
        [sys.executable, "-m", "shadowguard"],
        [str(scripts / "shadowguard")],
    ):
        shown = subprocess.run(
            [*command, "envelope", "show", files["tested"]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 0 and "app.active_users" in shown.stdout
        failed = subprocess.run(
            [*command, "envelope", "show", files["dir"] + "/nope.json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert failed.returncode == 2
        assert "Traceback" not in failed.stderr and failed.stderr.count("\n") == 1


def test_python_dash_m_runs_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    """``python -m shadowguard`` exits with the status ``main`` returns."""
    import runpy

    monkeypatch.setattr(
        sys, "argv", ["shadowguard", "envelope", "diff", files["tested"], files["production"]]
    )
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(Path(_cli.__file__).with_name("__main__.py")), run_name="__main__")
    assert exited.value.code == 1
    assert "departures" in capsys.readouterr().out
