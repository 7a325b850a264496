"""Recording: what each guard's calls actually passed, returned and raised, as a tree of facts.

A :class:`Recorder` holds one :class:`GuardRecorder` per guard name; the provider in
:mod:`shadowguard.envelope._wiring` gives every guard a few recording assumptions that feed it.
The walk per call is bounded: depth :data:`~._walk.MAX_DEPTH`, :data:`~._walk.MAX_FIELDS`
fields per record, sampled items of big sequences and a budget of values read.
"""

from __future__ import annotations

import inspect
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from shadowguard._assumptions import Assumption, Shapes, When
from shadowguard._call import Binder, Call
from shadowguard._paths import MISSING, _rng
from shadowguard._shapes import type_name
from shadowguard.envelope._facts import (
    ANY,
    MAX_EXCEPTIONS,
    MAX_PATHS,
    MAX_TYPES,
    SORTED_EVIDENCE,
    Envelope,
    Facts,
    GuardEnvelope,
)
from shadowguard.envelope._inline import render, shapes, signs_condition
from shadowguard.envelope._walk import (
    _INT_PAIR,
    _SAME_KIND,
    MAX_DEPTH,
    MAX_FIELDS,
    compare,
    descending,
    field_value,
    fingerprint,
    fingerprint_number,
    is_record_dict,
    is_sequence,
    item,
    item_indices,
    length,
    members,
    record_fields,
    sign,
)

_dict_get: Any = dict.get  # the builtin lookup: a subclass's get() is never run

__all__ = ["GuardRecorder", "Recorder", "recording_assumptions"]

BUDGET = 4096
"""Values read per parameter per call, at most (a few milliseconds at worst)."""
FULL_ITEMS = 256
"""Sequences up to this long are read item by item when recording, so that what a test passed
is never outside its own envelope when production samples it; longer ones are sampled."""
_INT_BITS = 256
"""Ints up to this size are fingerprinted from their digits (and their pairs kept as they are
in :attr:`_Node.int_pairs`); bigger ones by a bounded digest."""
STALE_AFTER = 64
"""Thinned recorders (production) drop to :data:`THIN_RATE` after this many calls in a row
taught them nothing new, and return to every call as soon as one does."""
THIN_RATE = 1 / 16


_BUILTIN_NAMES: dict[type, str] = {
    cls: cls.__qualname__
    for cls in (int, float, str, bytes, bool, list, tuple, dict, set, frozenset, bytearray)
}


class _Node:
    """Mutable facts at one path, with the paths below it."""

    __slots__ = (
        "depth",
        "empty",
        "fields",
        "int_pairs",
        "items",
        "max_len",
        "missing",
        "none",
        "pairs",
        "path",
        "record",
        "signs",
        "sorted",
        "types",
        "unsorted",
    )

    def __init__(self, path: str, depth: int, missing: bool) -> None:
        self.path = path
        self.depth = depth
        self.types: set[str] | None = set()  # None: more than MAX_TYPES, anything goes
        self.none = False
        self.missing = missing
        self.empty = False
        self.max_len = -1
        self.signs: set[str] = set()
        self.sorted = False
        self.pairs: set[str] | None = None  # fingerprints of distinct ascending pairs
        self.int_pairs: set[tuple[int, int]] | None = None
        """The pairs of plain ints among them, seen in this process: the guard's checker
        looks a pair up here instead of fingerprinting it (as many as ``pairs`` holds)."""
        self.unsorted = False
        self.record = False
        self.fields: dict[str, _Node] | None = None
        self.items: _Node | None = None

    def facts(self) -> Facts:
        return Facts(
            types=ANY if self.types is None else frozenset(self.types),
            none=self.none,
            missing=self.missing,
            empty=self.empty,
            max_len=self.max_len,
            signs=frozenset(self.signs),
            sorted=self.sorted,
            pairs=frozenset(self.pairs or ()),
            unsorted=self.unsorted,
            record=self.record,
        )

    def flatten(self, out: dict[str, Facts]) -> None:
        out[self.path] = self.facts()
        if self.fields:
            for child in self.fields.values():
                child.flatten(out)
        if self.items is not None:
            self.items.flatten(out)


