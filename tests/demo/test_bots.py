"""The demo bots against a scripted exchange: a gambler counts only positions it really held,
and the demo's liquidation counts come from the exchange's own events (issue 16)."""

from decimal import Decimal
from typing import Any

from perpetua.core.events import PositionLiquidated
from perpetua.demo.bots import Gambler, PriceCache
from perpetua.demo.stats import DemoStats
from tests.demo.test_markets import _market


class ScriptedExchange:
    """Answers a gambler's requests: its market orders fill ``fills`` contracts; its position
    is whatever it filled until ``liquidate()`` takes it away."""

    def __init__(self, fills: int) -> None:
        self.fills = fills
        self.position = 0

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        if path == "/user/wallet":
            return {"amount": 10**8}
        if path == "/position":
            return [{"symbol": "XBTUSD", "currentQty": self.position}] if self.position else []
        raise AssertionError(path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        if path == "/position/leverage":
            return {}
        assert path == "/order"
        self.position += self.fills
        status = "Filled" if self.fills else "Canceled"
        return {"ordStatus": status, "cumQty": self.fills, "orderQty": body["orderQty"]}

    def liquidate(self) -> None:
        self.position = 0


def _gambler(exchange: ScriptedExchange) -> Gambler:
    cache = PriceCache()
    cache.update({".BXBT": Decimal(90_000)}, 1)
    return Gambler(
        "g",
        exchange,
        _market("XBTUSD"),
        cache,
        "Buy",  # type: ignore[arg-type]
        top_up=lambda: None,
        account=301,
    )


def test_a_gambler_whose_market_order_was_cancelled_was_not_liquidated() -> None:
    exchange = ScriptedExchange(fills=0)  # no liquidity in the band: canceled, nothing held
    gambler = _gambler(exchange)
    for _ in range(4):
        gambler.step()
    assert gambler.liquidations == 0 and not gambler.holding


def test_a_gambler_counts_a_position_that_was_taken_away() -> None:
    exchange = ScriptedExchange(fills=100)
    gambler = _gambler(exchange)
    gambler.step()
    gambler.step()
    assert gambler.holding and gambler.liquidations == 0
    exchange.liquidate()
    gambler.step()
    assert gambler.liquidations == 1 and gambler.side == "Sell"


def test_demo_stats_count_liquidations_by_account_from_the_exchange_events() -> None:
    stats = DemoStats()
    taken = [
        PositionLiquidated(1, account, "XBTUSD", 100, 900_000, -5, 1)
        for account in (301, 302, 301, 555)
    ]
    stats.on_command(1, 1, None, taken)
    assert stats.snapshot()["liquidations"] == 4
    assert stats.liquidations_of([301, 302, 303]) == 3
