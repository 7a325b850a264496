"""Hostile values shared by the property tests: user objects whose methods raise."""

from __future__ import annotations


class Unorderable:
    """Compares, hashes and prints by raising."""

    def __lt__(self, other: object) -> bool:
        raise TypeError("no order")

    def __eq__(self, other: object) -> bool:
        raise TypeError("no equality")

    def __hash__(self) -> int:
        raise TypeError("no hash")

    def __repr__(self) -> str:
        raise TypeError("no repr")