class GuardRecorder:
    """The facts recorded for one guard name. Thread-safe; every walk is bounded."""

    def __init__(self, name: str, thin: bool) -> None:
        self.name = name
        self.thin = thin
        self.lock = threading.Lock()
        self.roots: dict[str, _Node] = {}
        self.per_root: dict[str, int] = {}
        self.exceptions: set[str] | None = set()
        self.in_flight = 0
        self.changes = 0
        self.stale = 0
        self.budget = 0
        self.skip = True
        """Skip the walk of a value that would teach nothing (off: the plain walk, for tests)."""
        self.known: dict[str, tuple[int, Known]] = {}
        """Per parameter: the facts' version and :func:`compile_known` of them then."""

    # -- entry points (one per assumption) ------------------------------------------------------

    def admit(self) -> bool:
        """Record this call? Always, unless a thinned recorder has stopped learning."""
        return not self.thin or self.stale < STALE_AFTER or _rng.random() < THIN_RATE

    def see(self, root: str, value: object) -> None:
        """Record ``value``, the value of parameter ``root`` (or ``return``) in one call."""
        known = self.known.get(root)
        if known is not None and known[1](value):
            self.stale += 1  # nothing new (a heuristic count: no lock needed)
            return
        self.learn(root, value, known)

    def learn(self, root: str, value: object, known: tuple[int, Known] | None) -> None:
        """Walk ``value`` under the lock (``known``: the snapshot that could not skip it); a walk
        that taught nothing leaves a fresh snapshot to skip the next such value."""
        with self.lock:
            before = self.changes
            node = self.roots.get(root)
            if node is None:
                node = self.roots[root] = _Node(root, 0, False)
                self.per_root[root] = 1
                self.changes += 1
            self.budget = BUDGET
            self._see(node, value, root)
            if self.changes != before:
                self.stale = 0
                return
            self.stale += 1
            if self.skip and (known is None or known[0] != before):
                self.known[root] = (before, compile_known(node))

    def raised(self, exc: BaseException) -> None:
        """Record the type of an exception the call raised."""
        name = type_name(exc)
        with self.lock:
            known = self.exceptions
            if known is not None and name not in known:
                if len(known) >= MAX_EXCEPTIONS:
                    self.exceptions = None
                else:
                    known.add(name)

    def flight(self, in_flight: int) -> None:
        """Record how many calls of the guard were in flight when one started."""
        if in_flight > self.in_flight:
            with self.lock:
                self.in_flight = max(self.in_flight, in_flight)

    def envelope(self) -> GuardEnvelope:
        """A snapshot of everything recorded so far."""
        with self.lock:
            paths: dict[str, Facts] = {}
            for node in self.roots.values():
                node.flatten(paths)
            exceptions = ANY if self.exceptions is None else frozenset(self.exceptions)
            return GuardEnvelope(
                paths=dict(sorted(paths.items())), exceptions=exceptions, in_flight=self.in_flight
            )

    # -- the walk (under the lock) ----------------------------------------------------------

    def _child(self, parent: _Node, path: str, root: str, missing: bool) -> _Node | None:
        count = self.per_root.get(root, 0)
        if count >= MAX_PATHS:
            return None
        self.per_root[root] = count + 1
        self.changes += 1
        return _Node(path, parent.depth + 1, missing)

    def _see(self, node: _Node, value: object, root: str) -> None:
        if self.budget <= 0:
            return
        self.budget -= 1
        if value is None:
            if not node.none:
                node.none = True
                self.changes += 1
            return
        cls = type(value)
        types = node.types
        if types is not None:
            name = _BUILTIN_NAMES.get(cls) or type_name(value)
            if name not in types:
                if len(types) >= MAX_TYPES:
                    node.types = None
                else:
                    types.add(name)
                self.changes += 1
        if cls is int or cls is float:
            kind = sign(value)
            if kind is not None and kind not in node.signs:
                node.signs.add(kind)
                self.changes += 1
            return
        size = length(value)
        if size >= 0:
            if size == 0 and not node.empty:
                node.empty = True
                self.changes += 1
            if size > node.max_len:
                node.max_len = size
                self.changes += 1
            if size == 0 or isinstance(value, (str, bytes, bytearray)):
                if size == 0 and isinstance(value, dict):
                    self._record(node, [], root)
                return
        if node.depth >= MAX_DEPTH:
            return
        if is_sequence(value):
            self._sequence(node, value, root)  # type: ignore[arg-type]
            return
        pairs = record_fields(value)
        if pairs is not None:
            self._record(node, pairs, root)
            return
        found = members(value)
        if found:
            child = node.items
            if child is None:
                child = node.items = self._child(node, node.path + "[*]", root, False)
                if child is None:
                    return
            for member in found:
                self._see(child, member, root)

    def _record(self, node: _Node, pairs: list[tuple[str, object]], root: str) -> None:
        was_record = node.record
        fields = node.fields
        if fields is None:
            fields = node.fields = {}
        if was_record and fields:
            present = {name for name, value in pairs if value is not MISSING}
            for name, known in fields.items():
                if name not in present and not known.missing:
                    known.missing = True
                    self.changes += 1
        if not was_record:
            node.record = True
            self.changes += 1
        if node.depth >= MAX_DEPTH:
            return
        for name, value in pairs:
            child = fields.get(name)
            if child is None:
                created = self._child(node, f"{node.path}.{name}", root, was_record)
                if created is None:
                    continue
                child = fields[name] = created
            if value is MISSING:
                if not child.missing:
                    child.missing = True
                    self.changes += 1
                continue
            self._see(child, value, root)

    def _sequence(self, node: _Node, value: Sequence[Any], root: str) -> None:
        child = node.items
        if child is None:
            child = node.items = self._child(node, node.path + "[*]", root, False)
            if child is None:
                return
        size = length(value)
        indices: range | list[int] = range(size) if size <= FULL_ITEMS else item_indices(value)
        for index in indices:
            self._see(child, item(value, index), root)
        if len(indices) < 2:
            return
        fields = child.fields if child.record else None
        if fields:  # order is only still worth learning where it was never broken
            fields = {name: node for name, node in fields.items() if not node.unsorted}
        if child.unsorted and not fields:
            return
        ascending: list[tuple[object, object]] = []
        descending = False
        by_field: dict[str, tuple[list[tuple[object, object]], list[bool]]] = {}
        complete = size <= FULL_ITEMS  # every neighbour pair is compared
        for index in indices:
            if index == 0:
                continue
            if self.budget <= 0:
                complete = False
                break
            self.budget -= 1
            before, after = item(value, index - 1), item(value, index)
            order = compare(before, after)
            if order < 0:
                descending = True
            elif order > 0:
                ascending.append((before, after))
            if fields:
                self.budget -= len(fields)
                both_dicts = isinstance(before, dict) and isinstance(after, dict)
                for name in fields:
                    if both_dicts:
                        first = _dict_get(before, name, MISSING)
                        second = _dict_get(after, name, MISSING)
                    else:
                        first, second = field_value(before, name), field_value(after, name)
                    order = compare(first, second)
                    if order:
                        tally = by_field.setdefault(name, ([], [False]))
                        if order > 0:
                            tally[0].append((first, second))
                        else:
                            tally[1][0] = True
        # Only a sequence compared pair by pair proves it was sorted; any descending pair,
        # sampled or not, proves it was not.
        self._order(child, ascending if complete else [], descending)
        if fields:
            for name, (up, down) in by_field.items():
                self._order(fields[name], up if complete else [], down[0])

    def _order(self, node: _Node, ascending: list[tuple[object, object]], descending: bool) -> None:
        """Sortedness evidence: distinct ascending pairs (the same test data passed again
        proves nothing new), until a descending pair rules "always sorted" out."""
        if node.unsorted:
            return
        if descending:
            node.unsorted = True
            node.sorted = False
            node.pairs = node.int_pairs = None
            self.changes += 1
            return
        if not ascending or node.sorted:
            return
        pairs = node.pairs
        if pairs is None:
            pairs = node.pairs = set()
        for before, after in ascending:
            name = fingerprint(before, after)
            if name not in pairs:
                pairs.add(name)
                self.changes += 1
                if len(pairs) >= SORTED_EVIDENCE:
                    node.sorted = True
                    node.pairs = node.int_pairs = None
                    return
            if (
                type(before) is int
                and type(after) is int
                and before.bit_length() <= _INT_BITS
                and after.bit_length() <= _INT_BITS
            ):
                known = node.int_pairs
                if known is None:
                    known = node.int_pairs = set()
                if (before, after) not in known and len(known) < SORTED_EVIDENCE:
                    known.add((before, after))  # (also a pair merged in by fingerprint only)
                    self.changes += 1


