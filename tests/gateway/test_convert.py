"""Convert over REST against the real core: quote from the spot books, execute within the TTL
at exactly the quoted amounts, and every refusal (expired, reused, price moved, thin, too small,
too large, paused, unknown) a clear 4xx that changes no balance. The sweep turns small balances
into BMEX. Each runs with quotes kept by the desk and sealed into their ids (the cluster's
gateways, rule 4); sealed, a quote made on one gateway executes on another, once."""

import copy
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from cryptography.fernet import Fernet, MultiFernet
from starlette.testclient import TestClient

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, FundConvertDesk, PlaceOrder, SetInstrumentState
from perpetua.core.engine import Engine
from perpetua.core.enums import Side
from perpetua.gateway import GatewayConfig, MemoryAccounts, create_app
from perpetua.gateway.history import History
from perpetua.gateway.ports import CostPorts
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.services.convert import ConvertDesk, Sealer
from tests.gateway.fakes import InlineSequencer
from tests.gateway.harness import ALICE, OPERATOR_KEY, Harness, read_models

BMEX = 1_000_000
USDT = 1_000_000
MAKER = 4


class Clock:
    def __init__(self) -> None:
        self.now = time.time_ns()

    def __call__(self) -> int:
        return self.now


SEALER = MultiFernet([Fernet(Fernet.generate_key())])  # the key every gateway shares


@pytest.fixture(params=["kept", "sealed"])
def sealer(request: pytest.FixtureRequest) -> Sealer | None:
    return SEALER if request.param == "sealed" else None


@contextmanager
def venue(sealer: Sealer | None = None, gateways: int = 1) -> Iterator[tuple[Harness, Clock]]:
    """One core; ``gateways`` apps over it, each with a desk of its own (the harness drives the
    first; ``others(h)`` gives harnesses for the rest, same keys)."""
    engine = Engine(default_catalogue())
    sequencer = InlineSequencer(engine)
    accounts = MemoryAccounts()
    clock = Clock()
    config = GatewayConfig(operator_key=OPERATOR_KEY, rate_limits=RateLimitConfig(enabled=False))
    with ExitStack() as stack:
        projector = stack.enter_context(read_models())
        sequencer.subscribe(projector.publish)
        clients = []
        for _ in range(gateways):
            desk = ConvertDesk({s.symbol: s for s in default_catalogue()}, clock, sealer=sealer)
            app = create_app(
                config, sequencer, History.over(projector.projector), accounts,
                costs=CostPorts(convert=desk),
            )  # fmt: skip
            clients.append(stack.enter_context(TestClient(app, client=("127.0.0.1", 50000))))
        try:
            h = Harness(clients[0], sequencer, accounts)
            _OTHERS[id(h)] = [_on(h, client) for client in clients[1:]]
            for command in (
                Deposit(0, MAKER, "BMEx", 1_000_000 * BMEX, "m-bmex"),
                Deposit(0, MAKER, "USDt", 1_000_000 * USDT, "m-usdt"),
                Deposit(0, ALICE, "USDt", 1_000 * USDT, "a-usdt"),
                Deposit(0, ALICE, "XBt", 1_000, "a-xbt"),  # 0.00001 XBT: $0.20, small
                FundConvertDesk(0, "BMEx", 1_000_000 * BMEX, "desk-bmex"),
                FundConvertDesk(0, "USDt", 100_000 * USDT, "desk-usdt"),
                PlaceOrder(0, MAKER, "BMEX_USDT", Side.SELL, 10_000, price=500),
                PlaceOrder(0, MAKER, "BMEX_USDT", Side.SELL, 10_000, price=510),
                PlaceOrder(0, MAKER, "BMEX_USDT", Side.BUY, 10_000, price=490),
                PlaceOrder(0, MAKER, "XBT_USDT", Side.BUY, 1_000_000, price=40_000),
            ):
                h.sequencer.execute(command)
            yield h, clock
        finally:
            _OTHERS.pop(id(h), None)
            sequencer.stop()


_OTHERS: dict[int, list[Harness]] = {}


def _on(h: Harness, client: TestClient) -> Harness:
    """``h``'s keys and core, through another gateway's client."""
    other = copy.copy(h)
    other.client = client
    return other


def _balance(h: Harness, currency: str) -> int:
    return int(h.signed("GET", "/user/wallet", params={"currency": currency}).json()["amount"])


def _quote(h: Harness, src: str, dst: str, amount: int) -> Any:
    return h.signed(
        "POST", "/convert/quote", body={"fromCurrency": src, "toCurrency": dst, "amount": amount}
    )


def test_a_quote_executes_within_its_ttl_and_not_after(sealer: Sealer | None) -> None:
    with venue(sealer) as (h, clock):
        quote = _quote(h, "USDT", "BMEX", 75 * USDT)
        assert quote.status_code == 200, quote.text
        row = quote.json()
        assert row["toAmount"] == 148_860_990  # 100 BMEX at 0.500 + 49.01 at 0.510, less 0.1%
        assert row["price"] == 1.9848132
        clock.now += 9 * 10**9
        done = h.signed("POST", "/convert/execute", body={"quoteID": row["quoteID"]})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "Filled"
        assert _balance(h, "BMEx") == 148_860_990
        assert _balance(h, "USDt") == 925 * USDT
        again = h.signed("POST", "/convert/execute", body={"quoteID": row["quoteID"]})
        assert again.status_code == 400 and "already used" in again.json()["error"]["message"]

        late = _quote(h, "USDT", "BMEX", 10 * USDT).json()
        clock.now += 10 * 10**9 + 1
        expired = h.signed("POST", "/convert/execute", body={"quoteID": late["quoteID"]})
        assert expired.status_code == 400 and "expired" in expired.json()["error"]["message"]
        assert _balance(h, "USDt") == 925 * USDT


