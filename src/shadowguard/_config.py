"""Settings: one dataclass, parsed from the environment once, changed at run time by ``configure``.

Every guard caches its effective mode together with :attr:`Settings.generation`; ``configure``
bumps the generation, so existing guards pick up new settings on their next call without being
re-decorated.
"""

from __future__ import annotations

import enum
import fnmatch
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Mode", "Settings", "configure", "settings"]


class Mode(str, enum.Enum):
    """What a guard does: ``off`` nothing, ``observe`` reports, ``enforce`` reports and raises."""

    OFF = "off"
    OBSERVE = "observe"
    ENFORCE = "enforce"

    def __str__(self) -> str:
        return self.value


@dataclass(slots=True)
class Settings:
    """The process-wide configuration. Read by guards, written only through ``configure``.

    Slotted: CPython 3.11 cannot specialise reading an instance attribute whose class also holds
    a default of a mutable type (``Mode.OBSERVE``), and guards read ``mode`` on every call."""

    mode: Mode = Mode.OBSERVE
    overrides: tuple[tuple[str, Mode], ...] = ()
    sample_rate: float = 1.0
    envelope: str | None = None
    record: str | None = None
    capture_values: bool = False
    overhead_budget: float | None = None
    tracer_provider: Any = None
    meter_provider: Any = None
    generation: int = 0
    mode_from_env_off: bool = False
    """True while the global ``off`` came from the environment at start-up and was never changed:
    decorators applied then return the function untouched (zero cost)."""
    listeners: list[Callable[[Settings], None]] = field(default_factory=list)


settings = Settings()
_lock = threading.RLock()


def _after_fork_in_child() -> None:
    """A forked child starts with a fresh lock (another thread may have held it at fork)."""
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

ENV_MODE = "SHADOWGUARD_MODE"
ENV_OVERRIDES = "SHADOWGUARD_OVERRIDES"
ENV_SAMPLE_RATE = "SHADOWGUARD_SAMPLE_RATE"
ENV_ENVELOPE = "SHADOWGUARD_ENVELOPE"
ENV_RECORD = "SHADOWGUARD_RECORD"
ENV_CAPTURE = "SHADOWGUARD_CAPTURE_VALUES"
ENV_BUDGET = "SHADOWGUARD_OVERHEAD_BUDGET"


# -- parsing: each parser raises ValueError with a short reason ---------------------------------


def parse_mode(value: object, what: str = "mode") -> Mode:
    """A ``Mode`` from a Mode or its string (case-insensitive, surrounding blanks ignored)."""
    if isinstance(value, Mode):
        return value
    if isinstance(value, str):
        try:
            return Mode(value.strip().lower())
        except ValueError:
            pass
    raise ValueError(f"{what} must be one of 'observe', 'enforce', 'off', got {value!r}")


def parse_overrides(value: object) -> tuple[tuple[str, Mode], ...]:
    """``{pattern: mode}`` or ``"pattern=mode,pattern=mode"`` into an ordered tuple."""
    if value is None:
        return ()
    pairs: list[tuple[str, Mode]] = []
    if isinstance(value, str):
        for raw_chunk in value.split(","):
            chunk = raw_chunk.strip()
            if not chunk:
                continue
            pattern, sep, mode = chunk.partition("=")
            if not sep or not pattern.strip():
                raise ValueError(f"override {chunk!r} is not of the form pattern=mode")
            pairs.append((pattern.strip(), parse_mode(mode, f"override {pattern.strip()!r}")))
    elif isinstance(value, Mapping):
        for pattern, mode in value.items():
            if not isinstance(pattern, str) or not pattern.strip():
                raise ValueError(f"override pattern must be a non-empty string, got {pattern!r}")
            pairs.append((pattern.strip(), parse_mode(mode, f"override {pattern!r}")))
    else:
        raise ValueError(
            f"overrides must be a mapping or a 'pattern=mode,...' string, got {value!r}"
        )
    return tuple(pairs)


def parse_fraction(value: object, what: str) -> float:
    """A float in 0.0 .. 1.0 (strings accepted)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number between 0.0 and 1.0, got {value!r}")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number between 0.0 and 1.0, got {value!r}") from None
    if not 0.0 <= number <= 1.0:  # also rejects NaN
        raise ValueError(f"{what} must be between 0.0 and 1.0, got {value!r}")
    return number


def parse_bool(value: object, what: str) -> bool:
    """``1/0``, ``true/false``, ``yes/no``, ``on/off`` or a bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
    raise ValueError(f"{what} must be 0 or 1, got {value!r}")


