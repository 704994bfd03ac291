"""TOTP second factor (RFC 6238 via pyotp) and its one-time recovery codes.

1. A secret is 160 random bits (base32, pyotp's default length), stored encrypted under the
   server key; the enrolment shows it once as text, as an ``otpauth://`` URI and as a QR code
   (SVG by segno), and takes effect only after a correct code confirms it.
2. A code is accepted for its 30 s step and one step either side (clock drift); a code whose
   step is not later than the last accepted step is refused, so a code cannot be replayed
   within its window (``tfa_last_step``).
3. ``RECOVERY_CODES_COUNT`` recovery codes of 50 random bits each (``xxxxx-xxxxx``, base32)
   are shown once at enrolment and stored as SHA-256; each works once. Their entropy makes a
   slow hash unnecessary (ASVS 2.6.2).
"""

import base64
import hashlib
import hmac
import io
import secrets
from typing import Final

import pyotp
import segno

__all__ = [
    "ISSUER",
    "RECOVERY_CODES_COUNT",
    "accepted_step",
    "new_recovery_codes",
    "new_secret",
    "provisioning",
    "recovery_digest",
]

ISSUER: Final = "Perpetua"
STEP_S: Final = 30
DRIFT_STEPS: Final = 1
RECOVERY_CODES_COUNT: Final = 10
RECOVERY_CODE_BYTES: Final = 7  # 56 bits drawn, 50 kept (10 base32 characters)
CODE_LENGTH_MAX: Final = 32


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning(secret: str, account_name: str) -> dict[str, str]:
    """What the enrolment screen shows: the secret, its URI and an SVG QR code (data URI)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4)
    svg = base64.b64encode(buffer.getvalue()).decode()
    return {"secret": secret, "uri": uri, "qr": "data:image/svg+xml;base64," + svg}


def accepted_step(secret: str, code: str, now_s: int, last_step: int) -> int | None:
    """The step ``code`` belongs to when it is valid now and newer than ``last_step``."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) > CODE_LENGTH_MAX:
        return None
    totp = pyotp.TOTP(secret)
    current = now_s // STEP_S
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > last_step and hmac.compare_digest(totp.at(step * STEP_S), code):
            return step
    return None


def recovery_digest(code: str) -> str:
    normal = code.strip().replace("-", "").replace(" ", "").upper()
    return hashlib.sha256(normal.encode()).hexdigest()


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODES_COUNT):
        text = base64.b32encode(secrets.token_bytes(RECOVERY_CODE_BYTES)).decode()[:10]
        codes.append(f"{text[:5]}-{text[5:]}".lower())
    return codes
