"""Compliance end to end: the real ``perpetua run`` process with a ``[compliance]`` block (KYC
required, a MaxMind-format database built with mmdb-writer, OFAC's SDN CSV and a generic list)
behind a trusted proxy (``forwarded_allow_ips``: the X-Forwarded-For of 127.0.0.1 names the
client), mail to a real SMTP server (aiosmtpd), and the operator working the review queue with
the real ``perpetua operator kyc-*`` CLI against it:

- a restricted IP location refuses sign-up and sign-in; a declared residence that differs from
  the sign-in's location is flagged for review, not refused;
- a sanctions hit at the questionnaire (sign-up takes no name: this is where a person is first
  screened) goes to the review queue; a confirmed hit freezes the account in the core; a list
  update screens every account again;
- the queue over the CLI: approve, reject with a reason, ask for more, four-eyes on a high-risk
  case, the audit trail; export and erasure of one person's data (decisions kept).
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from perpetua.gateway.auth import sign
from perpetua.services.accounts import AccountsService
from perpetua.services.mail import free_port
from tests.services.smtp import Inbox, smtp_server, token
from tests.services.test_compliance import PDF, SDN_ROW, geoip_db, person

pytestmark = pytest.mark.slow  # a real venue process and CLI processes

SRC = Path(__file__).resolve().parents[2] / "src"
STARTUP_S = 120  # a deadline only: a loaded CI machine imports slowly
CLI_TIMEOUT_S = 60
OPERATOR_KEY = "compliance-op"
PASSWORD = "violet tractor umbrella 42"
US, QUEBEC, GB, DE = "1.2.3.4", "9.9.9.9", "5.6.7.8", "4.4.4.4"  # the test database's places
# accounts made before the start, each with an API key: one per review flow
APPROVED, REJECTED, MORE, BUSINESS, SANCTIONED, LISTED_LATER = range(2001, 2007)
BOUNDARY = "----compliance-e2e"
GENERIC_HEADER = "name,dob,nationality,addresses,id,program\n"

VENUE_TOML = """\
data_dir = "data"
operator_key = "{key}"
[server]
port = {port}
forwarded_allow_ips = ["127.0.0.1"]
log_level = "warning"
[rate_limits]
enabled = false
[feeds]
default = "none"
[compliance]
kyc_required = true
geoip_database = "geo.mmdb"
sanctions = [
  {{ path = "sdn.csv", format = "ofac-sdn" }},
  {{ path = "internal.csv", format = "generic" }},
]
sync_interval_s = 3600   # list reloads come from the CLI here
"""


class Venue:
    def __init__(self, base: str, inbox: Inbox, root: Path, keys: dict[int, tuple[str, str]]):
        self.base = base
        self.inbox = inbox
        self.root = root
        self.keys = keys

    def client(self, ip: str = "") -> httpx.Client:
        headers = {"x-forwarded-for": ip} if ip else {}
        return httpx.Client(base_url=self.base + "/api/v1", timeout=20, headers=headers)

    def signed(self, account: int, method: str, path: str, body: Any = None, ip: str = "") -> Any:
        key, secret = self.keys[account]
        data = b"" if body is None else json.dumps(body).encode()
        return self.raw(account, method, path, data, "application/json", ip)

    def raw(
        self, account: int, method: str, path: str, data: bytes, content_type: str, ip: str = ""
    ) -> Any:
        key, secret = self.keys[account]
        expires = str(int(time.time()) + 60)
        headers = {
            "api-key": key,
            "api-expires": expires,
            "api-signature": sign(secret, method, "/api/v1" + path, expires, data),
            "content-type": content_type,
        }
        with self.client(ip) as client:
            return client.request(method, path, content=data, headers=headers)

    def upload(self, account: int, kind: str, data: bytes) -> Any:
        body = (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
                f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
                f'name="file"; filename="{kind}.pdf"\r\n\r\n'
            ).encode()
            + data
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        return self.raw(account, "POST", "/user/kyc/document", body, content_type)

    def operator(self, *args: str) -> tuple[int, Any]:
        """``perpetua operator ARGS`` as its own process: (exit code, JSON answer or stderr)."""
        done = subprocess.run(
            [sys.executable, "-m", "perpetua.cli", "operator", "--url", self.base,
             "--operator-key", OPERATOR_KEY, *args],
            env=dict(os.environ, PYTHONPATH=str(SRC)),
            capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
        )  # fmt: skip
        if done.returncode != 0:
            return done.returncode, done.stderr
        return 0, json.loads(done.stdout)

    def ok(self, *args: str) -> Any:
        code, answer = self.operator(*args)
        assert code == 0, answer
        return answer


def _keys(data_dir: Path) -> dict[int, tuple[str, str]]:
    """Accounts and API keys made in the data dir before the venue starts (``perpetua admin``
    does the same)."""
    service = AccountsService.open(data_dir)
    try:
        keys = {}
        for account in (APPROVED, REJECTED, MORE, BUSINESS, SANCTIONED, LISTED_LATER):
            service.create_user(f"u{account}@example.com", PASSWORD, account)
            keys[account] = service.create_api_key(account, "e2e", ["order", "withdraw"])
        return keys
    finally:
        service.close()


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    root = tmp_path_factory.mktemp("compliance")
    geoip_db(root / "geo.mmdb")
    (root / "sdn.csv").write_text(SDN_ROW)
    (root / "internal.csv").write_text(GENERIC_HEADER)
    keys = _keys(root / "data")
    port = free_port()
    config = root / "venue.toml"
    config.write_text(VENUE_TOML.format(key=OPERATOR_KEY, port=port))
    with smtp_server() as (inbox, smtp_port):
        env = dict(
            os.environ, PYTHONPATH=str(SRC), PERPETUA_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}"
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "perpetua.cli", "run", "--config", str(config)],
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
                    pytest.fail(f"venue did not start:\n{output}")
                time.sleep(0.2)
        try:
            yield Venue(base, inbox, root, keys)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                assert process.wait(timeout=30) == 0
            finally:
                if process.poll() is None:
                    process.kill()


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"message", "name"}
    return str(response.json()["error"]["message"])


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _cases(venue: Venue, account: int, kind: str) -> list[dict[str, Any]]:
    with venue.client() as client:
        queue = _ok(client.get("/admin/kyc/queue", headers={"x-operator-key": OPERATOR_KEY}))
    return [c for c in queue if c["account"] == account and c["kind"] == kind]


def _apply(venue: Venue, account: int, **changes: Any) -> int:
    """Questionnaire, documents, submission: the new case's id."""
    _ok(venue.signed(account, "POST", "/user/kyc/application", person(**changes)))
    kinds = ["id_front", "id_back", "selfie"]
    if changes.get("kind") == "business":
        kinds.append("incorporation")
    for kind in kinds:
        _ok(venue.upload(account, kind, PDF + f"{account}-{kind}".encode()))
    return int(_ok(venue.signed(account, "POST", "/user/kyc/submit"))["caseId"])


