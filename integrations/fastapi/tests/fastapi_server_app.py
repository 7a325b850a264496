"""A FastAPI app served by a real uvicorn in the end-to-end test: violations go to JSON logs.

``SG_TEST_LOG`` names the file structlog writes to (the host's logging choice, as in production).
``/orders/{id}`` holds each request until two are in flight, so concurrency is certain.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import structlog
from fastapi import FastAPI

from shadowguard import assume, guarded
from shadowguard_fastapi import ShadowGuard, route_assumptions

structlog.configure(
    processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
    logger_factory=structlog.WriteLoggerFactory(
        file=open(os.environ["SG_TEST_LOG"], "a", buffering=1)  # noqa: SIM115 - lives with the process
    ),
)

app = FastAPI()
ShadowGuard(app, max_in_flight=8)
USERS: dict[int, dict[str, Any]] = {1: {"id": 1, "email": "ada@example.com"}, 2: {"id": 2}}
_waiting: list[asyncio.Event] = []


@guarded(assume.max_concurrency(1), name="orders.reserve")
async def reserve(order_id: int) -> int:
    arrived = asyncio.Event()
    _waiting.append(arrived)
    if len(_waiting) % 2 == 0:
        for event in _waiting:
            event.set()
    await asyncio.wait_for(arrived.wait(), 10)
    return order_id


@guarded(assume.present("user.email"), name="users.render")
def render(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "email": user.get("email")}


@app.get("/health")
async def health() -> str:
    return "ok"


@app.post("/orders/{order_id}", dependencies=[route_assumptions(max_in_flight=1)])
async def order(order_id: int) -> dict[str, int]:
    return {"reserved": await reserve(order_id)}


@app.get("/users/{user_id}")
async def user(user_id: int) -> dict[str, Any]:
    return render(USERS[user_id])
