"""The envelope's data model: what was seen at one path, for one guard, for a whole test run.

Every fact only ever grows (a set gains members, a flag turns on, a maximum rises), so merging
two envelopes is a join: associative, commutative and idempotent. That is what lets pytest-xdist
workers, or many production processes, record separately and merge in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "ANY",
    "MAX_EXCEPTIONS",
    "MAX_PATHS",
    "MAX_TYPES",
    "SIGNS",
    "SORTED_EVIDENCE",
    "Envelope",
    "Facts",
    "GuardEnvelope",
    "merge",
    "parent_field",
    "root_of",
]

ANY: frozenset[str] = frozenset({"*"})
"""More distinct names than the cap were seen: anything goes (no departure is ever reported)."""

MAX_TYPES = 16
"""Distinct type names kept per path; beyond it the path accepts any type."""
MAX_EXCEPTIONS = 16
"""Distinct exception types kept per guard; beyond it any exception is accepted."""
MAX_PATHS = 128
"""Paths kept per parameter (the lexically smallest, so parents always outlive their children)."""
SORTED_EVIDENCE = 8
"""Distinct strictly ascending neighbour pairs needed before "always sorted" is an assumption.

Two or three items in a test can be in order by chance, and the same list passed again proves
nothing new; eight different ascending pairs (and never a descending one) rarely are chance.
Until then the pairs' fingerprints are kept, so that workers' evidence adds up exactly.
"""
SIGNS = ("negative", "zero", "positive")


def _union(a: frozenset[str], b: frozenset[str], cap: int) -> frozenset[str]:
    if a is ANY or b is ANY or "*" in a or "*" in b:
        return ANY
    both = a | b
    return ANY if len(both) > cap else both


@dataclass(frozen=True)
class Facts:
    """What the tests exercised at one path.

    ``max_len`` is -1 until a value with a length was seen. Order is read along the enclosing
    sequence: ``pairs`` holds fingerprints of distinct ascending neighbour pairs until there
    are :data:`SORTED_EVIDENCE` of them, when ``sorted`` is established; ``unsorted`` (a
    descending pair was seen) overrides both. ``record`` says the value was seen as a record
    (a mapping of field names, a dataclass...): a field a later record lacks is ``missing``.
    """

    types: frozenset[str] = frozenset()
    none: bool = False
    missing: bool = False
    empty: bool = False
    max_len: int = -1
    signs: frozenset[str] = frozenset()
    sorted: bool = False
    pairs: frozenset[str] = frozenset()
    unsorted: bool = False
    record: bool = False

    def __post_init__(self) -> None:
        # One canonical form per state: unsorted beats sorted, enough pairs make it sorted.
        if self.unsorted:
            object.__setattr__(self, "sorted", False)
        elif len(self.pairs) >= SORTED_EVIDENCE:
            object.__setattr__(self, "sorted", True)
        if (self.sorted or self.unsorted) and self.pairs:
            object.__setattr__(self, "pairs", frozenset())

    def join(self, other: Facts) -> Facts:
        """Everything either side saw."""
        return Facts(
            types=_union(self.types, other.types, MAX_TYPES),
            none=self.none or other.none,
            missing=self.missing or other.missing,
            empty=self.empty or other.empty,
            max_len=max(self.max_len, other.max_len),
            signs=self.signs | other.signs,
            sorted=self.sorted or other.sorted,
            pairs=self.pairs | other.pairs,
            unsorted=self.unsorted or other.unsorted,
            record=self.record or other.record,
        )

    @property
    def always_sorted(self) -> bool:
        """Tests passed this in order often enough, and never out of order."""
        return self.sorted and not self.unsorted

    @property
    def evidence(self) -> int:
        """Distinct ascending pairs seen so far (:data:`SORTED_EVIDENCE` once established)."""
        return SORTED_EVIDENCE if self.sorted else len(self.pairs)


MISSING_ONLY = Facts(missing=True)
"""A field as seen by a record that lacked it."""


@dataclass(frozen=True)
class GuardEnvelope:
    """The envelope of one guard: facts per path, exception types raised, peak concurrency."""

    paths: Mapping[str, Facts] = field(default_factory=dict)
    exceptions: frozenset[str] = frozenset()
    in_flight: int = 0

    def join(self, other: GuardEnvelope) -> GuardEnvelope:
        """Everything either side saw; a field one side's records lacked becomes ``missing``."""
        paths: dict[str, Facts] = {}
        for path in _bounded(set(self.paths) | set(other.paths)):
            mine = _facts_at(self.paths, path)
            theirs = _facts_at(other.paths, path)
            if mine is None:
                assert theirs is not None
                paths[path] = theirs
            elif theirs is None:
                paths[path] = mine
            else:
                paths[path] = mine.join(theirs)
        return GuardEnvelope(
            paths=paths,
            exceptions=_union(self.exceptions, other.exceptions, MAX_EXCEPTIONS),
            in_flight=max(self.in_flight, other.in_flight),
        )


def _bounded(paths: Iterable[str]) -> list[str]:
    """At most :data:`MAX_PATHS` per parameter: the lexically smallest (parents first)."""
    kept: list[str] = []
    per_root: dict[str, int] = {}
    for path in sorted(paths):
        root = root_of(path)
        count = per_root.get(root, 0)
        if count < MAX_PATHS:
            per_root[root] = count + 1
            kept.append(path)
    return kept


def _facts_at(paths: Mapping[str, Facts], path: str) -> Facts | None:
    """The facts at ``path``; a field absent under a record was, by definition, missing."""
    facts = paths.get(path)
    if facts is not None:
        return facts
    parent = parent_field(path)
    if parent is not None:
        above = paths.get(parent)
        if above is not None and above.record:
            return MISSING_ONLY
    return None


def parent_field(path: str) -> str | None:
    """The record path above a field path (``users[*].email`` → ``users[*]``), else ``None``.

    Envelope paths only use ``.name`` (identifiers) and ``[*]`` steps, so the last ``.`` splits
    a field from its record.
    """
    cut = path.rfind(".")
    if cut <= 0 or not path[cut + 1 :].isidentifier():
        return None
    return path[:cut]


def root_of(path: str) -> str:
    """The parameter (or ``return``) a path starts from."""
    for index, char in enumerate(path):
        if char in ".[":
            return path[:index]
    return path


@dataclass(frozen=True)
class Envelope:
    """The tested envelope of a whole run: one :class:`GuardEnvelope` per guard name."""

    guards: Mapping[str, GuardEnvelope] = field(default_factory=dict)

    def join(self, other: Envelope) -> Envelope:
        """Every guard of either side, joined where both have it."""
        guards: dict[str, GuardEnvelope] = {}
        for name in sorted(set(self.guards) | set(other.guards)):
            mine, theirs = self.guards.get(name), other.guards.get(name)
            if mine is None:
                assert theirs is not None
                guards[name] = theirs
            elif theirs is None:
                guards[name] = mine
            else:
                guards[name] = mine.join(theirs)
        return Envelope(guards)


def merge(*envelopes: Envelope | Iterable[Envelope]) -> Envelope:
    """Join envelopes (recorded by several workers or processes) into one, in any order."""
    result = Envelope()
    for item in envelopes:
        for envelope in [item] if isinstance(item, Envelope) else item:
            result = result.join(envelope)
    return result
