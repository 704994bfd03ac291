"""What the identity flows answer and how they refuse: the values the gateway sees.

1. ``IdentityError`` carries the HTTP status, message and BitMEX error name for the client
   (and a ``retry_after_s`` for a 429); anything else a flow raises is a bug or an I/O
   failure. No message says whether an email is registered (``MSG_SIGN_IN_FAILED`` for an
   unknown email and a wrong password alike).
2. ``FactorRefused`` is internal: a wrong second factor at sign-in, counted by the throttle
   outside the rolled-back transaction, then answered as a 401.
3. Values are frozen; a ``Profile`` or ``SecurityKey`` never holds a secret (no hash, TOTP
   secret or public key), so any of them may be logged or answered.
4. ``normalize_email`` is the one registered form of an address: ``email-validator``'s syntax
   and domain-shape checks (no DNS: the venue may be offline), then lower case.
"""

from dataclasses import dataclass
from typing import Any, Final

from email_validator import EmailNotValidError, validate_email

from perpetua.services.accounts import EMAIL_LENGTH_MAX
from perpetua.services.sessions import Session

__all__ = [
    "EMAIL_LENGTH_MAX",
    "MSG_SIGN_IN_FAILED",
    "MSG_TFA_INVALID",
    "MSG_TFA_REQUIRED",
    "MSG_TOKEN",
    "FactorRefused",
    "IdentityError",
    "NewKey",
    "Origin",
    "Profile",
    "SecurityKey",
    "SignedIn",
    "bad",
    "normalize_email",
]

MSG_SIGN_IN_FAILED: Final = "Invalid email or password"
MSG_TOKEN: Final = "Invalid or expired token"
MSG_TFA_REQUIRED: Final = "Two-factor code required"
MSG_TFA_INVALID: Final = "Invalid two-factor code"


class IdentityError(Exception):
    """Reject: HTTP ``status`` with ``message`` (and BitMEX error ``name``) for the client."""

    def __init__(
        self, status: int, message: str, name: str = "HTTPError", retry_after_s: int = 0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.name = name
        self.retry_after_s = retry_after_s


class FactorRefused(Exception):
    """A wrong second factor at sign-in (counted by the throttle, then a 401)."""


def bad(message: str) -> IdentityError:
    """The client's 400 (BitMEX ``ValidationError``)."""
    return IdentityError(400, message, "ValidationError")


@dataclass(frozen=True, slots=True)
class NewKey:
    """What a self-service API key is made with (``POST /apiKey``); never a secret."""

    name: str = ""
    permissions: tuple[str, ...] = ()
    cidr: tuple[str, ...] = ()
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from (audit rows, session list, notices)."""

    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    email: str
    created_ns: int
    updated_ns: int
    enabled: bool
    email_confirmed: bool
    country: str
    preferences: dict[str, Any]
    anti_phishing: str
    tfa_enabled: bool
    owner_id: int | None
    account_name: str
    security_keys: int = 0


@dataclass(frozen=True, slots=True)
class SecurityKey:
    """A registered WebAuthn key as its owner sees it (never its public key)."""

    id: str
    name: str
    created_ns: int


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: ``token`` goes in the cookie (once), ``session`` is its stored row."""

    token: str
    session: Session
    user_id: int
    recovery_codes_left: int | None = None


def normalize_email(email: str) -> str:
    """The registered form of an address (rule 4)."""
    if not isinstance(email, str) or len(email) > EMAIL_LENGTH_MAX:
        raise bad("Invalid email")
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise bad(f"Invalid email: {error}") from None
    return str(checked.normalized).lower()
