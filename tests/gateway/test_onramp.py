"""Buy crypto over REST against the real core: a bank-transfer order credited when the operator
confirms it (two different approvers above the four-eyes threshold), KYC limits per order, and a
hosted provider's signed webhooks (bad signatures, stale timestamps and replays refused; an order
credited once)."""

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from perpetua.core.catalogue import default_catalogue
from perpetua.core.engine import Engine
from perpetua.gateway import GatewayConfig, MemoryAccounts, create_app
from perpetua.gateway.history import History
from perpetua.gateway.ports import CostPorts
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.services.onramp import BankTransfer, HostedCheckoutProvider, OnRamp, sign_webhook
from tests.gateway.fakes import InlineSequencer
from tests.gateway.harness import ALICE, OPERATOR_KEY, Harness, read_models

USDT = 1_000_000
SECRET = "whsec-test"
OPERATOR = {"x-operator-key": OPERATOR_KEY}


@contextmanager
def venue(tmp_path: Path) -> Iterator[Harness]:
    engine = Engine(default_catalogue())
    sequencer = InlineSequencer(engine)
    onramp = OnRamp(
        BankTransfer(tmp_path / "bank.jsonl", four_eyes_usdt=1_000, bank_details="IBAN X"),
        (HostedCheckoutProvider("cardco", SECRET, "https://pay.example/checkout"),),
    )
    config = GatewayConfig(operator_key=OPERATOR_KEY, rate_limits=RateLimitConfig(enabled=False))
    with ExitStack() as stack:
        projector = stack.enter_context(read_models())
        sequencer.subscribe(projector.publish)
        app = create_app(
            config, sequencer, History.over(projector.projector), MemoryAccounts(),
            costs=CostPorts(onramp=onramp),
        )  # fmt: skip
        try:
            with TestClient(app, client=("127.0.0.1", 50000)) as client:
                yield Harness(client, sequencer, app.state.gateway.accounts)  # type: ignore[attr-defined]
        finally:
            sequencer.stop()


def _usdt(h: Harness) -> int:
    return int(h.signed("GET", "/user/wallet", params={"currency": "USDt"}).json()["amount"])


def _confirm(h: Harness, reference: str, approver: str) -> Any:
    body = {"reference": reference, "approver": approver}
    return h.client.post("/api/v1/admin/onramp/confirm", json=body, headers=OPERATOR)


def test_bank_transfer_is_credited_on_confirmation_with_four_eyes_above_the_threshold(
    tmp_path: Path,
) -> None:
    with venue(tmp_path) as h:
        small = h.signed("POST", "/onramp/bank/order", body={"amount": 500 * USDT})
        assert small.status_code == 200, small.text
        assert small.json()["bankDetails"] == "IBAN X"
        assert small.json()["reference"].startswith("PPT-")
        assert _usdt(h) == 0
        done = _confirm(h, small.json()["reference"], "ops-anna")
        assert done.json()["status"] == "Credited", done.text
        assert _usdt(h) == 500 * USDT
        again = _confirm(h, small.json()["reference"], "ops-ben")
        assert again.status_code == 400 and _usdt(h) == 500 * USDT

        big = h.signed("POST", "/onramp/bank/order", body={"amount": 5_000 * USDT}).json()
        first = _confirm(h, big["reference"], "ops-anna").json()
        assert first["status"] == "AwaitingSecondApproval" and _usdt(h) == 500 * USDT
        same = _confirm(h, big["reference"], "ops-anna")
        assert same.status_code == 400 and "someone else" in same.json()["error"]["message"]
        second = _confirm(h, big["reference"], "ops-ben").json()
        assert second["status"] == "Credited" and _usdt(h) == 5_500 * USDT
        listed = h.signed("GET", "/onramp/orders").json()
        assert [o["status"] for o in listed] == ["Credited", "Credited"]
        assert _confirm(h, "PPT-NOPE", "ops-anna").status_code == 404
        anonymous = h.client.post("/api/v1/admin/onramp/confirm", json={"reference": "x"})
        assert anonymous.status_code in (401, 403)
    # orders survive a restart (the JSON-lines file)
    assert [o["status"] for o in BankTransfer(tmp_path / "bank.jsonl").of(ALICE)] == [
        "Credited",
        "Credited",
    ]


class Level1:
    async def kyc_level(self, account: int) -> int:
        return 1


def test_kyc_level_limits_each_order(tmp_path: Path) -> None:
    with venue(tmp_path) as h:
        too_big = h.signed("POST", "/onramp/bank/order", body={"amount": 100_001 * USDT})
        assert too_big.status_code == 403 and "KYC level 2" in too_big.json()["error"]["message"]
        h.gateway.compliance = Level1()
        limited = h.signed("POST", "/onramp/bank/order", body={"amount": 2_001 * USDT})
        assert limited.status_code == 403 and "at most 2000 USDT" in limited.text
        assert (
            h.signed("POST", "/onramp/bank/order", body={"amount": 2_000 * USDT}).status_code == 200
        )


def _webhook(
    h: Harness, event: dict[str, Any], timestamp: int | None = None, secret: str = SECRET
) -> Any:
    body = json.dumps(event).encode()
    signature = sign_webhook(secret, body, timestamp or int(time.time()))
    return h.client.post(
        "/api/v1/onramp/webhook?provider=cardco",
        content=body,
        headers={"x-onramp-signature": signature, "content-type": "application/json"},
    )


def test_signed_webhooks_credit_once_and_refuse_forgeries_and_replays(tmp_path: Path) -> None:
    with venue(tmp_path) as h:
        checkout = h.signed(
            "POST", "/onramp/checkout", body={"provider": "cardco", "fiatAmount": 10_000}
        )
        assert checkout.status_code == 200, checkout.text
        order = checkout.json()
        assert order["redirectUrl"].startswith("https://pay.example/checkout?order=")
        assert order["amount"] == 100 * USDT
        paid = {"id": "evt-1", "order": order["orderID"], "account": ALICE, "currency": "USDt",
                "amount": order["amount"]}  # fmt: skip
        assert _webhook(h, paid, secret="forged").status_code == 401
        assert _webhook(h, paid, timestamp=int(time.time()) - 3_600).status_code == 400
        assert _usdt(h) == 0
        ok = _webhook(h, paid)
        assert ok.status_code == 200 and ok.json()["credited"] is True
        assert _webhook(h, paid).status_code == 409  # the same event again: a replay
        retried = _webhook(h, {**paid, "id": "evt-2"})  # the provider retries the order
        assert retried.status_code == 200 and retried.json()["credited"] is False
        assert _usdt(h) == 100 * USDT
        paths = h.client.get("/api/explorer/swagger.json").json()["paths"]
        assert {"/onramp/bank/order", "/onramp/webhook", "/admin/onramp/confirm"} <= set(paths)
