"""Watching: each checked call compared with the tested envelope; departures become violations.

A departure is something the tests never exercised: a type, ``None``, a missing field, an empty
value, a number sign or an exception type; a length more than ten times the longest tested; an
unsorted sequence where the tests only ever passed sorted ones; more calls in flight than the
tests ever had. Values that merely differ (other ids, other strings of tested lengths) are not.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from shadowguard._assumptions import Assumption, Finding, Shapes, When
from shadowguard._call import Binder, Call
from shadowguard._paths import MISSING
from shadowguard._shapes import type_name
from shadowguard.envelope._facts import ANY, SIGNS, Facts, GuardEnvelope, parent_field, root_of
from shadowguard.envelope._inline import render, shapes, signs_condition
from shadowguard.envelope._record import _BUILTIN_NAMES, argument_reader, recorded_parameters
from shadowguard.envelope._walk import _SPOT_FULL as _SPOT_WHOLE
from shadowguard.envelope._walk import (
    MAX_FIELDS,
    compare,
    declared_fields,
    descending,
    field_value,
    is_record_dict,
    is_sequence,
    item,
    length,
    members,
    sign,
    spot_indices,
)

_dict_get: Any = dict.get  # the builtin lookup: a subclass's get() is never run
_builtin_name = _BUILTIN_NAMES.get  # bound once: a call on an imported name binds it per call

__all__ = [
    "LENGTH_FACTOR",
    "Expectation",
    "NeverTested",
    "compile_check",
    "compile_roots",
    "departures",
    "seen_text",
    "watching_assumptions",
]

LENGTH_FACTOR = 10
"""A length is a departure above this many times the longest the tests passed."""
BUDGET = 512
"""Values read per parameter per call, at most."""

ValueCheck = Callable[[object], "Finding | None"]
"""A compiled comparison of one value with one expectation: the first departure, else None."""


def seen_text(facts: Facts) -> str:
    """``tests only saw: str, None`` — the types, None and missing the tests exercised."""
    seen = [] if facts.types is ANY else sorted(facts.types)
    if facts.none:
        seen.append("None")
    if facts.missing:
        seen.append("missing")
    return "tests only saw: " + (", ".join(seen) if seen else "nothing")


def length_text(facts: Facts) -> str:
    low = 0 if facts.empty else 1
    return f"tests only saw: len {low}..{facts.max_len}"


def signs_text(facts: Facts) -> str:
    return "tests only saw: " + ", ".join(s for s in SIGNS if s in facts.signs)


SORTED_TEXT = "tests only saw: sorted"


class Expectation:
    """The facts at one path, compiled for fast comparison, with the paths below it."""

    __slots__ = (
        "compiled",
        "facts",
        "fields",
        "items",
        "ordered_fields",
        "path",
        "sorted",
        "text",
        "types",
    )

    def __init__(self, path: str, facts: Facts) -> None:
        self.path = path
        self.facts = facts
        self.text = f"envelope({path})"
        self.types: frozenset[str] | None = None if facts.types is ANY else facts.types
        self.sorted = facts.always_sorted
        self.fields: dict[str, Expectation] = {}
        self.items: Expectation | None = None
        self.ordered_fields: tuple[tuple[str, Expectation], ...] = ()
        """Fields the tests always passed in order along this sequence's items."""
        self.compiled: tuple[ValueCheck | None] | None = None
        """:func:`compile_check` of this node, once asked for (a 1-tuple: ``None`` is an answer)."""

    def finding(self, observed: str, expected: str) -> Finding:
        return Finding(observed, assumption=self.text, expected=expected, path=self.path)


