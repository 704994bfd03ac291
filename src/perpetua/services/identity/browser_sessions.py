"""Browser sessions as their owner manages them: look up, list, sign out, revoke.

1. Storage, ids, CSRF tokens and timeouts are ``services.sessions``' (``SessionStore``); this
   module adds the account's side: a session of a locked or deleted account is no session.
2. An owner can end only its own sessions: revoking another account's session id is a no-op
   answered as "not found", never an error that says the id exists.
3. Every sign-out and revoke is audited in the transaction that ends the session, by the
   first 12 characters of the session's stored digest (never the cookie token).
"""

from sqlalchemy import select

from perpetua.services.audit import record
from perpetua.services.identity.context import ACTOR_USER, Context
from perpetua.services.identity.values import Origin
from perpetua.services.sessions import Session, SessionStore
from perpetua.store.schema import users

__all__ = ["SESSION_ID_SHOWN_CHARS", "live", "revoke", "revoke_all"]

SESSION_ID_SHOWN_CHARS = 12


def live(ctx: Context, token: str) -> Session | None:
    """The live session of a cookie token, if its account is enabled (rule 1)."""
    found = ctx.sessions.lookup(token)
    if found is None:
        return None
    with ctx.engine.connect() as conn:
        enabled = conn.execute(select(users.c.enabled).where(users.c.id == found.user_id)).first()
    return found if enabled is not None and enabled.enabled else None


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
