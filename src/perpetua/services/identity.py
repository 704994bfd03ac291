"""Accounts as a user sees them: sign-up, email confirmation, sign-in, sessions, password reset,
email change, profile and preferences, TOTP, and the operator's account actions.

1. ``IdentityPort`` is what the gateway calls; ``Identity`` implements it over the accounts
   database (``AccountsService.engine``), a ``Mailer`` and the server key. Each call runs its
   whole flow (SQL, argon2, SMTP) in one worker thread: nothing here runs on the event loop.
2. Answers never reveal whether an email is registered: sign-up and reset requests always
   answer the same; a wrong password and an unknown email fail alike (an unknown email still
   pays one argon2 check); the throttle (``throttle``) treats both alike.
3. Each act commits in one transaction with its audit row (``audit``); a crash between two
   steps leaves no half-made account: a new user and its confirmation token are one
   transaction; mail goes out after the commit, and a message the relay refuses waits in the
   mail queue for a retry (``services.mail_queue``).
4. Mailed tokens (``account_tokens``) are 256 random bits, stored as SHA-256, single-use
   (deleted when used), and expire (``TOKEN_TTL_NS``).
5. A user who enabled TOTP signs in with a code or a recovery code; enabling or disabling
   TOTP, and changing the password or email, rotate the caller's session (a new id) and end
   every other one for a password change.
6. ``IdentityError`` carries the HTTP status and message for the client; anything else is a
   bug or an I/O failure.
7. Flows (argon2 at ~40 ms of a core each, SMTP) run in their own pool of
   ``FLOW_WORKERS_MAX`` threads at a lower CPU priority (nice +``FLOW_NICE``), so a burst of
   sign-ins takes at most that many cores and yields to the event loop and the sequencer:
   measured by ``bench/bench_accounts.py``. Past ``FLOWS_PENDING_MAX`` waiting flows a
   request gets 503 at once. Session lookups (every cookie request) skip this queue.
8. Mails that anyone can trigger for an account (sign-up with its address, reset requests)
   are budgeted per account: ``UNSOLICITED_MAILS_FREE`` at once, then the throttle's
   doubling back-off; past it the answer is the same and no mail goes out (no mail bombing).
"""

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

from argon2 import PasswordHasher
from cryptography.fernet import MultiFernet
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from perpetua.services import passkeys, throttle, totp
from perpetua.services.accounts import AccountsError, AccountsService, ApiKeyInfo
from perpetua.services.audit import AuditEntry, read_audit, record
from perpetua.services.devices import CommunicationToken, DeviceRefused, register_device
from perpetua.services.keyring import FamilyAccount, Keyring
from perpetua.services.mail import DEFAULT_SENDER, Mailer, Outbox, SmtpMailer, mail_config
from perpetua.services.mail_queue import MailQueue, RetryingMailer
from perpetua.services.passwords import (
    PasswordRejected,
    check_strength,
    default_hasher,
    verify_hash,
)
from perpetua.services.sessions import Session, SessionStore, token_digest
from perpetua.store.schema import (
    account_tokens,
    known_ips,
    recovery_codes,
    users,
    webauthn_credentials,
)

__all__ = [
    "EMAIL_LENGTH_MAX",
    "PREFERENCES_BYTES_MAX",
    "TOKEN_TTL_NS",
    "Identity",
    "OpenedIdentity",
    "open_identity",
    "IdentityError",
    "IdentityPort",
    "Origin",
    "Profile",
    "SecurityKey",
    "SignedIn",
]

log = logging.getLogger(__name__)

EMAIL_LENGTH_MAX: Final = 254
TOKEN_TTL_NS: Final = {
    "confirm": 48 * 3600 * 10**9,
    "reset": 30 * 60 * 10**9,
    "email": 60 * 60 * 10**9,
    "webauthn": 5 * 60 * 10**9,
}
TOKEN_BYTES: Final = 32
TOKENS_PER_USER_MAX: Final = 10  # outstanding; the oldest go first
PREFERENCES_BYTES_MAX: Final = 8_192
ANTI_PHISHING_LENGTH_MAX: Final = 64
USER_ID_RETRIES_MAX: Final = 3
ACTOR_USER: Final = "user"
SMTP_URL_ENV: Final = "PERPETUA_SMTP_URL"
MAIL_FROM_ENV: Final = "PERPETUA_MAIL_FROM"
MSG_SIGN_IN_FAILED: Final = "Invalid email or password"
MSG_CHECK_MAIL: Final = (
    "If the address can receive mail, a message with the next step is on its way"
)
MSG_TOKEN: Final = "Invalid or expired token"
MSG_TFA_REQUIRED: Final = "Two-factor code required"
MSG_TFA_INVALID: Final = "Invalid two-factor code"


UNSOLICITED_MAILS_FREE: Final = 5
FLOW_WORKERS_MAX: Final = 2
FLOWS_PENDING_MAX: Final = 256
FLOW_NICE: Final = 10