def compile_roots(envelope: GuardEnvelope) -> dict[str, Expectation]:
    """The envelope's flat paths as one tree of :class:`Expectation` per parameter."""
    nodes: dict[str, Expectation] = {}
    roots: dict[str, Expectation] = {}
    for path in sorted(envelope.paths):
        node = nodes[path] = Expectation(path, envelope.paths[path])
        if path.endswith("[*]"):
            parent = nodes.get(path[:-3])
            if parent is not None:
                parent.items = node
            continue
        above = parent_field(path)
        if above is not None:
            parent = nodes.get(above)
            if parent is not None:
                parent.fields[path[len(above) + 1 :]] = node
            continue
        if path == root_of(path):
            roots[path] = node
    for node in nodes.values():
        node.ordered_fields = tuple((n, c) for n, c in node.fields.items() if c.sorted)
    return roots


class _Walk:
    """One comparison of a value against an expectation tree; stops at the first departure."""

    __slots__ = ("budget",)

    def __init__(self) -> None:
        self.budget = BUDGET

    def value(self, exp: Expectation, value: object) -> Finding | None:
        if self.budget <= 0:
            return None
        self.budget -= 1
        facts = exp.facts
        types = exp.types
        if value is None:
            if facts.none or types is None:
                return None
            return exp.finding("None", seen_text(facts))
        if types is None:
            return None  # more types than kept: anything goes
        cls = type(value)
        name = _builtin_name(cls) or type_name(value)
        if name not in types:
            return exp.finding(name, seen_text(facts))
        if cls is int or cls is float:
            kind = sign(value)
            if kind is not None and facts.signs and kind not in facts.signs:
                return exp.finding(kind, signs_text(facts))
            return None
        size = length(value)
        if size >= 0 and facts.max_len >= 0:
            if size == 0 and not facts.empty:
                return exp.finding("empty", length_text(facts))
            if size > LENGTH_FACTOR * facts.max_len:
                return exp.finding(f"len={size}", length_text(facts))
        if size == 0 or isinstance(value, (str, bytes, bytearray)):
            return None
        if exp.fields:
            found = self.fields(exp, value)
            if found is not None:
                return found
        if exp.items is not None:
            if is_sequence(value):
                return self.sequence(exp.items, value)  # type: ignore[arg-type]
            if isinstance(value, dict) and exp.fields and is_record_dict(value):
                return None  # a record: its fields were compared above
            for member in members(value) or ():
                found = self.value(exp.items, member)
                if found is not None:
                    return found
        return None

    def fields(self, exp: Expectation, value: object) -> Finding | None:
        is_dict = isinstance(value, dict)
        if is_dict:
            if not is_record_dict(value):  # type: ignore[arg-type]
                return None  # read as a collection, as when recording
        elif not record_fields_known(value):
            return None
        read = _dict_get if is_dict else _field_or_missing
        for name, child in exp.fields.items():
            found_value = read(value, name, MISSING)
            if found_value is MISSING:
                if not child.facts.missing and child.types is not None:
                    return child.finding("missing", seen_text(child.facts))
                continue
            found = self.value(child, found_value)
            if found is not None:
                return found
        return None

    def sequence(self, exp: Expectation, value: Sequence[Any]) -> Finding | None:
        indices = spot_indices(value)
        for index in indices:
            found = self.value(exp, item(value, index))
            if found is not None:
                return found
        if len(indices) < 2:
            return None
        ordered = exp.ordered_fields
        if not exp.sorted and not ordered:
            return None
        for index in indices:
            if index == 0 or self.budget <= 0:
                continue
            self.budget -= 1 + len(ordered)
            before, after = item(value, index - 1), item(value, index)
            if exp.sorted and compare(before, after) < 0:
                return exp.finding(f"items[{index}] < items[{index - 1}]", SORTED_TEXT)
            for name, child in ordered:
                if compare(field_value(before, name), field_value(after, name)) < 0:
                    return child.finding(f"items[{index}] < items[{index - 1}]", SORTED_TEXT)
        return None


def _field_or_missing(value: object, name: str, default: object) -> object:
    return field_value(value, name)


