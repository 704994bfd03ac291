"""The identity service on SQLite and PostgreSQL with a real SMTP server (aiosmtpd): sign-up
and confirmation, uniform answers, sign-in throttling without lock-out, sessions and their
timeouts, password reset and change, email change, TOTP with replay refusal and recovery
codes, operator actions, and crash safety of sign-up."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import Connection, func, select

from perpetua.services import throttle
from perpetua.services.accounts import AccountsService
from perpetua.services.identity import Identity, IdentityError, NewKey, Origin
from perpetua.services.mail import MailConfig, SmtpMailer
from perpetua.services.passwords import PasswordRejected, check_strength
from perpetua.services.sessions import SESSION_ABSOLUTE_NS, SESSION_IDLE_NS
from perpetua.store.schema import account_tokens, audit_log, recovery_codes, sessions, users
from tests.services.conftest import FAST_HASHER, Clock
from tests.services.smtp import Inbox, body, smtp_server, token

PASSWORD = "violet tractor umbrella 42"
BOT = NewKey("bot", ("order",))
NO_FACTOR = ("", "")
HOME = Origin("10.0.0.1", "pytest")
AWAY = Origin("10.9.9.9", "attacker")


@pytest.fixture
def mail() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as served:
        yield served


@pytest.fixture
def identity(
    accounts: AccountsService, mail: tuple[Inbox, int], clock: Clock
) -> Iterator[Identity]:
    clock.now_ns = 1_800_000_000 * 10**9
    service = Identity(
        accounts,
        SmtpMailer(MailConfig("127.0.0.1", mail[1])),
        accounts.server_key,
        clock_ns=clock,
        hasher=FAST_HASHER,
        public_url="http://127.0.0.1:8000",
    )
    yield service
    service.close()


def run(awaitable: Any) -> Any:
    return asyncio.run(awaitable)


def signed_up(identity: Identity, inbox: Inbox, email: str = "alice@example.com") -> int:
    run(identity.register(email, PASSWORD, HOME))
    run(identity.confirm_email(token(inbox.wait(email, "confirm your email")), HOME))
    with identity.engine.connect() as conn:
        return int(conn.execute(select(users.c.id).where(users.c.email == email)).scalar_one())


def refused(awaitable: Any, status: int) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        run(awaitable)
    assert caught.value.status == status, caught.value.message
    return caught.value


@pytest.mark.parametrize(
    "password, ok",
    [
        ("short", False),
        ("password1234", False),
        ("aaaaaaaaaaaaaaaa", False),
        ("alice@example.com1", False),
        (PASSWORD, True),
        ("correct horse battery staple", True),
    ],
)
def test_password_strength(password: str, ok: bool) -> None:
    if ok:
        check_strength(password, ("alice@example.com",))
    else:
        with pytest.raises(PasswordRejected):
            check_strength(password, ("alice@example.com",))


def test_sign_up_confirm_sign_in(identity: Identity, mail: tuple[Inbox, int]) -> None:
    inbox = mail[0]
    run(identity.register("Alice@Example.com", PASSWORD, HOME))
    refused(identity.sign_in("alice@example.com", PASSWORD, "", HOME), 403)  # unconfirmed
    message = inbox.wait("alice@example.com", "confirm your email")
    run(identity.confirm_email(token(message), HOME))
    refused(identity.confirm_email(token(message), HOME), 400)  # single use
    signed = run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))
    assert run(identity.session(signed.token)) == signed.session
    assert "new address" in inbox.wait("alice@example.com", "new address")["Subject"]
    profile = run(identity.profile(signed.user_id))
    assert (profile.email, profile.email_confirmed, profile.tfa_enabled) == (
        "alice@example.com",
        True,
        False,
    )
    with identity.engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action).order_by(audit_log.c.id)).scalars()
        assert list(actions) == ["register", "email_confirmed", "sign_in"]
        stored = conn.execute(select(sessions.c.id)).scalar_one()
    assert stored != signed.token and len(stored) == 64  # only the digest is kept


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "alice@localhost", "x" * 300])
def test_bad_emails_are_400(identity: Identity, email: str) -> None:
    assert refused(identity.register(email, PASSWORD, HOME), 400).name == "ValidationError"


def test_answers_do_not_reveal_registered_emails(
    identity: Identity, mail: tuple[Inbox, int]
) -> None:
    inbox = mail[0]
    signed_up(identity, inbox)
    run(identity.register("alice@example.com", PASSWORD + "x", AWAY))  # same answer: None
    assert "sign-up attempt" in inbox.wait("alice@example.com", "sign-up attempt")["Subject"]
    unknown = refused(identity.sign_in("nobody@example.com", PASSWORD, "", AWAY), 401)
    wrong = refused(identity.sign_in("alice@example.com", "wrong " + PASSWORD, "", AWAY), 401)
    assert unknown.message == wrong.message
    run(identity.request_password_reset("nobody@example.com", AWAY))  # no error, no mail
    assert inbox.to("nobody@example.com") == []
    with identity.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 1


def test_throttle_backs_off_and_spares_known_addresses(
    identity: Identity, clock: Clock, mail: tuple[Inbox, int]
) -> None:
    signed_up(identity, mail[0])
    run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))  # HOME becomes known
    for _ in range(throttle.FAILURES_FREE):
        refused(identity.sign_in("alice@example.com", "guess " + PASSWORD, "", AWAY), 401)
    error = refused(identity.sign_in("alice@example.com", PASSWORD, "", AWAY), 429)
    assert error.retry_after_s == 1
    # the same wait for an address nobody registered: the throttle reveals nothing
    for _ in range(throttle.FAILURES_FREE):
        refused(
            identity.sign_in(
                "ghost@example.com", "guess " + PASSWORD, "", Origin(f"10.1.0.{_}", "x")
            ),
            401,
        )
    assert (
        refused(
            identity.sign_in("ghost@example.com", PASSWORD, "", Origin("10.1.1.1", "x")), 429
        ).retry_after_s
        == 1
    )
    # the owner, from an address she used before, is not locked out
    assert run(identity.sign_in("alice@example.com", PASSWORD, "", HOME)).user_id == 1
    clock.now_ns += throttle.BACKOFF_BASE_NS
    refused(identity.sign_in("alice@example.com", "guess " + PASSWORD, "", AWAY), 401)
    assert (
        refused(identity.sign_in("alice@example.com", PASSWORD, "", AWAY), 429).retry_after_s == 2
    )  # doubled


def test_backoff_table() -> None:
    free = throttle.FAILURES_FREE
    assert [throttle.backoff_ns(n) // 10**9 for n in (0, free - 1, free, free + 1, free + 5)] == [
        0,
        0,
        1,
        2,
        32,
    ]
    assert throttle.backoff_ns(1000) == throttle.BACKOFF_MAX_NS


def test_session_timeouts_and_revoke(
    identity: Identity, clock: Clock, mail: tuple[Inbox, int]
) -> None:
    user_id = signed_up(identity, mail[0])
    first = run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))
    second = run(identity.sign_in("alice@example.com", PASSWORD, "", AWAY))
    assert {s.id for s in run(identity.sessions(user_id))} == {first.session.id, second.session.id}
    assert run(identity.revoke_session(user_id, second.session.id, HOME))
    assert run(identity.session(second.token)) is None
    assert not run(identity.revoke_session(user_id + 1, first.session.id, HOME))  # not hers
    clock.now_ns += SESSION_IDLE_NS + 1
    assert run(identity.session(first.token)) is None  # idle
    busy = run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))
    for _ in range(SESSION_ABSOLUTE_NS // SESSION_IDLE_NS + 1):
        clock.now_ns += SESSION_IDLE_NS - 10**9
        run(identity.session(busy.token))
    assert run(identity.session(busy.token)) is None  # absolute


def test_reset_password_ends_sessions_and_tokens_expire(
    identity: Identity, clock: Clock, mail: tuple[Inbox, int]
) -> None:
    inbox = mail[0]
    signed_up(identity, inbox)
    old = run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))
    run(identity.request_password_reset("alice@example.com", HOME))
    first = token(inbox.wait("alice@example.com", "reset your password"))
    clock.now_ns += 31 * 60 * 10**9
    refused(identity.reset_password(first, "new " + PASSWORD, HOME), 400)  # expired
    run(identity.request_password_reset("alice@example.com", HOME))
    second = token(inbox.wait("alice@example.com", "reset your password", 2))
    refused(identity.reset_password(second, "password1234", HOME), 400)  # weak: rolled back
    run(identity.request_password_reset("alice@example.com", HOME))
    third = token(inbox.wait("alice@example.com", "reset your password", 3))
    run(identity.reset_password(third, "new " + PASSWORD, HOME))
    assert run(identity.session(old.token)) is None
    refused(identity.sign_in("alice@example.com", PASSWORD, "", HOME), 401)
    run(identity.sign_in("alice@example.com", "new " + PASSWORD, "", HOME))
    with identity.engine.connect() as conn:
        assert not conn.execute(
            select(account_tokens.c.id).where(
                account_tokens.c.purpose == "reset", account_tokens.c.id == third
            )
        ).first()


def test_email_change_and_anti_phishing(identity: Identity, mail: tuple[Inbox, int]) -> None:
    inbox = mail[0]
    user_id = signed_up(identity, inbox)
    run(identity.set_profile(user_id, "de", "blue heron", HOME))
    refused(identity.request_email_change(user_id, "al@example.org", "wrong", HOME), 401)
    run(identity.request_email_change(user_id, "al@example.org", PASSWORD, HOME))
    message = inbox.wait("al@example.org", "confirm your new email")
    assert body(message).startswith("Your anti-phishing phrase: blue heron")
    run(identity.confirm_email(token(message), HOME))
    assert run(identity.profile(user_id)).email == "al@example.org"
    assert run(identity.profile(user_id)).country == "DE"
    notice = inbox.wait("alice@example.com", "email changed")
    assert "blue heron" in body(notice)


def test_totp_enrol_sign_in_replay_and_recovery(
    identity: Identity, clock: Clock, mail: tuple[Inbox, int]
) -> None:
    inbox = mail[0]
    user_id = signed_up(identity, inbox)
    signed = run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))
    enrol = run(identity.request_enable_tfa(user_id))
    assert enrol["uri"].startswith("otpauth://totp/") and enrol["qr"].startswith("data:image")
    otp = pyotp.TOTP(enrol["secret"])
    now_s = clock.now_ns // 10**9
    refused(identity.confirm_enable_tfa(user_id, "000000", signed.session.id, HOME), 400)
    codes, rotated = run(
        identity.confirm_enable_tfa(user_id, otp.at(now_s), signed.session.id, HOME)
    )
    assert len(codes) == 10 and len(set(codes)) == 10
    assert rotated.session.id != signed.session.id  # rotated at privilege change
    assert run(identity.session(signed.token)) is None
    inbox.wait("alice@example.com", "two-factor authentication enabled")
    assert (
        refused(identity.sign_in("alice@example.com", PASSWORD, "", HOME), 401).name
        == "TFARequired"
    )
    refused(identity.sign_in("alice@example.com", PASSWORD, otp.at(now_s), HOME), 401)  # replay
    clock.now_ns += 30 * 10**9
    run(identity.sign_in("alice@example.com", PASSWORD, otp.at(now_s + 30), HOME))
    left = run(identity.sign_in("alice@example.com", PASSWORD, codes[0].upper(), HOME))
    assert left.recovery_codes_left == 9
    refused(identity.sign_in("alice@example.com", PASSWORD, codes[0], HOME), 401)  # used
    inbox.wait("alice@example.com", "recovery code used")
    refused(identity.disable_tfa(user_id, codes[1], left.session.id, HOME), 400)  # TOTP only
    clock.now_ns += 30 * 10**9
    run(identity.disable_tfa(user_id, otp.at(now_s + 60), left.session.id, HOME))
    assert not run(identity.profile(user_id)).tfa_enabled


def test_operator_actions_are_audited(identity: Identity, mail: tuple[Inbox, int]) -> None:
    user_id = signed_up(identity, mail[0])
    signed = run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))
    with pytest.raises(IdentityError):
        identity.operator_action(user_id, "locked", "ops", "")  # why is required
    identity.operator_action(user_id, "locked", "ops", "fraud report #12")
    assert run(identity.session(signed.token)) is None
    refused(identity.sign_in("alice@example.com", PASSWORD, "", HOME), 403)
    identity.operator_action(user_id, "unlocked", "ops", "cleared")
    run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))
    entries = run(identity.audit(user_id, 10))
    assert [(e.actor, e.action) for e in entries[:3]] == [
        ("user", "sign_in"),
        ("operator:ops", "unlocked"),
        ("operator:ops", "locked"),
    ]
    assert entries[2].detail == {"reason": "fraud report #12"}


def test_a_crash_during_sign_up_leaves_no_half_made_account(
    identity: Identity, mail: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr("perpetua.services.identity.registration.record", crash)
    with pytest.raises(RuntimeError):
        run(identity.register("alice@example.com", PASSWORD, HOME))
    with identity.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(account_tokens)).scalar_one() == 0
    monkeypatch.undo()
    assert signed_up(identity, mail[0]) == 1


def test_secrets_stay_out_of_storage(
    identity: Identity, mail: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox = mail[0]
    user_id = signed_up(identity, inbox)
    enrol = run(identity.request_enable_tfa(user_id))
    with identity.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
        assert row is not None
        assert enrol["secret"] not in (row.tfa_secret_encrypted or "")
        assert PASSWORD not in row.password_hash


def test_a_crash_while_creating_a_key_leaves_no_key(
    identity: Identity, mail: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from perpetua.store.schema import api_keys

    user_id = signed_up(identity, mail[0])

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr("perpetua.services.keyring.record", crash)
    with pytest.raises(RuntimeError):
        run(identity.create_api_key(user_id, user_id, BOT, NO_FACTOR, HOME))
    with identity.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(api_keys)).scalar_one() == 0
    monkeypatch.undo()
    key, _secret = run(identity.create_api_key(user_id, user_id, BOT, NO_FACTOR, HOME))
    assert run(identity.api_keys(user_id)) == [key]


def test_secrets_never_reach_the_logs(
    accounts: AccountsService, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    from perpetua.services.mail import free_port

    dead = Identity(
        accounts,
        SmtpMailer(MailConfig("127.0.0.1", free_port())),
        accounts.server_key,
        clock_ns=clock,
        hasher=FAST_HASHER,
    )
    caplog.set_level("DEBUG")
    run(dead.register("alice@example.com", PASSWORD, HOME))  # the mail cannot go out
    run(dead.request_password_reset("alice@example.com", HOME))
    refused(dead.sign_in("alice@example.com", "wrong " + PASSWORD, "", HOME), 401)
    with accounts.engine.connect() as conn:
        stored = conn.execute(select(account_tokens.c.id)).scalars().all()
    assert "mail to user failed" in caplog.text
    for secret in (PASSWORD, *stored):
        assert secret not in caplog.text
    dead.close()


def test_unsolicited_mails_are_budgeted(
    identity: Identity, clock: Clock, mail: tuple[Inbox, int]
) -> None:
    from perpetua.services.identity.notices import UNSOLICITED_MAILS_FREE

    inbox = mail[0]
    signed_up(identity, inbox)
    for _ in range(UNSOLICITED_MAILS_FREE + 3):
        run(identity.request_password_reset("alice@example.com", AWAY))  # same answer
    inbox.wait("alice@example.com", "reset your password", UNSOLICITED_MAILS_FREE)
    run(identity.register("alice@example.com", PASSWORD, AWAY))
    assert (
        len(
            [
                m
                for m in inbox.to("alice@example.com")
                if "reset" in m["Subject"] or "sign-up attempt" in m["Subject"]
            ]
        )
        == UNSOLICITED_MAILS_FREE
    )
    clock.now_ns += throttle.BACKOFF_MAX_NS
    run(identity.request_password_reset("alice@example.com", AWAY))
    inbox.wait("alice@example.com", "reset your password", UNSOLICITED_MAILS_FREE + 1)


def test_locking_an_owner_locks_its_sub_accounts(
    identity: Identity, mail: tuple[Inbox, int]
) -> None:
    owner = signed_up(identity, mail[0])
    sub = run(identity.add_subaccount(owner, "hedge", HOME))
    key, _secret = run(identity.create_api_key(owner, sub.id, BOT, NO_FACTOR, HOME))
    key_id = key.key_id
    identity.operator_action(owner, "locked", "ops", "chargeback")
    record = identity.accounts.lookup_api_key(key_id)
    assert record is not None and not record.enabled
    identity.operator_action(owner, "unlocked", "ops", "resolved")
    record = identity.accounts.lookup_api_key(key_id)
    assert record is not None and record.enabled


def test_webauthn_security_key_as_second_factor(
    identity: Identity, mail: tuple[Inbox, int]
) -> None:
    import json

    from tests.services.authenticator import SoftKey

    user_id = signed_up(identity, mail[0])
    signed = run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))
    key = SoftKey("127.0.0.1", "http://127.0.0.1:8000")
    options = run(identity.webauthn_register_options(user_id))
    assert options["rp"]["id"] == "127.0.0.1" and options["attestation"] == "none"
    codes, rotated = run(
        identity.webauthn_register(
            user_id, json.dumps(key.create(options)), "yubikey", signed.session.id, HOME
        )
    )
    assert len(codes) == 10 and run(identity.session(signed.token)) is None
    assert run(identity.profile(user_id)).security_keys == 1
    mail[0].wait("alice@example.com", "security key added")
    refused(
        identity.webauthn_register(
            user_id, json.dumps(key.create(options)), "again", rotated.session.id, HOME
        ),
        400,
    )  # challenge used

    assert (
        refused(identity.sign_in("alice@example.com", PASSWORD, "", HOME), 401).name
        == "TFARequired"
    )
    login = run(identity.webauthn_login_options("alice@example.com", PASSWORD, HOME))
    assertion = json.dumps(key.get(login))
    run(identity.sign_in("alice@example.com", PASSWORD, "", HOME, assertion))
    refused(identity.sign_in("alice@example.com", PASSWORD, "", HOME, assertion), 401)  # replay
    login = run(identity.webauthn_login_options("alice@example.com", PASSWORD, HOME))
    key.count = 0  # a clone whose counter went back
    refused(
        identity.sign_in("alice@example.com", PASSWORD, "", HOME, json.dumps(key.get(login))), 401
    )
    stranger = SoftKey("127.0.0.1", "http://127.0.0.1:8000")
    login = run(identity.webauthn_login_options("alice@example.com", PASSWORD, HOME))
    refused(
        identity.sign_in("alice@example.com", PASSWORD, "", HOME, json.dumps(stranger.get(login))),
        401,
    )
    phished = SoftKey("127.0.0.1", "http://evil.example")
    phished.key, phished.credential_id, phished.count = key.key, key.credential_id, 10
    login = run(identity.webauthn_login_options("alice@example.com", PASSWORD, HOME))
    refused(
        identity.sign_in("alice@example.com", PASSWORD, "", HOME, json.dumps(phished.get(login))),
        401,
    )  # wrong origin
    assert (
        run(identity.sign_in("alice@example.com", PASSWORD, codes[0], HOME)).recovery_codes_left
        == 9
    )


def test_remove_one_security_key(identity: Identity, mail: tuple[Inbox, int]) -> None:
    """Two keys: removing one needs a recovery (or TOTP) code, leaves the other and the codes;
    removing the last takes the recovery codes, and sign-in needs no second factor again."""
    import json

    from tests.services.authenticator import SoftKey

    user_id = signed_up(identity, mail[0])
    session = run(identity.sign_in("alice@example.com", PASSWORD, "", HOME)).session
    keys = [SoftKey("127.0.0.1", "http://127.0.0.1:8000") for _ in range(2)]
    codes: list[str] = []
    for number, key in enumerate(keys):
        options = run(identity.webauthn_register_options(user_id))
        new_codes, signed = run(
            identity.webauthn_register(
                user_id, json.dumps(key.create(options)), f"key{number}", session.id, HOME
            )
        )
        codes += new_codes
        session = signed.session
    assert len(codes) == 10  # the first key brought them; the second none
    listed = run(identity.webauthn_keys(user_id))
    assert [k.name for k in listed] == ["key0", "key1"]

    refused(identity.webauthn_remove(user_id, listed[0].id, "", session.id, HOME), 401)
    refused(identity.webauthn_remove(user_id, listed[0].id, "000000", session.id, HOME), 400)
    refused(identity.webauthn_remove(user_id, "no-such-key", codes[0], session.id, HOME), 404)
    refused(identity.webauthn_remove(user_id + 1, listed[0].id, codes[0], session.id, HOME), 404)
    assert len(run(identity.webauthn_keys(user_id))) == 2  # refusals changed nothing

    signed = run(identity.webauthn_remove(user_id, listed[0].id, codes[0], session.id, HOME))
    assert run(identity.session(signed.token)) is not None  # the session rotated
    assert [k.name for k in run(identity.webauthn_keys(user_id))] == ["key1"]
    mail[0].wait("alice@example.com", "security key removed")
    refused(identity.webauthn_remove(user_id, listed[1].id, codes[0], signed.session.id, HOME), 400)
    login = run(identity.webauthn_login_options("alice@example.com", PASSWORD, HOME))
    run(identity.sign_in("alice@example.com", PASSWORD, "", HOME, json.dumps(keys[1].get(login))))

    run(identity.webauthn_remove(user_id, listed[1].id, codes[1], signed.session.id, HOME))
    assert run(identity.webauthn_keys(user_id)) == []
    assert run(identity.profile(user_id)).security_keys == 0
    run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))  # no second factor left
    with identity.engine.connect() as conn:
        left = conn.execute(
            select(recovery_codes.c.code_hash).where(recovery_codes.c.user_id == user_id)
        ).all()
    assert left == []  # the last factor took the recovery codes with it


def test_communication_tokens(identity: Identity, mail: tuple[Inbox, int]) -> None:
    """BitMEX's POST /user/communicationToken: registering twice keeps one row (its channel
    updated), the eleventh device replaces the oldest, bad tokens change nothing."""
    from perpetua.services.devices import DEVICES_PER_USER_MAX

    user_id = signed_up(identity, mail[0])
    first = run(identity.register_device(user_id, "apns-token-1", "iOS", HOME))
    assert [(t.device_token, t.channel, t.user_id) for t in first] == [
        ("apns-token-1", "iOS", user_id)
    ]
    again = run(identity.register_device(user_id, "apns-token-1", "iPadOS", HOME))
    assert [(t.id, t.channel) for t in again] == [(first[0].id, "iPadOS")]
    for bad_token, channel in (("", "iOS"), ("has space", "iOS"), ("x" * 513, "iOS"), ("t", "")):
        refused(identity.register_device(user_id, bad_token, channel, HOME), 400)
    refused(identity.register_device(user_id + 99, "t", "iOS", HOME), 404)
    for number in range(2, DEVICES_PER_USER_MAX + 2):
        held = run(identity.register_device(user_id, f"fcm-{number}", "Android", HOME))
    assert len(held) == DEVICES_PER_USER_MAX
    assert "apns-token-1" not in [t.device_token for t in held]  # the oldest went
    assert held[-1].device_token == f"fcm-{DEVICES_PER_USER_MAX + 1}"


class PowerCut:
    """Makes the ``n``-th SQL statement executed while armed fail, as a crash would: the
    statement and everything after it in its transaction never commit."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        self.at = 0
        self.seen = 0
        real = Connection.execute

        def execute(conn: Connection, *args: Any, **kwargs: Any) -> Any:
            if self.armed:
                self.seen += 1
                if self.seen == self.at:
                    raise RuntimeError("power cut")
            return real(conn, *args, **kwargs)

        monkeypatch.setattr(Connection, "execute", execute)

    def run(self, at: int, act: Any) -> bool:
        """Whether ``act()`` was cut (else it completed)."""
        self.armed, self.at, self.seen = True, at, 0
        try:
            act()
        except RuntimeError:
            return True
        finally:
            self.armed = False
        return False


