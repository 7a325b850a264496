"""What a broken assumption looks like once observed: :class:`Violation` and the enforce error."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AssumptionViolation", "Violation"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One assumption broken by one call. Carries shapes, never raw values (``value`` aside)."""

    guard: str
    assumption: str
    kind: str
    mode: str
    expected: str
    observed: str
    path: str | None = None
    value: str | None = None
    """Redacted, truncated value; only set when value capture is on."""

    def describe(self) -> str:
        """A one-line, value-free description."""
        where = f" at {self.path}" if self.path else ""
        return (
            f"{self.guard}: {self.assumption} violated{where}: "
            f"expected {self.expected}, observed {self.observed}"
        )


class AssumptionViolation(AssertionError):
    """Raised in enforce mode after the violations were reported."""

    violations: list[Violation]

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = list(violations)
        lines = [v.describe() for v in self.violations]
        super().__init__("; ".join(lines) if lines else "assumption violated")

    def __reduce__(self) -> tuple[type[AssumptionViolation], tuple[list[Violation]]]:
        return (type(self), (self.violations,))