# -- what is already known: a value whose walk would change nothing is not walked ---------------

Known = Callable[[object], bool]
"""True when walking the value would change no fact (False: maybe it would; walk it)."""


def _nothing_known(value: object) -> bool:
    return False


def _reads(node: _Node) -> int:
    """The most budget :meth:`GuardRecorder._see` can spend below ``node`` on a sequence of at
    most :data:`FULL_ITEMS` items (the only ones :func:`compile_known` ever answers for)."""
    fields = node.fields or {}
    total = 1 + sum(_reads(child) for child in fields.values())
    if node.items is not None:
        below = _reads(node.items)
        per_pair = 1 + len(node.items.fields or ())
        total += max(FULL_ITEMS * (below + per_pair), MAX_FIELDS * below)
    return total


def compile_known(node: _Node) -> Known:
    """A predicate answering "would :meth:`GuardRecorder._see` change nothing here?" from a
    snapshot of the facts at and below ``node``, as closures (read without the lock).

    It reads what the walk reads, through the same helpers, and says True only when the walk
    would find every fact already noted. Facts only grow, so a snapshot stays right (merely
    more cautious) after the facts change. Sequences longer than :data:`FULL_ITEMS` (sampled
    at random) and trees whose reads could exceed the walk's budget are always walked.
    """
    if _reads(node) > BUDGET:
        return _nothing_known
    return _known(node)


