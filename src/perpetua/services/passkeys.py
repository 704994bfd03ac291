"""WebAuthn security keys as a second factor (the ``webauthn`` library), beside TOTP.

1. The relying party is the venue's public URL: its host is the RP id, its scheme, host and
   port the only accepted origin.
2. Each ceremony's challenge is 32 random bytes kept as a single-use mailed-token-style row
   (``account_tokens``, purpose ``webauthn``, 5 minutes): registration is started by a
   signed-in session, sign-in by a correct password, and a challenge works once.
3. A credential's signature counter must grow when the authenticator keeps one (a cloned key
   shows as a counter that went back: refused).
4. ``CREDENTIALS_PER_USER_MAX`` keys per account; attestation is not asked for ("none").
"""

import json
import secrets
from typing import Any, Final
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import PublicKeyCredentialDescriptor

__all__ = [
    "CHALLENGE_BYTES",
    "CREDENTIALS_PER_USER_MAX",
    "Relying",
    "authentication_options",
    "challenge_bytes",
    "challenge_text",
    "credential_id_of",
    "new_challenge",
    "registration_options",
    "verify_assertion",
    "verify_attestation",
]

CHALLENGE_BYTES: Final = 32
CREDENTIALS_PER_USER_MAX: Final = 10
CREDENTIAL_JSON_BYTES_MAX: Final = 16_384
RP_NAME: Final = "Perpetua"


class Relying:
    """Rule 1: the RP id and origin of ``public_url``."""

    def __init__(self, public_url: str) -> None:
        parts = urlsplit(public_url or "http://localhost")
        self.rp_id = parts.hostname or "localhost"
        self.origin = f"{parts.scheme}://{parts.netloc}"


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_BYTES)


def challenge_text(challenge: bytes) -> str:
    return bytes_to_base64url(challenge)


def challenge_bytes(text: str) -> bytes:
    return _bytes(text)


def registration_options(
    relying: Relying, user_id: int, email: str, challenge: bytes, existing: list[str]
) -> dict[str, Any]:
    options = generate_registration_options(
        rp_id=relying.rp_id,
        rp_name=RP_NAME,
        user_name=email,
        user_id=str(user_id).encode(),
        challenge=challenge,
        exclude_credentials=[PublicKeyCredentialDescriptor(id=_bytes(c)) for c in existing],
    )
    return json.loads(options_to_json(options))  # type: ignore[no-any-return]


def authentication_options(
    relying: Relying, challenge: bytes, credentials: list[str]
) -> dict[str, Any]:
    options = generate_authentication_options(
        rp_id=relying.rp_id,
        challenge=challenge,
        allow_credentials=[PublicKeyCredentialDescriptor(id=_bytes(c)) for c in credentials],
    )
    return json.loads(options_to_json(options))  # type: ignore[no-any-return]


def _bytes(text: str) -> bytes:
    from webauthn import base64url_to_bytes

    return base64url_to_bytes(text)


def _credential(text: str) -> dict[str, Any]:
    if not isinstance(text, str) or len(text) > CREDENTIAL_JSON_BYTES_MAX:
        raise ValueError("credential too large")
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("credential must be a JSON object")
    return value


def verify_attestation(relying: Relying, credential: str, challenge: bytes) -> tuple[str, str, int]:
    """``(credential id, public key, sign count)`` of a new key; ``ValueError`` if invalid."""
    try:
        verified = verify_registration_response(
            credential=_credential(credential),
            expected_challenge=challenge,
            expected_rp_id=relying.rp_id,
            expected_origin=relying.origin,
        )
    except (InvalidRegistrationResponse, KeyError, TypeError) as error:
        raise ValueError(f"Invalid security key registration: {error}") from None
    return (
        bytes_to_base64url(verified.credential_id),
        bytes_to_base64url(verified.credential_public_key),
        verified.sign_count,
    )


def credential_id_of(credential: str) -> str:
    value = _credential(credential)
    found = value.get("id")
    if not isinstance(found, str):
        raise ValueError("credential without id")
    return found


def verify_assertion(
    relying: Relying, credential: str, challenge: bytes, public_key: str, sign_count: int
) -> int:
    """The new signature counter of a valid assertion; ``ValueError`` if invalid (rule 3)."""
    try:
        verified = verify_authentication_response(
            credential=_credential(credential),
            expected_challenge=challenge,
            expected_rp_id=relying.rp_id,
            expected_origin=relying.origin,
            credential_public_key=_bytes(public_key),
            credential_current_sign_count=sign_count,
        )
    except (InvalidAuthenticationResponse, KeyError, TypeError) as error:
        raise ValueError(f"Invalid security key response: {error}") from None
    return int(verified.new_sign_count)