def record_fields_known(value: object) -> bool:
    """True for the objects whose fields :func:`field_value` reads (declared or namespace)."""
    return type(value) is types.SimpleNamespace or declared_fields(type(value)) is not None


# -- compiled comparisons: the walk above, specialised per expectation at load time -------------


def reads(exp: Expectation) -> int:
    """The most budget :meth:`_Walk.value` can spend on ``exp`` (spot samples read at most four
    items, members and fields at most 32; order costs one per pair plus one per ordered field)."""
    total = 1 + sum(reads(child) for child in exp.fields.values())
    if exp.items is not None:
        below = reads(exp.items)
        in_order = 4 * (1 + len(exp.items.ordered_fields))
        total += max(4 * below + in_order, MAX_FIELDS * below)
    return total


def compile_check(exp: Expectation) -> ValueCheck | None:
    """``_Walk().value(exp, ·)`` as nested closures with every fact looked up once, or ``None``
    when the walk's budget could run out on this tree (then only the walk itself is exact).

    Below the budget the walk never stops early, so the closures read the same values in the
    same order, through the same helpers, and return the same finding (same random draws too).
    """
    if exp.compiled is None:
        exp.compiled = (_compile(exp) if reads(exp) <= BUDGET else None,)
    return exp.compiled[0]


def _inside(value: object) -> Finding | None:
    return None


def _int_signs(exp: Expectation) -> tuple[bool, bool, bool] | None:
    """For a leaf expectation that takes ``int``: whether a positive, a negative and a zero one
    are inside (so that a sequence of ints is compared inline); else ``None``."""
    if exp.fields or exp.items is not None:
        return None
    if exp.types is None:
        return True, True, True
    if "int" not in exp.types:
        return None
    signs = exp.facts.signs
    if not signs or signs.issuperset(SIGNS):
        return True, True, True
    return "positive" in signs, "negative" in signs, "zero" in signs


def _str_lengths(exp: Expectation) -> tuple[int, bool, int] | None:
    """For a leaf expectation that takes ``str``: the longest tested, whether empty was, and the
    longest inside (so a string field is compared inline); else ``None``."""
    if exp.fields or exp.items is not None or exp.types is None or "str" not in exp.types:
        return None
    return exp.facts.max_len, exp.facts.empty, LENGTH_FACTOR * exp.facts.max_len


def _compile(exp: Expectation) -> ValueCheck:
    facts = exp.facts
    names_ok = exp.types
    if names_ok is None:
        return _inside  # more types than kept: anything goes, None too
    none_ok = facts.none
    builtins_ok = frozenset(cls for cls, name in _BUILTIN_NAMES.items() if name in names_ok)
    signs = facts.signs
    any_sign = not signs or signs.issuperset(SIGNS)
    max_len = facts.max_len
    empty_ok = facts.empty
    longest = LENGTH_FACTOR * max_len
    inner = _compile_inner(exp)
    int_ok = int in builtins_ok
    positive_ok = any_sign or "positive" in signs
    negative_ok = any_sign or "negative" in signs
    zero_ok = any_sign or "zero" in signs
    str_ok = str in builtins_ok

    def check(value: object) -> Finding | None:
        cls = type(value)
        if cls is int and int_ok:  # the commonest values, decided inline
            if value > 0:  # type: ignore[operator]
                if positive_ok:
                    return None
            elif value < 0:  # type: ignore[operator]
                if negative_ok:
                    return None
            elif zero_ok:
                return None
        elif cls is str and str_ok:
            size = str.__len__(value)  # type: ignore[arg-type]
            if max_len < 0 or ((size or empty_ok) and size <= longest):
                return None
        if value is None:
            return None if none_ok else exp.finding("None", seen_text(facts))
        if cls not in builtins_ok:
            name = _builtin_name(cls) or type_name(value)
            if name not in names_ok:
                return exp.finding(name, seen_text(facts))
        if cls is int or cls is float:
            if not any_sign:
                kind = sign(value)
                if kind is not None and kind not in signs:
                    return exp.finding(kind, signs_text(facts))
            return None
        size = length(value)
        if size >= 0 and max_len >= 0:
            if size == 0 and not empty_ok:
                return exp.finding("empty", length_text(facts))
            if size > longest:
                return exp.finding(f"len={size}", length_text(facts))
        if inner is None or size == 0 or isinstance(value, (str, bytes, bytearray)):
            return None
        return inner(value)

    return check


