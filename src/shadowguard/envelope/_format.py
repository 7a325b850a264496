"""The envelope file: deterministic JSON with ``"version": 1``, one line per path.

    {
      "guards": {
        "users.get_active_users": {
          "exceptions": [],
          "in_flight": 1,
          "paths": {
            "users": {"max_len": 3, "types": ["list"]},
            "users[*]": {"max_len": 3, "record": true, "types": ["dict"]},
            "users[*].id": {"signs": ["positive"], "types": ["int"]},
            "users[*].last_login": {"max_len": 19, "none": true, "types": ["str"]}
          },
          "sorted_evidence": {
            "users[*].id": ["8fd4ae6a", "c93b8461"]
          }
        }
      },
      "version": 1
    }

Keys are sorted and only facts that hold are written, so the same test run always writes the
same bytes and a pull request shows exactly what the tests started or stopped exercising.
``sorted_evidence`` holds fingerprints of distinct ascending pairs until there are enough to
establish ``"sorted": true``; it lets separately recorded files merge exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from shadowguard.envelope._facts import (
    ANY,
    SIGNS,
    Envelope,
    Facts,
    GuardEnvelope,
)

__all__ = ["VERSION", "EnvelopeError", "dumps", "load", "loads", "merge_into", "save"]

VERSION = 1
_PATH = re.compile(r"[^\W\d]\w*(?:\.[^\W\d]\w*|\[\*\])*")
_STEPS = re.compile(r"(\.|\[\*\])")


def _valid_path(path: str) -> bool:
    """A root name, then ``.name`` and ``[*]`` steps. Names are what the walk records: any
    ``str.isidentifier()`` name (``\\w`` misses a few, e.g. ``A·``), or what ``\\w`` takes."""
    if _PATH.fullmatch(path):
        return True
    parts = _STEPS.split(path)  # name, step, name, step, ...: "" after "[*]"
    if not parts[0].isidentifier():
        return False
    for step, name in zip(parts[1::2], parts[2::2], strict=True):
        if not (name.isidentifier() if step == "." else name == ""):
            return False
    return True


class EnvelopeError(ValueError):
    """An envelope file that cannot be read: not JSON, wrong version, wrong shape."""


# -- writing ---------------------------------------------------------------------------------


def _names(names: frozenset[str]) -> Any:
    return "any" if names is ANY else sorted(names)


def facts_data(facts: Facts) -> dict[str, Any]:
    """The facts that hold, as JSON-ready data (defaults are left out)."""
    data: dict[str, Any] = {}
    if facts.types:
        data["types"] = _names(facts.types)
    if facts.none:
        data["none"] = True
    if facts.missing:
        data["missing"] = True
    if facts.empty:
        data["empty"] = True
    if facts.max_len >= 0:
        data["max_len"] = facts.max_len
    if facts.signs:
        data["signs"] = [s for s in SIGNS if s in facts.signs]
    if facts.unsorted:
        data["unsorted"] = True
    elif facts.sorted:
        data["sorted"] = True
    if facts.record:
        data["record"] = True
    return data


def _line(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def dumps(envelope: Envelope) -> str:
    """The file's text: sorted, one line per path, ending with a newline.

    Fingerprints of ascending pairs seen while "always sorted" is not yet established go to a
    separate ``sorted_evidence`` block, so that the ``paths`` lines only change when a fact does.
    """
    out = ["{", '  "guards": {']
    names = sorted(envelope.guards)
    for g, name in enumerate(names):
        guard = envelope.guards[name]
        out.append(f"    {_line(name)}: {{")
        out.append(f'      "exceptions": {_line(_names(guard.exceptions))},')
        out.append(f'      "in_flight": {guard.in_flight},')
        paths = sorted(guard.paths)
        evidence = [path for path in paths if guard.paths[path].pairs]
        blocks: list[list[str]] = [
            [f"{_line(path)}: {_line(facts_data(guard.paths[path]))}" for path in paths],
            [f"{_line(path)}: {_line(sorted(guard.paths[path].pairs))}" for path in evidence],
        ]
        for key, lines in zip(("paths", "sorted_evidence"), blocks, strict=True):
            last = key == "sorted_evidence" or not evidence
            if not lines:
                if key == "paths":
                    out.append(f'      "paths": {{}}{"" if last else ","}')
                continue
            out.append(f'      "{key}": {{')
            out.extend(f"        {line}," for line in lines[:-1])
            out.append(f"        {lines[-1]}")
            out.append("      }" + ("" if last else ","))
        out.append("    }" + ("," if g < len(names) - 1 else ""))
    if names:
        out.append("  },")
    else:
        out[-1] = '  "guards": {},'
    out.append(f'  "version": {VERSION}')
    out.append("}")
    return "\n".join(out) + "\n"


def save(envelope: Envelope, path: str | os.PathLike[str]) -> None:
    """Write ``envelope`` to ``path`` atomically (a reader never sees half a file)."""
    import tempfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(dumps(envelope))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(target: Path, timeout: float) -> Iterator[bool]:
    """An advisory lock next to ``target`` (POSIX), given up after ``timeout`` seconds."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, last writer wins
        yield False
        return
    lock_path = target.with_name(f".{target.name}.lock")
    with open(lock_path, "a+b") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.02)
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def merge_into(envelope: Envelope, path: str | os.PathLike[str], timeout: float = 2.0) -> None:
    """Join ``envelope`` with what ``path`` already holds and write the result.

    Several processes (workers, restarts) recording to one path add up; a lock taken for at most
    ``timeout`` seconds keeps them from losing each other's facts. A file that is not a valid
    envelope is replaced.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target, timeout):
        with contextlib.suppress(OSError, EnvelopeError):
            envelope = load(target).join(envelope)
        save(envelope, target)


# -- reading ---------------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Envelope:
    """Read an envelope file. Raises ``OSError`` or :class:`EnvelopeError` naming the file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return loads(text)
    except EnvelopeError as exc:
        raise EnvelopeError(f"{os.fspath(path)}: {exc}") from None


