"""End-to-end runs against real servers (Arize Phoenix)."""
