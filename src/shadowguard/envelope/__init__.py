"""The tested envelope: what the tests actually exercised, recorded, and watched in production.

A test suite fixes a world nobody wrote down: ``last_login`` is always a string or ``None``,
lists arrive sorted, one request at a time. ``pytest --shadowguard-record=envelope.json``
records that world for every guard; ``SHADOWGUARD_ENVELOPE=envelope.json`` in production
reports each call that steps outside it as an ``envelope`` violation, e.g. observed ``missing``,
expected ``tests only saw: str, None``.

- :mod:`._facts`: the model (facts per path, per guard) and the merge, a join.
- :mod:`._walk`: how values are looked into, without running user code.
- :mod:`._record`: recording; :mod:`._compare`: watching and offline diffs.
- :mod:`._format`: the JSON file; :mod:`._wiring`: the provider every guard asks.
"""

from __future__ import annotations

from shadowguard._guard import register_provider
from shadowguard.envelope._compare import LENGTH_FACTOR, departures
from shadowguard.envelope._facts import SORTED_EVIDENCE, Envelope, Facts, GuardEnvelope, merge
from shadowguard.envelope._format import (
    VERSION,
    EnvelopeError,
    dumps,
    load,
    loads,
    merge_into,
    save,
)
from shadowguard.envelope._record import Recorder
from shadowguard.envelope._wiring import (
    process_recorder,
    provide,
    start_recording,
    stop_recording,
    write_recorded,
)

__all__ = [
    "LENGTH_FACTOR",
    "SORTED_EVIDENCE",
    "VERSION",
    "Envelope",
    "EnvelopeError",
    "Facts",
    "GuardEnvelope",
    "Recorder",
    "departures",
    "dumps",
    "load",
    "loads",
    "merge",
    "merge_into",
    "process_recorder",
    "save",
    "start_recording",
    "stop_recording",
    "write_recorded",
]

register_provider(provide)