def _known(node: _Node) -> Known:
    types = None if node.types is None else frozenset(node.types)
    builtins_ok = frozenset(
        cls for cls, name in _BUILTIN_NAMES.items() if types is None or name in types
    )
    none_seen = node.none
    signs = frozenset(node.signs)
    int_ok = int in builtins_ok
    str_ok = str in builtins_ok
    positive_ok, zero_ok = "positive" in signs, "zero" in signs
    negative_ok = "negative" in signs
    empty_seen = node.empty
    max_len = node.max_len
    deepest = node.depth >= MAX_DEPTH
    in_record = _known_record(node)
    in_sequence = None if deepest else _known_sequence(node)
    each = None if node.items is None or deepest else _known(node.items)

    def known(value: object) -> bool:
        cls = type(value)
        if cls is int and int_ok:  # the commonest values, decided inline
            if value > 0:  # type: ignore[operator]
                return positive_ok
            if value < 0:  # type: ignore[operator]
                return negative_ok
            return zero_ok
        if cls is str and str_ok:
            size = str.__len__(value)  # type: ignore[arg-type]
            return size <= max_len and (size > 0 or empty_seen)
        if value is None:
            return none_seen
        if cls not in builtins_ok:
            if types is None:
                pass
            elif (_BUILTIN_NAMES.get(cls) or type_name(value)) not in types:
                return False
        if cls is int or cls is float:
            kind = sign(value)
            return kind is None or kind in signs
        size = length(value)
        if size >= 0:
            if (size == 0 and not empty_seen) or size > max_len:
                return False
            if size == 0 or isinstance(value, (str, bytes, bytearray)):
                if size == 0 and isinstance(value, dict):
                    return in_record is not None and in_record([])
                return True
        if deepest:
            return True
        if cls is dict and is_record_dict(value):  # type: ignore[arg-type]
            return in_record is not None and in_record(dict.items(value))  # type: ignore[arg-type]
        if is_sequence(value):
            return in_sequence is not None and in_sequence(value)
        pairs = record_fields(value)
        if pairs is not None:
            return in_record is not None and in_record(pairs)
        found = members(value)
        if not found:
            return True
        return each is not None and all(each(member) for member in found)

    return known


