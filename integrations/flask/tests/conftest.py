"""The core test suite's fixtures (clean settings, strict internal faults, in-memory OTel SDK,
structlog capture), shared with the Flask integration's tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load_core_conftest() -> ModuleType:
    name = "shadowguard_core_conftest"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[3] / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_core = _load_core_conftest()

Otel = _core.Otel
pytest_configure = _core.pytest_configure
_clean_shadowguard = _core._clean_shadowguard
otel = _core.otel
logs = _core.logs