def loads(text: str) -> Envelope:
    """Parse an envelope file's text; :class:`EnvelopeError` says what is wrong and where."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EnvelopeError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise EnvelopeError("not an envelope (the top level must be a JSON object)")
    if "version" not in data:
        raise EnvelopeError('not an envelope (no "version" key)')
    version = data["version"]
    if version != VERSION or isinstance(version, bool):
        raise EnvelopeError(
            f"unsupported envelope version {version!r} (this shadowguard reads version {VERSION})"
        )
    guards = data.get("guards", {})
    if not isinstance(guards, dict):
        raise EnvelopeError('"guards" must be an object')
    parsed: dict[str, GuardEnvelope] = {}
    for name, body in guards.items():
        parsed[name] = _guard(name, body)
    return Envelope({name: parsed[name] for name in sorted(parsed)})


def _guard(name: str, body: object) -> GuardEnvelope:
    where = f"guard {name!r}"
    if not isinstance(body, dict):
        raise EnvelopeError(f"{where}: must be an object")
    exceptions = _name_set(body.get("exceptions", []), f"{where}: exceptions")
    in_flight = body.get("in_flight", 0)
    if not _is_int(in_flight) or in_flight < 0:
        raise EnvelopeError(f"{where}: in_flight must be a non-negative integer")
    paths = body.get("paths", {})
    if not isinstance(paths, dict):
        raise EnvelopeError(f"{where}: paths must be an object")
    evidence = body.get("sorted_evidence", {})
    if not isinstance(evidence, dict):
        raise EnvelopeError(f"{where}: sorted_evidence must be an object")
    facts: dict[str, Facts] = {}
    for path in sorted(set(paths) | set(evidence)):
        if not _valid_path(path):
            raise EnvelopeError(f"{where}: bad path {path!r}")
        found = _facts(paths.get(path, {}), f"{where}: path {path!r}")
        if path in evidence:
            pairs = evidence[path]
            if not isinstance(pairs, list) or not all(isinstance(p, str) and p for p in pairs):
                raise EnvelopeError(
                    f"{where}: sorted_evidence {path!r} must be a list of pair fingerprints"
                )
            found = found.join(Facts(pairs=frozenset(pairs)))
        facts[path] = found
    return GuardEnvelope(paths=facts, exceptions=exceptions, in_flight=in_flight)


def _facts(data: object, where: str) -> Facts:
    if not isinstance(data, Mapping):
        raise EnvelopeError(f"{where}: must be an object")
    flags = {}
    for key in ("none", "missing", "empty", "sorted", "unsorted", "record"):
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise EnvelopeError(f"{where}: {key} must be true or false")
        flags[key] = value
    max_len = data.get("max_len", -1)
    if not _is_int(max_len) or max_len < -1:
        raise EnvelopeError(f"{where}: max_len must be a non-negative integer")
    signs = data.get("signs", [])
    if not isinstance(signs, list) or any(s not in SIGNS for s in signs):
        raise EnvelopeError(f"{where}: signs must be a list of {', '.join(SIGNS)}")
    return Facts(
        types=_name_set(data.get("types", []), f"{where}: types"),
        none=flags["none"],
        missing=flags["missing"],
        empty=flags["empty"],
        max_len=max_len,
        signs=frozenset(signs),
        sorted=flags["sorted"],
        unsorted=flags["unsorted"],
        record=flags["record"],
    )


def _name_set(value: object, where: str) -> frozenset[str]:
    if value == "any":
        return ANY
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise EnvelopeError(f'{where} must be a list of names or "any"')
    return frozenset(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
