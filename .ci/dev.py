#!/usr/bin/env python3
"""Task runner for shadowguard's development and CI: demo, demo-phoenix, test, lint, bench, docs,
clean.

Standard library only, so it runs on any Python 3.10+ before anything is installed. It bootstraps
`.venv` with the interpreter that runs it (and `.venv-3.10` with a Python 3.10 it finds), puts uv
into each with pip, and lets uv install the locked workspace (`uv sync --all-packages`). A stamp in
each environment, a hash of every `pyproject.toml`, `uv.lock` and the groups, skips the sync while
nothing changed.

    python3 .ci/dev.py test [pytest args...]    # what CI runs (`make test`)
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The uv that made uv.lock; bumping it is a one-line change here.
UV_VERSION = "0.13.9"
COVERAGE_FAIL_UNDER = 95  # the same gate as [tool.coverage.report] fail_under
PYTEST_WORKERS = "2"
# `ruff format --check` joins `lint` and `test` once the code base is formatted.
FORMAT_CHECK = False
STAMP = ".dev-sync-stamp"
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class TaskError(Exception):
    """A step failed; carries the exit code the runner ends with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def step(name: str) -> None:
    print(f"==> {name}", flush=True)


def run(cmd: Sequence[str | os.PathLike[str]], *, env: dict[str, str] | None = None) -> None:
    """Run a command from the repository root; any non-zero exit stops the task."""
    code = subprocess.run([os.fspath(c) for c in cmd], cwd=ROOT, env=env, check=False).returncode
    if code != 0:
        raise TaskError(f"command failed with exit code {code}: {' '.join(map(str, cmd))}", code)


def bin_path(venv: Path, name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    return venv / sub / (name + (".exe" if os.name == "nt" else ""))


# --- environments ---------------------------------------------------------------------------


class Env:
    """One virtual environment, bootstrapped with uv from the lock file."""

    def __init__(self, path: Path, interpreter: str) -> None:
        self.path = path
        self.interpreter = interpreter

    @property
    def python(self) -> Path:
        return bin_path(self.path, "python")

    def tool(self, name: str) -> Path:
        return bin_path(self.path, name)

    def ensure(self, groups: Sequence[str] = ("dev",)) -> Env:
        if not self._usable():
            step(f"create {self.path.name} ({self.interpreter})")
            shutil.rmtree(self.path, ignore_errors=True)
            run([self.interpreter, "-m", "venv", self.path])
        uv = self.tool("uv")
        if (_output([uv, "--version"]) or "").split()[1:2] != [UV_VERSION]:
            step(f"install uv {UV_VERSION} into {self.path.name}")
            pip = [os.fspath(self.python), "-m", "pip", "install", "-qq"]
            run([*pip, "--disable-pip-version-check", f"uv=={UV_VERSION}"])
        stamp = self.path / STAMP
        if stamp.exists() and stamp.read_text() == self._fingerprint(groups):
            return self
        step(f"uv sync {self.path.name} (groups: {', '.join(groups)})")
        cmd: list[str | os.PathLike[str]] = [uv, "sync", "--quiet", "--all-packages"]
        cmd += ["--python", self.python]
        for group in groups:
            cmd += ["--group", group]
        if IN_CI:
            cmd.append("--locked")  # CI never rewrites uv.lock: a stale lock is a failure
        env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_PROJECT_ENVIRONMENT=str(self.path))
        env.pop("VIRTUAL_ENV", None)  # an activated other venv would only draw a warning
        run(cmd, env=env)
        stamp.write_text(self._fingerprint(groups))  # after the sync: it may update uv.lock
        return self

    def _usable(self) -> bool:
        return (self.path / "pyvenv.cfg").exists() and _output([self.python, "-c", "0"]) is not None

    def _fingerprint(self, groups: Sequence[str]) -> str:
        digest = hashlib.sha256()
        files = [ROOT / "pyproject.toml", ROOT / "uv.lock"]
        files += sorted(Path(p) for p in glob.glob(str(ROOT / "integrations/*/pyproject.toml")))
        for file in files:
            digest.update(file.relative_to(ROOT).as_posix().encode())
            digest.update(file.read_bytes() if file.exists() else b"<missing>")
        digest.update(f"{UV_VERSION}|{','.join(sorted(groups))}".encode())
        return digest.hexdigest()


