"""A Flask app served by a real gunicorn in the end-to-end test: violations go to JSON logs.

``SG_TEST_LOG`` names the file structlog writes to (the host's logging choice, as in production).
``/orders/<id>`` holds each request until two are in flight, so concurrency is certain.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import structlog
from flask import Flask, jsonify

from shadowguard import assume, guarded
from shadowguard_flask import ShadowGuard, route_assumptions

structlog.configure(
    processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
    logger_factory=structlog.WriteLoggerFactory(
        file=open(os.environ["SG_TEST_LOG"], "a", buffering=1)  # noqa: SIM115 - lives with the process
    ),
)

app = Flask(__name__)
ShadowGuard(app, max_in_flight=8)
_both_in = threading.Barrier(2, timeout=10)
USERS: dict[int, dict[str, Any]] = {1: {"id": 1, "email": "ada@example.com"}, 2: {"id": 2}}


@guarded(assume.max_concurrency(1), name="orders.reserve")
def reserve(order_id: int) -> int:
    _both_in.wait()
    return order_id


@guarded(assume.present("user.email"), name="users.render")
def render(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "email": user.get("email")}


@app.get("/health")
def health() -> str:
    return "ok"


@app.post("/orders/<int:order_id>")
@route_assumptions(max_in_flight=1)
def order(order_id: int) -> Any:
    return jsonify(reserved=reserve(order_id))


@app.get("/users/<int:user_id>")
def user(user_id: int) -> Any:
    return jsonify(render(USERS[user_id]))
