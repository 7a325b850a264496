"""The one choke point for shadowguard's own faults: swallow, log once per site, never raise.

Tests make it strict (see :func:`shadowguard.testing.strict_internal_errors`) so that a swallowed
internal error fails the test that caused it instead of hiding.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["internal_error", "set_strict_hook"]

_MAX_SITES = 256
_seen: set[str] = set()
_lock = threading.Lock()
_strict_hook: Callable[[str, BaseException], None] | None = None
_counts = {"total": 0}


def _after_fork_in_child() -> None:
    """A forked child starts with a fresh lock (another thread may have held it at fork)."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def set_strict_hook(
    hook: Callable[[str, BaseException], None] | None,
) -> Callable[[str, BaseException], None] | None:
    """Install a hook called for every internal fault (tests use it to fail loudly)."""
    global _strict_hook
    previous, _strict_hook = _strict_hook, hook
    return previous


def internal_errors_total() -> int:
    """How many internal faults were swallowed in this process."""
    return _counts["total"]


def internal_error(site: str, exc: BaseException) -> None:
    """Record an internal fault at ``site``: logged the first time, swallowed always."""
    try:
        _counts["total"] += 1
        hook = _strict_hook
        if hook is not None:
            hook(site, exc)
            return
        with _lock:
            if site in _seen or len(_seen) >= _MAX_SITES:
                return
            _seen.add(site)
        from shadowguard import _log

        _log.internal_error(site, type(exc).__qualname__)
    except Exception:  # pragma: no cover - the last line of defence must not raise
        pass


def reset() -> None:
    """Forget which sites were already logged (tests)."""
    with _lock:
        _seen.clear()
