"""shadowguard: write down the assumptions hidden in a test suite, watch production break them.

Put :func:`guarded` on a function; in production a broken assumption becomes an OpenTelemetry
span event, a metric and a structured log while the call goes on untouched (observe mode), or
raises :class:`AssumptionViolation` (enforce mode).
"""

import shadowguard.envelope  # noqa: F401  (registers the tested envelope with every guard)
from shadowguard import _config, assume
from shadowguard._config import Mode, configure
from shadowguard._guard import guarded
from shadowguard._violation import AssumptionViolation, Violation

__all__ = [
    "AssumptionViolation",
    "Mode",
    "Violation",
    "__version__",
    "assume",
    "configure",
    "guarded",
]

__version__ = "0.1.0"

_config.load_env()
