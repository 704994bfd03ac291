"""KYC over REST: the applicant's questionnaire and multipart uploads, the operator's review
queue and decisions (four-eyes, audited), bad input answered 4xx with nothing stored, and the
IP gate on orders; all in BitMEX's error shape."""

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, IndexPrice
from perpetua.core.engine import Engine
from perpetua.gateway import GatewayConfig, MemoryAccounts, create_app
from perpetua.gateway.auth import sign
from perpetua.gateway.history import History
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.services.compliance import Compliance, ComplianceConfig
from perpetua.services.server_key import load_server_key
from perpetua.store import migrate, open_engine
from perpetua.store.schema import kyc_documents
from perpetua.wire.values import encode_json
from tests.gateway.fakes import InlineSequencer
from tests.gateway.harness import ALICE, OPERATOR_KEY, read_models
from tests.services.test_compliance import PDF, geoip_db, jpeg_with_exif, person

OP = {"x-operator-key": OPERATOR_KEY}
BOUNDARY = "----perpetua-test-boundary"


class Client:
    def __init__(self, client: TestClient, sequencer: InlineSequencer, compliance: Compliance):
        self.client = client
        self.sequencer = sequencer
        self.compliance = compliance

    def signed(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> Any:
        target = "/api/v1" + path
        expires = str(int(time.time()) + 60)
        headers = {
            "api-key": "alice-key",
            "api-expires": expires,
            "api-signature": sign("alice-secret", method, target, expires, body),
        }
        if body:
            headers["content-type"] = content_type
        return self.client.request(method, target, content=body, headers=headers)

    def upload(self, kind: str, data: bytes, name: str, part_type: str = "") -> Any:
        type_line = f"Content-Type: {part_type}\r\n" if part_type else ""
        body = (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
                f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
                f'name="file"; filename="{name}"\r\n'
                f"{type_line}\r\n"
            ).encode()
            + data
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        return self.signed(
            "POST", "/user/kyc/document", body, f"multipart/form-data; boundary={BOUNDARY}"
        )

    def admin(self, method: str, path: str, **params: Any) -> Any:
        if method == "GET":
            return self.client.get("/api/v1" + path, params=params, headers=OP)
        return self.client.post("/api/v1" + path, json=params, headers=OP)


@contextmanager
def venue(client_ip: str = "127.0.0.1", **config: Any) -> Iterator[Client]:
    engine = Engine(default_catalogue())
    sequencer = InlineSequencer(engine)
    accounts = MemoryAccounts()
    accounts.create_api_key(ALICE, ["order", "withdraw"], key_id="alice-key", secret="alice-secret")
    with tempfile.TemporaryDirectory() as directory, read_models() as projector:
        url = f"sqlite:///{directory}/compliance.sqlite"
        migrate(url)
        compliance = Compliance(
            open_engine(url),
            load_server_key(Path(directory) / "data"),
            sequencer,
            ComplianceConfig(geoip_database=geoip_db(Path(directory) / "geo.mmdb"), **config),
        )
        sequencer.subscribe(projector.publish)
        app = create_app(
            GatewayConfig(operator_key=OPERATOR_KEY, rate_limits=RateLimitConfig(enabled=False)),
            sequencer,
            History.over(projector.projector),
            accounts,
            compliance=compliance,
        )
        try:
            with TestClient(app, client=(client_ip, 50000)) as client:
                yield Client(client, sequencer, compliance)
        finally:
            sequencer.stop()
            compliance.close()


def _documents(c: Client) -> int:
    with c.compliance.engine.connect() as conn:
        return len(conn.execute(kyc_documents.select()).all())


def test_applicant_flow_and_review_over_rest() -> None:
    with venue() as c:
        assert c.signed("GET", "/user/kyc").json()["level"] == 0
        saved = c.signed("POST", "/user/kyc/application", encode_json(person()))
        assert saved.status_code == 200, saved.text
        photo = c.upload("selfie", jpeg_with_exif(), "me.jpg", "image/jpeg")
        assert photo.status_code == 200, photo.text
        for kind in ("id_front", "id_back"):
            assert c.upload(kind, PDF + kind.encode(), f"{kind}.pdf").status_code == 200
        status = c.signed("GET", "/user/kyc").json()
        assert status["missingDocuments"] == [] and len(status["documents"]) == 3
        submitted = c.signed("POST", "/user/kyc/submit")
        assert submitted.status_code == 200, submitted.text
        again = c.signed("POST", "/user/kyc/submit")
        assert again.status_code == 409 and "under review" in again.json()["error"]["message"]
        [case] = c.admin("GET", "/admin/kyc/queue").json()
        detail = c.admin("GET", "/admin/kyc/case", id=case["id"]).json()
        assert detail["application"]["name"] == "Alice Example"
        selfie = [d for d in detail["documents"] if d["kind"] == "selfie"][0]
        assert c.admin("GET", "/admin/kyc/document", id=selfie["id"]).status_code == 200
        # documents are served to reviewers only: no user route, no key without the operator's
        no_key = c.client.get("/api/v1/admin/kyc/document", params={"id": selfie["id"]})
        assert no_key.status_code == 403
        no_reviewer = c.admin("POST", "/admin/kyc/decide", caseId=case["id"], decision="approve")
        assert no_reviewer.status_code == 400
        decided = c.admin(
            "POST", "/admin/kyc/decide", caseId=case["id"], reviewer="rita", decision="approve",
            reason="documents match",
        )  # fmt: skip
        assert decided.status_code == 200 and decided.json()["status"] == "approved"
        late = c.admin(
            "POST", "/admin/kyc/decide", caseId=case["id"], reviewer="sam", decision="reject",
            reason="late",
        )  # fmt: skip
        assert late.status_code == 409
        assert set(late.json()["error"]) == {"message", "name"}
        assert c.signed("GET", "/user/kyc").json()["level"] == 1
        trail = c.admin("GET", "/admin/kyc/decisions", account=ALICE).json()
        assert [(d["reviewer"], d["decision"]) for d in trail][-1] == ("rita", "approve")


def test_bad_uploads_are_4xx_and_store_nothing() -> None:
    with venue() as c:
        c.signed("POST", "/user/kyc/application", encode_json(person()))
        cases = [
            (c.upload("selfie", PDF, "x.png", "image/png"), 415),
            (c.upload("selfie", b"GIF89a", "x.gif"), 415),
            (c.upload("selfie", PDF, "../../../etc/passwd"), 400),
            (c.upload("nonsense", PDF, "x.pdf"), 400),
            (c.signed("POST", "/user/kyc/document", b"kind=selfie",
                      "application/x-www-form-urlencoded"), 415),
            (c.signed("POST", "/user/kyc/document", b"--nope\r\ngarbage",
                      f"multipart/form-data; boundary={BOUNDARY}"), 400),
            (c.upload("selfie", b"%PDF-" + b"0" * (5 * 1024 * 1024 + 20_000), "big.pdf"), 413),
        ]  # fmt: skip
        for response, status in cases:
            assert response.status_code == status, response.text
            assert set(response.json()["error"]) == {"message", "name"}
        assert _documents(c) == 0
        assert c.upload("id_front", PDF, "a.pdf").status_code == 200
        duplicate = c.upload("id_back", PDF, "b.pdf")
        assert duplicate.status_code == 409
        assert _documents(c) == 1
        assert c.signed("POST", "/user/kyc/application", b'{"name": 5}').status_code == 400


def test_orders_from_a_restricted_location_are_refused() -> None:
    with venue(client_ip="1.2.3.4") as c:
        c.sequencer.execute(Deposit(0, ALICE, "XBt", 10**8, "d"))
        c.sequencer.execute(IndexPrice(0, ".BXBT", 50_000, 1))
        body = encode_json({"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 49_000})
        refused = c.signed("POST", "/order", body)
        assert refused.status_code == 403
        assert "restricted location" in refused.json()["error"]["message"]
        cancel = c.signed("DELETE", "/order/all")  # reducing risk is never refused
        assert cancel.status_code == 200, cancel.text
        assert c.signed("GET", "/user/kyc").status_code == 200  # reading is not trading
        withdrawal = encode_json({"currency": "XBt", "network": "bitcoin", "amount": 1000})
        refused = c.signed("POST", "/user/requestWithdrawal", withdrawal)
        assert refused.status_code == 403
        assert "restricted location; withdrawal" in refused.json()["error"]["message"]
    with venue(client_ip="5.6.7.8") as c:  # GB: allowed
        c.sequencer.execute(Deposit(0, ALICE, "XBt", 10**8, "d"))
        c.sequencer.execute(IndexPrice(0, ".BXBT", 50_000, 1))
        body = encode_json({"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 49_000})
        assert c.signed("POST", "/order", body).status_code == 200


def test_an_operator_restriction_survives_compliance_decisions_and_syncs() -> None:
    """The operator freezes an account that compliance has close-only (KYC level 0); the
    account is then approved and synced again: the freeze stands (the sync used to submit
    'unrestricted' over it). Lifting it leaves what compliance requires."""
    import asyncio

    with venue(kyc_required=True) as c:
        assert c.signed("POST", "/user/kyc/application", encode_json(person())).status_code == 200
        assert asyncio.run(c.compliance.sync_all()) == 1
        assert c.admin("GET", "/admin/restriction", account=ALICE).json()["cause"] == "KycRequired"
        frozen = c.admin(
            "POST", "/admin/restriction", account=ALICE, trading="Frozen", text="chargeback fraud"
        )
        assert frozen.status_code == 200, frozen.text
        assert (frozen.json()["trading"], frozen.json()["cause"]) == ("Frozen", "Operator")
        for kind in ("id_front", "id_back", "selfie"):
            assert c.upload(kind, PDF + kind.encode(), f"{kind}.pdf").status_code == 200
        case = c.signed("POST", "/user/kyc/submit").json()
        decided = c.admin(
            "POST", "/admin/kyc/decide", caseId=case["caseId"], reviewer="rita",
            decision="approve", reason="documents match",
        )  # fmt: skip
        assert decided.status_code == 200, decided.text
        asyncio.run(c.compliance.sync_all())
        held = c.admin("GET", "/admin/restriction", account=ALICE).json()
        assert (held["trading"], held["cause"]) == ("Frozen", "Operator")
        lifted = c.admin("POST", "/admin/restriction", account=ALICE, trading="Allowed")
        assert lifted.status_code == 200 and lifted.json()["restricted"] is False
        assert asyncio.run(c.compliance.sync_all()) == 0
