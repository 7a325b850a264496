"""The example services: tidy traffic breaks nothing, and each kind of production traffic the
demo sends breaks exactly the one assumption the example's docstring promises."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from shadowguard import Violation
from shadowguard.testing import capture_violations

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"shadowguard_example_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


Send = Callable[..., Any]


class FlaskDriver:
    """Requests through Flask's test client (threads for concurrent ones)."""

    def __init__(self) -> None:
        self.module = _load("flask_app")
        self.client = self.module.create_app().test_client()

    def __call__(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        response = self.client.open(path, method=method, json=json)
        return response.status_code, response.get_json(silent=True)

    def together(self, method: str, path: str, bodies: list[Any]) -> list[int]:
        statuses: list[int] = []
        threads = [
            threading.Thread(target=lambda b=b: statuses.append(self(method, path, b)[0]))
            for b in bodies
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        return statuses


class FastAPIDriver:
    """Requests through ``httpx.ASGITransport`` (``asyncio.gather`` for concurrent ones)."""

    def __init__(self) -> None:
        self.module = _load("fastapi_app")
        self.app = self.module.create_app()

    async def _send(self, client: httpx.AsyncClient, method: str, path: str, json: Any) -> Any:
        return await client.request(method, path, json=json)

    async def _many(self, calls: list[tuple[str, str, Any]]) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return list(await asyncio.gather(*(self._send(client, *call) for call in calls)))

    def __call__(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        (response,) = asyncio.run(self._many([(method, path, json)]))
        return response.status_code, response.json()

    def together(self, method: str, path: str, bodies: list[Any]) -> list[int]:
        responses = asyncio.run(self._many([(method, path, body) for body in bodies]))
        return [r.status_code for r in responses]


@pytest.fixture(params=["flask", "fastapi"])
def service(request: pytest.FixtureRequest) -> Any:
    """Each example app, fresh, behind a driver with the same interface."""
    return FlaskDriver() if request.param == "flask" else FastAPIDriver()


ORDER = {"user_id": 1, "items": [{"sku": "tea", "qty": 2, "price": 3.5}]}


def _broken(seen: list[Violation]) -> list[tuple[str, str]]:
    return [(v.guard, v.assumption) for v in seen]


def test_tidy_traffic_breaks_nothing(service: Any) -> None:
    """Seeded users, small orders one at a time, EUR/GBP quotes, sorted events: no report."""
    with capture_violations() as seen:
        assert service("GET", "/health") == (200, {"status": "ok"})
        status, active = service("GET", "/users/active")
        assert status == 200 and [u["id"] for u in active] == [1, 3]
        assert service("GET", "/users/2")[1]["last_login"] is None
        status, order = service("POST", "/orders", ORDER)
        assert status == 201 and order["total_usd"] == 7.0
        assert (
            service(
                "POST",
                f"/orders/{order['id']}/events",
                [
                    {"ts": 10, "status": "paid"},
                    {"ts": 20, "status": "shipped"},
                ],
            )[1]["status"]
            == "shipped"
        )
        for currency in ("EUR", "GBP"):
            assert service("GET", f"/orders/{order['id']}/quote?currency={currency}")[0] == 200
        assert service("GET", "/users/99")[0] == 404
        assert service("GET", f"/orders/{order['id']}/quote?currency=XXX")[0] == 404
    assert seen == []


def test_a_legacy_row_without_last_login(service: Any) -> None:
    """A row missing the key (not None) breaks only ``present(users[*].last_login)``."""
    legacy = {"id": 7, "name": "Old", "email": "old@example.com"}
    assert service("POST", "/users/import", [legacy])[0] == 201
    with capture_violations() as seen:
        assert service("GET", "/users/active")[0] == 200
    assert _broken(seen) == [("users.active", "present(users[*].last_login)")]
    assert seen[0].observed.startswith("missing")


def test_two_orders_at_once(service: Any) -> None:
    """Concurrent orders on a path only ever tested serially break ``max_concurrency(1)``."""
    with capture_violations() as seen:
        assert service.together("POST", "/orders", [ORDER, ORDER]) == [201, 201]
    assert _broken(seen) == [("orders.next_number", "max_concurrency(1)")]


def test_an_out_of_order_batch(service: Any) -> None:
    """Events not sorted by ``ts`` break only ``ordered(events, key=ts)``."""
    order_id = service("POST", "/orders", ORDER)[1]["id"]
    batch = [{"ts": 20, "status": "shipped"}, {"ts": 10, "status": "paid"}]
    with capture_violations() as seen:
        assert service("POST", f"/orders/{order_id}/events", batch)[0] == 200
    assert _broken(seen) == [("orders.apply_events", "ordered(events, key=ts)")]


def test_a_slow_dependency(service: Any) -> None:
    """The slow JPY feed breaks only the rate fetch's ``latency(ms=100)``."""
    order_id = service("POST", "/orders", ORDER)[1]["id"]
    with capture_violations() as seen:
        assert service("GET", f"/orders/{order_id}/quote?currency=JPY")[0] == 200
    assert _broken(seen) == [("rates.fetch", "latency(ms=100)")]


def test_an_oversized_payload(service: Any) -> None:
    """An order of 150 items breaks only ``size(items, max=100)``."""
    big = {"user_id": 1, "items": [{"sku": f"s{i}", "qty": 1, "price": 1.0} for i in range(150)]}
    with capture_violations() as seen:
        status, order = service("POST", "/orders", big)
    assert status == 201 and order["total_usd"] == 150.0
    assert _broken(seen) == [("orders.create", "size(items, max=100)")]
    assert seen[0].observed == "len=150"
