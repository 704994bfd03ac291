"""Mail that could not go out at once waits in SQL and is retried, so a relay outage loses none.

1. ``RetryingMailer`` wraps a ``Mailer``: ``send`` tries at once; when that fails (``OSError``:
   the relay refused, timed out or is down) the message is stored in ``mail_queue`` and
   ``send`` returns normally: the act that sent it is committed, and its mail will follow.
2. A stored message (recipient, subject, body, anti-phishing phrase) is encrypted as one
   Fernet token under the server key: bodies carry single-use tokens.
3. ``MailQueue.step`` (the ``mail-retry`` job, every ``MAIL_RETRY_INTERVAL_S``) sends the due
   messages, oldest first, at most ``MAIL_RETRY_BATCH_MAX`` per step. A success deletes the
   row; a failure counts an attempt and waits ``MAIL_RETRY_BASE_NS * 2**attempts`` (at most
   ``MAIL_RETRY_WAIT_MAX_NS``) before the next.
4. A message is given up (deleted, logged as an error, counted) after ``MAIL_ATTEMPTS_MAX``
   attempts or ``MAIL_RETRY_TTL_NS`` after it was queued: the longest-lived mailed token
   (email confirmation) is dead by then, and the user can ask again.
5. At most ``MAIL_QUEUE_MAX`` messages wait; past that a failed message is logged and dropped
   (counted), so a long outage cannot fill the database.
6. Several processes may step one queue (cluster gateways over one PostgreSQL database): each
   claims a due message before sending it, by moving its ``next_ns`` on by ``MAIL_CLAIM_NS``
   only if nobody changed it since it was read (compare and set, one statement), and skips a
   message another process claimed. So a message is sent once; a process that dies holding a
   claim leaves the message due again ``MAIL_CLAIM_NS`` later.
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from perpetua.services.mail import Mailer
from perpetua.store.schema import mail_queue

__all__ = [
    "MAIL_ATTEMPTS_MAX",
    "MAIL_CLAIM_NS",
    "MAIL_QUEUE_MAX",
    "MAIL_RETRY_BASE_NS",
    "MAIL_RETRY_BATCH_MAX",
    "MAIL_RETRY_INTERVAL_S",
    "MAIL_RETRY_TTL_NS",
    "MAIL_RETRY_WAIT_MAX_NS",
    "MailQueue",
    "QueueCounts",
    "RetryingMailer",
]

log = logging.getLogger(__name__)

MAIL_RETRY_INTERVAL_S: Final = 15.0
MAIL_RETRY_BATCH_MAX: Final = 100
MAIL_RETRY_BASE_NS: Final = 30 * 10**9  # first retry 30 s after the failure, then doubling
MAIL_RETRY_WAIT_MAX_NS: Final = 3600 * 10**9
MAIL_ATTEMPTS_MAX: Final = 20
MAIL_RETRY_TTL_NS: Final = 48 * 3600 * 10**9  # = the email-confirmation token's life
MAIL_QUEUE_MAX: Final = 10_000
MAIL_CLAIM_NS: Final = 120 * 10**9  # a claimed message's wait: far longer than one send


@dataclass(slots=True)
class QueueCounts:
    queued: int = 0
    sent: int = 0
    given_up: int = 0
    dropped: int = 0


def retry_wait_ns(attempts: int) -> int:
    """Wait before the next try after ``attempts`` failures (rule 3)."""
    return min(MAIL_RETRY_BASE_NS << min(attempts - 1, 32), MAIL_RETRY_WAIT_MAX_NS)


class MailQueue:
    """The ``mail_queue`` table: store failed mail, send what is due (rules 2-5)."""

    def __init__(
        self,
        engine: Engine,
        mailer: Mailer,
        server_key: MultiFernet,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.engine = engine
        self.mailer = mailer
        self._key = server_key
        self._clock_ns = clock_ns
        self.counts = QueueCounts()

    def put(self, to: str, subject: str, body: str, anti_phishing: str) -> bool:
        """Store one message for later; False when the queue is full (rule 5)."""
        sealed = self._key.encrypt(json.dumps([to, subject, body, anti_phishing]).encode()).decode()
        now = self._clock_ns()
        with self.engine.begin() as conn:
            waiting = conn.execute(select(func.count()).select_from(mail_queue)).scalar_one()
            if waiting >= MAIL_QUEUE_MAX:
                self.counts.dropped += 1
                log.error("mail queue full (%d): a message to a user was dropped", waiting)
                return False
            conn.execute(
                insert(mail_queue).values(
                    sealed=sealed,
                    attempts=1,
                    queued_ns=now,
                    next_ns=now + retry_wait_ns(1),
                    last_error="",
                )
            )
        self.counts.queued += 1
        return True

    def waiting(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(mail_queue)).scalar_one())

    def step(self) -> int:
        """Try every due message once (rule 3); returns how many went out. Blocking: the job
        runs it in a thread."""
        now = self._clock_ns()
        with self.engine.connect() as conn:
            due = conn.execute(
                select(mail_queue)
                .where(mail_queue.c.next_ns <= now)
                .order_by(mail_queue.c.id)
                .limit(MAIL_RETRY_BATCH_MAX)
            ).all()
        sent = 0
        for row in due:
            if not self._claim(row.id, row.next_ns, now):
                continue  # another process is sending it (rule 6)
            if now - row.queued_ns > MAIL_RETRY_TTL_NS:
                self._give_up(row.id, "older than its tokens")
                continue
            try:
                to, subject, body, anti_phishing = json.loads(self._key.decrypt(row.sealed))
            except (InvalidToken, ValueError):
                self._give_up(row.id, "unreadable under the server key")
                continue
            try:
                self.mailer.send(to, subject, body, anti_phishing)
            except OSError as error:
                attempts = row.attempts + 1
                if attempts >= MAIL_ATTEMPTS_MAX:
                    self._give_up(row.id, f"{attempts} attempts, last {type(error).__name__}")
                    continue
                with self.engine.begin() as conn:
                    conn.execute(
                        update(mail_queue)
                        .where(mail_queue.c.id == row.id)
                        .values(
                            attempts=attempts,
                            next_ns=now + retry_wait_ns(attempts),
                            last_error=f"{type(error).__name__}: {error}"[:200],
                        )
                    )
                continue
            with self.engine.begin() as conn:
                conn.execute(delete(mail_queue).where(mail_queue.c.id == row.id))
            sent += 1
        self.counts.sent += sent
        return sent

    def _claim(self, row_id: int, next_ns: int, now: int) -> bool:
        """Take the message for this process, unless another took it since it was read."""
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(mail_queue)
                .where(mail_queue.c.id == row_id, mail_queue.c.next_ns == next_ns)
                .values(next_ns=now + MAIL_CLAIM_NS)
            )
        return moved.rowcount == 1

    def _give_up(self, row_id: int, why: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(mail_queue).where(mail_queue.c.id == row_id))
        self.counts.given_up += 1
        log.error("mail to a user given up: %s", why)


class RetryingMailer:
    """A ``Mailer`` whose failed messages wait in a ``MailQueue`` (rule 1)."""

    def __init__(self, queue: MailQueue) -> None:
        self.queue = queue

    def send(self, to: str, subject: str, body: str, anti_phishing: str = "") -> None:
        try:
            self.queue.mailer.send(to, subject, body, anti_phishing)
        except OSError as error:
            log.warning("mail to a user failed (%s); queued for retry", type(error).__name__)
            try:
                self.queue.put(to, subject, body, anti_phishing)
            except SQLAlchemyError as stored:  # the act is committed: never fail it here
                self.queue.counts.dropped += 1
                log.error("mail to a user lost: the queue is unreachable (%s)", stored)
