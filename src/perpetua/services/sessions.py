"""Browser sessions: opaque ids in cookies, stored hashed, with idle and absolute timeouts.

1. A session id is 256 random bits (``secrets.token_urlsafe``) sent only in the cookie; the
   ``sessions`` table keeps its SHA-256, so a read of the database signs nobody in.
2. A session ends at ``SESSION_IDLE_NS`` without a request or ``SESSION_ABSOLUTE_NS`` after it
   began (ASVS 3.3.2, level 2), on sign-out, on revoke, and on a password change or reset
   (every session of the account). An expired session is deleted when it is next presented.
3. ``last_seen_ns`` is written at most once per ``SESSION_TOUCH_INTERVAL_NS``, so a busy web
   terminal does not write a row per request.
4. Each session carries its own CSRF token (synchronizer pattern): a state-changing request made
   with the cookie must echo it in ``x-csrf-token``; the gateway checks it.
"""

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, delete, select, update

from perpetua.store.schema import sessions

__all__ = [
    "SESSIONS_PER_USER_MAX",
    "SESSION_ABSOLUTE_NS",
    "SESSION_IDLE_NS",
    "Session",
    "SessionStore",
    "token_digest",
]

SESSION_IDLE_NS: Final = 30 * 60 * 10**9
SESSION_ABSOLUTE_NS: Final = 12 * 3600 * 10**9
SESSION_TOUCH_INTERVAL_NS: Final = 60 * 10**9
SESSIONS_PER_USER_MAX: Final = 20  # the oldest is ended when a new one would pass it
SESSION_TOKEN_BYTES: Final = 32
CSRF_TOKEN_BYTES: Final = 24
USER_AGENT_LENGTH_MAX: Final = 256
IP_LENGTH_MAX: Final = 64


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """A live session; ``id`` is the stored digest (safe to show and to revoke by)."""

    id: str
    user_id: int
    csrf: str
    created_ns: int
    last_seen_ns: int
    ip: str
    user_agent: str


class SessionStore:
    def __init__(self, engine: Engine, clock_ns: Callable[[], int]) -> None:
        self.engine = engine
        self._clock_ns = clock_ns

    def create(
        self, conn: Connection, user_id: int, ip: str, user_agent: str
    ) -> tuple[str, Session]:
        """A new session inside the caller's transaction: ``(cookie token, session)``."""
        now = self._clock_ns()
        token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
        session = Session(
            token_digest(token),
            user_id,
            secrets.token_urlsafe(CSRF_TOKEN_BYTES),
            now,
            now,
            ip[:IP_LENGTH_MAX],
            user_agent[:USER_AGENT_LENGTH_MAX],
        )
        held = (
            conn.execute(
                select(sessions.c.id)
                .where(sessions.c.user_id == user_id)
                .order_by(sessions.c.last_seen_ns.desc())
            )
            .scalars()
            .all()
        )
        for old in held[SESSIONS_PER_USER_MAX - 1 :]:
            conn.execute(delete(sessions).where(sessions.c.id == old))
        conn.execute(
            sessions.insert().values(
                id=session.id,
                user_id=user_id,
                csrf=session.csrf,
                created_ns=now,
                last_seen_ns=now,
                ip=session.ip,
                user_agent=session.user_agent,
            )
        )
        return token, session

    def lookup(self, token: str) -> Session | None:
        """The live session of a cookie token, touched (rule 3); ``None`` when unknown or
        expired (and then deleted)."""
        digest = token_digest(token)
        now = self._clock_ns()
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.id == digest)).first()
        if row is None:
            return None
        if now - row.last_seen_ns > SESSION_IDLE_NS or now - row.created_ns > SESSION_ABSOLUTE_NS:
            with self.engine.begin() as conn:
                conn.execute(delete(sessions).where(sessions.c.id == digest))
            return None
        last_seen = row.last_seen_ns
        if now - last_seen >= SESSION_TOUCH_INTERVAL_NS:
            last_seen = now
            with self.engine.begin() as conn:
                conn.execute(
                    update(sessions).where(sessions.c.id == digest).values(last_seen_ns=now)
                )
        return Session(
            row.id, row.user_id, row.csrf, row.created_ns, last_seen, row.ip, row.user_agent
        )

    def list(self, user_id: int) -> list[Session]:
        now = self._clock_ns()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(sessions)
                .where(sessions.c.user_id == user_id)
                .order_by(sessions.c.last_seen_ns.desc())
            ).all()
        return [
            Session(r.id, r.user_id, r.csrf, r.created_ns, r.last_seen_ns, r.ip, r.user_agent)
            for r in rows
            if now - r.last_seen_ns <= SESSION_IDLE_NS and now - r.created_ns <= SESSION_ABSOLUTE_NS
        ]

    @staticmethod
    def revoke(conn: Connection, user_id: int, session_id: str) -> bool:
        return bool(
            conn.execute(
                delete(sessions).where(sessions.c.user_id == user_id, sessions.c.id == session_id)
            ).rowcount
        )

    @staticmethod
    def revoke_all(conn: Connection, user_id: int, keep: str = "") -> int:
        stmt = delete(sessions).where(sessions.c.user_id == user_id)
        if keep:
            stmt = stmt.where(sessions.c.id != keep)
        return int(conn.execute(stmt).rowcount)