def _lower_priority() -> None:
    """Lower this worker thread's CPU priority (Linux: per thread); elsewhere a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FLOW_NICE)


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


class _FactorRefused(Exception):
    """A wrong second factor at sign-in (counted by the throttle, then a 401)."""


def _bad(message: str) -> IdentityError:
    return IdentityError(400, message, "ValidationError")


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


@dataclass(slots=True)
class _Mail:
    to: str
    subject: str
    body: str
    anti_phishing: str = ""


@dataclass(slots=True)
class _Outcome:
    mails: list[_Mail] = field(default_factory=list)


def normalize_email(email: str) -> str:
    """The registered form of an address (lower case) after ``email-validator``'s syntax and
    domain-shape checks (no DNS lookups: the venue may be offline)."""
    if not isinstance(email, str) or len(email) > EMAIL_LENGTH_MAX:
        raise _bad("Invalid email")
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise _bad(f"Invalid email: {error}") from None
    return str(checked.normalized).lower()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class IdentityPort(Protocol):
    async def register(self, email: str, password: str, origin: Origin) -> None: ...
    async def confirm_email(self, token: str, origin: Origin) -> None: ...
    async def sign_in(
        self, email: str, password: str, otp: str, origin: Origin, assertion: str = ""
    ) -> SignedIn: ...
    async def webauthn_login_options(
        self, email: str, password: str, origin: Origin
    ) -> dict[str, Any]: ...
    async def webauthn_register_options(self, user_id: int) -> dict[str, Any]: ...
    async def webauthn_register(
        self, user_id: int, credential: str, name: str, session_id: str, origin: Origin
    ) -> tuple[list[str], SignedIn]: ...
    async def session(self, token: str) -> Session | None: ...
    async def sessions(self, user_id: int) -> list[Session]: ...
    async def sign_out(self, user_id: int, session_id: str, origin: Origin) -> None: ...
    async def revoke_session(self, user_id: int, session_id: str, origin: Origin) -> bool: ...
    async def revoke_sessions(self, user_id: int, keep: str, origin: Origin) -> int: ...
    async def request_password_reset(self, email: str, origin: Origin) -> None: ...
    async def reset_password(self, token: str, password: str, origin: Origin) -> None: ...
    async def change_password(
        self, user_id: int, old: str, new: str, session_id: str, origin: Origin
    ) -> SignedIn: ...
    async def request_email_change(
        self, user_id: int, new_email: str, password: str, origin: Origin
    ) -> None: ...
    async def profile(self, user_id: int) -> Profile | None: ...
    async def set_preferences(
        self, user_id: int, preferences: dict[str, Any], overwrite: bool, origin: Origin
    ) -> Profile: ...
    async def set_profile(
        self, user_id: int, country: str | None, anti_phishing: str | None, origin: Origin
    ) -> Profile: ...
    async def request_enable_tfa(self, user_id: int) -> dict[str, str]: ...
    async def confirm_enable_tfa(
        self, user_id: int, code: str, session_id: str, origin: Origin
    ) -> tuple[list[str], SignedIn]: ...
    async def disable_tfa(
        self, user_id: int, code: str, session_id: str, origin: Origin
    ) -> SignedIn: ...
    async def check_second_factor(self, user_id: int, code: str) -> bool: ...
    async def webauthn_keys(self, user_id: int) -> list[SecurityKey]: ...
    async def register_device(
        self, user_id: int, token: str, channel: str, origin: Origin
    ) -> list[CommunicationToken]: ...
    async def webauthn_remove(
        self, user_id: int, key_id: str, code: str, session_id: str, origin: Origin
    ) -> SignedIn: ...
    async def notify(self, user_id: int, subject: str, body: str) -> None: ...
    async def family(self, user_id: int) -> list[FamilyAccount]: ...
    async def owns(self, user_id: int, account: int) -> bool: ...
    async def add_subaccount(
        self, owner_id: int, account_name: str, origin: Origin
    ) -> FamilyAccount: ...
    async def update_subaccount(
        self, owner_id: int, account: int, account_name: str, origin: Origin
    ) -> FamilyAccount: ...
    async def api_keys(self, user_id: int) -> list[ApiKeyInfo]: ...
    async def create_api_key(
        self,
        user_id: int,
        account: int,
        name: str,
        permissions: list[str],
        cidr: list[str],
        code: str,
        origin: Origin,
    ) -> tuple[str, str]: ...
    async def set_api_key_enabled(
        self, user_id: int, key_id: str, enabled: bool, code: str, origin: Origin
    ) -> ApiKeyInfo: ...
    async def delete_api_key(self, user_id: int, key_id: str, origin: Origin) -> ApiKeyInfo: ...
    async def audit(self, user_id: int, limit: int) -> list[AuditEntry]: ...


class Identity:
    """``IdentityPort`` over SQL (see the module docstring)."""

    def __init__(
        self,
        accounts: AccountsService,
        mailer: Mailer,
        server_key: MultiFernet,
        clock_ns: Callable[[], int] = time.time_ns,
        hasher: PasswordHasher | None = None,
        public_url: str = "",
    ) -> None:
        self.accounts = accounts
        self.engine = accounts.engine
        self.mailer = mailer
        self._fernet = server_key
        self._clock_ns = clock_ns
        self._hasher = hasher or default_hasher()
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self.sessions_store = SessionStore(self.engine, clock_ns)
        self.public_url = public_url.rstrip("/")
        self.keyring = Keyring(self)
        self.relying = passkeys.Relying(self.public_url)
        self._pool = ThreadPoolExecutor(
            FLOW_WORKERS_MAX, "perpetua-identity", initializer=_lower_priority
        )
        self._flows_pending = 0  # touched on the event loop only

    # --- plumbing ----------------------------------------------------------------------------

    async def _run(self, flow: Callable[..., Any], *args: Any) -> Any:
        """Run ``flow`` in the flow pool (rule 7), or refuse at once past its queue limit."""
        if self._flows_pending >= FLOWS_PENDING_MAX:
            raise IdentityError(503, "Too many account requests in progress; try again shortly")
        self._flows_pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, functools.partial(flow, *args))
        except AccountsError as error:  # a rule of the key store: the client's 400
            raise _bad(str(error)) from None
        finally:
            self._flows_pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def now_ns(self) -> int:
        return self._clock_ns()

    def _send(self, outcome: _Outcome) -> None:
        for mail in outcome.mails:
            try:
                self.mailer.send(mail.to, mail.subject, mail.body, mail.anti_phishing)
            except OSError as error:  # the act is committed; the user can ask again
                log.error("mail to user failed (%s): %s", mail.subject, type(error).__name__)

    def _issue_token(self, conn: Connection, user_id: int, purpose: str, data: str = "") -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self._clock_ns()
        held = (
            conn.execute(
                select(account_tokens.c.id)
                .where(account_tokens.c.user_id == user_id)
                .order_by(account_tokens.c.expires_ns.desc())
            )
            .scalars()
            .all()
        )
        for old in held[TOKENS_PER_USER_MAX - 1 :]:
            conn.execute(delete(account_tokens).where(account_tokens.c.id == old))
        conn.execute(
            account_tokens.insert().values(
                id=_digest(token),
                user_id=user_id,
                purpose=purpose,
                data=data,
                expires_ns=now + TOKEN_TTL_NS[purpose],
            )
        )
        return token

    def _consume_token(
        self, conn: Connection, token: str, purposes: tuple[str, ...]
    ) -> tuple[int, str, str]:
        digest = _digest(token) if isinstance(token, str) and token else ""
        row = conn.execute(select(account_tokens).where(account_tokens.c.id == digest)).first()
        if row is None or row.purpose not in purposes:
            raise _bad(MSG_TOKEN)
        conn.execute(delete(account_tokens).where(account_tokens.c.id == digest))
        if row.expires_ns < self._clock_ns():
            raise _bad(MSG_TOKEN)
        return int(row.user_id), str(row.purpose), str(row.data)

    def _mail_allowed(self, conn: Connection, user_id: int) -> bool:
        """Rule 8: may a mail that anyone can trigger go to this account now?"""
        key = [f"mail:{user_id}"]
        now = self._clock_ns()
        if throttle.wait_ns(conn, key, now, UNSOLICITED_MAILS_FREE) > 0:
            return False
        throttle.record_failure(conn, key, now)
        return True

    def _user_row(self, conn: Connection, user_id: int) -> Any:
        return conn.execute(select(users).where(users.c.id == user_id)).first()

    def _link(self, action: str, token: str) -> str:
        base = self.public_url or "the exchange"
        return (
            f"Token: {token}\n\nUse it with POST {base}/api/v1/user/{action} "
            f"(parameter token) within its validity."
        )

    def _notice(self, row: Any, subject: str, body: str) -> _Mail:
        return _Mail(
            row.email,
            f"Perpetua: {subject}",
            body + "\n\nIf this was not you, reset your password and review your "
            "sessions and API keys now.",
            row.anti_phishing,
        )

    def _new_session(self, conn: Connection, user_id: int, origin: Origin) -> SignedIn:
        token, session = self.sessions_store.create(conn, user_id, origin.ip, origin.user_agent)
        return SignedIn(token, session, user_id)

    def _rotate(self, conn: Connection, user_id: int, session_id: str, origin: Origin) -> SignedIn:
        if session_id:
            SessionStore.revoke(conn, user_id, session_id)
        return self._new_session(conn, user_id, origin)

    def _password(self, password: str, email: str) -> str:
        try:
            check_strength(password, (email,))
        except PasswordRejected as error:
            raise _bad(str(error)) from None
        return self._hasher.hash(password)

    # --- sign-up and confirmation -------------------------------------------------------------

    async def register(self, email: str, password: str, origin: Origin) -> None:
        await self._run(self._register, email, password, origin)

    def _register(self, email: str, password: str, origin: Origin) -> None:
        address = normalize_email(email)
        password_hash = self._password(password, address)
        outcome = _Outcome()
        for _attempt in range(USER_ID_RETRIES_MAX):
            try:
                with self.engine.begin() as conn:
                    self._register_in(conn, address, password_hash, origin, outcome)
                break
            except IntegrityError:  # a concurrent sign-up took the id or the address
                outcome.mails.clear()
        self._send(outcome)

    def _register_in(
        self, conn: Connection, address: str, password_hash: str, origin: Origin, outcome: _Outcome
    ) -> None:
        now = self._clock_ns()
        row = conn.execute(select(users).where(users.c.email == address)).first()
        if row is not None:  # rule 2: same answer; the owner hears about it
            if not self._mail_allowed(conn, row.id):
                return
            if row.email_confirmed:
                outcome.mails.append(
                    self._notice(
                        row,
                        "sign-up attempt",
                        "Someone tried to sign up with this address, "
                        "which already has an account. To recover it, ask for a password reset.",
                    )
                )
            else:
                token = self._issue_token(conn, row.id, "confirm")
                outcome.mails.append(
                    _Mail(
                        row.email, "Perpetua: confirm your email", self._link("confirmEmail", token)
                    )
                )
            return
        user_id = int(conn.execute(select(func.coalesce(func.max(users.c.id), 0))).scalar_one()) + 1
        conn.execute(
            users.insert().values(
                id=user_id,
                email=address,
                password_hash=password_hash,
                created_ns=now,
                enabled=True,
                email_confirmed=False,
                updated_ns=now,
            )
        )
        token = self._issue_token(conn, user_id, "confirm")
        record(conn, now, user_id, ACTOR_USER, "register", origin.ip)
        outcome.mails.append(
            _Mail(address, "Perpetua: confirm your email", self._link("confirmEmail", token))
        )

    async def confirm_email(self, token: str, origin: Origin) -> None:
        await self._run(self._confirm_email, token, origin)

    def _confirm_email(self, token: str, origin: Origin) -> None:
        outcome = _Outcome()
        with self.engine.begin() as conn:
            user_id, purpose, data = self._consume_token(conn, token, ("confirm", "email"))
            row = self._user_row(conn, user_id)
            now = self._clock_ns()
            if purpose == "confirm":
                conn.execute(
                    update(users)
                    .where(users.c.id == user_id)
                    .values(email_confirmed=True, updated_ns=now)
                )
                record(conn, now, user_id, ACTOR_USER, "email_confirmed", origin.ip)
            else:
                if conn.execute(select(users.c.id).where(users.c.email == data)).first():
                    raise _bad(MSG_TOKEN)  # taken meanwhile
                conn.execute(
                    update(users)
                    .where(users.c.id == user_id)
                    .values(email=data, email_confirmed=True, updated_ns=now)
                )
                record(conn, now, user_id, ACTOR_USER, "email_changed", origin.ip)
                outcome.mails.append(
                    self._notice(row, "email changed", f"The account's email is now {data}.")
                )
        self.accounts._forget_all()
        self._send(outcome)

    # --- sign-in -----------------------------------------------------------------------------

    async def sign_in(
        self, email: str, password: str, otp: str, origin: Origin, assertion: str = ""
    ) -> SignedIn:
        return await self._run(self._sign_in, email, password, otp, origin, assertion)  # type: ignore[no-any-return]

    def _password_checked(
        self, email: str, password: str, origin: Origin
    ) -> tuple[Any, list[str], bool]:
        """The user row of a correct email and password (throttled, rule 2), the throttle
        keys and whether the address is known for the account."""
        address = email.strip().lower() if isinstance(email, str) else ""
        now = self._clock_ns()
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.email == address)).first()
            known = (
                row is not None
                and conn.execute(
                    select(known_ips.c.ip).where(
                        known_ips.c.user_id == row.id, known_ips.c.ip == origin.ip
                    )
                ).first()
                is not None
            )
        keys = [throttle.ip_key(origin.ip)]
        if not known:
            keys.append(throttle.email_key(address))
        with self.engine.connect() as conn:
            wait = throttle.wait_ns(conn, keys, now)
        if wait > 0:
            seconds = -(-wait // 10**9)
            raise IdentityError(
                429,
                f"Too many sign-in attempts; try again in {seconds} s",
                "RateLimitError",
                retry_after_s=seconds,
            )
        good = verify_hash(
            self._hasher,
            row.password_hash if row is not None else self._dummy_hash,
            password if isinstance(password, str) else "",
        )
        if row is None or not good:
            self._failed(keys, row, origin, "password")
            raise IdentityError(401, MSG_SIGN_IN_FAILED)
        if not row.enabled:
            raise IdentityError(403, "This account is locked; contact the operator")
        if not row.email_confirmed:
            raise IdentityError(403, "Confirm your email address first (see the mail we sent)")
        return row, keys, known

    def _sign_in(
        self, email: str, password: str, otp: str, origin: Origin, assertion: str = ""
    ) -> SignedIn:
        row, keys, known = self._password_checked(email, password, origin)
        challenge = self._take_challenge(row.id) if assertion else None
        outcome = _Outcome()
        try:
            with self.engine.begin() as conn:
                left = self._second_factor(conn, row, otp, origin, outcome, (assertion, challenge))
                signed = self._sign_in_commit(conn, row, known, origin, outcome)
        except _FactorRefused as refused:  # counted outside the rolled-back transaction
            self._failed(keys, row, origin, str(refused))
            raise IdentityError(401, MSG_TFA_INVALID) from None
        if self._hasher.check_needs_rehash(row.password_hash):
            with self.engine.begin() as conn:
                conn.execute(
                    update(users)
                    .where(users.c.id == row.id)
                    .values(password_hash=self._hasher.hash(password))
                )
        self._send(outcome)
        return SignedIn(signed.token, signed.session, row.id, left)

    def _sign_in_commit(
        self, conn: Connection, row: Any, known: bool, origin: Origin, outcome: _Outcome
    ) -> SignedIn:
        now = self._clock_ns()
        signed = self._new_session(conn, row.id, origin)
        throttle.clear(conn, [throttle.ip_key(origin.ip), throttle.email_key(row.email)])
        if not known:
            conn.execute(known_ips.insert().values(user_id=row.id, ip=origin.ip[:64], first_ns=now))
            outcome.mails.append(
                self._notice(
                    row,
                    "sign-in from a new address",
                    f"Your account was signed in from {origin.ip} ({origin.user_agent}).",
                )
            )
        record(
            conn,
            now,
            row.id,
            ACTOR_USER,
            "sign_in",
            origin.ip,
            {"session": signed.session.id[:12], "tfa": bool(row.tfa_enabled)},
        )
        return signed

    def _failed(self, keys: list[str], row: Any, origin: Origin, why: str) -> None:
        with self.engine.begin() as conn:
            throttle.record_failure(conn, keys, self._clock_ns())
            record(
                conn,
                self._clock_ns(),
                row.id if row is not None else None,
                ACTOR_USER,
                "sign_in_failed",
                origin.ip,
                {"why": why},
            )

    def _second_factor(
        self,
        conn: Connection,
        row: Any,
        otp: str,
        origin: Origin,
        outcome: _Outcome,
        passkey: tuple[str, bytes | None] = ("", None),
    ) -> int | None:
        """Checks the security key, TOTP or recovery code of a user with a second factor; the
        number of recovery codes left when one was used."""
        keys = list(
            conn.execute(
                select(webauthn_credentials).where(webauthn_credentials.c.user_id == row.id)
            ).all()
        )
        if not row.tfa_enabled and not keys:
            return None
        assertion, challenge = passkey
        if assertion and keys:
            self._accept_passkey(conn, keys, assertion, challenge)
            return None
        code = (otp or "").strip() if isinstance(otp, str) else ""
        if not code:
            raise IdentityError(401, MSG_TFA_REQUIRED, "TFARequired")
        if "-" in code:  # a recovery code
            used = conn.execute(
                delete(recovery_codes).where(
                    recovery_codes.c.user_id == row.id,
                    recovery_codes.c.code_hash == totp.recovery_digest(code),
                )
            ).rowcount
            if not used:
                raise _FactorRefused("recovery code")
            left = int(
                conn.execute(
                    select(func.count())
                    .select_from(recovery_codes)
                    .where(recovery_codes.c.user_id == row.id)
                ).scalar_one()
            )
            record(
                conn,
                self._clock_ns(),
                row.id,
                ACTOR_USER,
                "recovery_code_used",
                origin.ip,
                {"left": left},
            )
            outcome.mails.append(
                self._notice(row, "recovery code used", f"A recovery code was used; {left} remain.")
            )
            return left
        if not self._accept_totp(conn, row, code):
            raise _FactorRefused("totp")
        return None

    def _accept_passkey(
        self, conn: Connection, keys: list[Any], assertion: str, challenge: bytes | None
    ) -> None:
        try:
            wanted = passkeys.credential_id_of(assertion)
        except ValueError:
            raise _FactorRefused("webauthn") from None
        key = next((k for k in keys if k.id == wanted), None)
        if key is None or challenge is None:
            raise _FactorRefused("webauthn")
        try:
            count = passkeys.verify_assertion(
                self.relying, assertion, challenge, key.public_key, key.sign_count
            )
        except ValueError:
            raise _FactorRefused("webauthn") from None
        conn.execute(
            update(webauthn_credentials)
            .where(webauthn_credentials.c.id == key.id)
            .values(sign_count=count)
        )

    def _take_challenge(self, user_id: int) -> bytes | None:
        """The user's outstanding WebAuthn challenge, consumed (single use even if the
        ceremony then fails)."""
        now = self._clock_ns()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(account_tokens)
                .where(account_tokens.c.user_id == user_id, account_tokens.c.purpose == "webauthn")
                .order_by(account_tokens.c.expires_ns.desc())
            ).first()
            conn.execute(
                delete(account_tokens).where(
                    account_tokens.c.user_id == user_id, account_tokens.c.purpose == "webauthn"
                )
            )
        if row is None or row.expires_ns < now:
            return None
        return passkeys.challenge_bytes(row.data)

    def _new_challenge(self, conn: Connection, user_id: int) -> bytes:
        challenge = passkeys.new_challenge()
        conn.execute(
            delete(account_tokens).where(
                account_tokens.c.user_id == user_id, account_tokens.c.purpose == "webauthn"
            )
        )
        self._issue_token(conn, user_id, "webauthn", passkeys.challenge_text(challenge))
        return challenge

    async def webauthn_login_options(
        self, email: str, password: str, origin: Origin
    ) -> dict[str, Any]:
        return await self._run(self._webauthn_login_options, email, password, origin)  # type: ignore[no-any-return]

    def _webauthn_login_options(self, email: str, password: str, origin: Origin) -> dict[str, Any]:
        row, _keys, _known = self._password_checked(email, password, origin)
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    select(webauthn_credentials.c.id).where(
                        webauthn_credentials.c.user_id == row.id
                    )
                ).scalars()
            )
            if not ids:
                raise _bad("No security key is registered for this account")
            challenge = self._new_challenge(conn, row.id)
        return passkeys.authentication_options(self.relying, challenge, ids)

    async def webauthn_register_options(self, user_id: int) -> dict[str, Any]:
        return await self._run(self._webauthn_register_options, user_id)  # type: ignore[no-any-return]

    def _webauthn_register_options(self, user_id: int) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = self._user_row(conn, user_id)
            ids = list(
                conn.execute(
                    select(webauthn_credentials.c.id).where(
                        webauthn_credentials.c.user_id == user_id
                    )
                ).scalars()
            )
            if len(ids) >= passkeys.CREDENTIALS_PER_USER_MAX:
                raise _bad(f"At most {passkeys.CREDENTIALS_PER_USER_MAX} security keys")
            challenge = self._new_challenge(conn, user_id)
        return passkeys.registration_options(self.relying, user_id, row.email, challenge, ids)

    async def webauthn_register(
        self, user_id: int, credential: str, name: str, session_id: str, origin: Origin
    ) -> tuple[list[str], SignedIn]:
        return await self._run(  # type: ignore[no-any-return]
            self._webauthn_register,
            user_id,
            credential,
            name,
            session_id,
            origin,
        )

    def _webauthn_register(
        self, user_id: int, credential: str, name: str, session_id: str, origin: Origin
    ) -> tuple[list[str], SignedIn]:
        challenge = self._take_challenge(user_id)
        if challenge is None:
            raise _bad("Start with POST /user/webauthn/registerOptions (or it expired)")
        try:
            key_id, public_key, count = passkeys.verify_attestation(
                self.relying, credential, challenge
            )
        except ValueError as error:
            raise _bad(str(error)) from None
        outcome = _Outcome()
        with self.engine.begin() as conn:
            row = self._user_row(conn, user_id)
            conn.execute(
                webauthn_credentials.insert().values(
                    id=key_id,
                    user_id=user_id,
                    public_key=public_key,
                    sign_count=count,
                    name=(name or "security key")[:64],
                    created_ns=self._clock_ns(),
                )
            )
            codes: list[str] = []
            held = conn.execute(
                select(func.count())
                .select_from(recovery_codes)
                .where(recovery_codes.c.user_id == user_id)
            ).scalar_one()
            if not held:  # the first second factor: recovery codes come with it
                codes = totp.new_recovery_codes()
                conn.execute(
                    recovery_codes.insert(),
                    [{"user_id": user_id, "code_hash": totp.recovery_digest(c)} for c in codes],
                )
            signed = self._rotate(conn, user_id, session_id, origin)
            record(
                conn,
                self._clock_ns(),
                user_id,
                ACTOR_USER,
                "tfa_enabled",
                origin.ip,
                {"kind": "webauthn", "key": key_id[:16]},
            )
            outcome.mails.append(
                self._notice(
                    row,
                    "security key added",
                    f"A security key ({name or 'unnamed'}) was added as a second factor.",
                )
            )
        self._send(outcome)
        return codes, signed

    def _accept_totp(self, conn: Connection, row: Any, code: str) -> bool:
        if not row.tfa_secret_encrypted:
            return False
        secret = self._fernet.decrypt(row.tfa_secret_encrypted.encode()).decode()
        step = totp.accepted_step(secret, code, self._clock_ns() // 10**9, row.tfa_last_step)
        if step is None:
            return False
        return bool(
            conn.execute(
                update(users)
                .where(users.c.id == row.id, users.c.tfa_last_step < step)
                .values(tfa_last_step=step)
            ).rowcount
        )

    # --- sessions ----------------------------------------------------------------------------

    async def session(self, token: str) -> Session | None:
        """The live session of a cookie (not queued behind hashing: a plain worker thread)."""
        return await asyncio.to_thread(self._session, token)

    def _session(self, token: str) -> Session | None:
        found = self.sessions_store.lookup(token)
        if found is None:
            return None
        profile = self._profile(found.user_id)
        return found if profile is not None and profile.enabled else None

    async def sessions(self, user_id: int) -> list[Session]:
        return await self._run(self.sessions_store.list, user_id)  # type: ignore[no-any-return]

    async def sign_out(self, user_id: int, session_id: str, origin: Origin) -> None:
        await self._run(self._revoke, user_id, session_id, origin, "sign_out")

    async def revoke_session(self, user_id: int, session_id: str, origin: Origin) -> bool:
        return await self._run(  # type: ignore[no-any-return]
            self._revoke,
            user_id,
            session_id,
            origin,
            "session_revoked",
        )

    def _revoke(self, user_id: int, session_id: str, origin: Origin, action: str) -> bool:
        with self.engine.begin() as conn:
            done = SessionStore.revoke(conn, user_id, session_id)
            if done:
                record(
                    conn,
                    self._clock_ns(),
                    user_id,
                    ACTOR_USER,
                    action,
                    origin.ip,
                    {"session": session_id[:12]},
                )
        return done

    async def revoke_sessions(self, user_id: int, keep: str, origin: Origin) -> int:
        return await self._run(self._revoke_all, user_id, keep, origin)  # type: ignore[no-any-return]

    def _revoke_all(self, user_id: int, keep: str, origin: Origin) -> int:
        with self.engine.begin() as conn:
            count = SessionStore.revoke_all(conn, user_id, keep)
            record(
                conn,
                self._clock_ns(),
                user_id,
                ACTOR_USER,
                "sessions_revoked",
                origin.ip,
                {"count": count},
            )
        return count

    # --- passwords and email -----------------------------------------------------------------

    async def request_password_reset(self, email: str, origin: Origin) -> None:
        await self._run(self._request_reset, email, origin)

    def _request_reset(self, email: str, origin: Origin) -> None:
        address = email.strip().lower() if isinstance(email, str) else ""
        outcome = _Outcome()
        with self.engine.begin() as conn:
            row = conn.execute(select(users).where(users.c.email == address)).first()
            if row is not None and row.enabled and self._mail_allowed(conn, row.id):
                token = self._issue_token(conn, row.id, "reset")
                record(
                    conn,
                    self._clock_ns(),
                    row.id,
                    ACTOR_USER,
                    "password_reset_requested",
                    origin.ip,
                )
                outcome.mails.append(
                    _Mail(
                        row.email,
                        "Perpetua: reset your password",
                        self._link("resetPassword", token) + f"\n\nRequested from {origin.ip}.",
                        row.anti_phishing,
                    )
                )
        self._send(outcome)

    async def reset_password(self, token: str, password: str, origin: Origin) -> None:
        await self._run(self._reset_password, token, password, origin)

    def _reset_password(self, token: str, password: str, origin: Origin) -> None:
        outcome = _Outcome()
        with self.engine.begin() as conn:
            user_id, _purpose, _data = self._consume_token(conn, token, ("reset",))
            row = self._user_row(conn, user_id)
            password_hash = self._password(password, row.email)
            now = self._clock_ns()
            # the mail proved the address: a reset also confirms it
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, email_confirmed=True, updated_ns=now)
            )
            SessionStore.revoke_all(conn, user_id)
            record(conn, now, user_id, ACTOR_USER, "password_reset", origin.ip)
            outcome.mails.append(
                self._notice(row, "password reset", "Your password was reset; every session ended.")
            )
        self._send(outcome)

    async def change_password(
        self, user_id: int, old: str, new: str, session_id: str, origin: Origin
    ) -> SignedIn:
        return await self._run(  # type: ignore[no-any-return]
            self._change_password,
            user_id,
            old,
            new,
            session_id,
            origin,
        )

    def _change_password(
        self, user_id: int, old: str, new: str, session_id: str, origin: Origin
    ) -> SignedIn:
        outcome = _Outcome()
        with self.engine.connect() as conn:
            row = self._user_row(conn, user_id)
        if row is None or not verify_hash(self._hasher, row.password_hash, old):
            raise IdentityError(401, "Invalid password")
        password_hash = self._password(new, row.email)
        with self.engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, updated_ns=self._clock_ns())
            )
            SessionStore.revoke_all(conn, user_id)
            signed = self._new_session(conn, user_id, origin)
            record(conn, self._clock_ns(), user_id, ACTOR_USER, "password_changed", origin.ip)
            outcome.mails.append(
                self._notice(row, "password changed", "Your password was changed.")
            )
        self._send(outcome)
        return signed

    async def request_email_change(
        self, user_id: int, new_email: str, password: str, origin: Origin
    ) -> None:
        await self._run(self._request_email_change, user_id, new_email, password, origin)

    def _request_email_change(
        self, user_id: int, new_email: str, password: str, origin: Origin
    ) -> None:
        address = normalize_email(new_email)
        with self.engine.connect() as conn:
            row = self._user_row(conn, user_id)
        if row is None or not verify_hash(self._hasher, row.password_hash, password):
            raise IdentityError(401, "Invalid password")
        outcome = _Outcome()
        with self.engine.begin() as conn:
            taken = conn.execute(select(users.c.id).where(users.c.email == address)).first()
            if taken is None:  # rule 2: a taken address gets the same answer and no token
                token = self._issue_token(conn, user_id, "email", address)
                outcome.mails.append(
                    _Mail(
                        address,
                        "Perpetua: confirm your new email",
                        self._link("confirmEmail", token),
                        row.anti_phishing,
                    )
                )
            record(conn, self._clock_ns(), user_id, ACTOR_USER, "email_change_requested", origin.ip)
            outcome.mails.append(
                self._notice(
                    row, "email change requested", f"A change of email to {address} was requested."
                )
            )
        self._send(outcome)

    # --- profile ------------------------------------------------------------------------------

    async def profile(self, user_id: int) -> Profile | None:
        return await self._run(self._profile, user_id)  # type: ignore[no-any-return]

    def _profile(self, user_id: int) -> Profile | None:
        with self.engine.connect() as conn:
            row = self._user_row(conn, user_id)
            held = conn.execute(
                select(func.count())
                .select_from(webauthn_credentials)
                .where(webauthn_credentials.c.user_id == user_id)
            ).scalar_one()
        if row is None:
            return None
        return Profile(
            row.id,
            row.email,
            row.created_ns,
            row.updated_ns or row.created_ns,
            bool(row.enabled),
            bool(row.email_confirmed),
            row.country,
            json.loads(row.preferences or "{}"),
            row.anti_phishing,
            bool(row.tfa_enabled),
            row.owner_id,
            row.account_name,
            int(held),
        )

    async def set_preferences(
        self, user_id: int, preferences: dict[str, Any], overwrite: bool, origin: Origin
    ) -> Profile:
        return await self._run(  # type: ignore[no-any-return]
            self._set_preferences,
            user_id,
            preferences,
            overwrite,
            origin,
        )

    def _set_preferences(
        self, user_id: int, preferences: dict[str, Any], overwrite: bool, origin: Origin
    ) -> Profile:
        if not isinstance(preferences, dict):
            raise _bad("prefs must be a JSON object")
        with self.engine.begin() as conn:
            row = self._user_row(conn, user_id)
            merged = (
                dict(preferences)
                if overwrite
                else {**json.loads(row.preferences or "{}"), **preferences}
            )
            text = json.dumps(merged, sort_keys=True)
            if len(text.encode()) > PREFERENCES_BYTES_MAX:
                raise _bad(f"prefs larger than {PREFERENCES_BYTES_MAX} bytes")
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(preferences=text, updated_ns=self._clock_ns())
            )
            record(
                conn,
                self._clock_ns(),
                user_id,
                ACTOR_USER,
                "preferences_changed",
                origin.ip,
                {"keys": sorted(preferences)[:20]},
            )
        profile = self._profile(user_id)
        assert profile is not None
        return profile

    async def set_profile(
        self, user_id: int, country: str | None, anti_phishing: str | None, origin: Origin
    ) -> Profile:
        return await self._run(self._set_profile, user_id, country, anti_phishing, origin)  # type: ignore[no-any-return]

    def _set_profile(
        self, user_id: int, country: str | None, anti_phishing: str | None, origin: Origin
    ) -> Profile:
        values: dict[str, Any] = {}
        if country is not None:
            code = country.strip().upper()
            if code and not (len(code) in (2, 3) and code.isascii() and code.isalpha()):
                raise _bad("Invalid country: an ISO 3166 code such as DE or DEU")
            values["country"] = code
        if anti_phishing is not None:
            phrase = anti_phishing.strip()
            if len(phrase) > ANTI_PHISHING_LENGTH_MAX or not phrase.isprintable():
                raise _bad(
                    f"Anti-phishing phrase: printable, at most "
                    f"{ANTI_PHISHING_LENGTH_MAX} characters"
                )
            values["anti_phishing"] = phrase
        with self.engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(updated_ns=self._clock_ns(), **values)
            )
            record(
                conn,
                self._clock_ns(),
                user_id,
                ACTOR_USER,
                "profile_changed",
                origin.ip,
                {"fields": sorted(values)},
            )
        profile = self._profile(user_id)
        assert profile is not None
        return profile

    # --- TOTP ---------------------------------------------------------------------------------

    async def request_enable_tfa(self, user_id: int) -> dict[str, str]:
        return await self._run(self._request_enable_tfa, user_id)  # type: ignore[no-any-return]

    def _request_enable_tfa(self, user_id: int) -> dict[str, str]:
        with self.engine.begin() as conn:
            row = self._user_row(conn, user_id)
            if row.tfa_enabled:
                raise _bad("Two-factor authentication is already enabled")
            secret = totp.new_secret()
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(tfa_secret_encrypted=self._fernet.encrypt(secret.encode()).decode())
            )
        return totp.provisioning(secret, row.email)

    async def confirm_enable_tfa(
        self, user_id: int, code: str, session_id: str, origin: Origin
    ) -> tuple[list[str], SignedIn]:
        return await self._run(self._confirm_enable_tfa, user_id, code, session_id, origin)  # type: ignore[no-any-return]

    def _confirm_enable_tfa(
        self, user_id: int, code: str, session_id: str, origin: Origin
    ) -> tuple[list[str], SignedIn]:
        outcome = _Outcome()
        codes = totp.new_recovery_codes()
        with self.engine.begin() as conn:
            row = self._user_row(conn, user_id)
            if row.tfa_enabled or not row.tfa_secret_encrypted:
                raise _bad("Request enrolment first (POST /user/requestEnableTFA)")
            if not self._accept_totp(conn, row, code or ""):
                raise _bad(MSG_TFA_INVALID)
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(tfa_enabled=True, updated_ns=self._clock_ns())
            )
            conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            conn.execute(
                recovery_codes.insert(),
                [{"user_id": user_id, "code_hash": totp.recovery_digest(c)} for c in codes],
            )
            signed = self._rotate(conn, user_id, session_id, origin)
            record(conn, self._clock_ns(), user_id, ACTOR_USER, "tfa_enabled", origin.ip)
            outcome.mails.append(
                self._notice(
                    row,
                    "two-factor authentication enabled",
                    "TOTP two-factor authentication is now on.",
                )
            )
        self._send(outcome)
        return codes, signed

    async def disable_tfa(
        self, user_id: int, code: str, session_id: str, origin: Origin
    ) -> SignedIn:
        return await self._run(self._disable_tfa, user_id, code, session_id, origin)  # type: ignore[no-any-return]

    def _disable_tfa(self, user_id: int, code: str, session_id: str, origin: Origin) -> SignedIn:
        outcome = _Outcome()
        with self.engine.begin() as conn:
            row = self._user_row(conn, user_id)
            if not row.tfa_enabled:
                raise _bad("Two-factor authentication is not enabled")
            if not self._accept_totp(conn, row, code or ""):
                raise _bad(MSG_TFA_INVALID)
            self._clear_tfa(conn, user_id)
            signed = self._rotate(conn, user_id, session_id, origin)
            record(conn, self._clock_ns(), user_id, ACTOR_USER, "tfa_disabled", origin.ip)
            outcome.mails.append(
                self._notice(
                    row,
                    "two-factor authentication disabled",
                    "TOTP two-factor authentication is now off.",
                )
            )
        self._send(outcome)
        return signed

    def _clear_tfa(self, conn: Connection, user_id: int, passkeys_too: bool = False) -> None:
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(tfa_enabled=False, tfa_secret_encrypted=None, updated_ns=self._clock_ns())
        )
        has_keys = (
            conn.execute(
                select(webauthn_credentials.c.id).where(webauthn_credentials.c.user_id == user_id)
            ).first()
            is not None
        )
        if passkeys_too:
            conn.execute(
                delete(webauthn_credentials).where(webauthn_credentials.c.user_id == user_id)
            )
        if passkeys_too or not has_keys:  # codes stay while a security key remains
            conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))

    async def register_device(
        self, user_id: int, token: str, channel: str, origin: Origin
    ) -> list[CommunicationToken]:
        return await self._run(  # type: ignore[no-any-return]
            self._register_device, user_id, token, channel, origin
        )

    def _register_device(
        self, user_id: int, token: str, channel: str, origin: Origin
    ) -> list[CommunicationToken]:
        """A mobile client's push token (``services.devices``), audited without the token."""
        with self.engine.begin() as conn:
            if self._user_row(conn, user_id) is None:
                raise IdentityError(404, "No such user")
            try:
                held = register_device(conn, user_id, token, channel, self._clock_ns())
            except DeviceRefused as refused:
                raise _bad(str(refused)) from None
            record(
                conn,
                self._clock_ns(),
                user_id,
                ACTOR_USER,
                "device_registered",
                origin.ip,
                {"channel": channel},
            )
        return held

    async def webauthn_keys(self, user_id: int) -> list[SecurityKey]:
        return await self._run(self._webauthn_keys, user_id)  # type: ignore[no-any-return]

    def _webauthn_keys(self, user_id: int) -> list[SecurityKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(webauthn_credentials)
                .where(webauthn_credentials.c.user_id == user_id)
                .order_by(webauthn_credentials.c.created_ns)
            ).all()
        return [SecurityKey(r.id, r.name, r.created_ns) for r in rows]

    async def webauthn_remove(
        self, user_id: int, key_id: str, code: str, session_id: str, origin: Origin
    ) -> SignedIn:
        return await self._run(  # type: ignore[no-any-return]
            self._webauthn_remove, user_id, key_id, code, session_id, origin
        )

    def _webauthn_remove(
        self, user_id: int, key_id: str, code: str, session_id: str, origin: Origin
    ) -> SignedIn:
        """Remove one security key, proven by a TOTP or recovery code (a lost key cannot sign
        its own removal). The last second factor takes the recovery codes with it, as turning
        TOTP off does."""
        outcome = _Outcome()
        with self.engine.begin() as conn:
            row = self._user_row(conn, user_id)
            key = conn.execute(
                select(webauthn_credentials).where(
                    webauthn_credentials.c.id == key_id,
                    webauthn_credentials.c.user_id == user_id,
                )
            ).first()
            if key is None:
                raise IdentityError(404, "No such security key")
            if not (code or "").strip():
                raise IdentityError(401, MSG_TFA_REQUIRED, "TFARequired")
            try:
                self._second_factor(conn, row, code, origin, outcome)
            except _FactorRefused:
                raise _bad(MSG_TFA_INVALID) from None
            conn.execute(delete(webauthn_credentials).where(webauthn_credentials.c.id == key_id))
            others = conn.execute(
                select(webauthn_credentials.c.id).where(webauthn_credentials.c.user_id == user_id)
            ).first()
            if others is None and not row.tfa_enabled:
                conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            signed = self._rotate(conn, user_id, session_id, origin)
            record(
                conn,
                self._clock_ns(),
                user_id,
                ACTOR_USER,
                "webauthn_removed",
                origin.ip,
                {"key": key_id[:16]},
            )
            outcome.mails.append(
                self._notice(
                    row, "security key removed", f"The security key {key.name} was removed."
                )
            )
        self._send(outcome)
        return signed

    async def check_second_factor(self, user_id: int, code: str) -> bool:
        return await self._run(self.second_factor_ok, user_id, code)  # type: ignore[no-any-return]

    def second_factor_ok(self, user_id: int, code: str) -> bool:
        """A current TOTP code of a user with TOTP on (consumed: not reusable)."""
        with self.engine.begin() as conn:
            row = self._user_row(conn, user_id)
            return bool(
                row is not None and row.tfa_enabled and self._accept_totp(conn, row, code or "")
            )

    async def notify(self, user_id: int, subject: str, body: str) -> None:
        await self._run(self.send_notice, user_id, subject, body)

    # --- API keys and sub-accounts (``keyring``) ----------------------------------------------

    async def family(self, user_id: int) -> list[FamilyAccount]:
        return await self._run(self.keyring.family, user_id)  # type: ignore[no-any-return]

    async def owns(self, user_id: int, account: int) -> bool:
        return await self._run(self.keyring.owns, user_id, account)  # type: ignore[no-any-return]

    async def add_subaccount(
        self, owner_id: int, account_name: str, origin: Origin
    ) -> FamilyAccount:
        return await self._run(  # type: ignore[no-any-return]
            self.keyring.add_subaccount,
            owner_id,
            account_name,
            origin.ip,
        )

    async def update_subaccount(
        self, owner_id: int, account: int, account_name: str, origin: Origin
    ) -> FamilyAccount:
        return await self._run(  # type: ignore[no-any-return]
            self.keyring.update_subaccount,
            owner_id,
            account,
            account_name,
            origin.ip,
        )

    async def api_keys(self, user_id: int) -> list[ApiKeyInfo]:
        return await self._run(self.keyring.keys, user_id)  # type: ignore[no-any-return]

    async def create_api_key(
        self,
        user_id: int,
        account: int,
        name: str,
        permissions: list[str],
        cidr: list[str],
        code: str,
        origin: Origin,
    ) -> tuple[str, str]:
        return await self._run(  # type: ignore[no-any-return]
            self.keyring.create_key,
            user_id,
            account,
            name,
            permissions,
            cidr,
            code,
            origin.ip,
        )

    async def set_api_key_enabled(
        self, user_id: int, key_id: str, enabled: bool, code: str, origin: Origin
    ) -> ApiKeyInfo:
        return await self._run(  # type: ignore[no-any-return]
            self.keyring.set_key_enabled,
            user_id,
            key_id,
            enabled,
            code,
            origin.ip,
        )

    async def delete_api_key(self, user_id: int, key_id: str, origin: Origin) -> ApiKeyInfo:
        return await self._run(self.keyring.delete_key, user_id, key_id, origin.ip)  # type: ignore[no-any-return]

    def send_notice(self, user_id: int, subject: str, body: str) -> None:
        with self.engine.connect() as conn:
            row = self._user_row(conn, user_id)
        if row is not None:
            self._send(_Outcome([self._notice(row, subject, body)]))

    async def audit(self, user_id: int, limit: int) -> list[AuditEntry]:
        return await self._run(read_audit, self.engine, user_id, limit)  # type: ignore[no-any-return]

    # --- operator (sync: the admin CLI) --------------------------------------------------------

    def operator_action(self, user_id: int, action: str, operator: str, reason: str) -> None:
        """``locked``, ``unlocked``, ``forced_sign_out`` or ``tfa_reset``, recorded with who
        and why; the operator has re-checked the owner's identity for ``tfa_reset``."""
        if not operator.strip() or not reason.strip():
            raise _bad("operator and reason are required")
        outcome = _Outcome()
        with self.engine.begin() as conn:
            row = self._user_row(conn, user_id)
            if row is None:
                raise _bad(f"No user {user_id}")
            if action in ("locked", "unlocked"):  # the owner's sub-accounts with it
                conn.execute(
                    update(users)
                    .where((users.c.id == user_id) | (users.c.owner_id == user_id))
                    .values(enabled=action == "unlocked", updated_ns=self._clock_ns())
                )
            if action in ("locked", "forced_sign_out", "tfa_reset"):
                SessionStore.revoke_all(conn, user_id)
            if action == "tfa_reset":
                self._clear_tfa(conn, user_id, passkeys_too=True)
                outcome.mails.append(
                    self._notice(
                        row,
                        "two-factor authentication reset",
                        "The operator reset your two-factor authentication after checking your "
                        "identity; enrol again now.",
                    )
                )
            elif action not in ("locked", "unlocked", "forced_sign_out"):
                raise _bad(f"Unknown operator action {action!r}")
            record(
                conn,
                self._clock_ns(),
                user_id,
                f"operator:{operator.strip()}",
                action,
                "",
                {"reason": reason.strip()[:500]},
            )
        self.accounts._forget_all()
        self._send(outcome)