def test_the_price_guard_refuses_a_quote_the_books_no_longer_give(sealer: Sealer | None) -> None:
    with venue(sealer) as (h, clock):
        row = _quote(h, "USDT", "BMEX", 50 * USDT).json()
        # someone else lifts the 0.500 offer before the quote is executed
        h.sequencer.execute(Deposit(0, MAKER + 1, "USDt", 1_000 * USDT, "other"))
        h.sequencer.execute(PlaceOrder(0, MAKER + 1, "BMEX_USDT", Side.BUY, 10_000, price=500))
        moved = h.signed("POST", "/convert/execute", body={"quoteID": row["quoteID"]})
        assert moved.status_code == 400, moved.text
        assert "price moved" in moved.json()["error"]["message"]
        assert _balance(h, "USDt") == 1_000 * USDT and _balance(h, "BMEx") == 0


def test_refusals_are_clear_and_change_nothing(sealer: Sealer | None) -> None:
    with venue(sealer) as (h, _):
        cases = [
            (("USDT", "USDT", USDT), "same currency"),
            (("USDT", "BMEX", 0), "positive"),
            (("USDT", "BMEX", 500_000), "too small"),
            (("USDT", "BMEX", 200_000 * USDT), "too large"),
            (("USDT", "BMEX", 500 * USDT), "too thin"),
            (("XBT", "BMEX", 150), "multiple of 100"),
            (("USDT", "ETH", 10 * USDT), "too thin"),
        ]
        for (src, dst, amount), text in cases:
            response = _quote(h, src, dst, amount)
            assert response.status_code == 400, (src, dst, amount, response.text)
            assert text in response.json()["error"]["message"], response.text
        missing = h.signed("POST", "/convert/execute", body={"quoteID": "nope"})
        assert missing.status_code == 404
        h.sequencer.execute(SetInstrumentState(0, "BMEX_USDT", "Closed"))
        paused = _quote(h, "USDT", "BMEX", 10 * USDT)
        assert paused.status_code == 400 and "paused" in paused.json()["error"]["message"]
        assert _balance(h, "USDt") == 1_000 * USDT


def test_sweep_turns_small_balances_into_bmex_and_the_routes_are_documented(
    sealer: Sealer | None,
) -> None:
    with venue(sealer) as (h, _):
        swept = h.signed("POST", "/convert/sweep")
        assert swept.status_code == 200, swept.text
        rows = swept.json()
        assert [(r["fromCurrency"], r["status"]) for r in rows] == [("XBt", "Filled")]
        assert _balance(h, "XBt") == 0  # 1,000 XBt: $0.20 -> 0.3996 BMEX
        assert _balance(h, "BMEx") == 399_600
        assert _balance(h, "USDt") == 1_000 * USDT  # not small: kept
        paths = h.client.get("/api/explorer/swagger.json").json()["paths"]
        assert paths["/convert/quote"]["post"]["tags"] == ["Trading costs"]
        assert {"/convert/execute", "/convert/sweep", "/convert/assets"} <= set(paths)


def test_a_sealed_quote_executes_on_another_gateway_once_and_cannot_be_altered() -> None:
    with venue(SEALER, gateways=2) as (h, _):
        (other,) = _OTHERS[id(h)]
        row = _quote(h, "USDT", "BMEX", 75 * USDT).json()
        quote_id = row["quoteID"]
        assert len(quote_id) < 400
        # altered (one character of the token), another account's, or not a token: not found
        altered = quote_id[:-5] + ("A" if quote_id[-5] != "A" else "B") + quote_id[-4:]
        for bad in (altered, quote_id[:-1], "nope", "é" * 10):
            refused = other.signed("POST", "/convert/execute", body={"quoteID": bad})
            assert refused.status_code == 404, (bad, refused.text)
        bobs = other.signed("POST", "/convert/execute", key=h.bob, body={"quoteID": quote_id})
        assert bobs.status_code == 404, bobs.text
        done = other.signed("POST", "/convert/execute", body={"quoteID": quote_id})
        assert done.status_code == 200, done.text
        assert done.json()["toAmount"] == 148_860_990
        assert _balance(h, "BMEx") == 148_860_990 and _balance(h, "USDt") == 925 * USDT
        # the same id again: this gateway remembers it, the first one is refused by the core
        again_here = other.signed("POST", "/convert/execute", body={"quoteID": quote_id})
        assert again_here.status_code == 400
        assert "already used" in again_here.json()["error"]["message"]
        again_there = h.signed("POST", "/convert/execute", body={"quoteID": quote_id})
        assert again_there.status_code == 400, again_there.text
        assert _balance(h, "BMEx") == 148_860_990 and _balance(h, "USDt") == 925 * USDT
