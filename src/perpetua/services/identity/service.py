"""``Identity``: the ``IdentityPort`` the gateway calls, a thin facade over the flows.

1. Each call runs one flow (``registration``, ``sign_in``, ``second_factor``,
   ``security_keys``, ``browser_sessions``, ``credentials``, ``profile``, the keyring) in a
   worker thread of the flow pool: nothing here runs SQL, argon2 or SMTP on the event loop.
2. Hashing does not run in the flow threads either: they hand each argon2 hash or check to
   the hash pool (``services.hash_pool``: ``hash_workers`` processes at SCHED_IDLE)
   and wait without holding the GIL, so a burst of sign-ins cannot stall the event loop or
   the sequencer (measured: ``bench/bench_accounts.py``, docs/decisions.md). Flow threads
   run at normal priority: a lowered thread preempted while holding the GIL would stall the
   loop instead.
3. At most ``FLOW_WORKERS_MAX`` flows run at once; past ``FLOWS_PENDING_MAX`` waiting ones a
   request gets 503 at once, as it does when no hash worker is free in time. Session lookups
   (every cookie request) skip this queue: a plain worker thread, no hashing.
4. A rule of the key store (``AccountsError``) becomes the client's 400.
"""

import asyncio
import functools
import os
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeVar

from argon2 import PasswordHasher
from cryptography.fernet import MultiFernet
from sqlalchemy import Connection

from perpetua.services.accounts import AccountsError, AccountsService, ApiKeyInfo
from perpetua.services.audit import AuditEntry, read_audit
from perpetua.services.devices import CommunicationToken
from perpetua.services.hash_pool import (
    HASH_IDLE_DEFAULT,
    HASH_NICE,
    HASH_WORKERS_DEFAULT,
    Hashing,
    HashPool,
    HashUnavailable,
    InlineHashing,
)
from perpetua.services.identity import (
    browser_sessions,
    credentials,
    notices,
    operator,
    profile,
    registration,
    second_factor,
    security_keys,
    sign_in,
)
from perpetua.services.identity.context import Context
from perpetua.services.identity.values import (
    IdentityError,
    NewKey,
    Origin,
    Profile,
    SecurityKey,
    SignedIn,
    bad,
)
from perpetua.services.keyring import FamilyAccount, Keyring
from perpetua.services.mail import DEFAULT_SENDER, Mailer, Outbox, SmtpMailer, mail_config
from perpetua.services.mail_queue import MailQueue, RetryingMailer
from perpetua.services.passwords import default_hasher
from perpetua.services.sessions import Session

__all__ = [
    "FLOWS_PENDING_MAX",
    "FLOW_WORKERS_MAX",
    "Identity",
    "OpenedIdentity",
    "open_identity",
]

FLOW_WORKERS_MAX: Final = 4
FLOWS_PENDING_MAX: Final = 256
SMTP_URL_ENV: Final = "PERPETUA_SMTP_URL"
MAIL_FROM_ENV: Final = "PERPETUA_MAIL_FROM"
MSG_BUSY: Final = "Too many account requests in progress; try again shortly"

_T = TypeVar("_T")