def session_digest(token: str) -> str:
    return token_digest(token)


class OpenedIdentity(NamedTuple):
    identity: Identity
    outbox: Outbox | None  # the embedded outbox, started: stop it after closing the identity
    mail_queue: MailQueue  # failed mail waiting for a retry: run ``mail_queue.step`` periodically


def open_identity(
    accounts: AccountsService,
    data_dir: str | Path,
    public_url: str = "",
    smtp_url: str | None = None,
) -> OpenedIdentity:
    """The identity service over ``accounts``: mail goes to ``smtp_url`` (default
    ``PERPETUA_SMTP_URL``), else to an embedded ``Outbox`` in the data dir, which is started
    here; a message the relay refuses waits in the ``MailQueue`` (``services.mail_queue``)."""
    url = smtp_url if smtp_url is not None else os.environ.get(SMTP_URL_ENV, "")
    outbox = None
    if url:
        config = mail_config(url, os.environ.get(MAIL_FROM_ENV) or DEFAULT_SENDER)
    else:
        outbox = Outbox(data_dir)
        config = outbox.start()
    queue = MailQueue(accounts.engine, SmtpMailer(config), accounts.server_key)
    identity = Identity(accounts, RetryingMailer(queue), accounts.server_key, public_url=public_url)
    return OpenedIdentity(identity, outbox, queue)
