"""Flask integration for shadowguard: watch every request in shadow mode."""

__all__: list[str] = []