def _known_record(node: _Node) -> Callable[[Iterable[tuple[str, object]]], bool] | None:
    """:meth:`GuardRecorder._record` changes nothing (``None``: not yet a record, it would)."""
    if not node.record:
        return None
    fields = node.fields or {}
    required = frozenset(name for name, child in fields.items() if not child.missing)
    deepest = node.depth >= MAX_DEPTH
    below = {
        name: (
            child.missing,
            None if deepest else _known(child),
            not child.missing,
            _int_signs(child),
            _str_lengths(child),
        )
        for name, child in fields.items()
    }

    def known(pairs: Iterable[tuple[str, object]]) -> bool:
        if deepest:  # only a field the tests always had, missing now, would be news
            return not required or required <= {n for n, v in pairs if v is not MISSING}
        needed = len(required)
        for name, value in pairs:
            child = below.get(name)
            if child is None:
                return False  # a new field
            missing_ok, check, is_required, ints, strs = child
            if value is MISSING:
                if not missing_ok:
                    return False
                continue
            needed -= is_required
            cls = type(value)
            if cls is int and ints is not None:  # inline, as ``check`` would
                if not ints[0 if value > 0 else 1 if value < 0 else 2]:  # type: ignore[operator]
                    return False
            elif cls is str and strs is not None:
                size = str.__len__(value)  # type: ignore[arg-type]
                if size > strs[0] or not (size or strs[1]):
                    return False
            elif check is None or not check(value):
                return False
        return needed == 0  # else a field the tests always had is missing now: news

    return known


def _known_pairs(node: _Node) -> Callable[[object, object], bool] | None:
    """Whether a neighbour pair leaves the sortedness evidence at ``node`` as it is (neither a
    first descending pair nor a new ascending one): ``None`` when no pair can change it."""
    if node.sorted or node.unsorted:
        return None
    numbers = frozenset(int(name, 16) for name in node.pairs or () if _is_fingerprint(name))

    def known(before: object, after: object) -> bool:
        if type(before) is int and type(after) is int:  # compare() and fingerprint(), inline
            if after < before:
                return False
            if not before < after:
                return True
            if before.bit_length() <= _INT_BITS and after.bit_length() <= _INT_BITS:
                return zlib.crc32(_INT_PAIR % (before, after)) in numbers
        order = compare(before, after)
        return order == 0 or (order > 0 and fingerprint_number(before, after) in numbers)

    return known


def _is_fingerprint(name: str) -> bool:
    """What :func:`~._walk.fingerprint` spells: eight lowercase hex digits."""
    return len(name) == 8 and all(c in "0123456789abcdef" for c in name)


def _int_signs(node: _Node) -> tuple[bool, bool, bool] | None:
    """For a node that takes ``int`` and is never looked into: whether a positive, a negative
    and a zero one are already known (so a sequence of ints is checked inline); else None."""
    if node.types is not None and "int" not in node.types:
        return None
    signs = node.signs
    return "positive" in signs, "negative" in signs, "zero" in signs


def _str_lengths(node: _Node) -> tuple[int, bool] | None:
    """For a node that takes ``str``: the longest known and whether empty is (so a string
    field is checked inline); else None."""
    if node.types is not None and "str" not in node.types:
        return None
    return node.max_len, node.empty


