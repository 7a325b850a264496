"""A small users-and-orders service on Flask, watched by shadowguard in shadow mode.

    python examples/flask_app.py            # threaded server on 127.0.0.1:5000 (PORT=... to change)

Its tests only ever sent tidy traffic, and the code quietly relies on that. Each kind of
production traffic below breaks exactly one of those assumptions; shadowguard reports it (a log
line, a span event, a metric) while the request is answered exactly as without shadowguard:

==============================================================  ===================================
traffic                                                         broken assumption (guard)
==============================================================  ===================================
``POST /users/import`` a row without ``last_login`` (legacy     ``present(users[*].last_login)``
export), then ``GET /users/active``                             (``users.active``)
two ``POST /orders`` at the same time                           ``max_concurrency(1)``
                                                                (``orders.next_number``)
``POST /orders/<id>/events`` with a batch not sorted by ``ts``  ``ordered(events, key=ts)``
                                                                (``orders.apply_events``)
``GET /orders/<id>/quote?currency=JPY`` (slow legacy FX feed)   ``latency(ms=100)``
                                                                (``rates.fetch``)
``POST /orders`` with more than 100 items                       ``size(items, max=100)``
                                                                (``orders.create``)
==============================================================  ===================================

Everything else (the seeded users, orders of a few items, EUR/GBP quotes, sorted event batches,
one order at a time) breaks nothing. The request middleware watches every request too
(``latency_ms=1000``, ``max_body_bytes=1_000_000``, 5xx responses), which that traffic also
keeps within. ``create_app()`` builds a fresh service with its own in-memory store.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from flask import Flask, abort, request

from shadowguard import assume, guarded
from shadowguard_flask import ShadowGuard, route_assumptions

SEQUENCE_ROUND_TRIP = 0.1
"""Seconds the order-number sequence takes to answer: long enough for requests to overlap."""

RATE_FEEDS: dict[str, tuple[float, float]] = {
    "EUR": (0.92, 0.005),
    "GBP": (0.79, 0.005),
    "JPY": (151.2, 0.25),  # served by the legacy FX feed: slow
}
"""Currency -> (rate per USD, seconds the feed takes to answer)."""

SEED_USERS: list[dict[str, Any]] = [
    {"id": 1, "name": "Ada", "email": "ada@example.com", "last_login": "2025-03-02"},
    {"id": 2, "name": "Grace", "email": "grace@example.com", "last_login": None},
    {"id": 3, "name": "Linus", "email": "linus@example.com", "last_login": "2025-02-11"},
]


class Store:
    """The service's in-memory database (the lock only keeps the dicts consistent)."""

    def __init__(self) -> None:
        self.users: dict[int, dict[str, Any]] = {u["id"]: dict(u) for u in SEED_USERS}
        self.orders: dict[int, dict[str, Any]] = {}
        self.sequence = 0
        self.lock = threading.Lock()


# -- the domain functions, each with the assumptions its tests never questioned --------------------


@guarded(assume.present("users[*].last_login"), name="users.active")
def active_users(users: list[dict[str, Any]], since: str) -> list[dict[str, Any]]:
    """Users seen since ``since``. Rows come from our table, where ``last_login`` is None for
    users who never logged in; a row *without* the column came from somewhere else."""
    return [u for u in users if (u.get("last_login") or "") >= since]


@guarded(assume.max_concurrency(1), name="orders.next_number")
def next_order_number(store: Store) -> int:
    """Read, then write, the order sequence: correct only one call at a time."""
    current = store.sequence
    time.sleep(SEQUENCE_ROUND_TRIP)
    store.sequence = current + 1
    return current + 1


@guarded(assume.size("items", max=100), assume.not_none("user.email"), name="orders.create")
def create_order(user: dict[str, Any], items: list[dict[str, Any]], number: int) -> dict[str, Any]:
    """An order with its total; the receipt goes to the user's email."""
    total = round(sum(item["qty"] * item["price"] for item in items), 2)
    return {
        "id": number,
        "user_id": user["id"],
        "items": items,
        "total_usd": total,
        "status": "created",
        "receipt_to": user["email"],
    }


@guarded(assume.ordered("events", key="ts"), name="orders.apply_events")
def apply_events(order: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Replay status events; the last one wins, so they must come in time order."""
    for event in events:
        order["status"] = event["status"]
        order["updated_ts"] = event["ts"]
    return order


@guarded(assume.latency(ms=100), name="rates.fetch")
def fetch_rate(currency: str) -> float:
    """The exchange rate from the currency's feed."""
    rate, delay = RATE_FEEDS[currency]
    time.sleep(delay)
    return rate


# -- the HTTP API ---------------------------------------------------------------------------------


def _json_list(key: str | None = None) -> list[dict[str, Any]]:
    """The request's JSON list (or the list under ``key``) of objects, else a 400."""
    body = request.get_json(silent=True)
    value = body.get(key) if key is not None and isinstance(body, dict) else body
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        abort(400, "expected a JSON list of objects")
    return value


def create_app(store: Store | None = None) -> Flask:
    """The service, guarded: shadowguard's extension plus the guarded domain functions."""
    db = store or Store()
    app = Flask(__name__)
    ShadowGuard(app, latency_ms=1000, max_body_bytes=1_000_000)

    def user_or_404(user_id: int) -> dict[str, Any]:
        user = db.users.get(user_id)
        if user is None:
            abort(404, "no such user")
        return user

    def order_or_404(order_id: int) -> dict[str, Any]:
        order = db.orders.get(order_id)
        if order is None:
            abort(404, "no such order")
        return order

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/users/active")
    def list_active() -> list[dict[str, Any]]:
        since = request.args.get("since", "2025-01-01")
        with db.lock:
            users = list(db.users.values())
        return active_users(users, since)

    @app.get("/users/<int:user_id>")
    def get_user(user_id: int) -> dict[str, Any]:
        return user_or_404(user_id)

    @app.post("/users/import")
    def import_users() -> tuple[dict[str, int], int]:
        rows = _json_list()
        with db.lock:
            for row in rows:
                db.users[int(row["id"])] = row
        return {"imported": len(rows)}, 201

    @app.post("/orders")
    @route_assumptions(max_body_bytes=256_000)
    def post_order() -> tuple[dict[str, Any], int]:
        body = request.get_json(silent=True) or {}
        user = user_or_404(int(body.get("user_id", 0)))
        items = [
            {"sku": str(i["sku"]), "qty": int(i["qty"]), "price": float(i["price"])}
            for i in _json_list("items")
        ]
        number = next_order_number(db)
        order = create_order(user, items, number)
        with db.lock:
            db.orders[number] = order
        return order, 201

    @app.get("/orders/<int:order_id>")
    def get_order(order_id: int) -> dict[str, Any]:
        return order_or_404(order_id)

    @app.post("/orders/<int:order_id>/events")
    def post_events(order_id: int) -> dict[str, Any]:
        events = [{"ts": int(e["ts"]), "status": str(e["status"])} for e in _json_list()]
        return apply_events(order_or_404(order_id), events)

    @app.get("/orders/<int:order_id>/quote")
    def quote(order_id: int) -> dict[str, Any]:
        order = order_or_404(order_id)
        currency = request.args.get("currency", "EUR")
        if currency not in RATE_FEEDS:
            abort(404, "no feed for that currency")
        rate = fetch_rate(currency)
        return {"order_id": order_id, "currency": currency, "total": order["total_usd"] * rate}

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), threaded=True)
