"""BitMEX request signatures (reference §5.1), shared by the gateway and by clients and tests.

``signature = hex(HMAC_SHA256(secret, VERB + PATH_WITH_QUERY + expires + BODY))``: the verb in
upper case, the request target exactly as sent (``/api/v1/...`` with its URL-encoded query,
never re-encoded), ``expires`` as the decimal string sent (or the legacy ``api-nonce``), and the
raw body (``""`` when there is none). WebSocket authentication signs ``"GET/realtime" + expires``.
"""

import hashlib
import hmac

__all__ = ["WEBSOCKET_AUTH_PATH", "signature", "signature_matches"]

WEBSOCKET_AUTH_PATH = "/realtime"


def signature(secret: str, verb: str, path: str, expires: int | str, body: str | bytes = "") -> str:
    """The lowercase hex HMAC-SHA256 signature of one request."""
    body_bytes = body.encode() if isinstance(body, str) else body
    message = verb.upper().encode() + path.encode() + str(expires).encode() + body_bytes
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(
    secret: str, verb: str, path: str, expires: int | str, body: str | bytes, presented: str
) -> bool:
    """Constant-time check of a presented signature (hex, any letter case)."""
    expected = signature(secret, verb, path, expires, body)
    return hmac.compare_digest(expected, presented.strip().lower())
