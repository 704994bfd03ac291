"""BitMEX's error shape ``{"error": {"message", "name"}}`` and the gateway's one exception.

Handlers raise ``ApiError``; the endpoint wrapper turns it into the JSON body with its status.
Messages that clients match on (ccxt ``exceptions.exact``, the sample market maker) are named
constants here so tests and handlers use the same text.
"""

from perpetua.core.events import Rejected
from perpetua.core.reasons import CAUSE_TEXT, HTTP_STATUS, MESSAGES, RESTRICTION_REASONS, Reason

__all__ = [
    "ApiError",
    "MSG_ACCESS_DENIED",
    "MSG_INVALID_KEY",
    "MSG_KEY_DISABLED",
    "MSG_NONCE",
    "MSG_NOT_FOUND",
    "MSG_OVERLOADED",
    "MSG_SIGNATURE",
    "error_body",
    "from_reason",
    "from_rejection",
    "reason_message",
]

MSG_NOT_FOUND = "Not Found"
MSG_INVALID_KEY = "Invalid API Key."
MSG_SIGNATURE = "Signature not valid."
MSG_ACCESS_DENIED = "Access Denied"
MSG_KEY_DISABLED = "This key is disabled."
MSG_NONCE = "Nonce is not increasing. This nonce: must be larger than the last one used."
MSG_OVERLOADED = "The system is currently overloaded. Please try again later."
MSG_NOT_AVAILABLE = "This feature is not available yet on this exchange (risk engine pending)."


class ApiError(Exception):
    """A client-visible error: HTTP status, BitMEX message and error name."""

    def __init__(
        self,
        status: int,
        message: str,
        name: str = "HTTPError",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.name = name
        self.headers = headers or {}


def error_body(message: str, name: str = "HTTPError") -> dict[str, dict[str, str]]:
    return {"error": {"message": message, "name": name}}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "ValidationError")


def from_reason(reason: int, required: int = 0, currency: str = "", cause: int = 0) -> ApiError:
    """The HTTP error for a core rejection; balance rejections say how much is required, and
    account-restriction rejections (403) say what the account may do and why."""
    known = Reason(reason) if reason in Reason._value2member_map_ else None
    if known is None:
        return ApiError(400, f"Rejected ({reason})")
    return ApiError(HTTP_STATUS[known], reason_message(known, required, currency, cause))


def reason_message(reason: Reason, required: int = 0, currency: str = "", cause: int = 0) -> str:
    message = MESSAGES[reason]
    if reason == Reason.BALANCE_INSUFFICIENT and required:
        message = f"{message}, {required} {currency} required"
    elif reason in RESTRICTION_REASONS:
        message = f"{message} (reason: {CAUSE_TEXT.get(cause, CAUSE_TEXT[0])})"
    return message


def from_rejection(event: Rejected) -> ApiError:
    """``from_reason`` with everything the rejection carries."""
    return from_reason(event.reason, event.required, event.currency, event.cause)