def test_a_restricted_ip_location_refuses_sign_up_and_sign_in(venue: Venue) -> None:
    email = "roamer@example.com"
    body = {"email": email, "password": PASSWORD}
    for ip, place in ((US, "US"), (QUEBEC, "CA-QC")):
        with venue.client(ip) as client:
            message = _error(client.post("/user/register", json=body), 403)
        assert message == f"Access from {place} is not permitted (restricted location; sign-up)"
    with venue.client(DE) as client:
        _ok(client.post("/user/register", json=body))
        mail = venue.inbox.wait(email, "confirm your email")
        _ok(client.post("/user/confirmEmail", json={"token": token(mail)}))
    assert len(venue.inbox.to(email)) == 1  # the refused sign-ups sent nothing
    with venue.client(US) as client:  # the right password, from a restricted place
        message = _error(client.post("/user/login", json=body), 403)
    assert message == "Access from US is not permitted (restricted location; sign-in)"
    with venue.client(DE) as browser:
        signed = _ok(browser.post("/user/login", json=body))
        browser.headers["x-csrf-token"] = signed["csrfToken"]
        application = person(name="Rita Roamer", residence="DE", citizenship=["DE"])
        _ok(browser.post("/user/kyc/application", json=application))
    account = int(signed["id"])
    assert _cases(venue, account, "location") == []  # residence DE, signed in from DE
    with venue.client(GB) as browser:  # not restricted, but not where the user said they live
        _ok(browser.post("/user/login", json=body))
    [flagged] = _cases(venue, account, "location")
    assert flagged["detail"]["mismatch"] == "DE->GB" and flagged["risk"] == "high"


