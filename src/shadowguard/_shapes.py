"""Value-free descriptions of values (``str``, ``None``, ``len=12``) and redacted value capture."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["capture", "is_secret_name", "mask_numbers", "type_name"]

_SECRET = re.compile(
    r"pass(word|wd)?|token|secret|auth|cookie|api[_-]?key|apikey|card|ssn|signature|credential|"
    r"private[_-]?key|session|jwt|cvv|cvc",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(\.\d+)?")
MAX_VALUE = 256
REDACTED = "[REDACTED]"


def type_name(value: object) -> str:
    """The observed type as a shape: ``None`` for None, else the class's qualified name."""
    if value is None:
        return "None"
    cls = type(value)
    try:
        name = cls.__qualname__
    except Exception:  # a hostile metaclass
        return "object"
    return name if isinstance(name, str) else "object"


def is_secret_name(name: object) -> bool:
    """True when a key or attribute name looks like it holds a secret (substring match)."""
    return isinstance(name, str) and _SECRET.search(name) is not None


def mask_numbers(text: str) -> str:
    """``len=12001`` and ``len=9`` become one fingerprint: ``len=#``."""
    return _NUMBER.sub("#", text)


def capture(value: object, name: str | None = None) -> str:
    """A redacted, truncated rendering of ``value`` (only used when value capture is on)."""
    if name is not None and is_secret_name(name.rsplit(".", 1)[-1]):
        return REDACTED
    parts: list[str] = []
    _render(value, parts, depth=0, budget=[MAX_VALUE + 1], seen=set())
    text = "".join(parts)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _render(value: Any, out: list[str], depth: int, budget: list[int], seen: set[int]) -> None:
    """Render ``value`` into ``out``; a value whose own methods raise while being read (a
    hostile mapping, a proxy whose ``__class__`` raises) becomes ``<TypeName>``."""
    if budget[0] <= 0:
        return
    mark = len(out)
    try:
        _render_value(value, out, depth, budget, seen)
    except Exception:
        del out[mark:]
        piece = f"<{type_name(value)}>"
        out.append(piece)
        budget[0] -= len(piece)


def _render_value(
    value: Any, out: list[str], depth: int, budget: list[int], seen: set[int]
) -> None:
    if value is None or isinstance(value, bool):
        piece = str(value)
    elif isinstance(value, int):
        piece = str(value) if value.bit_length() < 256 else "<int>"
    elif isinstance(value, float):
        piece = repr(value) if math.isfinite(value) else str(value)
    elif isinstance(value, str):
        piece = _sanitize_url(value[:MAX_VALUE])
        piece = repr(piece)
    elif isinstance(value, bytes):
        piece = f"<bytes len={len(value)}>"
    elif isinstance(value, (list, tuple, set, frozenset, Mapping)):
        if id(value) in seen or depth >= 3:
            out.append("…")
            budget[0] -= 1
            return
        seen.add(id(value))
        try:
            _render_container(value, out, depth, budget, seen)
        finally:
            seen.discard(id(value))
        return
    else:
        try:
            piece = repr(value)
        except Exception:
            piece = f"<{type_name(value)}>"
        if not isinstance(piece, str):
            piece = f"<{type_name(value)}>"
        piece = _sanitize_url(piece[:MAX_VALUE])
    out.append(piece)
    budget[0] -= len(piece)


def _render_container(
    value: Any, out: list[str], depth: int, budget: list[int], seen: set[int]
) -> None:
    if isinstance(value, Mapping):
        out.append("{")
        for index, key in enumerate(value):
            if index >= 16 or budget[0] <= 0:
                out.append("…")
                break
            if index:
                out.append(", ")
            if is_secret_name(key):
                out.append(f"{key!r}: {REDACTED}")
                continue
            _render(key, out, depth + 1, budget, seen)
            out.append(": ")
            try:
                item = value[key]
            except Exception:
                item = "<unreadable>"
            _render(item, out, depth + 1, budget, seen)
        out.append("}")
        return
    if isinstance(value, tuple) and len(value) == 2 and is_secret_name(value[0]):
        out.append(f"({value[0]!r}, {REDACTED})")  # a (name, value) pair: headers, form fields
        return
    opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
    if isinstance(value, (set, frozenset)):
        opening, closing = "{", "}"
    out.append(opening)
    for index, item in enumerate(value):
        if index >= 16 or budget[0] <= 0:
            out.append("…")
            break
        if index:
            out.append(", ")
        if isinstance(item, str) and is_secret_name(item):
            out.append(REDACTED)
            continue
        _render(item, out, depth + 1, budget, seen)
    out.append(closing)


_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_QUERY_SECRET = re.compile(
    # a parameter at the start, after ?, &, ; or # (OAuth puts tokens in the fragment), or after
    # a blank, whose name holds a secret word: sig (Azure SAS), credential (AWS SigV4)...
    r"(?P<key>(?:^|[?&;#\s])(?:[^=&;#\s]*"
    r"(?:token|secret|sig|pass|pwd|key|auth|session|credential|jwt)[^=&;#\s]*))"
    r"=[^&;#\s]*",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>bearer|basic|digest|token)\s+[^\s,;]+", re.IGNORECASE)
"""Credentials after an HTTP auth scheme: ``Bearer eyJ...``, ``Basic dXNlcjpwYXNz``."""


def _sanitize_url(text: str) -> str:
    """Redact URL userinfo, secret-looking query/fragment parameters and auth credentials."""
    if "://" in text:
        text = _URL_USERINFO.sub(r"\g<scheme>[REDACTED]@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(r"\g<key>=[REDACTED]", text)
    if " " in text or "\t" in text:
        text = _AUTH_SCHEME.sub(r"\g<scheme> [REDACTED]", text)
    return text