def parse_path(value: object, what: str) -> str | None:
    """A file path or ``None`` (an empty string means none)."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        return value.strip() or None
    raise ValueError(f"{what} must be a path, got {value!r}")


# -- the environment ------------------------------------------------------------------------------


def _env(name: str, parse: Callable[[str], Any], default: Any) -> Any:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        from shadowguard import _log

        _log.config_invalid(name, raw, str(exc))
        return default


def load_env() -> None:
    """(Re)read every ``SHADOWGUARD_*`` variable; bad values are reported once and defaulted."""
    with _lock:
        mode = _env(ENV_MODE, parse_mode, Mode.OBSERVE)
        settings.mode = mode
        settings.mode_from_env_off = mode is Mode.OFF
        settings.overrides = _env(ENV_OVERRIDES, parse_overrides, ())
        settings.sample_rate = _env(
            ENV_SAMPLE_RATE, lambda v: parse_fraction(v, ENV_SAMPLE_RATE), 1.0
        )
        settings.envelope = _env(ENV_ENVELOPE, lambda v: parse_path(v, ENV_ENVELOPE), None)
        settings.record = _env(ENV_RECORD, lambda v: parse_path(v, ENV_RECORD), None)
        settings.capture_values = _env(ENV_CAPTURE, lambda v: parse_bool(v, ENV_CAPTURE), False)
        budget = _env(ENV_BUDGET, lambda v: parse_fraction(v, ENV_BUDGET), None)
        settings.overhead_budget = budget if budget else None
        _changed()


def _changed() -> None:
    settings.generation += 1
    for listener in list(settings.listeners):
        try:
            listener(settings)
        except Exception as exc:
            from shadowguard._faults import internal_error

            internal_error("config.listener", exc)


_UNSET: Any = object()


def configure(
    *,
    mode: Mode | str = _UNSET,
    overrides: Mapping[str, Mode | str] | str | None = _UNSET,
    sample_rate: float = _UNSET,
    envelope: str | os.PathLike[str] | None = _UNSET,
    record: str | os.PathLike[str] | None = _UNSET,
    capture_values: bool = _UNSET,
    overhead_budget: float | None = _UNSET,
    tracer_provider: Any = _UNSET,
    meter_provider: Any = _UNSET,
) -> None:
    """Change settings at run time; every existing guard sees them on its next call.

    Arguments left out keep their current value. Bad values raise ``ValueError`` and change
    nothing. ``tracer_provider``/``meter_provider`` default to OpenTelemetry's global ones.
    """
    changes: dict[str, Any] = {}
    if mode is not _UNSET:
        changes["mode"] = parse_mode(mode)
    if overrides is not _UNSET:
        changes["overrides"] = parse_overrides(overrides)
    if sample_rate is not _UNSET:
        changes["sample_rate"] = parse_fraction(sample_rate, "sample_rate")
    if envelope is not _UNSET:
        changes["envelope"] = parse_path(envelope, "envelope")
    if record is not _UNSET:
        changes["record"] = parse_path(record, "record")
    if capture_values is not _UNSET:
        if not isinstance(capture_values, bool):
            raise ValueError(f"capture_values must be a bool, got {capture_values!r}")
        changes["capture_values"] = capture_values
    if overhead_budget is not _UNSET:
        changes["overhead_budget"] = (
            None
            if overhead_budget is None
            else (parse_fraction(overhead_budget, "overhead_budget") or None)
        )
    if tracer_provider is not _UNSET:
        changes["tracer_provider"] = tracer_provider
    if meter_provider is not _UNSET:
        changes["meter_provider"] = meter_provider
    with _lock:
        for key, value in changes.items():
            setattr(settings, key, value)
        if "mode" in changes:
            settings.mode_from_env_off = False
        _changed()


def resolve_mode(name: str, decorator_mode: Mode | None) -> Mode:
    """Effective mode: global off, else first matching override, else decorator, else global."""
    if settings.mode is Mode.OFF:
        return Mode.OFF
    for pattern, mode in settings.overrides:
        if fnmatch.fnmatchcase(name, pattern):
            return mode
    if decorator_mode is not None:
        return decorator_mode
    return settings.mode


def add_listener(listener: Callable[[Settings], None]) -> None:
    """Call ``listener(settings)`` after every change (the envelope and OTel sinks use it)."""
    with _lock:
        if listener not in settings.listeners:
            settings.listeners.append(listener)


def snapshot() -> dict[str, Any]:
    """The current settings as a plain dict (tests save and restore with it)."""
    return {
        "mode": settings.mode,
        "overrides": settings.overrides,
        "sample_rate": settings.sample_rate,
        "envelope": settings.envelope,
        "record": settings.record,
        "capture_values": settings.capture_values,
        "overhead_budget": settings.overhead_budget,
        "tracer_provider": settings.tracer_provider,
        "meter_provider": settings.meter_provider,
    }


def restore(saved: Mapping[str, Any]) -> None:
    """Put back a :func:`snapshot`."""
    with _lock:
        for key, value in saved.items():
            setattr(settings, key, value)
        settings.mode_from_env_off = False
        _changed()
