"""``WalletError``: a refusal with an HTTP status and a message the user may read."""

from __future__ import annotations

__all__ = ["WalletError"]


class WalletError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
