"""A software WebAuthn authenticator for tests: an EC P-256 key answering ``create`` with
"none" attestation and ``get`` with signed assertions, as a browser's
``navigator.credentials`` would return them (JSON with base64url fields)."""

import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url

FLAG_USER_PRESENT = 0x01
FLAG_ATTESTED = 0x40


class SoftKey:
    def __init__(self, rp_id: str, origin: str) -> None:
        self.rp_id = rp_id
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.count = 0

    def _cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _client(self, kind: str, options: dict[str, Any]) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": options["challenge"],
                "origin": self.origin,
                "crossOrigin": False,
            }
        ).encode()

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        client = self._client("webauthn.create", options)
        auth = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([FLAG_USER_PRESENT | FLAG_ATTESTED])
            + self.count.to_bytes(4, "big")
            + bytes(16)
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self._cose()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth})
        ident = bytes_to_base64url(self.credential_id)
        return {
            "id": ident,
            "rawId": ident,
            "type": "public-key",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(client),
                "attestationObject": bytes_to_base64url(attestation),
            },
        }

    def get(self, options: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        client = self._client("webauthn.get", options)
        auth = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([FLAG_USER_PRESENT])
            + self.count.to_bytes(4, "big")
        )
        signature = self.key.sign(auth + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        ident = bytes_to_base64url(self.credential_id)
        return {
            "id": ident,
            "rawId": ident,
            "type": "public-key",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(client),
                "authenticatorData": bytes_to_base64url(auth),
                "signature": bytes_to_base64url(signature),
                "userHandle": None,
            },
        }
