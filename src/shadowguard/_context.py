"""The request being served, if any: set by the web middleware, read by the reporter."""

from __future__ import annotations

import itertools
import threading
from contextvars import ContextVar
from typing import Any, ClassVar

from shadowguard._tallies import counted

__all__ = ["RequestScope", "current_request", "get_request", "reset_request", "set_request"]


class RequestScope:
    """A request in flight: its route for violation attributes and its violation count."""

    __slots__ = ("_tally", "method", "path", "route", "span")

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
        self._tally: itertools.count[int] | None = None
        """Made by the first :meth:`add` (or the count's setter): most requests report nothing,
        and one object less per request in flight keeps a busy server further from a garbage
        collection. The reporter's flood path advances it inline, but only for a scope it saw
        through :meth:`add` first."""

    @property
    def reported(self) -> bool:
        """Whether anything was reported on this request: one that nobody reported on skips
        reading its exact count (``_tally is not None and violations``)."""
        return self._tally is not None

    @property
    def violations(self) -> int:
        """Violations reported while this request was served (exact under threads)."""
        tally = self._tally
        return 0 if tally is None else counted(tally)

    @violations.setter
    def violations(self, value: int) -> None:
        self._tally = itertools.count(value)

    def add(self, count: int) -> None:
        """Count violations reported while this request was served: ``next`` on the scope's
        own counter is atomic, so a flood takes no lock."""
        tally = self._tally
        if tally is None:
            tally = self._first_tally()
        if count == 1:
            next(tally)
        else:
            for _ in range(count):
                next(tally)

    def _first_tally(self) -> itertools.count[int]:
        """The request's counter, made once even when two threads report its first violation
        at the same time."""
        with _first_lock:
            tally = self._tally
            if tally is None:
                tally = self._tally = itertools.count()
            return tally

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


_first_lock = threading.Lock()

current_request: ContextVar[RequestScope | None] = ContextVar("shadowguard_request", default=None)

# Bound once: a method called on an imported name compiles to an attribute load, which makes a
# bound method object per call; the middleware sets and resets the request several times each.
set_request = current_request.set
reset_request = current_request.reset
get_request = current_request.get