def test_a_sanctions_hit_at_the_questionnaire_is_reviewed_and_a_confirmed_hit_freezes(
    venue: Venue,
) -> None:
    applicant = person(name="Jon Doe", dateOfBirth="1970-01-01", citizenship=["DE"])
    answer = _ok(venue.signed(SANCTIONED, "POST", "/user/kyc/application", applicant))
    assert answer == {"saved": True, "screening": "review"}
    queue = venue.ok("kyc-queue")
    [case] = [c for c in queue if c["account"] == SANCTIONED]
    assert (case["kind"], case["risk"], case["detail"]["at"]) == (
        "sanctions",
        "high",
        "application",
    )
    assert case["detail"]["hits"][0]["name"] == "DOE, John"
    mine = _ok(venue.signed(SANCTIONED, "GET", "/user/restrictions"))
    assert (mine["trading"], mine["cause"]) == ("CloseOnly", "KycRequired")  # a hit decides nothing
    code, refused = venue.operator("kyc-decide", str(case["id"]), "confirm", "--reviewer", "rita")
    assert code == 1 and "400" in refused and "needs a reason" in refused
    decided = venue.ok(
        "kyc-decide", str(case["id"]), "confirm", "--reviewer", "rita",
        "--reason", "same date of birth and nationality as SDN entry 36",
    )  # fmt: skip
    assert decided["status"] == "confirmed"
    frozen = _ok(venue.signed(SANCTIONED, "GET", "/user/restrictions"))
    assert (frozen["trading"], frozen["cause"], frozen["withdrawals"]) == (
        "Frozen", "Sanctions", False,
    )  # fmt: skip
    order = {"symbol": "XBTUSD", "side": "Sell", "orderQty": 100, "price": 60_000}
    message = _error(venue.signed(SANCTIONED, "POST", "/order", order), 403)
    assert "frozen" in message and "sanctions" in message
    again = person(name="Someone Else")
    assert "sanctions" in _error(
        venue.signed(SANCTIONED, "POST", "/user/kyc/application", again), 403
    )


def test_a_list_update_screens_every_account_again(venue: Venue) -> None:
    listed = person(name="Lena Later", dateOfBirth="1981-02-03", citizenship=["AT"])
    assert _ok(venue.signed(LISTED_LATER, "POST", "/user/kyc/application", listed)) == {
        "saved": True, "screening": "clear",
    }  # fmt: skip
    assert venue.ok("sanctions-reload")["changed"] is False  # the files did not change
    with (venue.root / "internal.csv").open("a") as lists:
        lists.write("Lena Laterr,1981,Austria,,INT-7,internal\n")
    reloaded = venue.ok("sanctions-reload")
    assert reloaded["changed"] is True and reloaded["casesOpened"] == 1
    [case] = _cases(venue, LISTED_LATER, "sanctions")
    assert case["detail"]["at"] == "list update" and case["detail"]["hits"][0]["entryId"] == "INT-7"
    assert venue.ok("sanctions-reload")["casesOpened"] == 0


