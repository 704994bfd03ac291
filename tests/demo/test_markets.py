"""The bots' arithmetic (contract values, ladders, leverage sizing), the demo clock, and the
demo's account state file, without a server."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpetua.core.catalogue import default_catalogue
from perpetua.demo import demo_markets
from perpetua.demo.clock import DemoClock
from perpetua.demo.markets import (
    Market,
    QuoteParams,
    contracts_for_value,
    ladder,
    max_leverage_qty,
    reference_price,
)
from perpetua.demo.provision import DemoState
from perpetua.gateway.config import GatewayConfig
from perpetua.marketdata.hub import MarketData

XBTUSD_ROW = {
    "symbol": "XBTUSD",
    "typ": "FFWCSX",
    "referenceSymbol": ".BXBT",
    "tickSize": 0.1,
    "lotSize": 100,
    "multiplier": -100_000_000,
    "isInverse": True,
    "settlCurrency": "XBt",
    "initMargin": "0.01",
    "takerFee": "0.00075",
    "expiry": None,
}


def _market(symbol: str) -> Market:
    market = MarketData(GatewayConfig().instruments)
    return Market.from_row(market.instrument_row(symbol))


def test_markets_read_from_the_gateways_instrument_rows() -> None:
    xbtusd = _market("XBTUSD")
    assert xbtusd == Market.from_row(XBTUSD_ROW)
    spot = _market("ETH_USDT")
    assert spot.is_spot and spot.base_currency == "Gwei" and spot.settl_currency == "USDt"
    future = _market("XBTH27")
    assert future.is_future and future.expiry_s is not None


@pytest.mark.parametrize(
    ("symbol", "price", "value"),
    [
        ("XBTUSD", Decimal(100_000), Decimal(1_000)),  # 1 USD of XBT: 1000 XBt
        ("XBTUSDT", Decimal(100_000), Decimal(100_000)),  # 1e-6 XBT: 0.1 USDT
        ("ETHUSD", Decimal(3_000), Decimal(300_000)),  # quanto: 100 XBt per USD
        ("SPYUSDT", Decimal(600), Decimal(600_000)),  # 1/1000 share: 0.6 USDT
        ("EURUSDT", Decimal("1.08"), Decimal(1_080_000)),  # 1 EUR: 1.08 USDT
    ],
)
def test_contract_values(symbol: str, price: Decimal, value: Decimal) -> None:
    assert _market(symbol).value_per_contract(price) == value


def test_contracts_for_value_are_whole_lots() -> None:
    xbtusd = _market("XBTUSD")
    assert contracts_for_value(xbtusd, Decimal(30_000_000), Decimal(100_000)) == 30_000
    assert contracts_for_value(xbtusd, Decimal(1), Decimal(100_000)) == 100  # at least a lot


def test_ladder_is_on_the_tick_uncrossed_and_leans_against_inventory() -> None:
    market = _market("XBTUSD")
    params = QuoteParams(Decimal("0.0005"), Decimal("0.0005"), 3, 1_000, 5_000)
    flat = ladder(market, Decimal(100_000), 0, params)
    bids = [p for side, p, _ in flat if side == "Buy"]
    asks = [p for side, p, _ in flat if side == "Sell"]
    assert bids == [Decimal("99950.0"), Decimal("99900.0"), Decimal("99850.0")]
    assert asks == [Decimal("100050.0"), Decimal("100100.0"), Decimal("100150.0")]
    long_book = ladder(market, Decimal(100_000), 2_500, params)
    assert max(p for s, p, _ in long_book if s == "Sell") < max(asks)  # cheaper to sell to
    full = ladder(market, Decimal(100_000), 5_000, params)
    # at the limit: only the farthest bid stays, so the book keeps both sides
    assert [side for side, _, _ in full].count("Buy") == 1
    assert min(p for s, p, _ in full if s == "Buy") < min(bids)
    short = ladder(market, Decimal(100_000), -5_000, params)
    assert [side for side, _, _ in short].count("Sell") == 1


def test_futures_quote_with_carry_to_expiry() -> None:
    future = _market("XBTH27")
    assert future.expiry_s is not None
    half_year = future.expiry_s - 182 * 86_400 - 12 * 3_600
    price = reference_price(future, Decimal(100_000), half_year, Decimal("0.08"))
    assert Decimal(103_990) < price < Decimal(104_010)
    assert reference_price(future, Decimal(100_000), future.expiry_s, Decimal("0.08")) == 100_000


def test_max_leverage_qty_uses_the_wallet_at_initial_margin_plus_fees() -> None:
    xbtusd = _market("XBTUSD")
    qty = max_leverage_qty(xbtusd, 200_000, Decimal(100_000), Decimal("0.9"))
    # 0.002 XBT at 1% IM + 2 x 0.075% fee: about 15,650 USD; 90% of it in whole lots
    assert qty == 15_600
    assert max_leverage_qty(xbtusd, 0, Decimal(100_000), Decimal("0.9")) == 0
    # isolated at 50x: 2% margin instead of 1%
    assert max_leverage_qty(xbtusd, 200_000, Decimal(100_000), Decimal("0.9"), Decimal(50)) == 8_300
    # above the instrument's maximum the initial margin still rules
    assert (
        max_leverage_qty(xbtusd, 200_000, Decimal(100_000), Decimal("0.9"), Decimal(200)) == 15_600
    )


def test_demo_markets_filter() -> None:
    every = demo_markets(())
    assert {s.symbol for s in every} >= {"XBTUSD", "ETH_USDT", "SPYUSDT", "XBTH27"}
    assert not any(s.symbol.startswith(".") for s in every)
    assert [s.symbol for s in demo_markets(("ETHUSDT", "XBTUSD"))] == ["XBTUSD", "ETHUSDT"]
    with pytest.raises(ValueError, match="NOPE"):
        demo_markets(("NOPE",))
    assert len(every) == sum(1 for s in default_catalogue() if not s.symbol.startswith("."))


def test_demo_clock_holds_then_runs() -> None:
    clock = DemoClock(speed=1_000.0)
    with pytest.raises(RuntimeError):
        clock.now_ns()
    clock.begin_at(5_000)
    assert clock.now_ns() == 5_000 and clock.wait_s_until(6_000) == float("inf")
    clock.release()
    first = clock.now_ns()
    assert first >= 5_000
    assert clock.wait_s_until(first + 10**12) < 2  # 1000 s of simulated time: ~1 real second


class _Accounts:
    def __init__(self) -> None:
        self.users: dict[int, str] = {}
        self.keys: dict[str, Any] = {}

    def get_user(self, user_id: int) -> Any:
        return self.users.get(user_id)

    def create_user(self, email: str, password: str, user_id: int | None = None) -> Any:
        assert user_id is not None
        self.users[user_id] = email

    def create_api_key(
        self, user_id: int, name: str = "", permissions: Any = (), cidr: Any = ()
    ) -> tuple[str, str]:
        key = f"key{len(self.keys)}"
        self.keys[key] = type("Record", (), {"secret": f"secret-of-{key}"})()
        return key, f"secret-of-{key}"

    def lookup_api_key(self, key_id: str) -> Any:
        return self.keys.get(key_id)


class _Sequencer:
    def __init__(self) -> None:
        self.commands: list[Any] = []
        self.seen: set[str] = set()

    def execute(self, command: Any, timeout_s: float | None = None) -> Any:
        from perpetua.core.events import Rejected
        from perpetua.core.reasons import Reason

        self.commands.append(command)
        events = []
        if command.transfer_id in self.seen:
            events.append(
                Rejected(0, "Deposit", command.account, Reason.TRANSFER_ID_DUPLICATE, "", 0, 0, "")
            )
        self.seen.add(command.transfer_id)
        return type("Result", (), {"events": events})()


def test_demo_state_makes_accounts_once_and_counts_faucet_money(tmp_path: Path) -> None:
    accounts, sequencer = _Accounts(), _Sequencer()
    state = DemoState.load(tmp_path)
    made = state.account(accounts, sequencer, "you", 1, {"XBt": 5, "USDt": 7})
    assert made.user_id == 1 and made.secret == f"secret-of-{made.key_id}"
    state.top_up(sequencer, "you", 1, "XBt", 3)
    again = DemoState.load(tmp_path)  # a restart: same key, nothing paid twice
    assert again.account(accounts, sequencer, "you", 1, {"XBt": 5}) == made
    assert again.deposits == {"XBt": 8, "USDt": 7}
    assert [c.transfer_id for c in sequencer.commands] == [
        "demo-you-XBt-0",
        "demo-you-USDt-0",
        "demo-you-XBt-1",
    ]
    state.fund(sequencer, 1, "XBt", 3, "demo-you-XBt-1")  # a repeat is not counted
    assert DemoState.load(tmp_path).deposits == {"XBt": 8, "USDt": 7}
    assert "secret" not in (tmp_path / "demo.json").read_text()  # secrets stay encrypted
