"""structlog output: the ``shadowguard`` logger and the few events it emits.

Uses whatever structlog configuration the host has; never configures structlog itself.
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog

__all__ = ["assumption_violated", "config_invalid", "internal_error", "logger"]

logger: Any = structlog.get_logger("shadowguard")


def assumption_violated(
    *,
    guard: str,
    assumption: str,
    kind: str,
    mode: str,
    expected: str,
    observed: str,
    path: str | None,
    suppressed: int,
    extra: dict[str, str] | None = None,
) -> None:
    """The contract's ``assumption_violated`` warning (already rate limited by the caller)."""
    fields: dict[str, Any] = {
        "guard": guard,
        "assumption": assumption,
        "kind": kind,
        "mode": mode,
        "expected": expected,
        "observed": observed,
        "path": path,
        "suppressed": suppressed,
    }
    if extra:
        for key, value in extra.items():
            fields.setdefault(key, value)
    logger.warning("assumption_violated", **fields)


def config_invalid(variable: str, value: str, reason: str) -> None:
    """A bad environment value was ignored and its default used."""
    with contextlib.suppress(Exception):  # logging must never crash start-up
        logger.warning("config_invalid", variable=variable, value=value[:200], reason=reason)


def internal_error(site: str, error_type: str) -> None:
    """shadowguard swallowed one of its own faults (logged once per site)."""
    logger.error("internal_error", site=site, error=error_type)


def diagnostic(event: str, **fields: Any) -> None:
    """A one-off note to the operator, e.g. an annotation that could not be resolved."""
    try:
        logger.warning(event, **fields)
    except Exception as exc:
        from shadowguard._faults import internal_error as _fault

        _fault("log.diagnostic", exc)
