"""End to end: the real ``perpetua run`` process, mail to a real SMTP server in this process
(aiosmtpd), a browser-like client with a cookie jar (httpx): sign up, confirm, sign in,
sessions list and revoke, CSRF refused, TOTP enrolment and sign-in with it, recovery code,
password reset, lockout back-off, ``GET /user`` filled from the account."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from perpetua.gateway.auth import sign
from perpetua.services.mail import free_port
from tests.services.smtp import Inbox, smtp_server, token

pytestmark = pytest.mark.slow  # real processes or long randomised runs; CI runs them all

OPERATOR_KEY = "accounts-e2e-operator"
STARTUP_S = 120  # a deadline only: a loaded CI machine imports slowly
SRC = Path(__file__).resolve().parents[2] / "src"
PASSWORD = "violet tractor umbrella 42"


class Server:
    def __init__(self, base: str, inbox: Inbox, data_dir: Path) -> None:
        self.base = base
        self.inbox = inbox
        self.data_dir = data_dir

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base + "/api/v1", timeout=20, headers={"user-agent": "e2e-browser"}
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("data")) as started:
        yield started


@contextmanager
def running_server(data_dir: Path) -> Iterator[Server]:
    """``perpetua run`` on a free port with its mail going to an SMTP server in this process."""
    with smtp_server() as (inbox, smtp_port):
        port = free_port()
        env = dict(
            os.environ, PYTHONPATH=str(SRC), PERPETUA_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}"
        )
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perpetua.cli",
                "run",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                "--operator-key",
                OPERATOR_KEY,
                "--log-level",
                "warning",
                # BitMEX's anonymous per-IP budget would throttle this file's many sign-ups
                # from one address; the sign-in throttle under test is the accounts service's
                "--no-rate-limits",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                httpx.get(base + "/api/v1/announcement", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"server did not start:\n{output}")
                time.sleep(0.2)
        try:
            yield Server(base, inbox, data_dir)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                assert process.wait(timeout=30) == 0
            finally:
                if process.poll() is None:
                    process.kill()


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["message"])


def sign_up(server: Server, client: httpx.Client, email: str) -> None:
    ok(client.post("/user/register", json={"email": email, "password": PASSWORD}))
    message = server.inbox.wait(email, "confirm your email")
    ok(client.post("/user/confirmEmail", json={"token": token(message)}))


def sign_in(
    client: httpx.Client, email: str, password: str = PASSWORD, otp: str = ""
) -> dict[str, Any]:
    body = {"email": email, "password": password} | ({"otpToken": otp} if otp else {})
    signed: dict[str, Any] = ok(client.post("/user/login", json=body))
    client.headers["x-csrf-token"] = signed["csrfToken"]
    return signed


def test_sign_up_sign_in_sessions_and_csrf(server: Server) -> None:
    browser, phone = server.client(), server.client()
    sign_up(server, browser, "carol@example.com")
    signed = sign_in(browser, "carol@example.com")
    cookie = browser.cookies.jar
    assert any(c.name == "perpetua_session" and c.has_nonstandard_attr("HttpOnly") for c in cookie)
    user = ok(browser.get("/user"))
    assert (user["id"], user["email"], user["TFAEnabled"]) == (
        signed["id"],
        "carol@example.com",
        "",
    )
    ok(browser.post("/user/preferences", json={"prefs": {"orderBookType": "full"}}))
    assert ok(browser.get("/user"))["preferences"] == {"orderBookType": "full"}

    sign_in(phone, "carol@example.com")
    rows = ok(browser.get("/user/sessions"))
    assert len(rows) == 2 and sum(r["current"] for r in rows) == 1
    assert {r["userAgent"] for r in rows} == {"e2e-browser"}

    # CSRF: a state-changing request with the cookie but without the token changes nothing
    forged = server.client()
    forged.cookies = browser.cookies
    other = next(r["id"] for r in rows if not r["current"])
    assert error(
        forged.request("DELETE", "/user/sessions", json={"sessionId": other}), 403
    ).startswith("Invalid or missing CSRF")
    assert len(ok(browser.get("/user/sessions"))) == 2
    ok(browser.request("DELETE", "/user/sessions", json={"sessionId": other}))
    error(phone.get("/user"), 401)  # revoked
    ok(browser.post("/user/logout"))
    error(browser.get("/user"), 401)


def test_uniform_answers_and_back_off(server: Server) -> None:
    client = server.client()
    sign_up(server, client, "dave@example.com")
    unknown = error(
        client.post("/user/login", json={"email": "nobody@example.com", "password": PASSWORD}), 401
    )
    for _ in range(4):
        wrong = error(
            client.post(
                "/user/login", json={"email": "dave@example.com", "password": "nope " + PASSWORD}
            ),
            401,
        )
    assert unknown == wrong
    response = client.post("/user/login", json={"email": "dave@example.com", "password": PASSWORD})
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    time.sleep(int(response.headers["retry-after"]) + 0.2)
    sign_in(client, "dave@example.com")  # after the wait the owner gets in


def test_totp_recovery_and_reset(server: Server) -> None:
    client = server.client()
    email = "erin@example.com"
    sign_up(server, client, email)
    sign_in(client, email)
    enrol = ok(client.post("/user/requestEnableTFA"))
    otp = pyotp.TOTP(enrol["secret"])
    confirmed = ok(client.post("/user/confirmEnableTFA", json={"token": otp.now()}))
    client.headers["x-csrf-token"] = confirmed["csrfToken"]  # the session was rotated
    codes = confirmed["recoveryCodes"]
    assert len(codes) == 10 and ok(client.get("/user"))["TFAEnabled"] == "GA"
    server.inbox.wait(email, "two-factor authentication enabled")

    fresh = server.client()
    response = fresh.post("/user/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 401 and response.json()["error"]["name"] == "TFARequired"
    signed = sign_in(fresh, email, otp=codes[3])
    assert signed["recoveryCodesLeft"] == 9
    error(
        server.client().post(
            "/user/login", json={"email": email, "password": PASSWORD, "otpToken": codes[3]}
        ),
        401,
    )

    ok(fresh.post("/user/requestPasswordReset", json={"email": email}))
    reset = token(server.inbox.wait(email, "reset your password"))
    ok(fresh.post("/user/resetPassword", json={"token": reset, "password": "new " + PASSWORD}))
    error(fresh.get("/user"), 401)  # every session ended
    error(client.get("/user"), 401)
    sign_in(server.client(), email, "new " + PASSWORD, otp=codes[4])


def test_account_routes_are_in_the_served_swagger(server: Server) -> None:
    document = httpx.get(server.base + "/api/explorer/swagger.json").json()
    assert document["paths"]["/user/login"]["post"]["tags"] == ["Accounts"]
    assert "/user/logout" in document["paths"]


def faucet(server: Server, account: int, amount: int) -> None:
    ok(
        httpx.post(
            server.base + "/api/v1/admin/faucet",
            headers={"x-operator-key": OPERATOR_KEY},
            json={"account": account, "currency": "XBt", "amount": amount},
        )
    )


def signed(
    server: Server, key: dict[str, Any], verb: str, target: str, body: bytes = b""
) -> httpx.Response:
    expires = str(int(time.time()) + 60)
    return httpx.request(
        verb,
        server.base + target,
        content=body,
        headers={
            "api-key": key["id"],
            "api-expires": expires,
            "content-type": "application/json",
            "api-signature": sign(key["secret"], verb, target, expires, body),
        },
    )


def test_self_service_keys_work_with_an_unchanged_bitmex_client(server: Server) -> None:
    ccxt = pytest.importorskip("ccxt")
    client = server.client()
    email = "frank@example.com"
    sign_up(server, client, email)
    user_id = sign_in(client, email)["id"]
    faucet(server, user_id, 10**8)
    created = ok(
        client.post("/apiKey", json={"name": "bot", "permissions": "order", "cidr": "127.0.0.1"})
    )
    assert len(created["secret"]) == 48 and created["permissions"] == ["order"]
    server.inbox.wait(email, "API key created")
    listed = ok(client.get("/apiKey"))
    assert [k["id"] for k in listed] == [created["id"]]
    assert listed[0]["secret"] == "" and not listed[0]["created"].startswith("1970")

    bitmex = ccxt.bitmex(
        {"apiKey": created["id"], "secret": created["secret"], "enableRateLimit": False}
    )
    bitmex.urls["api"] = {"public": server.base, "private": server.base}
    bitmex.load_markets()
    assert bitmex.fetch_balance()["BTC"]["total"] == 1
    assert bitmex.private_get_user()["email"] == email
    order = bitmex.create_order("BTC/USD:BTC", "limit", "buy", 100, 30000.5)
    bitmex.cancel_order(order["id"], "BTC/USD:BTC")

    # the key cannot manage keys: account security needs the session
    assert bitmex.private_get_apikey()[0]["id"] == created["id"]
    escalate = signed(
        server,
        created,
        "POST",
        "/api/v1/apiKey",
        b'{"name": "escalate", "permissions": "withdraw"}',
    )
    assert "browser session" in error(escalate, 403)

    ok(client.post("/apiKey/disable", json={"apiKeyID": created["id"]}))
    with pytest.raises(ccxt.BaseError):
        bitmex.fetch_balance()
    ok(client.post("/apiKey/enable", json={"apiKeyID": created["id"]}))
    assert bitmex.fetch_balance()["BTC"]["total"] == 1
    ok(client.request("DELETE", "/apiKey", json={"apiKeyID": created["id"]}))
    with pytest.raises(ccxt.AuthenticationError):
        bitmex.fetch_balance()


def test_withdraw_keys_need_a_second_factor(server: Server) -> None:
    client = server.client()
    email = "grace@example.com"
    sign_up(server, client, email)
    sign_in(client, email)
    assert "second factor" in error(client.post("/apiKey", json={"permissions": "withdraw"}), 400)
    enrol = ok(client.post("/user/requestEnableTFA"))
    otp = pyotp.TOTP(enrol["secret"])
    confirmed = ok(client.post("/user/confirmEnableTFA", json={"token": otp.now()}))
    client.headers["x-csrf-token"] = confirmed["csrfToken"]
    error(client.post("/apiKey", json={"permissions": "withdraw", "token": "000000"}), 400)
    # the enrolment used this step's code: the next step's is accepted (one step of drift)
    key = ok(
        client.post(
            "/apiKey", json={"permissions": "withdraw", "token": otp.at(int(time.time()) + 30)}
        )
    )
    assert key["permissions"] == ["withdraw"]
    assert [e["action"] for e in ok(client.get("/user/auditLog"))][:1] == ["api_key_created"]


def test_sub_account_transfers_conserve_money(server: Server) -> None:
    client, stranger = server.client(), server.client()
    sign_up(server, client, "heidi@example.com")
    sign_up(server, stranger, "ivan@example.com")
    main = sign_in(client, "heidi@example.com")["id"]
    other = sign_in(stranger, "ivan@example.com")["id"]
    sub = ok(client.post("/user/addSubaccount", json={"accountName": "hedge"}))
    assert sub["isSubaccount"] and sub["ownerId"] == main
    ok(
        client.post(
            "/user/updateSubaccount", json={"targetAccountId": sub["id"], "accountName": "hedge-2"}
        )
    )
    accounts = ok(client.get("/user/getWalletTransferAccounts"))
    assert [(a["id"], a["accountName"]) for a in accounts] == [
        (main, f"user{main}"),
        (sub["id"], "hedge-2"),
    ]
    faucet(server, main, 50_000)

    moved = ok(
        client.post(
            "/user/walletTransfer",
            json={
                "currency": "XBt",
                "amount": 20_000,
                "targetAccountId": sub["id"],
                "transferID": "t-1",
            },
        )
    )
    assert moved["walletBalance"] == 30_000
    error(
        client.post(
            "/user/walletTransfer",
            json={
                "currency": "XBt",
                "amount": 20_000,
                "targetAccountId": sub["id"],
                "transferID": "t-1",
            },
        ),
        400,
    )  # a retry with the same id moves nothing
    error(
        client.post(
            "/user/walletTransfer",
            json={"currency": "XBt", "amount": 30_001, "targetAccountId": sub["id"]},
        ),
        400,
    )
    error(
        client.post(
            "/user/walletTransfer", json={"currency": "XBt", "amount": 1, "targetAccountId": other}
        ),
        400,
    )  # not hers
    key = ok(client.post("/apiKey", json={"targetAccountId": sub["id"], "permissions": "order"}))
    error(stranger.post("/apiKey", json={"targetAccountId": sub["id"]}), 400)
    back = ok(
        client.post(
            "/user/walletTransfer",
            json={
                "currency": "XBT",
                "amount": 5_000,
                "fromAccountId": sub["id"],
                "targetAccountId": main,
            },
        )
    )
    assert back["walletBalance"] == 15_000
    main_wallet = ok(client.get("/user/wallet", params={"currency": "XBt"}))
    sub_wallet = ok(signed(server, key, "GET", "/api/v1/user/wallet?currency=XBt"))
    assert (main_wallet["amount"], sub_wallet["amount"]) == (35_000, 15_000)
    assert main_wallet["amount"] + sub_wallet["amount"] == 50_000


def test_security_key_sign_in(server: Server) -> None:
    from tests.services.authenticator import SoftKey

    client = server.client()
    email = "judy@example.com"
    sign_up(server, client, email)
    sign_in(client, email)
    key = SoftKey("127.0.0.1", server.base)
    options = ok(client.post("/user/webauthn/registerOptions"))
    added = ok(
        client.post(
            "/user/webauthn/register", json={"credential": key.create(options), "name": "yubikey"}
        )
    )
    assert len(added["recoveryCodes"]) == 10
    client.headers["x-csrf-token"] = added["csrfToken"]
    assert ok(client.get("/user"))["TFAEnabled"] == "WebAuthn"
    fresh = server.client()
    error(fresh.post("/user/login", json={"email": email, "password": PASSWORD}), 401)
    login = ok(
        fresh.post("/user/webauthn/loginOptions", json={"email": email, "password": PASSWORD})
    )
    signed = ok(
        fresh.post(
            "/user/login", json={"email": email, "password": PASSWORD, "webauthn": key.get(login)}
        )
    )
    fresh.headers["x-csrf-token"] = signed["csrfToken"]
    assert ok(fresh.get("/user"))["email"] == email

    # the security key approves a key with withdraw permission: a fresh assertion, once
    withdraw = {"name": "payout", "permissions": "withdraw"}
    assert "second factor" in error(fresh.post("/apiKey", json=withdraw), 400)
    approval = key.get(ok(fresh.post("/user/webauthn/confirmOptions")))
    made = ok(fresh.post("/apiKey", json=withdraw | {"webauthn": approval}))
    assert made["permissions"] == ["withdraw"] and len(made["secret"]) == 48
    error(fresh.post("/apiKey", json=withdraw | {"webauthn": approval}), 400)  # replayed
    ok(fresh.post("/apiKey/disable", json={"apiKeyID": made["id"]}))
    enable = {"apiKeyID": made["id"]}
    error(fresh.post("/apiKey/enable", json=enable), 400)
    approval = key.get(ok(fresh.post("/user/webauthn/confirmOptions")))
    assert ok(fresh.post("/apiKey/enable", json=enable | {"webauthn": approval}))["enabled"]

    # a mobile client registers its push token (BitMEX's communicationToken)
    devices = ok(
        fresh.post("/user/communicationToken", json={"token": "apns-1", "platformAgent": "iOS"})
    )
    assert [(d["deviceToken"], d["channel"]) for d in devices] == [("apns-1", "iOS")]
    error(fresh.post("/user/communicationToken", json={"token": "apns-1"}), 400)

    # the key is listed and removed over REST, proven by a recovery code
    [listed] = ok(fresh.get("/user/webauthn"))
    assert listed["name"] == "yubikey"
    error(fresh.request("DELETE", "/user/webauthn", json={"id": listed["id"]}), 400)
    removed = ok(
        fresh.request(
            "DELETE",
            "/user/webauthn",
            json={"id": listed["id"], "token": added["recoveryCodes"][0]},
        )
    )
    fresh.headers["x-csrf-token"] = removed["csrfToken"]
    assert ok(fresh.get("/user/webauthn")) == []
    assert ok(fresh.post("/user/login", json={"email": email, "password": PASSWORD}))