def _known_sequence(node: _Node) -> Callable[[Any], bool] | None:
    """:meth:`GuardRecorder._sequence` changes nothing, for up to :data:`FULL_ITEMS` items."""
    child = node.items
    if child is None:
        return None
    each = _known(child)
    ints = _int_signs(child)
    in_order = not child.unsorted
    ascending_known = _known_pairs(child)
    fields = child.fields if child.record else None
    by_field = tuple(
        (name, _known_pairs(field)) for name, field in (fields or {}).items() if not field.unsorted
    )
    unordered = child.unsorted and not by_field  # order can teach nothing more here

    def known(value: Any) -> bool:
        size = length(value)
        if size > FULL_ITEMS:
            return False  # sampled at random: only the walk itself knows what it reads
        exact = type(value) is list or type(value) is tuple
        if exact:
            for member in value:
                if type(member) is int and ints is not None:  # inline, as ``each`` would
                    if member > 0:
                        if ints[0]:
                            continue
                    elif member < 0:
                        if ints[1]:
                            continue
                    elif ints[2]:
                        continue
                    return False
                if not each(member):
                    return False
        else:
            for index in range(size):
                if not each(item(value, index)):
                    return False
        if size < 2 or unordered:
            return True
        for index in range(1, size):
            if exact:
                before, after = value[index - 1], value[index]
            else:
                before, after = item(value, index - 1), item(value, index)
            if ascending_known is not None:
                if not ascending_known(before, after):
                    return False  # a first descending pair, or new evidence of order
            elif in_order and descending(before, after):
                return False  # the first descending pair: no longer "sorted"
            if by_field:
                dicts = isinstance(before, dict) and isinstance(after, dict)
                for name, field_known in by_field:
                    if dicts:
                        first = _dict_get(before, name, MISSING)
                        second = _dict_get(after, name, MISSING)
                    else:
                        first, second = field_value(before, name), field_value(after, name)
                    if field_known is None:
                        kind = type(first)
                        if kind is type(second) and kind in _SAME_KIND:
                            if second < first:  # descending(), inline
                                return False  # this field was never out of order before
                        elif descending(first, second):
                            return False
                        continue
                    if not field_known(first, second):
                        return False
        return True

    return known


def known_plan(node: _Node) -> tuple[list[str], dict[str, object], Shapes] | None:
    """:func:`compile_known` of ``node`` for the commonest values (numbers, strings, ``None``,
    lists and tuples of up to four numbers or strings) as source lines over ``v`` that set
    ``ok``, the objects they name, and the :data:`~shadowguard._assumptions.Shapes` they may
    accept: run inline by the guard's generated checker, which calls the recorder only when
    ``ok`` is false. Read under the recorder's lock; ``None``: none."""
    if _reads(node) > BUDGET:
        return None
    branches = _leaf_known(node, "v")
    child = node.items
    names: dict[str, object] = {}
    members = None if child is None or node.depth >= MAX_DEPTH else _leaf_known(child, "e")
    if members:
        sequence, names = _sequence_known(node, members)
        for name in ("list", "tuple"):
            if node.types is None or name in node.types:
                branches[name] = sequence
    lines = render(branches, node.none)
    if lines is None:
        return None
    return lines, names, shapes(branches, list(members or ()), node.none)


def _leaf_known(node: _Node, x: str) -> dict[str, str | list[str]]:
    """For a node never looked into: per exact builtin type (int, float, str), the condition
    on ``x`` under which :func:`_known` says the walk would change nothing."""
    if node.fields or node.items is not None or node.record:
        return {}
    found: dict[str, str | list[str]] = {}
    signs = signs_condition(node.signs, x)
    for name in ("int", "float"):
        if (node.types is None or name in node.types) and signs:
            found[name] = signs
    if (node.types is None or "str" in node.types) and node.max_len >= 0:
        longest = node.max_len
        found["str"] = f"len({x}) <= {longest}" if node.empty else f"0 < len({x}) <= {longest}"
    return found


def _sequence_known(
    node: _Node, members: dict[str, str | list[str]]
) -> tuple[list[str], dict[str, object]]:
    """A list or tuple of up to four members: its length, each member, their order."""
    child = node.items
    assert child is not None
    limit = min(4, FULL_ITEMS, node.max_len)
    lines = ["k = len(v)", "if k == 0:", f"    ok = {node.empty}", f"elif k <= {limit}:"]
    order = "none"
    if not (child.unsorted or child.record):
        order = "sorted" if child.sorted else "evidence"
    if order != "none":
        lines.append("    p = v[0]")
    lines += ["    for e in v:", "        d = type(e)"]
    keyword = "if"
    for name, condition in members.items():
        lines += [f"        {keyword} d is {name}:", f"            if not ({condition}):"]
        lines.append("                break")
        keyword = "elif"
    lines += ["        else:", "            break"]
    names: dict[str, object] = {}
    if order == "sorted":  # the same exact kind as the one before, and not below it
        lines += ["        if d is not type(p) or e < p:", "            break"]
    elif order == "evidence":  # ascending int pairs already noted (equal ones teach nothing)
        names = {"PAIRS": frozenset(child.int_pairs or ())}
        lines += [
            "        if p is not e:",
            "            if d is not int or type(p) is not int or e < p:",
            "                break",
            "            if p < e and (p, e) not in PAIRS:",
            "                break",
        ]
    if order != "none":
        lines.append("        p = e")
    lines += ["    else:", "        ok = True"]
    return lines, names


