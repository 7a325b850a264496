"""The seed incident: tests that never saw a missing key, and the production row that had one.

``get_active_users`` was tested with rows whose ``last_login`` was a string or ``None``. Nobody
wrote down the assumption hidden in those tests: *the key is always there*. In production a new
sign-up path created rows without it; the function quietly dropped those users and nothing failed.

shadowguard writes the assumption down (``assume.present("users[*].last_login")`` and the
``UserRow`` annotation), and in observe mode reports the moment production breaks it, as an
OpenTelemetry span event and a structured log, while the call returns exactly what it always did.

Run it with ``python examples/seed_incident.py`` (needs ``opentelemetry-sdk``).
"""

from __future__ import annotations

from typing import TypedDict

import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import shadowguard
from shadowguard import assume, guarded


class UserRow(TypedDict):
    """A user row as the tests knew it."""

    id: int
    name: str
    last_login: str | None


@guarded(assume.present("users[*].last_login"), name="users.get_active_users")
def get_active_users(users: list[UserRow]) -> list[UserRow]:
    """Users who logged in at least once."""
    return [user for user in users if user.get("last_login")]


def the_test_suite() -> None:
    """What the tests checked: strings and None, never a missing key."""
    rows: list[UserRow] = [
        {"id": 1, "name": "ada", "last_login": "2024-05-01"},
        {"id": 2, "name": "bob", "last_login": None},
    ]
    assert get_active_users(rows) == [rows[0]]


def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    shadowguard.configure(mode="observe", tracer_provider=provider)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.KeyValueRenderer(key_order=["event", "level"]),
        ]
    )
    tracer = provider.get_tracer("example")

    print("1. The test suite: last_login is a string or None.")
    the_test_suite()
    print("   tests pass, no violation reported:", exporter.get_finished_spans() == ())

    print("2. Production: a new sign-up path stores rows without last_login.")
    production: list[dict[str, object]] = [
        {"id": 3, "name": "cy", "last_login": "2024-06-02"},
        {"id": 4, "name": "dee"},  # the key is missing, not None
    ]
    print("   shadowguard logs (observe mode: the call is not touched):")
    with tracer.start_as_current_span("GET /users/active"):
        guarded_result = get_active_users(production)  # type: ignore[arg-type]
    plain_result = get_active_users.__wrapped__(production)  # type: ignore[attr-defined]
    names = [user["name"] for user in guarded_result]
    print("   result:", names, "- dee is silently dropped, the bug no test could see")
    print("   same result guarded and unguarded:", guarded_result == plain_result)

    print("3. What the request's span carries:")
    (span,) = exporter.get_finished_spans()
    count = (span.attributes or {}).get("shadowguard.violations")
    print(f"   span {span.name!r}: shadowguard.violations={count}")
    for event in span.events:
        attributes = event.attributes or {}
        print(f"   event {event.name}")
        for key in ("assumption", "kind", "expected", "observed", "path"):
            print(f"     shadowguard.{key} = {attributes.get('shadowguard.' + key)}")

    print("4. The tests passed because they never exercised a missing key; now the gap is visible.")
    provider.shutdown()


if __name__ == "__main__":
    main()
