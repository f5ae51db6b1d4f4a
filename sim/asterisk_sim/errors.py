"""The error an ARI operation answers with: an HTTP status and a ``{"message": ...}`` body."""

from __future__ import annotations


class AriError(Exception):
    """An ARI request failed the way Asterisk fails it (404 Channel not found, 409 ...)."""

    error_id = "ari_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message

    def body(self) -> dict[str, str]:
        """``ast_ari_response_error`` (res/res_ari.c): ``{"message": ...}``."""
        return {"message": self.message}


class AllocationFailed(AriError):
    """``ast_ari_response_alloc_failed`` (res/res_ari.c): 500 ``{"error": "Allocation
    failed"}`` -- also what a create or originate answers when the channel driver
    cannot make the channel (a PJSIP endpoint with no contact, an unknown one)."""

    def __init__(self) -> None:
        super().__init__(500, "Allocation failed")

    def body(self) -> dict[str, str]:
        return {"error": self.message}


class UnknownChannel(LookupError):
    """A simulator control call named a channel that does not exist or is gone."""

    error_id = "unknown_channel"