def _compile_inner(exp: Expectation) -> ValueCheck | None:
    """What :meth:`_Walk.value` does below a non-empty container: fields, then items."""
    fields = tuple(
        (
            name,
            child,
            _compile(child),
            child.facts.missing or child.types is None,
            _int_signs(child),
            _str_lengths(child),
        )
        for name, child in exp.fields.items()
    )
    items = exp.items
    if not fields and items is None:
        return None
    each = None if items is None else _compile(items)
    in_sequence = None if items is None or each is None else _compile_sequence(items, each)

    def inner(value: Any) -> Finding | None:
        if fields:
            is_dict = isinstance(value, dict)
            if (is_dict and is_record_dict(value)) or (not is_dict and record_fields_known(value)):
                read = _dict_get if is_dict else _field_or_missing
                for name, child, check, missing_ok, ints, strs in fields:
                    found_value = read(value, name, MISSING)
                    if found_value is MISSING:
                        if not missing_ok:
                            return child.finding("missing", seen_text(child.facts))
                        continue
                    cls = type(found_value)
                    if cls is int and ints is not None:  # inline, as ``check`` would
                        if ints[0 if found_value > 0 else 1 if found_value < 0 else 2]:  # type: ignore[operator]
                            continue
                    elif cls is str and strs is not None:
                        size = str.__len__(found_value)  # type: ignore[arg-type]
                        if strs[0] < 0 or ((size or strs[1]) and size <= strs[2]):
                            continue
                    found = check(found_value)
                    if found is not None:
                        return found
        if in_sequence is None or each is None:
            return None
        if is_sequence(value):
            return in_sequence(value)
        if isinstance(value, dict) and fields and is_record_dict(value):
            return None  # a record: its fields were compared above
        for member in members(value) or ():
            found = each(member)
            if found is not None:
                return found
        return None

    return inner


def _compile_sequence(exp: Expectation, each: ValueCheck) -> ValueCheck:
    """:meth:`_Walk.sequence`: the spot-sampled items (``each``), then their order.

    An exact ``list`` or ``tuple`` of up to four items (read whole, no random draw) is read
    by plain iteration, which runs no user code on those builtin types.
    """
    ordered = exp.ordered_fields
    in_order = exp.sorted
    any_order = in_order or bool(ordered)
    ints = _int_signs(exp)
    positive_ok, negative_ok, zero_ok = ints or (False, False, False)

    def check(value: Any) -> Finding | None:
        cls = type(value)
        if (cls is list or cls is tuple) and len(value) <= _SPOT_WHOLE:
            for member in value:
                if ints is not None and type(member) is int:  # inline, as ``each`` would
                    if member > 0:
                        if positive_ok:
                            continue
                    elif member < 0:
                        if negative_ok:
                            continue
                    elif zero_ok:
                        continue
                found = each(member)
                if found is not None:
                    return found
            if not any_order or len(value) < 2:
                return None
            return in_sequence_order(value, range(len(value)))
        indices = spot_indices(value)
        for index in indices:
            found = each(item(value, index))
            if found is not None:
                return found
        if len(indices) < 2 or not any_order:
            return None
        return in_sequence_order(value, indices)

    def in_sequence_order(value: Any, indices: range | list[int]) -> Finding | None:
        exact = type(value) is list or type(value) is tuple
        for index in indices:
            if index == 0:
                continue
            if exact:
                before, after = value[index - 1], value[index]
            else:
                before, after = item(value, index - 1), item(value, index)
            if in_order and descending(before, after):
                return exp.finding(f"items[{index}] < items[{index - 1}]", SORTED_TEXT)
            if ordered:
                dicts = type(before) is dict and type(after) is dict
                for name, child in ordered:
                    if dicts:
                        first, second = (
                            _dict_get(before, name, MISSING),
                            _dict_get(after, name, MISSING),
                        )
                    else:
                        first, second = field_value(before, name), field_value(after, name)
                    if descending(first, second):
                        return child.finding(f"items[{index}] < items[{index - 1}]", SORTED_TEXT)
        return None

    return check


