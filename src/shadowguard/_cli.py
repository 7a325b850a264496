"""The ``shadowguard`` command: read envelopes and violation logs, run the demo.

    shadowguard envelope show PATH          what the tests exercised, per guard and path
    shadowguard envelope diff A B           what B exercises that A never did (exit 1 if any)
    shadowguard envelope merge OUT IN...    join envelopes (several hosts, several runs)
    shadowguard report LOG.jsonl            violations in JSON logs, grouped and ranked
    shadowguard demo                        the story of the seed incident

Errors are one line on stderr and a non-zero exit code (2 for a usage or input error), never a
traceback. Standard library only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import runpy
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

__all__ = ["main"]

PROG = "shadowguard"
EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


class CliError(Exception):
    """A problem worth one line on stderr (missing file, bad JSON, wrong version...)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage block."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see '{self.prog} --help')")


def _parser() -> _Parser:
    from shadowguard import __version__

    parser = _Parser(
        prog=PROG,
        description="Read tested envelopes and violation logs written by shadowguard.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    envelope = commands.add_parser("envelope", help="show, compare or merge envelope files")
    actions = envelope.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    show = actions.add_parser("show", help="what the tests exercised, per guard and path")
    show.add_argument("path", metavar="PATH", help="an envelope file")
    diff = actions.add_parser(
        "diff", help="what B exercises that A never did (exit status 1 when anything)"
    )
    diff.add_argument("tested", metavar="A", help="the reference envelope, usually the tests'")
    diff.add_argument("other", metavar="B", help="the envelope to compare, e.g. production's")
    merge = actions.add_parser("merge", help="join several envelopes into one file")
    merge.add_argument("output", metavar="OUT", help="the file to write")
    merge.add_argument("inputs", metavar="IN", nargs="+", help="envelope files to join")

    report = commands.add_parser(
        "report", help="violations in JSON log lines, grouped by guard and assumption"
    )
    report.add_argument("log", metavar="LOG", help="a JSON-lines log file, or - for stdin")
    report.add_argument("--top", type=int, default=20, metavar="N", help="rows shown (20)")

    demo = commands.add_parser("demo", help="the story of the seed incident, end to end")
    demo.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list[:1] == ["demo"]:
            # The demo parses its own options: argparse's REMAINDER drops leading "--x" ones.
            return _demo(args_list[1:])
        parser = _parser()
        args = parser.parse_args(args_list)
        if args.command == "envelope":
            if args.action == "show":
                return _show(args.path, sys.stdout)
            if args.action == "diff":
                return _diff(args.tested, args.other, sys.stdout)
            if args.action == "merge":
                return _merge(args.output, args.inputs, sys.stdout)
            raise CliError("envelope needs an action: show, diff or merge")
        if args.command == "report":
            return _report(args.log, args.top, sys.stdout)
        raise CliError("a command is required: envelope, report or demo (see 'shadowguard --help')")
    except CliError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `shadowguard report log | head`
        _quiet_stdout()
        return EXIT_OK


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# -- envelope files --------------------------------------------------------------------------


def _load(path: str) -> Any:
    from shadowguard import envelope

    try:
        return envelope.load(path)
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not an envelope file") from None
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a text file") from None
    except envelope.EnvelopeError as exc:
        raise CliError(str(exc)) from None


def _table(rows: list[list[str]], indent: str = "  ", right: int = 0) -> list[str]:
    """Columns padded to their widest cell; the first ``right`` columns are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = (
            cell.rjust(width) if column < right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


_SIGN_TEXT = {"negative": "neg", "zero": "zero", "positive": "pos"}


def _order_text(facts: Any) -> str:
    from shadowguard.envelope import SORTED_EVIDENCE

    if facts.unsorted:
        return "unsorted"
    if facts.sorted:
        return "sorted"
    if facts.pairs:
        return f"sorted {len(facts.pairs)}/{SORTED_EVIDENCE}"
    return ""


def _show(path: str, out: TextIO) -> int:
    from shadowguard.envelope._facts import ANY, SIGNS

    loaded = _load(path)
    if not loaded.guards:
        out.write(f"{path}: no guards recorded\n")
        return EXIT_OK
    lines: list[str] = []
    for name, guard in loaded.guards.items():
        if lines:
            lines.append("")
        lines.append(name)
        raised = (
            "any" if guard.exceptions is ANY else ", ".join(sorted(guard.exceptions)) or "nothing"
        )
        lines.append(f"  raised: {raised}; most calls in flight at once: {guard.in_flight}")
        rows = [["PATH", "TYPES", "NONE", "MISSING", "EMPTY", "MAX LEN", "SIGNS", "ORDER"]]
        for where, facts in guard.paths.items():
            types = "any" if facts.types is ANY else ", ".join(sorted(facts.types))
            rows.append(
                [
                    where,
                    types or "-",
                    "yes" if facts.none else "-",
                    "yes" if facts.missing else "-",
                    "yes" if facts.empty else "-",
                    str(facts.max_len) if facts.max_len >= 0 else "-",
                    " ".join(_SIGN_TEXT[s] for s in SIGNS if s in facts.signs) or "-",
                    _order_text(facts) or "-",
                ]
            )
        if len(rows) == 1:
            lines.append("  (no values recorded)")
        else:
            lines.extend(_table(rows))
    count = len(loaded.guards)
    lines.append("")
    lines.append(f"{count} guard{'s' if count != 1 else ''} in {path}")
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def _diff(tested_path: str, other_path: str, out: TextIO) -> int:
    from shadowguard.envelope import departures

    tested, other = _load(tested_path), _load(other_path)
    lines: list[str] = []
    total = guards = 0
    for name, guard in other.guards.items():
        known = tested.guards.get(name)
        if known is None:
            rows = [["(guard)", "never tested", f"absent from {tested_path}"]]
        else:
            rows = [list(found) for found in departures(known, guard)]
        if not rows:
            continue
        guards += 1
        total += len(rows)
        if lines:
            lines.append("")
        lines.append(name)
        lines.extend(_table([["PATH", "OBSERVED", "EXPECTED"], *rows]))
    if not total:
        out.write(f"{other_path} stays inside the envelope of {tested_path}\n")
        return EXIT_OK
    lines.append("")
    plural = ("s" if total != 1 else "", "s" if guards != 1 else "")
    lines.append(
        f"{total} departure{plural[0]} in {guards} guard{plural[1]}"
        f": what {other_path} exercises that {tested_path} never did"
    )
    out.write("\n".join(lines) + "\n")
    return EXIT_FOUND


def _merge(output: str, inputs: Iterable[str], out: TextIO) -> int:
    from shadowguard import envelope

    merged = envelope.merge(_load(path) for path in inputs)
    try:
        envelope.save(merged, output)
    except OSError as exc:
        raise CliError(f"{output}: {exc.strerror or exc}") from None
    count = len(merged.guards)
    out.write(f"wrote {output}: {count} guard{'s' if count != 1 else ''}\n")
    return EXIT_OK


# -- violation logs --------------------------------------------------------------------------


def _log_lines(path: str) -> Iterable[str]:
    if path == "-":
        yield from sys.stdin
        return
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            yield from handle
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a log file") from None
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None


def _count(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _report(path: str, top: int, out: TextIO) -> int:
    if top < 1:
        raise CliError("--top must be at least 1")
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    json_lines = other_lines = events = 0
    for raw in _log_lines(path):
        line = raw.strip()
        if not line:
            continue
        start = line.find("{")
        try:
            record = json.loads(line[start:]) if start >= 0 else None
        except ValueError:
            record = None
        if not isinstance(record, dict):
            other_lines += 1
            continue
        json_lines += 1
        if record.get("event", record.get("message")) != "assumption_violated":
            continue
        events += 1
        key = (str(record.get("guard", "?")), str(record.get("assumption", "?")))
        group = groups.setdefault(
            key, {"count": 0, "kind": set(), "observed": Counter(), "expected": Counter()}
        )
        weight = 1 + _count(record.get("suppressed", 0))
        group["count"] += weight
        group["kind"].add(str(record.get("kind", "?")))
        group["observed"][str(record.get("observed", "?"))] += weight
        group["expected"][str(record.get("expected", ""))] += weight
    if json_lines == 0 and other_lines:
        raise CliError(f"{path}: no JSON log lines found (is it a JSON log?)")
    if not groups:
        out.write(f"no assumption_violated events in {path}\n")
        return EXIT_OK
    ranked = sorted(groups.items(), key=lambda item: (-item[1]["count"], item[0]))
    rows = [["COUNT", "GUARD", "ASSUMPTION", "KIND", "OBSERVED", "EXPECTED"]]
    for (guard, assumption), group in ranked[:top]:
        observed = group["observed"].most_common()
        shown = ", ".join(
            text if len(observed) == 1 else f"{text} x{n}" for text, n in observed[:3]
        ) + (", ..." if len(observed) > 3 else "")
        rows.append(
            [
                str(group["count"]),
                guard,
                assumption,
                ", ".join(sorted(group["kind"])),
                shown,
                group["expected"].most_common(1)[0][0],
            ]
        )
    lines = _table(rows, indent="", right=1)
    total = sum(group["count"] for group in groups.values())
    lines.append("")
    summary = (
        f"{total} violation{'s' if total != 1 else ''} in {len(groups)} "
        f"group{'s' if len(groups) != 1 else ''} from {events} log "
        f"line{'s' if events != 1 else ''}"
    )
    if len(ranked) > top:
        summary += f" (top {top} shown)"
    if other_lines:
        summary += f"; {other_lines} non-JSON line{'s' if other_lines != 1 else ''} skipped"
    lines.append(summary)
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


# -- demo --------------------------------------------------------------------------------------


def _demo(argv: list[str]) -> int:
    try:
        module = importlib.import_module("shadowguard._demo")
    except ModuleNotFoundError as exc:
        if exc.name != "shadowguard._demo":
            raise CliError(f"the demo needs {exc.name!r}, which is not installed") from None
        module = None
    if module is not None:
        result = module.main(argv)
        return int(result) if isinstance(result, int) else EXIT_OK
    script = Path.cwd() / "examples" / "seed_incident.py"
    if script.is_file():
        sys.argv = [str(script), *argv]
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit_:
            code = exit_.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        return EXIT_OK
    raise CliError(
        "no demo in this installation (shadowguard._demo is missing and there is no"
        " examples/seed_incident.py here)"
    )