class Recorder:
    """Everything recorded while it is active: one :class:`GuardRecorder` per guard name.

    ``thin`` (production recording) lowers the share of calls walked once a guard's facts stop
    changing; a test run records every call.
    """

    def __init__(self, *, thin: bool = False) -> None:
        self.thin = thin
        self._guards: dict[str, GuardRecorder] = {}
        self._lock = threading.Lock()

    def guard(self, name: str) -> GuardRecorder:
        """The recorder of guard ``name`` (created on first use)."""
        found = self._guards.get(name)
        if found is None:
            with self._lock:
                found = self._guards.setdefault(name, GuardRecorder(name, self.thin))
        return found

    def envelope(self) -> Envelope:
        """A snapshot of everything recorded so far."""
        with self._lock:
            guards = dict(self._guards)
        return Envelope({name: guards[name].envelope() for name in sorted(guards)})

    def reset_locks(self) -> None:
        """After ``fork``: a lock another thread held is unusable in the child; start fresh."""
        self._lock = threading.Lock()
        for guard in self._guards.values():
            guard.lock = threading.Lock()


# -- reading one argument of a call ----------------------------------------------------------

Reader = Callable[[Call], Any]
"""The value of one parameter in a call (its default, or ``MISSING``, when not passed)."""


def argument_reader(binder: Binder | None, name: str) -> Reader:
    """``call.argument(name)`` with the parameter's slot looked up once, not on every call."""
    slot = None if binder is None or name in ("return", "result") else binder.slot(name)
    if slot is None or slot[1] not in _BY_POSITION:  # (``result`` reads the return value)
        return lambda call: call.argument(name)
    position, kind, default = slot
    by_keyword = kind is inspect.Parameter.POSITIONAL_OR_KEYWORD

    def read(call: Call) -> Any:
        args = call.args
        if position < len(args):
            return args[position]
        if by_keyword:
            return call.kwargs.get(name, default)
        return default

    return read


_BY_POSITION = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


# -- the assumptions that feed a recorder; they never report anything -------------------------


class _Recording(Assumption):
    kind = "envelope"

    def __init__(self, recorder: GuardRecorder, what: str) -> None:
        super().__init__(f"envelope(record {what})", "recorded")
        self.recorder = recorder


class _RecordValue(_Recording):
    """Walks the values at one root (a parameter, or ``return``); what the recorder already
    knows about them is decided inline in the guard's checker (a test run's recorder only),
    and the guard plans again once the recorder learns more."""

    def __init__(
        self, recorder: GuardRecorder, what: str, root: str, replan: Callable[[], None] | None
    ) -> None:
        super().__init__(recorder, what)
        self.root = root
        self.replan = replan
        self.planned: int | None = None
        """The recorder's version the inline knowledge was read at (``None``: none inline)."""
        self.shapes: Shapes | None = None

    def accepts(self) -> tuple[list[str], dict[str, object]] | None:
        """:func:`known_plan` of the root now, noting the recorder's version (a thinned
        recorder counts what it skips, and a plain walk skips nothing: none inline)."""
        recorder = self.recorder
        self.shapes = None
        if recorder.thin or not recorder.skip or self.replan is None:
            return None
        with recorder.lock:
            self.planned = recorder.changes
            node = recorder.roots.get(self.root)
            found = None if node is None else known_plan(node)
        if found is None:
            return None
        self.shapes = found[2]
        return found[0], found[1]

    def accepted_types(self) -> Shapes | None:
        """The :data:`~shadowguard._assumptions.Shapes` of what the last :meth:`accepts` gave."""
        return self.shapes

    def _learned(self) -> None:
        """After a value the inline knowledge did not decide: plan again if the recorder has
        learned since that knowledge was read (once: the next plan makes new assumptions)."""
        if self.planned is not None and self.planned != self.recorder.changes:
            self.planned = None
            if self.replan is not None:
                self.replan()


