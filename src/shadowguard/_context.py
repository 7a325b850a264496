"""The request being served, if any: set by the web middleware, read by the reporter."""

from __future__ import annotations

import os
import threading
from contextvars import ContextVar
from typing import Any, ClassVar

__all__ = ["RequestScope", "current_request"]


class RequestScope:
    """A request in flight: its route for violation attributes and its violation count."""

    __slots__ = ("method", "path", "route", "span", "violations")

    syncs_count: ClassVar[bool] = False
    """True when the scope's owner writes ``shadowguard.violations`` on ``span`` as the request
    ends (the middleware does): past the per-span event cap the reporter then leaves it be."""

    def __init__(
        self,
        method: str | None = None,
        route: str | None = None,
        path: str | None = None,
        span: Any = None,
    ) -> None:
        self.method = method
        self.route = route
        self.path = path
        self.span = span
        self.violations = 0

    def add(self, count: int) -> None:
        """Count violations reported while this request was served."""
        with _lock:
            self.violations += count

    def attributes(self) -> dict[str, str]:
        """``http.route`` (or ``url.path`` when no template is known) and the method."""
        attributes: dict[str, str] = {}
        if self.route:
            attributes["http.route"] = self.route
        elif self.path:
            attributes["url.path"] = self.path
        if self.method:
            attributes["http.request.method"] = self.method
        return attributes


_lock = threading.Lock()
"""One lock for every scope's count: violations are rare, requests (and locks) are not."""


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # one another thread of the parent held would never be released


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


current_request: ContextVar[RequestScope | None] = ContextVar("shadowguard_request", default=None)