class Identity:
    """``IdentityPort`` over SQL (see the module docstring); also the keyring's host."""

    def __init__(
        self,
        accounts: AccountsService,
        mailer: Mailer,
        server_key: MultiFernet,
        clock_ns: Callable[[], int] = time.time_ns,
        hasher: PasswordHasher | None = None,
        public_url: str = "",
        hashing: Hashing | None = None,
    ) -> None:
        """``hashing`` defaults to hashing with ``hasher`` in the flow thread (tests, tools);
        a venue passes a ``HashPool`` (``open_identity``), which ``close`` stops."""
        self.ctx = Context(
            accounts,
            mailer,
            server_key,
            clock_ns,
            hashing or InlineHashing(hasher or default_hasher()),
            public_url,
        )
        self.accounts = accounts
        self.engine = accounts.engine
        self.mailer = mailer
        self.public_url = self.ctx.public_url
        self.keyring = Keyring(self)
        self._pool = ThreadPoolExecutor(FLOW_WORKERS_MAX, "perpetua-identity")
        self._flows_pending = 0  # touched on the event loop only

    async def _run(self, flow: Callable[..., _T], *args: Any) -> _T:
        """Run ``flow`` in the flow pool (rules 1-4), or refuse at once past its queue."""
        if self._flows_pending >= FLOWS_PENDING_MAX:
            raise IdentityError(503, MSG_BUSY)
        self._flows_pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, functools.partial(flow, *args))
        except AccountsError as error:  # a rule of the key store: the client's 400
            raise bad(str(error)) from None
        except HashUnavailable:
            raise IdentityError(503, MSG_BUSY) from None
        finally:
            self._flows_pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.ctx.hashing.close()

    # --- what the keyring uses (``keyring.IdentityHost``; sync, in a flow thread) -------------

    def now_ns(self) -> int:
        return self.ctx.clock_ns()

    def second_factor_ok(self, user_id: int, code: str, assertion: str = "") -> bool:
        return second_factor.ok(self.ctx, user_id, code, assertion)

    def notice_in(
        self, conn: Connection, user_id: int, subject: str, body: str
    ) -> Callable[[], None]:
        return notices.prepared(self.ctx, conn, user_id, subject, body)

    def send_notice(self, user_id: int, subject: str, body: str) -> None:
        notices.send_notice(self.ctx, user_id, subject, body)

    # --- sign-up, sign-in, sessions -----------------------------------------------------------

    async def register(self, email: str, password: str, origin: Origin) -> None:
        await self._run(registration.register, self.ctx, email, password, origin)

    async def confirm_email(self, token: str, origin: Origin) -> None:
        await self._run(registration.confirm_email, self.ctx, token, origin)

    async def sign_in(
        self, email: str, password: str, otp: str, origin: Origin, assertion: str = ""
    ) -> SignedIn:
        return await self._run(sign_in.sign_in, self.ctx, email, password, otp, origin, assertion)

    async def session(self, token: str) -> Session | None:
        """The live session of a cookie (rule 3: not queued behind the flows)."""
        return await asyncio.to_thread(browser_sessions.live, self.ctx, token)

    async def sessions(self, user_id: int) -> list[Session]:
        return await self._run(self.ctx.sessions.list, user_id)

    async def sessions_live(self, ids: Collection[str]) -> set[str]:
        """Which of these session ids are still live (not queued behind the flows)."""
        return await asyncio.to_thread(browser_sessions.live_among, self.ctx, ids)

    async def sign_out(self, user_id: int, session_id: str, origin: Origin) -> None:
        await self._run(browser_sessions.revoke, self.ctx, user_id, session_id, origin, "sign_out")

    async def revoke_session(self, user_id: int, session_id: str, origin: Origin) -> bool:
        return await self._run(
            browser_sessions.revoke, self.ctx, user_id, session_id, origin, "session_revoked"
        )

    async def revoke_sessions(self, user_id: int, keep: str, origin: Origin) -> int:
        return await self._run(browser_sessions.revoke_all, self.ctx, user_id, keep, origin)

    # --- passwords, email, profile ------------------------------------------------------------

    async def request_password_reset(self, email: str, origin: Origin) -> None:
        await self._run(credentials.request_reset, self.ctx, email, origin)

    async def reset_password(self, token: str, password: str, origin: Origin) -> None:
        await self._run(credentials.reset_password, self.ctx, token, password, origin)

    async def change_password(
        self, user_id: int, old: str, new: str, session_id: str, origin: Origin
    ) -> SignedIn:
        return await self._run(
            credentials.change_password, self.ctx, user_id, old, new, session_id, origin
        )

    async def request_email_change(
        self, user_id: int, new_email: str, password: str, origin: Origin
    ) -> None:
        await self._run(
            credentials.request_email_change, self.ctx, user_id, new_email, password, origin
        )

    async def profile(self, user_id: int) -> Profile | None:
        return await self._run(profile.profile, self.ctx, user_id)

    async def set_preferences(
        self, user_id: int, preferences: dict[str, Any], overwrite: bool, origin: Origin
    ) -> Profile:
        return await self._run(
            profile.set_preferences, self.ctx, user_id, preferences, overwrite, origin
        )

    async def set_profile(
        self, user_id: int, country: str | None, anti_phishing: str | None, origin: Origin
    ) -> Profile:
        return await self._run(
            profile.set_profile, self.ctx, user_id, country, anti_phishing, origin
        )

    async def register_device(
        self, user_id: int, token: str, channel: str, origin: Origin
    ) -> list[CommunicationToken]:
        return await self._run(profile.add_device, self.ctx, user_id, token, channel, origin)

    async def audit(self, user_id: int, limit: int) -> list[AuditEntry]:
        return await self._run(read_audit, self.engine, user_id, limit)

    # --- second factor ------------------------------------------------------------------------

    async def request_enable_tfa(self, user_id: int) -> dict[str, str]:
        return await self._run(second_factor.request_enable_tfa, self.ctx, user_id)

    async def confirm_enable_tfa(
        self, user_id: int, code: str, session_id: str, origin: Origin
    ) -> tuple[list[str], SignedIn]:
        return await self._run(
            second_factor.confirm_enable_tfa, self.ctx, user_id, code, session_id, origin
        )

    async def disable_tfa(
        self, user_id: int, code: str, session_id: str, origin: Origin
    ) -> SignedIn:
        return await self._run(
            second_factor.disable_tfa, self.ctx, user_id, code, session_id, origin
        )

    async def webauthn_login_options(
        self, email: str, password: str, origin: Origin
    ) -> dict[str, Any]:
        return await self._run(security_keys.login_options, self.ctx, email, password, origin)

    async def webauthn_confirm_options(self, user_id: int) -> dict[str, Any]:
        return await self._run(security_keys.confirm_options, self.ctx, user_id)

    async def webauthn_register_options(self, user_id: int) -> dict[str, Any]:
        return await self._run(security_keys.register_options, self.ctx, user_id)

    async def webauthn_register(
        self, user_id: int, credential: str, name: str, session_id: str, origin: Origin
    ) -> tuple[list[str], SignedIn]:
        return await self._run(
            security_keys.register, self.ctx, user_id, credential, name, session_id, origin
        )

    async def webauthn_keys(self, user_id: int) -> list[SecurityKey]:
        return await self._run(security_keys.keys, self.ctx, user_id)

    async def webauthn_remove(
        self, user_id: int, key_id: str, code: str, session_id: str, origin: Origin
    ) -> SignedIn:
        return await self._run(
            security_keys.remove, self.ctx, user_id, key_id, code, session_id, origin
        )

    # --- API keys and sub-accounts (``keyring``) ----------------------------------------------

    async def family(self, user_id: int) -> list[FamilyAccount]:
        return await self._run(self.keyring.family, user_id)

    async def owns(self, user_id: int, account: int) -> bool:
        return await self._run(self.keyring.owns, user_id, account)

    async def add_subaccount(
        self, owner_id: int, account_name: str, origin: Origin
    ) -> FamilyAccount:
        return await self._run(self.keyring.add_subaccount, owner_id, account_name, origin.ip)

    async def update_subaccount(
        self, owner_id: int, account: int, account_name: str, origin: Origin
    ) -> FamilyAccount:
        return await self._run(
            self.keyring.update_subaccount, owner_id, account, account_name, origin.ip
        )

    async def api_keys(self, user_id: int) -> list[ApiKeyInfo]:
        return await self._run(self.keyring.keys, user_id)

    async def create_api_key(
        self,
        user_id: int,
        account: int,
        key: NewKey,
        factor: tuple[str, str],
        origin: Origin,
    ) -> tuple[ApiKeyInfo, str]:
        return await self._run(
            self.keyring.create_key,
            user_id,
            account,
            key.name,
            key.permissions,
            key.cidr,
            factor,
            origin.ip,
            key.enabled,
        )

    async def set_api_key_enabled(
        self, user_id: int, key_id: str, enabled: bool, factor: tuple[str, str], origin: Origin
    ) -> ApiKeyInfo:
        return await self._run(
            self.keyring.set_key_enabled, user_id, key_id, enabled, factor, origin.ip
        )

    async def delete_api_key(self, user_id: int, key_id: str, origin: Origin) -> ApiKeyInfo:
        return await self._run(self.keyring.delete_key, user_id, key_id, origin.ip)

    # --- operator (sync: the admin CLI) --------------------------------------------------------

    def operator_action(self, user_id: int, action: str, operator_name: str, reason: str) -> None:
        """``operator.act``: lock, unlock, force sign-out or reset 2FA, with who and why."""
        operator.act(self.ctx, user_id, action, operator_name, reason)


