"""O6, no global mutation: importing shadowguard, configuring it (from the environment and from
code, with providers of its own) and reporting violations, in a fresh interpreter, leaves every
piece of process-global state an application owns as it was.

Each check runs in a new subprocess, so nothing earlier in the test session can mask a change.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import HERE, clean_env

PROBE = r"""
import asyncio, atexit, builtins, faulthandler, gc, json, locale, logging, os, random, signal
import socket, sys, threading, warnings

def state():
    import structlog, typeguard
    from opentelemetry import metrics, propagate, trace
    from opentelemetry._logs import get_logger_provider
    return {
        "tracer_provider": repr(trace.get_tracer_provider()),
        "meter_provider": repr(metrics.get_meter_provider()),
        "logger_provider": repr(get_logger_provider()),
        "propagator": repr(propagate.get_global_textmap()),
        "root_handlers": repr(logging.getLogger().handlers),
        "root_level": logging.getLogger().level,
        "logging_disabled": logging.root.manager.disable,
        "structlog_config": repr(structlog.get_config()),
        "structlog_configured": structlog.is_configured(),
        "typeguard_config": repr(vars(typeguard.config)),
        "warning_filters": repr(warnings.filters),
        "showwarning": repr(warnings.showwarning),
        "profile": repr(sys.getprofile()),
        "trace": repr(sys.gettrace()),
        "thread_profile": repr(getattr(threading, "_profile_hook", None)),
        "thread_trace": repr(getattr(threading, "_trace_hook", None)),
        "monitoring": [
            sys.monitoring.get_tool(i) for i in range(6)
        ] if hasattr(sys, "monitoring") else None,
        "random": repr(random.getstate()),
        "excepthook": repr(sys.excepthook),
        "threading_excepthook": repr(threading.excepthook),
        "unraisablehook": repr(sys.unraisablehook),
        "signals": {s.name: repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM,
                    signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1)},
        "recursion_limit": sys.getrecursionlimit(),
        "switch_interval": sys.getswitchinterval(),
        "gc": [gc.isenabled(), gc.get_threshold()],
        "meta_path": repr(sys.meta_path),
        "path_hooks": repr(sys.path_hooks),
        "builtins": sorted(dir(builtins)),
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "socket_timeout": socket.getdefaulttimeout(),
        "locale": locale.setlocale(locale.LC_ALL),
        "faulthandler": faulthandler.is_enabled(),
        "stdio": [id(sys.stdin), id(sys.stdout), id(sys.stderr)],
        "loop_policy": type(asyncio.get_event_loop_policy()).__name__,
        "threads": sorted(t.name for t in threading.enumerate()),
        "sdk_imported": [m for m in ("opentelemetry.sdk", "opentelemetry.sdk.trace")
                         if m in sys.modules],
    }

import structlog, typeguard  # the libraries whose global configuration is compared
from opentelemetry import metrics, propagate, trace  # noqa
if sys.argv[1] == "providers":  # the application's SDK, set up before the snapshot
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class OwnIds(IdGenerator):  # the SDK's default draws span ids from the global random
        rng = random.Random(7)
        def generate_span_id(self): return self.rng.getrandbits(64)
        def generate_trace_id(self): return self.rng.getrandbits(128)

    APP_TRACERS = TracerProvider(id_generator=OwnIds())
    APP_TRACERS.get_tracer("app")  # the SDK's get_tracer adds a warnings filter of its own

before = state()

import shadowguard
from shadowguard import assume, configure, guarded

@guarded(assume.not_none("x"), assume.latency(ms=1e-6), assume.max_concurrency(1))
def f(x: int) -> int:
    return x

@guarded(sample_rate=0.5)
def g(x: int) -> int:
    return x

def quietly(func, *args):
    try:
        func(*args)
    except shadowguard.AssumptionViolation:  # enforce mode from the environment
        pass

for _ in range(50):
    quietly(f, None)
    quietly(g, "not an int")
configure(sample_rate=0.5, overrides={"__main__.*": "observe"})
for _ in range(50):
    quietly(f, None)
after_calls = state()

if sys.argv[1] == "providers":
    configure(tracer_provider=APP_TRACERS, meter_provider=MeterProvider())
    quietly(f, None)
    after = state()
else:
    after = after_calls

changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
print(json.dumps(changed, default=repr))
"""

VARIANTS = {
    "defaults": {},
    "enforce": {"SHADOWGUARD_MODE": "enforce"},
    "capture": {"SHADOWGUARD_CAPTURE_VALUES": "1", "SHADOWGUARD_SAMPLE_RATE": "0.5"},
    "off": {"SHADOWGUARD_MODE": "off"},
    "bad environment": {"SHADOWGUARD_MODE": "loud", "SHADOWGUARD_SAMPLE_RATE": "2"},
    "providers": {},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_import_configure_and_report_leave_global_state_alone(variant: str) -> None:
    """Tracer, meter and logger providers, propagators, the logging root, structlog's and
    typeguard's configuration, warning filters, profile/trace hooks, the global ``random``
    state, exception and signal hooks, import machinery, the environment, threads: all as they
    were, and the OpenTelemetry SDK is never imported on the application's behalf."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, variant],
        env=clean_env(**VARIANTS[variant]),
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    changed = json.loads(proc.stdout.splitlines()[-1])
    assert changed == {}
