"""What every identity flow works with: the database, the clock, mail, hashing, sessions.

1. A flow is a plain synchronous function ``flow(ctx, ...)`` run in a worker thread (the
   facade, ``identity.service``, puts it there); nothing here touches the event loop.
2. ``Context`` is built once per venue and never changes after; flows keep no state of their
   own between calls: everything lasting is in the database.
3. A new password passes the strength rule (``services.passwords``) before it is hashed, and
   hashing goes through ``ctx.hashing`` (``services.hash_pool``: a worker process in a
   venue), never argon2 directly.
4. A new session is made inside the caller's transaction (``new_session``), so a sign-in, a
   TOTP change or a password change commits its session with its audit row or not at all;
   ``rotate`` ends the caller's old session in the same transaction.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy import Connection, Engine, select

from perpetua.services import passkeys
from perpetua.services.accounts import AccountsService
from perpetua.services.hash_pool import Hashing
from perpetua.services.identity.values import Origin, SignedIn, bad
from perpetua.services.mail import Mailer
from perpetua.services.passwords import PasswordRejected, check_strength
from perpetua.services.sessions import SessionStore
from perpetua.store.schema import users

__all__ = ["ACTOR_USER", "Context"]

ACTOR_USER = "user"
DUMMY_PASSWORD_BYTES = 16


@dataclass(slots=True)
class Context:
    """The parts the flows share (rule 2); ``dummy_hash`` is checked for unknown emails so a
    wrong email costs what a wrong password costs."""

    accounts: AccountsService
    mailer: Mailer
    fernet: MultiFernet
    clock_ns: Callable[[], int]
    hashing: Hashing
    public_url: str
    engine: Engine = field(init=False)
    sessions: SessionStore = field(init=False)
    relying: passkeys.Relying = field(init=False)
    dummy_hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.engine = self.accounts.engine
        self.public_url = self.public_url.rstrip("/")
        self.sessions = SessionStore(self.engine, self.clock_ns)
        self.relying = passkeys.Relying(self.public_url)
        self.dummy_hash = self.hashing.hash(secrets.token_urlsafe(DUMMY_PASSWORD_BYTES))

    def user_row(self, conn: Connection, user_id: int) -> Any:
        return conn.execute(select(users).where(users.c.id == user_id)).first()

    def password_hash(self, password: str, email: str) -> str:
        """The hash of a new password that passes the strength rule (rule 3), else a 400."""
        try:
            check_strength(password, (email,))
        except PasswordRejected as error:
            raise bad(str(error)) from None
        return self.hashing.hash(password)

    def new_session(self, conn: Connection, user_id: int, origin: Origin) -> SignedIn:
        token, session = self.sessions.create(conn, user_id, origin.ip, origin.user_agent)
        return SignedIn(token, session, user_id)

    def rotate(self, conn: Connection, user_id: int, session_id: str, origin: Origin) -> SignedIn:
        """End the caller's session and start a new one, in ``conn``'s transaction (rule 4)."""
        if session_id:
            SessionStore.revoke(conn, user_id, session_id)
        return self.new_session(conn, user_id, origin)
