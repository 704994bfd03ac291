"""Mail the identity flows send: confirmation and reset links, and security notices.

1. A flow collects its mails in an ``Outcome`` while its transaction is open and sends them
   only after the commit (``send``): a rolled-back act mails nothing, and a mail never holds
   a transaction open. A message the relay refuses waits in the mail queue for a retry
   (``services.mail_queue``); a send that still fails is logged by subject and error type,
   never with its body (bodies carry tokens).
2. Every notice goes to the account's current address with its anti-phishing phrase and
   ends by telling the owner what to do if it was not them.
3. Mails that anyone can trigger for an account (sign-up with its address, reset requests)
   are budgeted per account (``mail_allowed``): ``UNSOLICITED_MAILS_FREE`` at once, then the
   throttle's doubling back-off; past it the answer is the same and no mail goes out (no mail
   bombing).
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection

from perpetua.services import throttle
from perpetua.services.identity.context import Context

__all__ = [
    "UNSOLICITED_MAILS_FREE",
    "Mail",
    "Outcome",
    "link",
    "mail_allowed",
    "notice",
    "prepared",
    "send",
    "send_notice",
]

log = logging.getLogger("perpetua.services.identity")

UNSOLICITED_MAILS_FREE: Final = 5


@dataclass(slots=True)
class Mail:
    to: str
    subject: str
    body: str
    anti_phishing: str = ""


@dataclass(slots=True)
class Outcome:
    """The mails of one act, sent after its commit (rule 1)."""

    mails: list[Mail] = field(default_factory=list)


def send(ctx: Context, outcome: Outcome) -> None:
    for mail in outcome.mails:
        try:
            ctx.mailer.send(mail.to, mail.subject, mail.body, mail.anti_phishing)
        except OSError as error:  # the act is committed; the user can ask again
            log.error("mail to user failed (%s): %s", mail.subject, type(error).__name__)


def link(ctx: Context, action: str, token: str) -> str:
    base = ctx.public_url or "the exchange"
    return (
        f"Token: {token}\n\nUse it with POST {base}/api/v1/user/{action} "
        f"(parameter token) within its validity."
    )


def notice(row: Any, subject: str, body: str) -> Mail:
    """A security notice to the account of ``row`` (rule 2)."""
    return Mail(
        row.email,
        f"Perpetua: {subject}",
        body + "\n\nIf this was not you, reset your password and review your "
        "sessions and API keys now.",
        row.anti_phishing,
    )


def mail_allowed(ctx: Context, conn: Connection, user_id: int) -> bool:
    """Rule 3: may a mail that anyone can trigger go to this account now?"""
    key = [f"mail:{user_id}"]
    now = ctx.clock_ns()
    if throttle.wait_ns(conn, key, now, UNSOLICITED_MAILS_FREE) > 0:
        return False
    throttle.record_failure(conn, key, now)
    return True


def prepared(
    ctx: Context, conn: Connection, user_id: int, subject: str, body: str
) -> Callable[[], None]:
    """Rule 1 for an act that commits elsewhere (a key created): the notice's address read in
    ``conn``'s transaction; the returned call sends it, after the commit."""
    row = ctx.user_row(conn, user_id)
    outcome = Outcome([notice(row, subject, body)] if row is not None else [])
    return functools.partial(send, ctx, outcome)


def send_notice(ctx: Context, user_id: int, subject: str, body: str) -> None:
    """A notice to ``user_id`` now (a withdrawal address added, a withdrawal...)."""
    with ctx.engine.connect() as conn:
        sender = prepared(ctx, conn, user_id, subject, body)
    sender()