class _RecordArgument(_RecordValue):
    """Walks one parameter's value (sampled calls only, like every data check)."""

    when: When = "before"

    def __init__(
        self,
        recorder: GuardRecorder,
        name: str,
        binder: Binder | None = None,
        replan: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(recorder, f"argument {name}", name, replan)
        self.read = argument_reader(binder, name)

    def check(self, call: Call) -> str | None:
        return self.record(self.read(call))

    def record(self, value: object) -> str | None:
        """Learn from one value of the parameter (``MISSING``: not passed, nothing)."""
        recorder = self.recorder
        if value is not MISSING and recorder.admit():
            found = recorder.known.get(self.root)  # see()'s first step, inline: one call fewer
            if found is not None and found[1](value):
                recorder.stale += 1
            else:
                recorder.learn(self.root, value, found)
            self._learned()
        return None

    def argument_check(self) -> tuple[str, Callable[[object], str | None]] | None:
        """Recorded from inside the guard's generated checker (no ``Call``)."""
        return self.root, self.record


class _RecordResult(_RecordValue):
    """Walks the return value."""

    when: When = "return"

    def __init__(self, recorder: GuardRecorder, replan: Callable[[], None] | None = None) -> None:
        super().__init__(recorder, "return", "return", replan)

    def check(self, call: Call) -> str | None:
        return self.record(call.result)

    def record(self, value: object) -> str | None:
        """Learn from one return value."""
        if self.recorder.admit():
            self.recorder.see("return", value)
            self._learned()
        return None

    def result_check(self) -> Callable[[object], str | None] | None:
        return self.record


class _RecordRaised(_Recording):
    """Notes the exception type of every call that raised."""

    data = False
    when: When = "exception"

    def __init__(self, recorder: GuardRecorder) -> None:
        super().__init__(recorder, "exceptions")

    def check(self, call: Call) -> str | None:
        if call.exception is not None:
            self.recorder.raised(call.exception)
        return None


class _RecordFlight(_Recording):
    """Notes how many calls were in flight at once (every call)."""

    data = False
    counts_in_flight = True
    when: When = "before"

    def __init__(self, recorder: GuardRecorder) -> None:
        super().__init__(recorder, "in_flight")

    def check(self, call: Call) -> str | None:
        return self.record(call.in_flight)

    def record(self, in_flight: int) -> str | None:
        """Learn how many calls were in flight at once."""
        self.recorder.flight(in_flight)
        return None

    def flight_check(self) -> Callable[[int], str | None] | None:
        return self.record

    def flight_quiet(self) -> int:
        return self.recorder.in_flight


def recorded_parameters(names: Sequence[str]) -> tuple[str, ...]:
    """The parameters worth recording: all but a leading ``self``/``cls``."""
    if names and names[0] in ("self", "cls"):
        return tuple(names[1:])
    return tuple(names)


def recording_assumptions(
    recorder: GuardRecorder,
    parameters: Sequence[str],
    kind: str,
    binder: Binder | None = None,
    replan: Callable[[], None] | None = None,
) -> list[Assumption]:
    """The assumptions that feed ``recorder`` from one guard's calls (``binder``: the guard's,
    to read arguments straight from their slots; ``replan``: the guard's, called when what is
    known inline in its checker is out of date)."""
    found: list[Assumption] = [
        _RecordArgument(recorder, name, binder, replan) for name in recorded_parameters(parameters)
    ]
    if kind not in ("generator", "asyncgen"):
        found.append(_RecordResult(recorder, replan))
    found += [_RecordRaised(recorder), _RecordFlight(recorder)]
    return found
