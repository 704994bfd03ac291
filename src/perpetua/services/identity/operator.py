"""What the operator can do to an account (ASVS level 3): lock, unlock, sign out, reset 2FA.

1. Every action names the operator and a reason; both are required, and the audit row
   (actor ``operator:NAME``, the reason in its detail, at most ``REASON_LENGTH_MAX``
   characters) commits in the action's transaction.
2. Locking or unlocking an owner does the same to its sub-accounts (their keys stop with it);
   locking, a forced sign-out and a 2FA reset end every session of the account.
3. A 2FA reset (after the operator re-checked the owner's identity) removes TOTP, every
   security key and the recovery codes, and tells the owner to enrol again.
4. Cached API key records are dropped after the commit, so a locked account's keys stop at
   once.
"""

from typing import Final

from sqlalchemy import update

from perpetua.services.audit import record
from perpetua.services.identity import notices, second_factor
from perpetua.services.identity.context import Context
from perpetua.services.identity.notices import Outcome
from perpetua.services.identity.values import bad
from perpetua.services.sessions import SessionStore
from perpetua.store.schema import users

__all__ = ["OPERATOR_ACTIONS", "act"]

OPERATOR_ACTIONS: Final = ("locked", "unlocked", "forced_sign_out", "tfa_reset")
REASON_LENGTH_MAX: Final = 500


def act(ctx: Context, user_id: int, action: str, operator: str, reason: str) -> None:
    """One of ``OPERATOR_ACTIONS`` on ``user_id``, recorded with who and why (rules 1-4)."""
    if not operator.strip() or not reason.strip():
        raise bad("operator and reason are required")
    outcome = Outcome()
    with ctx.engine.begin() as conn:
        row = ctx.user_row(conn, user_id)
        if row is None:
            raise bad(f"No user {user_id}")
        if action not in OPERATOR_ACTIONS:
            raise bad(f"Unknown operator action {action!r}")
        if action in ("locked", "unlocked"):  # the owner's sub-accounts with it
            conn.execute(
                update(users)
                .where((users.c.id == user_id) | (users.c.owner_id == user_id))
                .values(enabled=action == "unlocked", updated_ns=ctx.clock_ns())
            )
        if action in ("locked", "forced_sign_out", "tfa_reset"):
            SessionStore.revoke_all(conn, user_id)
        if action == "tfa_reset":
            second_factor.clear(ctx, conn, user_id, passkeys_too=True)
            outcome.mails.append(
                notices.notice(
                    row,
                    "two-factor authentication reset",
                    "The operator reset your two-factor authentication after checking your "
                    "identity; enrol again now.",
                )
            )
        record(
            conn,
            ctx.clock_ns(),
            user_id,
            f"operator:{operator.strip()}",
            action,
            "",
            {"reason": reason.strip()[:REASON_LENGTH_MAX]},
        )
    ctx.accounts.forget_cached_keys()
    notices.send(ctx, outcome)
