"""Shapes describe values without showing them; captured values are redacted and bounded."""

from __future__ import annotations

from typing import Any

import pytest

from shadowguard._shapes import (
    MAX_VALUE,
    REDACTED,
    capture,
    is_secret_name,
    mask_numbers,
    type_name,
)

CANARY = "CANARY-5d1e"


def test_type_name_of_values() -> None:
    """``None`` is ``None``; anything else is its class's qualified name."""

    class Local:
        pass

    assert type_name(None) == "None"
    assert type_name(1) == "int"
    assert type_name(Local()) == "test_type_name_of_values.<locals>.Local"


def test_type_name_with_a_hostile_metaclass() -> None:
    """A class whose ``__qualname__`` cannot be read is just ``object``."""

    class Meta(type):
        def __getattribute__(cls, name: str) -> Any:
            if name == "__qualname__":
                raise RuntimeError("no name")
            return super().__getattribute__(name)

    class Weird(metaclass=Meta):
        pass

    assert type_name(Weird()) == "object"


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "passwd",
        "db_password",
        "token",
        "api_token",
        "refresh_token",
        "secret",
        "client_secret",
        "Authorization",
        "cookie",
        "Set-Cookie",
        "api_key",
        "api-key",
        "apikey",
        "X-Api-Key",
        "card",
        "card_number",
        "CreditCard",
        "ssn",
        "user_ssn",
        "private_key",
        "session_id",
        "signature",
        "credentials",
    ],
)
def test_secret_names_match_by_substring(name: str) -> None:
    """Secret-looking names match case-insensitively, compound names included."""
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["email", "id", "username", "last_login", "items", 42, None])
def test_ordinary_names_are_not_secret(name: object) -> None:
    """Ordinary names (and non-strings) are not secret."""
    assert not is_secret_name(name)


def test_mask_numbers() -> None:
    """Integers and decimals become ``#`` so that fingerprints ignore magnitudes."""
    assert mask_numbers("len=12001") == mask_numbers("len=9") == "len=#"
    assert mask_numbers("312.4 ms") == "# ms"
    assert mask_numbers("items[3] < items[2]") == "items[#] < items[#]"
    assert mask_numbers("None") == "None"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "None"),
        (True, "True"),
        (42, "42"),
        (2**300, "<int>"),
        (1.5, "1.5"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        ("text", "'text'"),
        (b"\x00\x01", "<bytes len=2>"),
        ([1, "a"], "[1, 'a']"),
        ((1,), "(1)"),
        ({1}, "{1}"),
        (frozenset(), "{}"),
        ({"a": 1}, "{'a': 1}"),
    ],
)
def test_capture_renders_plain_values(value: Any, expected: str) -> None:
    """Simple values render compactly and deterministically."""
    assert capture(value) == expected


def test_capture_redacts_secret_keys_at_any_depth() -> None:
    """Mapping keys that look secret have their values replaced, however deep."""
    value = {"user": {"name": "ada", "api_token": CANARY}, "cookie": CANARY}
    text = capture(value)
    assert CANARY not in text
    assert text == "{'user': {'name': 'ada', 'api_token': [REDACTED]}, 'cookie': [REDACTED]}"


def test_capture_redacts_secret_looking_strings_in_sequences() -> None:
    """A string item that looks like a secret name is redacted too (header lists)."""
    assert capture(["Authorization", "x"]) == f"[{REDACTED}, 'x']"


def test_capture_of_a_secret_named_path_is_redacted_whole() -> None:
    """When the path's last name is secret, nothing of the value is shown."""
    assert capture({"a": 1}, "user.password") == REDACTED
    assert capture(CANARY, "api_key") == REDACTED
    assert capture("visible", "user.name") == "'visible'"


def test_capture_sanitises_urls() -> None:
    """User info and secret query parameters in URLs are redacted."""
    text = capture("https://bob:hunter2@example.com/x?token=abc&page=2&X-Amz-Signature=zzz")
    assert "hunter2" not in text
    assert "abc" not in text
    assert "zzz" not in text
    assert "page=2" in text


def test_capture_is_bounded() -> None:
    """Huge strings, long lists, deep nesting and cycles stay within 256 characters."""
    assert len(capture("x" * 100_000)) <= MAX_VALUE
    assert len(capture(list(range(100_000)))) <= MAX_VALUE
    assert capture(list(range(20))).endswith("…]")
    deep: list[Any] = [[[[[1]]]]]
    assert capture(deep) == "[[[…]]]"
    cycle: list[Any] = [1]
    cycle.append(cycle)
    assert capture(cycle) == "[1, …]"
    many = {f"k{i}": "v" * 50 for i in range(100)}
    text = capture(many)
    assert len(text) <= MAX_VALUE
    assert text.endswith("…")


def test_capture_of_objects_uses_repr_safely() -> None:
    """Other objects use ``repr``; a raising or non-string ``repr`` gives the type name."""

    class Fine:
        def __repr__(self) -> str:
            return "Fine()"

    class Raises:
        def __repr__(self) -> str:
            raise RuntimeError("repr")

    class NotText:
        def __repr__(self) -> Any:
            return 42

    class Unreadable(dict):  # type: ignore[type-arg]
        def __getitem__(self, key: Any) -> Any:
            raise RuntimeError("getitem")

    assert capture(Fine()) == "Fine()"
    assert capture(Raises()).endswith("Raises>")
    assert capture(NotText()).endswith("NotText>")
    assert capture(Unreadable(a=1)) == "{'a': '<unreadable>'}"


def test_capture_stops_rendering_when_the_budget_is_spent() -> None:
    """A huge key spends the budget: its value is not rendered at all."""
    text = capture({"k" * 300: CANARY})
    assert CANARY not in text
    assert len(text) <= MAX_VALUE
