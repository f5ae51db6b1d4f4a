"""The error an ARI operation answers with: an HTTP status and a ``{"message": ...}`` body."""

from __future__ import annotations


class AriError(Exception):
    """An ARI request failed the way Asterisk fails it (404 Channel not found, 409 ...)."""

    error_id = "ari_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


class UnknownChannel(LookupError):
    """A simulator control call named a channel that does not exist or is gone."""

    error_id = "unknown_channel"