def _output(cmd: Sequence[str | os.PathLike[str]]) -> str | None:
    try:
        done = subprocess.run(
            [os.fspath(c) for c in cmd], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def main_env(groups: Sequence[str] = ("dev",)) -> Env:
    return Env(ROOT / ".venv", sys.executable).ensure(groups)


def find_python310() -> str | None:
    """Locate a CPython 3.10: pyenv's versions first, then PATH."""
    roots = [
        os.environ.get("PYENV_ROOT"),
        (_output(["pyenv", "root"]) or "").strip(),
        "/root/.pyenv",
    ]
    candidates: list[str] = []
    for root in filter(None, roots):
        candidates += sorted(
            glob.glob(os.path.join(root, "versions", "3.10*", "bin", "python3.10")), reverse=True
        )
    on_path = shutil.which("python3.10")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        version = _output([candidate, "-c", "import sys; print(sys.version_info[:2])"])
        if version and version.strip() == "(3, 10)":
            return candidate
    return None


def py310_env() -> Env | None:
    interpreter = find_python310()
    if interpreter is None:
        if IN_CI:
            raise TaskError(
                "Python 3.10 not found (pyenv versions, python3.10 on PATH); CI needs it"
            )
        print(
            "WARNING: Python 3.10 not found (tried pyenv and python3.10 on PATH): "
            "skipping the 3.10 test run. Install it, e.g. `pyenv install 3.10`.",
            flush=True,
        )
        return None
    return Env(ROOT / ".venv-3.10", interpreter).ensure()


# --- tasks ----------------------------------------------------------------------------------


def lint(env: Env) -> None:
    step("ruff check")
    run([env.tool("ruff"), "check", "."])
    if FORMAT_CHECK:
        step("ruff format --check")
        run([env.tool("ruff"), "format", "--check", "."])
    step("mypy")
    run([env.tool("mypy")])  # files, strictness and target version come from pyproject.toml
    if (ROOT / "tests" / "typing").is_dir():
        step("mypy tests/typing")
        run([env.tool("mypy"), "tests/typing"])


def docs_build(env: Env) -> None:
    step("mkdocs build --strict")
    with tempfile.TemporaryDirectory(prefix="shadowguard-site-") as site:
        quiet = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # mkdocs-material's end-of-life banner
        run([env.tool("mkdocs"), "build", "--strict", "--site-dir", site], env=quiet)


def pytest_run(cmd: list[str | os.PathLike[str]], env: dict[str, str] | None = None) -> None:
    try:
        run(cmd, env=env)
    except TaskError as exc:
        if exc.code == 5:
            raise TaskError("pytest collected no tests: that is a failure here", 5) from None
        raise


def task_test(args: list[str]) -> None:
    env = main_env()
    env310 = py310_env()
    lint(env)
    if (ROOT / "mkdocs.yml").exists():
        docs_build(env)

    # `coverage run` rather than pytest-cov's --cov: the package's own pytest11 entry point is
    # imported while pytest starts, before pytest-cov would begin measuring, so every module
    # imported by `shadowguard/__init__.py` would lose its top-level lines. xdist workers are
    # measured through coverage's `patch = ["subprocess"]` and combined afterwards.
    pytest_args = ["-n", PYTEST_WORKERS, "--benchmark-disable", *args]
    step("pytest + coverage (" + Path(env.interpreter).name + ")")
    run([env.python, "-m", "coverage", "erase"])
    pytest_run([env.python, "-m", "coverage", "run", "-m", "pytest", *pytest_args])
    step("coverage report")
    run([env.python, "-m", "coverage", "combine", "--quiet"])
    run([env.python, "-m", "coverage", "report", f"--fail-under={COVERAGE_FAIL_UNDER}"])

    if env310 is not None:
        step("pytest (python 3.10)")
        pytest_run([env310.python, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args])
    step("all checks passed")


def task_lint(args: list[str]) -> None:
    lint(main_env())


def task_demo(args: list[str]) -> None:
    env = main_env()
    step("demo")
    if (ROOT / "src" / "shadowguard" / "__main__.py").exists():
        run([env.python, "-m", "shadowguard", "demo", *args])
    elif (ROOT / "examples" / "seed_incident.py").exists():
        run([env.python, "examples/seed_incident.py", *args])
    else:
        raise TaskError(
            "no demo yet: neither src/shadowguard/__main__.py nor examples/seed_incident.py exists"
        )


def task_demo_phoenix(args: list[str]) -> None:
    env = main_env()
    step("demo against Arize Phoenix (tests/e2e/phoenix.py)")
    # Ctrl-C reaches the harness too, which stops Phoenix: wait for it instead of leaving.
    with subprocess.Popen([env.python, "tests/e2e/phoenix.py", *args], cwd=ROOT) as process:
        while True:
            try:
                code = process.wait()
                break
            except KeyboardInterrupt:
                continue
    if code not in (0, 130):
        raise TaskError(f"the Phoenix demo failed with exit code {code}", code)


def task_bench(args: list[str]) -> None:
    env = main_env(("dev", "bench"))
    if not (ROOT / "tests" / "benchmarks").is_dir():
        raise TaskError("tests/benchmarks does not exist yet")
    step("pytest --benchmark-only")
    pytest_run([env.python, "-m", "pytest", "tests/benchmarks", "--benchmark-only", *args])


def task_bench_report(args: list[str]) -> None:
    """The figures of docs/performance.md: every target, the size plot, the web benchmark.

    Markdown goes to stdout and to build/bench-report.md; the plot to docs/cost-vs-size.png.
    Needs ``wrk`` for the web part (Debian: ``apt-get install wrk``); without it that part is
    left out with a message."""
    env = main_env(("dev", "bench"))
    bench = ROOT / "tests" / "benchmarks"
    out = ROOT / "build" / "bench-report.md"
    out.parent.mkdir(exist_ok=True)
    scripts = [["run_all.py", *args], ["plot_sizes.py"]]
    if shutil.which("wrk"):
        scripts.append(["web_bench.py"])
    else:
        print("wrk not found (apt-get install wrk): the web benchmark is left out", flush=True)
    with open(out, "w", encoding="utf-8") as report:
        for script, *rest in scripts:
            step(f"{script} {' '.join(rest)}".strip())
            done = subprocess.run(
                [os.fspath(env.python), os.fspath(bench / script), *rest],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
                check=False,
            )
            print(done.stdout, flush=True)
            report.write(done.stdout + "\n")
            if done.returncode != 0:
                raise TaskError(f"{script} failed with exit code {done.returncode}")
    print(f"report written to {out.relative_to(ROOT)}", flush=True)


def task_docs(args: list[str]) -> None:
    if not (ROOT / "mkdocs.yml").exists():
        raise TaskError("mkdocs.yml does not exist yet")
    docs_build(main_env())


def task_clean(args: list[str]) -> None:
    step("clean")
    patterns = [".venv", ".venv-3.10", ".venv-phoenix*", "build", "dist", "site", "htmlcov"]
    patterns += [".coverage*"]
    patterns += [".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".benchmarks"]
    patterns += ["**/__pycache__", "**/*.egg-info"]
    for pattern in patterns:
        for path in ROOT.glob(pattern):
            if ".git" in path.parts or not path.exists():
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


TASKS = {
    # name: (function, takes pass-through arguments, help)
    "demo": (task_demo, True, "run the shadowguard demo in .venv"),
    "demo-phoenix": (task_demo_phoenix, True, "the demo exporting to a local Arize Phoenix UI"),
    "test": (task_test, True, "ruff, mypy, pytest + coverage, pytest on 3.10: what CI runs"),
    "lint": (task_lint, False, "ruff and mypy"),
    "bench": (task_bench, True, "pytest tests/benchmarks --benchmark-only, bench group installed"),
    "bench-report": (
        task_bench_report,
        True,
        "the figures of docs/performance.md (run_all.py ARGS, size plot, wrk web benchmark)",
    ),
    "docs": (task_docs, False, "mkdocs build --strict"),
    "clean": (task_clean, False, "remove the environments, caches and build output"),
}


def usage() -> str:
    lines = ["usage: dev.py TASK [ARGS...]   (ARGS go to pytest for test and bench)", ""]
    width = max(map(len, TASKS))
    lines += [f"  {name:<{width}} {help_}" for name, (_, _, help_) in TASKS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, extra = args[0], args[1:]
    if name not in TASKS:
        print(f"unknown task {name!r}\n{usage()}", file=sys.stderr)
        return 2
    func, takes_args, _ = TASKS[name]
    if extra and not takes_args:
        print(f"task {name!r} takes no arguments, got {extra}", file=sys.stderr)
        return 2
    try:
        func(extra)
    except TaskError as exc:
        print(f"FAILED: {exc}", file=sys.stderr, flush=True)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
