"""services.mail_queue: mail the relay refused waits (encrypted) and goes out when the relay is
back; limits on attempts, age and queue length; a sign-up made while the relay was down still
ends with a working confirmation link. A real SMTP server throughout."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from perpetua.services import mail_queue as mq
from perpetua.services.accounts import AccountsService
from perpetua.services.identity import Identity, Origin
from perpetua.services.mail import MailConfig, SmtpMailer, free_port
from perpetua.services.mail_queue import MailQueue, RetryingMailer
from perpetua.store import open_engine
from perpetua.store.schema import mail_queue
from tests.services.conftest import FAST_HASHER, Clock
from tests.services.smtp import body, smtp_server, token

SECRET_BODY = "Token: do-not-store-me-in-clear"
MESSAGES = 20


def _queue(accounts: AccountsService, clock: Clock, port: int) -> MailQueue:
    return MailQueue(
        accounts.engine, SmtpMailer(MailConfig("127.0.0.1", port)), accounts.server_key, clock
    )


def _rows(queue: MailQueue) -> list[tuple[int, int, str]]:
    with queue.engine.connect() as conn:
        return [
            (r.attempts, r.next_ns, r.sealed)
            for r in conn.execute(select(mail_queue).order_by(mail_queue.c.id))
        ]


def test_refused_mail_waits_encrypted_and_goes_out_when_the_relay_is_back(
    accounts: AccountsService, clock: Clock
) -> None:
    port = free_port()  # nothing listens yet: the relay is down
    queue = _queue(accounts, clock, port)
    RetryingMailer(queue).send("alice@example.com", "Perpetua: hello", SECRET_BODY)
    [(attempts, next_ns, sealed)] = _rows(queue)
    assert attempts == 1 and next_ns == clock.now_ns + mq.MAIL_RETRY_BASE_NS
    assert "do-not-store" not in sealed and "alice" not in sealed

    assert queue.step() == 0  # not due yet: nothing tried
    clock.now_ns = next_ns
    assert queue.step() == 0  # due, relay still down: one more attempt, a longer wait
    [(attempts, later, _sealed)] = _rows(queue)
    assert attempts == 2 and later == next_ns + 2 * mq.MAIL_RETRY_BASE_NS

    with smtp_server(port) as (inbox, _port):
        clock.now_ns = later
        assert queue.step() == 1
        message = inbox.wait("alice@example.com", "hello")
    assert SECRET_BODY in body(message)
    assert _rows(queue) == []
    assert (queue.counts.queued, queue.counts.sent) == (1, 1)


def test_mail_is_given_up_after_its_tokens_expire(accounts: AccountsService, clock: Clock) -> None:
    queue = _queue(accounts, clock, free_port())
    assert queue.put("bob@example.com", "s", "b", "")
    clock.now_ns += mq.MAIL_RETRY_TTL_NS + 1
    assert queue.step() == 0
    assert _rows(queue) == [] and queue.counts.given_up == 1


def test_mail_is_given_up_after_the_last_attempt(
    accounts: AccountsService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mq, "MAIL_ATTEMPTS_MAX", 3)
    queue = _queue(accounts, clock, free_port())
    assert queue.put("bob@example.com", "s", "b", "")
    for expected_rows in (1, 0):
        clock.now_ns += mq.MAIL_RETRY_WAIT_MAX_NS
        queue.step()
        assert len(_rows(queue)) == expected_rows
    assert queue.counts.given_up == 1


def test_a_full_queue_drops_and_counts(
    accounts: AccountsService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mq, "MAIL_QUEUE_MAX", 1)
    queue = _queue(accounts, clock, free_port())
    assert queue.put("a@example.com", "s", "b", "")
    assert not queue.put("b@example.com", "s", "b", "")
    assert queue.waiting() == 1 and queue.counts.dropped == 1


def test_retry_waits_double_up_to_the_cap() -> None:
    waits = [mq.retry_wait_ns(n) for n in range(1, 12)]
    assert waits[:3] == [mq.MAIL_RETRY_BASE_NS * k for k in (1, 2, 4)]
    assert max(waits) == mq.MAIL_RETRY_WAIT_MAX_NS
    assert waits == sorted(waits)


def test_sign_up_while_the_relay_is_down_confirms_later(
    accounts: AccountsService, clock: Clock
) -> None:
    port = free_port()
    clock.now_ns = 1_800_000_000 * 10**9
    queue = _queue(accounts, clock, port)
    identity = Identity(
        accounts, RetryingMailer(queue), accounts.server_key, clock_ns=clock, hasher=FAST_HASHER
    )
    home = Origin("10.0.0.1", "pytest")
    try:
        asyncio.run(identity.register("carol@example.com", "violet tractor umbrella 42", home))
        assert queue.waiting() == 1
        with smtp_server(port) as (inbox, _port):
            clock.now_ns += mq.MAIL_RETRY_BASE_NS
            assert queue.step() == 1
            link = token(inbox.wait("carol@example.com", "confirm your email"))
        asyncio.run(identity.confirm_email(link, home))
        signed_in = asyncio.run(
            identity.sign_in("carol@example.com", "violet tractor umbrella 42", "", home)
        )
        assert signed_in.user_id > 0
    finally:
        identity.close()


class _SlowMailer(SmtpMailer):
    """A real SMTP send, slowed so two processes' steps overlap."""

    def send(self, to: str, subject: str, body: str, anti_phishing: str = "") -> None:
        time.sleep(0.01)
        super().send(to, subject, body, anti_phishing)


def test_two_processes_stepping_one_queue_send_each_message_once(
    db_url: str, accounts: AccountsService, clock: Clock
) -> None:
    """Rule 6 (cluster gateways each run the mail-retry job over one database): without the
    claim both would read the same due rows and send each twice."""
    down = _queue(accounts, clock, free_port())
    for number in range(MESSAGES):
        RetryingMailer(down).send(f"u{number}@example.com", "Perpetua: queued", "Token: t")
    clock.now_ns += mq.MAIL_RETRY_BASE_NS
    with smtp_server() as (inbox, port):
        mailer = _SlowMailer(MailConfig("127.0.0.1", port))
        engines = [open_engine(db_url) for _ in range(2)]
        queues = [MailQueue(e, mailer, accounts.server_key, clock) for e in engines]
        with ThreadPoolExecutor(2) as pool:
            sent = list(pool.map(lambda q: q.step(), queues))
        for engine in engines:
            engine.dispose()
        deadline = time.monotonic() + 10
        while len(inbox.messages) < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # a duplicate would arrive by now
    assert sum(sent) == MESSAGES and min(sent) > 0, sent  # both worked, neither twice
    assert sorted(m["To"] for m in inbox.messages) == sorted(
        f"u{number}@example.com" for number in range(MESSAGES)
    )
    assert _rows(down) == []