class OpenedIdentity(NamedTuple):
    identity: Identity
    outbox: Outbox | None  # the embedded outbox, started: stop it after closing the identity
    mail_queue: MailQueue  # failed mail waiting for a retry: run ``mail_queue.step`` periodically


def open_identity(
    accounts: AccountsService,
    data_dir: str | Path,
    public_url: str = "",
    smtp_url: str | None = None,
    hash_workers: int = HASH_WORKERS_DEFAULT,
    hash_nice: int = HASH_NICE,
    hash_idle: bool = HASH_IDLE_DEFAULT,
    hash_cpus: tuple[int, ...] = (),
) -> OpenedIdentity:
    """The identity service over ``accounts``: mail goes to ``smtp_url`` (default
    ``PERPETUA_SMTP_URL``), else to an embedded ``Outbox`` in the data dir, which is started
    here; a message the relay refuses waits in the ``MailQueue`` (``services.mail_queue``);
    passwords are hashed by ``hash_workers`` processes at ``SCHED_IDLE`` (``hash_idle``) or at
    nice ``+hash_nice``, on ``hash_cpus`` if given."""
    url = smtp_url if smtp_url is not None else os.environ.get(SMTP_URL_ENV, "")
    outbox = None
    if url:
        config = mail_config(url, os.environ.get(MAIL_FROM_ENV) or DEFAULT_SENDER)
    else:
        outbox = Outbox(data_dir)
        config = outbox.start()
    queue = MailQueue(accounts.engine, SmtpMailer(config), accounts.server_key)
    hashing = HashPool(default_hasher(), hash_workers, hash_nice, hash_idle, hash_cpus)
    identity = Identity(
        accounts, RetryingMailer(queue), accounts.server_key, public_url=public_url, hashing=hashing
    )
    return OpenedIdentity(identity, outbox, queue)
