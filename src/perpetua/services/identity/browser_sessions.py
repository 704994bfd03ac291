"""Browser sessions as their owner manages them: look up, list, sign out, revoke.

1. Storage, ids, CSRF tokens and timeouts are ``services.sessions``' (``SessionStore``); this
   module adds the account's side: a session of a locked or deleted account is no session.
2. An owner can end only its own sessions: revoking another account's session id is a no-op
   answered as "not found", never an error that says the id exists.
3. Every sign-out and revoke is audited in the transaction that ends the session, by the
   first 12 characters of the session's stored digest (never the cookie token).
4. ``live_among`` answers which of many sessions are still live by the same rules as ``live``
   (idle and absolute timeouts, enabled account) without touching any of them: an open
   WebSocket is not a request, so it does not keep its session from idling out.
"""

from collections.abc import Collection
from typing import Final

from sqlalchemy import select

from perpetua.services.audit import record
from perpetua.services.identity.context import ACTOR_USER, Context
from perpetua.services.identity.values import Origin
from perpetua.services.sessions import (
    SESSION_ABSOLUTE_NS,
    SESSION_IDLE_NS,
    Session,
    SessionStore,
)
from perpetua.store.schema import sessions, users

__all__ = [
    "LIVE_AMONG_CHUNK",
    "SESSION_ID_SHOWN_CHARS",
    "live",
    "live_among",
    "revoke",
    "revoke_all",
]

SESSION_ID_SHOWN_CHARS = 12
LIVE_AMONG_CHUNK: Final = 500  # session ids per SQL ``IN`` list


def live(ctx: Context, token: str) -> Session | None:
    """The live session of a cookie token, if its account is enabled (rule 1)."""
    found = ctx.sessions.lookup(token)
    if found is None:
        return None
    with ctx.engine.connect() as conn:
        enabled = conn.execute(select(users.c.enabled).where(users.c.id == found.user_id)).first()
    return found if enabled is not None and enabled.enabled else None


def live_among(ctx: Context, ids: Collection[str]) -> set[str]:
    """Which of the session ids (stored digests) are live now (rule 4)."""
    now = ctx.clock_ns()
    wanted = sorted(set(ids))
    found: set[str] = set()
    with ctx.engine.connect() as conn:
        for start in range(0, len(wanted), LIVE_AMONG_CHUNK):
            rows = conn.execute(
                select(sessions.c.id)
                .join(users, users.c.id == sessions.c.user_id)
                .where(
                    sessions.c.id.in_(wanted[start : start + LIVE_AMONG_CHUNK]),
                    sessions.c.last_seen_ns >= now - SESSION_IDLE_NS,
                    sessions.c.created_ns >= now - SESSION_ABSOLUTE_NS,
                    users.c.enabled,
                )
            ).scalars()
            found.update(str(row) for row in rows)
    return found


def revoke(ctx: Context, user_id: int, session_id: str, origin: Origin, action: str) -> bool:
    """End one of the owner's sessions (rules 2-3); ``action`` names it in the audit trail
    (``sign_out`` or ``session_revoked``)."""
    with ctx.engine.begin() as conn:
        done = SessionStore.revoke(conn, user_id, session_id)
        if done:
            record(
                conn,
                ctx.clock_ns(),
                user_id,
                ACTOR_USER,
                action,
                origin.ip,
                {"session": session_id[:SESSION_ID_SHOWN_CHARS]},
            )
    return done


def revoke_all(ctx: Context, user_id: int, keep: str, origin: Origin) -> int:
    """End every session of the owner but ``keep``; how many ended."""
    with ctx.engine.begin() as conn:
        count = SessionStore.revoke_all(conn, user_id, keep)
        record(
            conn,
            ctx.clock_ns(),
            user_id,
            ACTOR_USER,
            "sessions_revoked",
            origin.ip,
            {"count": count},
        )
    return count
