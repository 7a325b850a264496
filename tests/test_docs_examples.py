"""Every ```python block of ``docs/*.md`` and ``README.md`` runs, so the docs cannot rot.

The blocks of one page run in order, in one fresh ``__main__`` module of their own Python
process (later blocks use what earlier ones defined), with the OpenTelemetry SDK importable, no
``SHADOWGUARD_*`` variable inherited, warnings as errors and shadowguard's internal faults made
fatal. A traceback points at the page and its line. A block right after the HTML comment
``<!-- skip-test -->`` is skipped: keep that for blocks that cannot run here (a live server).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_MARK = "<!-- skip-test -->"
LANGUAGES = frozenset({"python", "py"})
TIMEOUT = 120

_FENCE = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    line: int
    """1-based line of the first line of code (the one after the opening fence)."""
    language: str
    code: str
    skipped: bool


def code_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, indented ones (in admonitions, lists) dedented.

    Raises ``ValueError`` for a fence that is never closed: a page that would render wrong.
    """
    blocks: list[Block] = []
    lines = text.splitlines()
    previous = ""  # the last non-blank line outside a block
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent = len(opening.group("indent"))
        fence = opening.group("fence")
        info = opening.group("info").lstrip("{.").split()
        language = info[0].rstrip("}").lower() if info else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing is not None
                and closing.group("fence")[0] == fence[0]
                and len(closing.group("fence")) >= len(fence)
                and not closing.group("info")
            ):
                break
            line = lines[j]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            j += 1
        else:
            raise ValueError(f"line {i + 1}: the {fence} block is never closed")
        blocks.append(
            Block(
                line=i + 2,
                language=language,
                code="\n".join(body) + "\n",
                skipped=previous == SKIP_MARK,
            )
        )
        previous = ""
        i = j + 1
    return blocks


def python_blocks(text: str) -> list[Block]:
    """The Python blocks of a page that are meant to run."""
    return [b for b in code_blocks(text) if b.language in LANGUAGES and not b.skipped]


# Runs in the child process: the blocks of one page, each compiled at its own line of the page.
_RUNNER = r"""
import json, sys, types

page, blocks = json.loads(sys.stdin.read())
module = types.ModuleType("__main__")
module.__file__ = page
sys.modules["__main__"] = module

from shadowguard.testing import strict_internal_errors

with strict_internal_errors() as faults:
    for line, code in blocks:
        exec(compile("\n" * (line - 1) + code, page, "exec"), module.__dict__)
if faults:
    site, exc = faults[0]
    sys.exit(f"shadowguard swallowed an internal error at {site}: {exc!r}")
"""


def _pages() -> list[Path]:
    pages = sorted((ROOT / "docs").glob("*.md"))
    return [*pages, ROOT / "README.md"]


def _run_page(page: Path) -> subprocess.CompletedProcess[str]:
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    relative = page.relative_to(ROOT).as_posix()
    payload = json.dumps([relative, [(b.line, b.code) for b in blocks]])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWGUARD_")}
    env["PYTHONHASHSEED"] = "0"
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", _RUNNER],
        input=payload,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


def _runnable(page: Path) -> bool:
    try:
        return bool(python_blocks(page.read_text(encoding="utf-8")))
    except ValueError:
        return True  # a broken page: its test reports where


_RUNNABLE = [p for p in _pages() if _runnable(p)]


@pytest.mark.slow
@pytest.mark.parametrize("page", _RUNNABLE, ids=[p.relative_to(ROOT).as_posix() for p in _RUNNABLE])
def test_page_examples_run(page: Path) -> None:
    """Every Python block of the page runs in order without an error or a failed assertion."""
    done = _run_page(page)
    if done.returncode != 0:
        pytest.fail(
            f"{page.relative_to(ROOT)}: the examples failed (exit {done.returncode})\n"
            f"--- stderr ---\n{done.stderr[-6000:]}\n--- stdout ---\n{done.stdout[-2000:]}",
            pytrace=False,
        )


def test_every_page_is_well_formed_and_skips_are_rare() -> None:
    """Each page's fences close, each skip mark sits right before a Python block, and at most a
    few blocks of the whole site are skipped."""
    skipped = 0
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        blocks = code_blocks(text)
        marks = text.count(SKIP_MARK)
        marked = [b for b in blocks if b.skipped]
        assert len(marked) == marks, f"{page.name}: a {SKIP_MARK} mark is not right before a block"
        assert all(b.language in LANGUAGES for b in marked), f"{page.name}: skip mark on non-Python"
        skipped += len(marked)
    assert skipped <= 5, f"{skipped} skipped blocks: make them runnable instead"


def test_site_pages_have_runnable_examples() -> None:
    """The README and the guide pages carry examples that the suite runs."""
    names = {p.name for p in _RUNNABLE}
    for expected in ("README.md", "index.md", "quickstart.md", "assumptions.md", "telemetry.md"):
        assert expected in names, f"{expected} has no runnable Python block"


def test_readme_quick_start_is_the_two_make_commands() -> None:
    """The README's Quick start holds exactly one sh block: `make demo` then `make test`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = code_blocks(section)
    assert [(b.language, b.code) for b in blocks] == [("sh", "make demo\nmake test\n")]


def test_extractor_reads_fences_languages_indentation_and_skip_marks() -> None:
    """The extractor finds python blocks (indented ones dedented), ignores other languages and
    honours a skip mark only right before a block."""
    text = "\n".join(
        [
            "# Page",
            "```python",
            "a = 1",
            "```",
            "",
            "```sh",
            "make test",
            "```",
            "!!! note",
            '    ```py title="b.py"',
            "    if a:",
            "        b = 2",
            "    ```",
            "<!-- skip-test -->",
            "",
            "```python",
            "server.serve_forever()",
            "```",
            SKIP_MARK,
            "Some prose in between.",
            "````python",
            "c = '```'",
            "````",
        ]
    )
    blocks = code_blocks(text)
    assert [(b.language, b.line, b.skipped) for b in blocks] == [
        ("python", 3, False),
        ("sh", 7, False),
        ("py", 11, False),
        ("python", 17, True),
        ("python", 22, False),
    ]
    assert blocks[2].code == "if a:\n    b = 2\n"
    assert [b.code for b in python_blocks(text)] == ["a = 1\n", "if a:\n    b = 2\n", "c = '```'\n"]


def test_extractor_rejects_an_unclosed_fence() -> None:
    """A fence that never closes is reported with its line, not silently dropped."""
    with pytest.raises(ValueError, match="line 2"):
        code_blocks("text\n```python\nx = 1\n")