# -- inline acceptance: the commonest values decided inside the guard's generated checker --------


def accept_plan(exp: Expectation) -> tuple[list[str], Shapes | None] | None:
    """Source lines over the value ``v`` that set ``ok`` true only when ``compile_check(exp)``
    would find nothing, for the commonest values (numbers, strings, ``None``, lists and tuples
    of up to four of them); ``ok`` false: the compiled check decides. ``None``: none inline.
    With them, the :data:`~shadowguard._assumptions.Shapes` they may accept (``None``: any
    value, when the tests saw any type)."""
    if compile_check(exp) is None:
        return None
    if exp.types is None:
        return ["ok = True"], None
    facts = exp.facts
    branches: dict[str, str | list[str]] = dict(_leaf_conditions(exp, "v"))
    if exp.items is not None:
        items = exp.items
        members = _leaf_conditions(items, "e") if not (items.fields or items.items) else None
    else:
        members = {}
    for name in ("list", "tuple"):
        if name in exp.types and members is not None and not exp.fields:
            branches[name] = _sequence_lines(exp, members)
    lines = render(branches, facts.none)
    if lines is None:
        return None
    # Members are only looked at when something is known of them (else the length decides).
    kinds = None if exp.items is None or members is None else list(members)
    return lines, shapes(branches, kinds, facts.none)


def _leaf_conditions(exp: Expectation, x: str) -> dict[str, str]:
    """For a leaf expectation: per builtin type it takes (int, float, str), the condition on
    the value ``x`` of that exact type under which the compiled check finds nothing."""
    if exp.fields or exp.items is not None:
        return {}
    if exp.types is None:
        return {"int": "True", "float": "True", "str": "True"}
    found: dict[str, str] = {}
    signs = exp.facts.signs
    sign_ok = "True" if not signs or signs.issuperset(SIGNS) else signs_condition(signs, x)
    for name in ("int", "float"):
        if name in exp.types and sign_ok:  # (no sign at all is inside: none inline)
            found[name] = sign_ok
    if "str" in exp.types:
        max_len, empty_ok = exp.facts.max_len, exp.facts.empty
        longest = LENGTH_FACTOR * max_len
        if max_len < 0:
            found["str"] = "True"
        else:
            found["str"] = f"len({x}) <= {longest}" if empty_ok else f"0 < len({x}) <= {longest}"
    return found


def _sequence_lines(exp: Expectation, members: dict[str, str]) -> list[str]:
    """A list or tuple of up to four members: its length, each member, their order."""
    facts = exp.facts
    if facts.max_len < 0:
        size_ok = f"k <= {_SPOT_WHOLE}"
    else:
        size_ok = f"k <= {min(_SPOT_WHOLE, LENGTH_FACTOR * facts.max_len)}"
    lines = ["k = len(v)", "if k == 0:"]
    lines.append(f"    ok = {facts.empty or facts.max_len < 0}")
    lines.append(f"elif {size_ok}:")
    if exp.items is None:  # nothing known below: the length decides
        lines.append("    ok = True")
        return lines
    in_order = exp.items.sorted
    if len(members) == 1 and not in_order:  # one kind of member: one test per member
        ((name, condition),) = members.items()
        test = "" if condition == "True" else f" or not ({condition})"
        lines += ["    for e in v:", f"        if type(e) is not {name}{test}:"]
        return [*lines, "            break", "    else:", "        ok = True"]
    lines += ["    p = v[0]"] if in_order else []
    lines += ["    for e in v:", "        d = type(e)"]
    keyword = "if"
    for name, condition in members.items():
        lines.append(f"        {keyword} d is {name}:")
        lines.append(f"            if not ({condition}):")
        lines.append("                break")
        keyword = "elif"
    lines += ["        else:", "            break"] if members else ["        break"]
    if in_order:  # the same exact kind as the one before, and not below it
        lines += ["        if d is not type(p) or e < p:", "            break", "        p = e"]
    lines += ["    else:", "        ok = True"]
    return lines