def _counts(identity: Identity, action: str, table: Any) -> tuple[int, int]:
    with identity.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(table)).scalar_one()
        audited = conn.execute(
            select(func.count()).select_from(audit_log).where(audit_log.c.action == action)
        ).scalar_one()
    return int(rows), int(audited)


def test_a_crash_at_any_step_of_sign_up_leaves_no_half_made_account(
    identity: Identity, mail: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = PowerCut(monkeypatch)
    at = 1
    while cut.run(at, lambda: run(identity.register("alice@example.com", PASSWORD, HOME))):
        assert _counts(identity, "register", users) == (0, 0), f"cut at statement {at}"
        assert _counts(identity, "register", account_tokens)[0] == 0
        at += 1
    assert at > 3  # it was cut between real steps before it went through
    assert _counts(identity, "register", users) == (1, 1)
    assert _counts(identity, "register", account_tokens)[0] == 1
    mail[0].wait("alice@example.com", "confirm your email")


def test_a_crash_at_any_step_of_key_creation_answers_the_secret_or_leaves_no_key(
    identity: Identity, mail: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each SQL statement of key creation cut in turn: the call fails and no key exists, or
    it answers the key with its secret (nothing after the commit reads or writes SQL, so no
    key is made whose secret the caller was not given); a key asked disabled is made
    disabled, never enabled first and disabled after."""
    from perpetua.store.schema import api_keys

    user_id = signed_up(identity, mail[0])
    cut = PowerCut(monkeypatch)
    asked = NewKey("bot", ("order",), enabled=False)
    answered: list[Any] = []

    def create() -> None:
        answered.append(run(identity.create_api_key(user_id, user_id, asked, NO_FACTOR, HOME)))

    at = 1
    while cut.run(at, create):
        assert _counts(identity, "api_key_created", api_keys) == (0, 0), f"cut at {at}"
        at += 1
    assert at > 3  # it was cut between real steps before it went through
    [(key, secret)] = answered
    assert _counts(identity, "api_key_created", api_keys) == (1, 1)
    assert run(identity.api_keys(user_id)) == [key] and not key.enabled
    record = identity.accounts.lookup_api_key(key.key_id)
    assert record is not None and record.secret == secret and not record.enabled
    mail[0].wait("alice@example.com", "API key created")


def test_a_security_key_approves_a_withdraw_key(
    identity: Identity, mail: tuple[Inbox, int]
) -> None:
    """A fresh assertion over a challenge from ``webauthn_confirm_options`` approves creating
    or enabling a key with withdraw, once; no assertion, a replayed one, another key's, or a
    recovery code do not."""
    import json

    from tests.services.authenticator import SoftKey

    user_id = signed_up(identity, mail[0])
    refused(identity.webauthn_confirm_options(user_id), 400)  # no security key yet
    session = run(identity.sign_in("alice@example.com", PASSWORD, "", HOME)).session
    key = SoftKey("127.0.0.1", "http://127.0.0.1:8000")
    options = run(identity.webauthn_register_options(user_id))
    codes, _signed = run(
        identity.webauthn_register(user_id, json.dumps(key.create(options)), "yk", session.id, HOME)
    )
    payout = NewKey("payout", ("withdraw",))

    def approval(by: SoftKey = key) -> tuple[str, str]:
        return "", json.dumps(by.get(run(identity.webauthn_confirm_options(user_id))))

    refused(identity.create_api_key(user_id, user_id, payout, NO_FACTOR, HOME), 400)
    refused(identity.create_api_key(user_id, user_id, payout, (codes[0], ""), HOME), 400)
    stranger = SoftKey("127.0.0.1", "http://127.0.0.1:8000")
    refused(identity.create_api_key(user_id, user_id, payout, approval(stranger), HOME), 400)
    factor = approval()
    made, secret = run(identity.create_api_key(user_id, user_id, payout, factor, HOME))
    assert made.permissions == ("withdraw",) and made.enabled and len(secret) == 48
    refused(identity.create_api_key(user_id, user_id, payout, factor, HOME), 400)  # replayed
    unasked = ("", json.dumps(key.get({"challenge": options["challenge"]})))
    refused(identity.create_api_key(user_id, user_id, payout, unasked, HOME), 400)  # no challenge
    assert [k.key_id for k in run(identity.api_keys(user_id))] == [made.key_id]

    run(identity.set_api_key_enabled(user_id, made.key_id, False, NO_FACTOR, HOME))
    refused(identity.set_api_key_enabled(user_id, made.key_id, True, NO_FACTOR, HOME), 400)
    enabled = run(identity.set_api_key_enabled(user_id, made.key_id, True, approval(), HOME))
    assert enabled.enabled


def test_a_hash_with_older_parameters_is_replaced_at_sign_in(
    identity: Identity, mail: tuple[Inbox, int], clock: Clock
) -> None:
    from argon2 import PasswordHasher

    user_id = signed_up(identity, mail[0])
    stronger = Identity(
        identity.accounts,
        identity.mailer,
        identity.accounts.server_key,
        clock_ns=clock,
        hasher=PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1),
    )
    try:
        run(stronger.sign_in("alice@example.com", PASSWORD, "", HOME))
    finally:
        stronger.close()
    with identity.engine.connect() as conn:
        stored = conn.execute(
            select(users.c.password_hash).where(users.c.id == user_id)
        ).scalar_one()
    assert "m=2048,t=2" in stored
    run(identity.sign_in("alice@example.com", PASSWORD, "", HOME))  # still the same password
