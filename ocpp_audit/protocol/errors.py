"""Exceptions that belong to the protocol, not to one part of the package."""

from __future__ import annotations

from typing import Any

__all__ = ["CallErrorReceived"]


class CallErrorReceived(Exception):
    """The other side answered a CALL with a CALLERROR (OCPP-J 1.6 section 4.2.3)."""

    def __init__(
        self, error_code: str, error_description: str, error_details: dict[str, Any]
    ) -> None:
        super().__init__(f"{error_code}: {error_description}" if error_description else error_code)
        self.error_code = error_code
        self.error_description = error_description
        self.error_details = error_details
