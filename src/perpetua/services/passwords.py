"""Password rules and hashing: what a password must be, and how it is stored.

1. A password is 12 to 1,024 characters of Unicode text and scores at least
   ``STRENGTH_SCORE_MIN`` (of 0..4) on zxcvbn, given the account's email as user input (so
   "alice@example.com2026" fails). No composition rules (NIST SP 800-63B, ASVS 2.1): length
   and guessability only.
2. Hashes are argon2id with ``ARGON2_*`` below, chosen by measurement on the CI machine
   (``bench/bench_accounts.py``): one hash costs about 20-45 ms of one core (by the
   machine's load) and 19 MiB, the OWASP floor for argon2id, so 20 sign-ins/s take under
   one core. A hash made with older parameters is rehashed at the next sign-in.
3. Hashing and checking are CPU-bound: a venue runs them in the hash pool's worker processes
   (``services.hash_pool``), never on the event loop nor in the server process.
"""

from collections.abc import Sequence
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

__all__ = [
    "ARGON2_MEMORY_KIB",
    "ARGON2_PARALLELISM",
    "ARGON2_TIME_COST",
    "PASSWORD_LENGTH_MAX",
    "PASSWORD_LENGTH_MIN",
    "STRENGTH_SCORE_MIN",
    "PasswordRejected",
    "check_strength",
    "default_hasher",
    "verify_hash",
]

PASSWORD_LENGTH_MIN: Final = 12
PASSWORD_LENGTH_MAX: Final = 1024
STRENGTH_SCORE_MIN: Final = 3  # zxcvbn: 3 is "safely unguessable: moderate protection offline"
STRENGTH_INPUT_CHARS_MAX: Final = 100  # zxcvbn is super-linear: score only a prefix
ARGON2_TIME_COST: Final = 2
ARGON2_MEMORY_KIB: Final = 19_456
ARGON2_PARALLELISM: Final = 1


class PasswordRejected(ValueError):
    """The password breaks rule 1; the message says how (never echoes the password)."""


def default_hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM
    )


def check_strength(password: str, user_inputs: Sequence[str] = ()) -> None:
    """Raise ``PasswordRejected`` unless ``password`` follows rule 1."""
    if not PASSWORD_LENGTH_MIN <= len(password) <= PASSWORD_LENGTH_MAX:
        raise PasswordRejected(
            f"Password must have {PASSWORD_LENGTH_MIN} to {PASSWORD_LENGTH_MAX} characters"
        )
    try:
        password.encode()
    except UnicodeEncodeError:
        raise PasswordRejected("Password must be Unicode text (no lone surrogates)") from None
    inputs = [
        part for text in user_inputs for part in (text, *text.replace("@", ".").split(".")) if part
    ]
    result = zxcvbn(password[:STRENGTH_INPUT_CHARS_MAX], user_inputs=inputs)
    if int(result["score"]) < STRENGTH_SCORE_MIN:
        hint = (result.get("feedback") or {}).get("warning") or "it is too easy to guess"
        raise PasswordRejected(
            f"Password is too weak: {hint.rstrip('.')}. Use a longer passphrase of unrelated words"
        )


def verify_hash(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return bool(hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False