# -- the assumptions a watched guard gets ----------------------------------------------------


class _Watching(Assumption):
    kind = "envelope"


def _result(call: Call) -> Any:
    return call.result


_UNPLANNED = object()


class _WatchValue(_Watching):
    """A parameter's value (or the return value) stays inside what the tests exercised."""

    def __init__(self, root: str, exp: Expectation, binder: Binder | None = None) -> None:
        super().__init__(f"envelope({root})", seen_text(exp.facts), path=root)
        self.root = root
        self.exp = exp
        self.when: When = "return" if root == "return" else "before"
        self.compiled = compile_check(exp)
        self.plan: object = _UNPLANNED
        self.read = _result if root == "return" else argument_reader(binder, root)

    def check(self, call: Call) -> str | None:
        return self.inspect(self.read(call))

    def inspect(self, value: object) -> Finding | None:
        """The departure of one value of the parameter (``MISSING``: not passed, none)."""
        if value is MISSING:
            return None
        compiled = self.compiled
        if compiled is not None:
            return compiled(value)
        return _Walk().value(self.exp, value)

    def argument_check(self) -> tuple[str, Callable[[object], str | None]] | None:
        """Parameters are compared inside the guard's generated checker (no ``Call``)."""
        return None if self.root == "return" else (self.root, self.inspect)

    def result_check(self) -> Callable[[object], str | None] | None:
        """The return value likewise, in the guard's generated result checker."""
        return self.inspect if self.root == "return" else None

    def accepts(self) -> tuple[list[str], dict[str, object]] | None:
        found = self._plan()
        return None if found is None else (found[0], {})

    def accepted_types(self) -> Shapes | None:
        found = self._plan()
        return None if found is None else found[1]

    def _plan(self) -> tuple[list[str], Shapes | None] | None:
        """:func:`accept_plan` of the expectation, made once (it never changes)."""
        if self.plan is _UNPLANNED:
            self.plan = accept_plan(self.exp)
        return self.plan  # type: ignore[return-value]


class _WatchRaised(_Watching):
    """Only exception types the tests saw raised."""

    data = False
    when: When = "exception"

    def __init__(self, exceptions: frozenset[str]) -> None:
        expected = (
            "tests only saw: " + ", ".join(sorted(exceptions))
            if exceptions
            else "tests only saw: no exception"
        )
        super().__init__("envelope(raises)", expected)
        self.exceptions = exceptions

    def check(self, call: Call) -> str | None:
        exc = call.exception
        if exc is None:
            return None
        name = type_name(exc)
        return None if name in self.exceptions else name


class _WatchFlight(_Watching):
    """No more calls in flight at once than the tests ever had."""

    data = False
    counts_in_flight = True
    when: When = "before"

    def __init__(self, peak: int) -> None:
        super().__init__("envelope(in_flight)", f"tests only saw: <= {peak} in flight")
        self.peak = peak

    def check(self, call: Call) -> str | None:
        return self.over(call.in_flight)

    def over(self, in_flight: int) -> str | None:
        """The observation for ``in_flight`` calls at once."""
        return f"{in_flight} in flight" if in_flight > self.peak else None

    def flight_check(self) -> Callable[[int], str | None] | None:
        return self.over

    def flight_quiet(self) -> int:
        return self.peak


