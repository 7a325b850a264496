"""How the envelope reaches every guard: one provider registered with the guard core.

On each refresh (a configuration change) a guard asks the provider for extra assumptions:
recording ones while a recorder is active (a pytest session, ``SHADOWGUARD_RECORD``), watching
ones while ``SHADOWGUARD_ENVELOPE`` names a file. The file is read once per change of its
path, size or modification time; a file that cannot be read is reported once (``config_invalid``)
and nothing is watched.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from shadowguard import _log
from shadowguard._assumptions import Assumption
from shadowguard._config import ENV_ENVELOPE, settings
from shadowguard._faults import internal_error
from shadowguard.envelope._compare import (
    Expectation,
    NeverTested,
    compile_roots,
    watching_assumptions,
)
from shadowguard.envelope._facts import Envelope
from shadowguard.envelope._format import EnvelopeError, load, merge_into
from shadowguard.envelope._record import Recorder, recording_assumptions

__all__ = ["process_recorder", "provide", "start_recording", "stop_recording", "write_recorded"]

_lock = threading.Lock()
_recorders: tuple[Recorder, ...] = ()
_process: Recorder | None = None
_exit_hook = False
_MAX_NEVER_TESTED = 4096


def _bump() -> None:
    settings.generation += 1  # every guard refreshes, and asks the provider again


def start_recording() -> Recorder:
    """Record every guard's calls from now on (a test session does this); see
    :func:`stop_recording`."""
    global _recorders
    recorder = Recorder(thin=False)
    with _lock:
        _recorders = (*_recorders, recorder)
    _bump()
    return recorder


def stop_recording(recorder: Recorder) -> Envelope:
    """Stop ``recorder`` and return what it recorded."""
    global _recorders
    with _lock:
        _recorders = tuple(r for r in _recorders if r is not recorder)
    _bump()
    return recorder.envelope()


def process_recorder() -> Recorder:
    """This process's own (thinned) recorder, fed while ``SHADOWGUARD_RECORD`` is set and
    written there at exit."""
    global _process, _exit_hook
    with _lock:
        if _process is None:
            _process = Recorder(thin=True)
        if not _exit_hook:
            atexit.register(_write_at_exit)
            _exit_hook = True
        return _process


def write_recorded(path: str | os.PathLike[str] | None = None) -> bool:
    """Merge this process's recorded envelope into ``path`` (default: ``settings.record``).

    Returns False when there is nothing to write or nowhere to write it. Raises ``OSError``.
    """
    target = path if path is not None else settings.record
    recorder = _process
    if target is None or recorder is None:
        return False
    merge_into(recorder.envelope(), target)
    return True


def _write_at_exit() -> None:
    try:
        write_recorded()
    except Exception as exc:
        internal_error("envelope.record_at_exit", exc)


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    for recorder in (*_recorders, *((_process,) if _process is not None else ())):
        recorder.reset_locks()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# -- watching ----------------------------------------------------------------------------------


class _Watched:
    """One loaded envelope file, compiled per guard on first use."""

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.roots: dict[str, dict[str, Expectation]] = {}
        self.never_tested: dict[str, threading.Lock] = {}
        self.lock = threading.Lock()

    def assumptions(self, guard: Any) -> list[Assumption]:
        name = guard.name
        found = self.envelope.guards.get(name)
        if found is None:
            with self.lock:
                once = self.never_tested.get(name)
                if once is None:
                    if len(self.never_tested) >= _MAX_NEVER_TESTED:
                        return []
                    once = self.never_tested[name] = threading.Lock()
            return [NeverTested(once)]
        roots = self.roots.get(name)
        if roots is None:
            roots = compile_roots(found)
            with self.lock:
                roots = self.roots.setdefault(name, roots)
        return watching_assumptions(found, roots, guard.binder.names, guard.kind, guard.binder)


_watched: tuple[tuple[str, int, int], _Watched | None] | None = None


def _watching(path: str) -> _Watched | None:
    """The compiled envelope at ``path``; ``None`` (reported once) when it cannot be read."""
    global _watched
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        key = (path, -1, -1)
        error: str | None = f"cannot read the envelope: {exc.strerror or exc}"
    else:
        error = None
    cached = _watched
    if cached is not None and cached[0] == key:
        return cached[1]
    watched: _Watched | None = None
    if error is None:
        try:
            watched = _Watched(load(path))
        except (OSError, EnvelopeError, UnicodeDecodeError) as exc:
            error = f"cannot read the envelope: {exc}"
    if error is not None:
        _log.config_invalid(ENV_ENVELOPE, path, error)
    _watched = (key, watched)
    return watched


def provide(guard: Any) -> list[Assumption]:
    """The envelope's assumptions for ``guard`` under the current settings."""
    found: list[Assumption] = []
    recorders = _recorders
    if settings.record is not None:
        recorders = (*recorders, process_recorder())
    for recorder in recorders:
        found.extend(
            recording_assumptions(
                recorder.guard(guard.name),
                guard.binder.names,
                guard.kind,
                guard.binder,
                getattr(guard, "replan", None),
            )
        )
    if settings.envelope is not None:
        watched = _watching(settings.envelope)
        if watched is not None:
            found.extend(watched.assumptions(guard))
    return found