def test_the_review_queue_over_the_cli(venue: Venue) -> None:
    approved = _apply(venue, APPROVED)
    rejected = _apply(venue, REJECTED)
    more = _apply(venue, MORE)
    business = _apply(
        venue, BUSINESS, kind="business", entityName="Example Trading GmbH",
        incorporationCountry="DE", registrationNumber="HRB 99",
        beneficialOwners=[{"name": "Otto Owner", "dateOfBirth": "1970-04-04",
                           "nationality": ["DE"]}],
    )  # fmt: skip
    queue = {c["id"]: c for c in venue.ok("kyc-queue")}
    assert {approved, rejected, more, business} <= set(queue)
    assert queue[business]["risk"] == "high" and queue[approved]["risk"] == "normal"
    assert venue.ok("kyc-case", str(approved))["application"]["name"] == "Alice Example"

    def decide(case: int, decision: str, reviewer: str, reason: str = "") -> tuple[int, Any]:
        reasons = ("--reason", reason) if reason else ()
        return venue.operator("kyc-decide", str(case), decision, "--reviewer", reviewer, *reasons)

    # approve: level 1, the core's KYC restriction lifted
    assert _ok(venue.signed(APPROVED, "GET", "/user/restrictions"))["cause"] == "KycRequired"
    assert decide(approved, "approve", "rita") == (0, {"caseId": approved, "status": "approved"})
    assert _ok(venue.signed(APPROVED, "GET", "/user/kyc"))["level"] == 1
    assert _ok(venue.signed(APPROVED, "GET", "/user/restrictions"))["restricted"] is False
    code, message = decide(approved, "reject", "sam", "late")
    assert code == 1 and "409" in message and "already decided" in message
    # reject: a reason is required
    code, message = decide(rejected, "reject", "rita")
    assert code == 1 and "400" in message and "needs a reason" in message
    assert decide(rejected, "reject", "rita", "selfie does not match the ID")[1] == {
        "caseId": rejected, "status": "rejected",
    }  # fmt: skip
    # ask for more
    assert decide(more, "more", "rita", "the back of the ID is unreadable")[1] == {
        "caseId": more, "status": "more_info",
    }  # fmt: skip
    assert _ok(venue.signed(MORE, "GET", "/user/kyc"))["status"] == "more_info"
    # four-eyes on a high-risk (business) case
    assert decide(business, "approve", "rita", "registry extract matches")[1]["status"] == (
        "awaiting_second"
    )
    assert _ok(venue.signed(BUSINESS, "GET", "/user/kyc"))["level"] == 0
    code, message = decide(business, "approve", "rita")
    assert code == 1 and "409" in message and "Four-eyes" in message
    assert decide(business, "approve", "sam", "owner checked")[1]["status"] == "approved"
    assert _ok(venue.signed(BUSINESS, "GET", "/user/kyc"))["level"] == 1
    trail = venue.ok("kyc-decisions", str(BUSINESS))
    assert [(d["reviewer"], d["decision"]) for d in trail] == [
        ("system", "opened"), ("rita", "approve_first"), ("sam", "approve"),
    ]  # fmt: skip
    # one person's data exported, then erased: the decisions stay, without personal detail
    exported = venue.ok("kyc-export", str(REJECTED))
    assert exported["profile"]["application"]["name"] == "Alice Example"
    assert len(exported["documents"]) == 3
    erased = venue.ok("kyc-erase", str(REJECTED), "--reviewer", "dpo")
    assert erased == {"account": REJECTED, "erased": True, "documents": 3}
    after = venue.ok("kyc-export", str(REJECTED))
    assert after["profile"] is None and after["documents"] == []
    assert [(d["reviewer"], d["decision"], d["reason"]) for d in after["decisions"]] == [
        ("system", "opened", after["decisions"][0]["reason"]),
        ("rita", "reject", "selfie does not match the ID"),
        ("dpo", "erased", "personal data erased on request"),
    ]
    assert all(d["detail"] is None for d in after["decisions"])