class NeverTested(_Watching):
    """The guard is absent from the envelope: reported once, on its first call."""

    data = False
    counts_in_flight = True  # not to count: to be asked at the start of a call, without a Call
    when: When = "before"

    def __init__(self, once: threading.Lock) -> None:
        super().__init__("envelope", "exercised by tests")
        self.once = once

    def check(self, call: Call) -> str | None:
        return self.first(call.in_flight)

    def first(self, in_flight: int) -> str | None:
        """ "never tested" on the guard's first call in the process (any number in flight)."""
        return "never tested" if self.once.acquire(blocking=False) else None

    def flight_check(self) -> Callable[[int], str | None] | None:
        return self.first

    def flight_quiet(self) -> int:
        return sys.maxsize if self.once.locked() else 0


def watching_assumptions(
    envelope: GuardEnvelope,
    roots: dict[str, Expectation],
    parameters: Sequence[str],
    kind: str,
    binder: Binder | None = None,
) -> list[Assumption]:
    """The assumptions that compare one guard's calls with its tested envelope (``binder``: the
    guard's, to read arguments straight from their slots)."""
    found: list[Assumption] = []
    for name in recorded_parameters(parameters):
        exp = roots.get(name)
        if exp is not None:
            found.append(_WatchValue(name, exp, binder))
    if kind not in ("generator", "asyncgen") and "return" in roots:
        found.append(_WatchValue("return", roots["return"]))
    if envelope.exceptions is not ANY:
        found.append(_WatchRaised(envelope.exceptions))
    if envelope.in_flight > 0:
        found.append(_WatchFlight(envelope.in_flight))
    return found


# -- offline: what one envelope exercises that another never did (``envelope diff``) ------------


def departures(tested: GuardEnvelope, other: GuardEnvelope) -> Iterator[tuple[str, str, str]]:
    """``(path, observed, expected)`` for each fact of ``other`` outside ``tested``."""
    for path, facts in other.paths.items():
        known = tested.paths.get(path)
        if known is None:
            continue  # a path the tests never reached: nothing to compare with
        yield from _fact_departures(path, known, facts)
    if tested.exceptions is not ANY:
        extra = ANY if other.exceptions is ANY else other.exceptions - tested.exceptions
        if extra:
            expected = (
                "tests only saw: " + ", ".join(sorted(tested.exceptions))
                if tested.exceptions
                else "tests only saw: no exception"
            )
            yield ("raises", ", ".join(sorted(extra)), expected)
    if tested.in_flight and other.in_flight > tested.in_flight:
        yield (
            "in_flight",
            f"{other.in_flight} in flight",
            f"tests only saw: <= {tested.in_flight} in flight",
        )


def _fact_departures(path: str, known: Facts, seen: Facts) -> Iterator[tuple[str, str, str]]:
    if known.types is not ANY:
        new_types = ANY if seen.types is ANY else seen.types - known.types
        if new_types:
            yield (path, ", ".join(sorted(new_types)), seen_text(known))
        if seen.none and not known.none:
            yield (path, "None", seen_text(known))
        if seen.missing and not known.missing:
            yield (path, "missing", seen_text(known))
    if known.max_len >= 0:
        if seen.empty and not known.empty:
            yield (path, "empty", length_text(known))
        if seen.max_len > LENGTH_FACTOR * known.max_len:
            yield (path, f"len={seen.max_len}", length_text(known))
    if known.signs:
        new_signs = [s for s in SIGNS if s in seen.signs and s not in known.signs]
        if new_signs:
            yield (path, ", ".join(new_signs), signs_text(known))
    if known.always_sorted and seen.unsorted:
        yield (path, "unsorted", SORTED_TEXT)
