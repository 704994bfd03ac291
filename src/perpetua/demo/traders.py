"""Who trades in the demo, with what money: accounts, funding and the bots built on them.

Accounts (user ids are fixed, so a restart finds the same ones):
    1          you: the key printed at start (10 XBT, 100,000 USDT, 100 ETH, 100,000 BMEX)
    100        the watcher (reads index prices for the bots; holds nothing)
    101 + i    the market maker of the catalogue's i-th instrument
    201..204   takers, funded in every currency
    301 + 2i   gamblers on the i-th instrument (XBTUSD and XBTUSDT, or the first two
    302 + 2i   perpetuals chosen), long and short, each with a thin stake (0.002 XBT or
               200 USDT) topped up after every liquidation

Quote sizes: a maker's level is worth about 0.3 XBT on XBt-settled markets and 20,000 USDT on
USDt-settled ones (5,000 on BMEX_USDT); five levels a side, 3 bps from the reference on crypto
derivatives (8 on spot, 2 on TradFi) and as much again between levels; the inventory limit is
eight levels.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perpetua.core.instruments import InstrumentKind, InstrumentSpec
from perpetua.demo.bots import Gambler, MarketMaker, PriceCache, Taker, Watcher
from perpetua.demo.client import RestClient
from perpetua.demo.markets import Market, QuoteParams
from perpetua.demo.provision import Credentials, DemoState
from perpetua.demo.runner import Bot, BotRunner

__all__ = ["Traders", "build_traders"]

XBT = 100_000_000
USDT = 1_000_000
ETH = 1_000_000_000
BMEX = 1_000_000
YOU_USER_ID = 1
WATCHER_USER_ID = 100
MAKER_USER_ID_BASE = 101
TAKER_USER_IDS = (201, 202, 203, 204)
GAMBLER_USER_ID_BASE = 301
YOUR_FUNDS = {"XBt": 10 * XBT, "USDt": 100_000 * USDT, "Gwei": 100 * ETH, "BMEx": 100_000 * BMEX}
# within the faucet's per-deposit maximum (services.faucet.FAUCET_AMOUNT_MAX)
MAKER_FUNDS = {
    "XBt": 100 * XBT,
    "USDt": 1_000_000 * USDT,
    "Gwei": 1_000 * ETH,
    "BMEx": 10_000_000 * BMEX,
}
TAKER_FUNDS = {
    "XBt": 20 * XBT,
    "USDt": 1_000_000 * USDT,
    "Gwei": 600 * ETH,
    "BMEx": 8_000_000 * BMEX,
}
GAMBLER_STAKE = {"XBt": XBT // 500, "USDt": 200 * USDT}
LEVEL_VALUE = {"XBt": Decimal(3 * XBT // 10), "USDt": Decimal(20_000 * USDT)}
LEVEL_VALUE_OVERRIDE = {"BMEX_USDT": Decimal(5_000 * USDT)}
LEVELS = 5
INVENTORY_LEVELS = 8
BOT_THREADS = 3


@dataclass
class Traders:
    you: Credentials
    runner: BotRunner
    gamblers: list[Gambler]

    @property
    def gambler_accounts(self) -> list[int]:
        return [g.account for g in self.gamblers]


def _half_spread(spec: InstrumentSpec) -> Decimal:
    if spec.kind == InstrumentKind.SPOT:
        return Decimal("0.0008")
    if not spec.trading_hours.always_open:
        return Decimal("0.0002")
    return Decimal("0.0003")


def _maker_funds(market: Market) -> dict[str, int]:
    funds = {market.settl_currency: MAKER_FUNDS[market.settl_currency]}
    if market.base_currency:
        funds[market.base_currency] = MAKER_FUNDS[market.base_currency]
    return funds


def _markets(client: RestClient, specs: list[InstrumentSpec]) -> dict[str, Market]:
    rows = client.get("/instrument", {"count": 500})
    by_symbol = {row["symbol"]: row for row in rows}
    return {spec.symbol: Market.from_row(by_symbol[spec.symbol]) for spec in specs}


def _gambler_markets(specs: list[InstrumentSpec]) -> list[InstrumentSpec]:
    perpetuals = [
        s
        for s in specs
        if s.kind == InstrumentKind.PERPETUAL
        and s.settl_currency in GAMBLER_STAKE
        and s.trading_hours.always_open
    ]
    preferred = [s for s in perpetuals if s.symbol in ("XBTUSD", "XBTUSDT")]
    return (preferred or perpetuals)[:2]


class _Factory:
    """Builds the bots, each with its own key and seeded random generator."""

    def __init__(self, options: Any, state: DemoState, accounts: Any, sequencer: Any) -> None:
        self.options = options
        self.state = state
        self.accounts = accounts
        self.sequencer = sequencer

    def client(self, credentials: Credentials) -> RestClient:
        return RestClient(
            self.options.host, self.options.port, credentials.key_id, credentials.secret
        )

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.options.seed}:bot:{name}")

    def credentials(self, name: str, user_id: int, funds: dict[str, int]) -> Credentials:
        return self.state.account(self.accounts, self.sequencer, name, user_id, funds)

    def account(self, name: str, user_id: int, funds: dict[str, int]) -> RestClient:
        return self.client(self.credentials(name, user_id, funds))

    def top_up(self, name: str, user_id: int, currency: str) -> Callable[[], None]:
        def top_up() -> None:
            self.state.top_up(self.sequencer, name, user_id, currency, GAMBLER_STAKE[currency])

        return top_up


def _makers(
    factory: _Factory,
    specs: list[InstrumentSpec],
    markets: dict[str, Market],
    cache: PriceCache,
    level_values: dict[str, Decimal],
) -> list[Bot]:
    bots: list[Bot] = []
    for spec in specs:
        market = markets[spec.symbol]
        half = _half_spread(spec)
        params = QuoteParams(half, half, LEVELS, market.lot, INVENTORY_LEVELS * market.lot)
        client = factory.account(
            f"maker-{spec.symbol}", MAKER_USER_ID_BASE + spec.index, _maker_funds(market)
        )
        bots.append(
            MarketMaker(
                client,
                market,
                cache,
                params,
                factory.rng(spec.symbol),
                level_value=level_values[spec.symbol],
                inventory_levels=INVENTORY_LEVELS,
            )
        )
    return bots


def build_traders(
    options: Any, specs: list[InstrumentSpec], state: DemoState, accounts: Any, sequencer: Any
) -> Traders:
    """Make (or reuse) every account, read the markets and build the bots; nothing runs yet.
    The server must be listening (the bots read the instruments over REST)."""
    factory = _Factory(options, state, accounts, sequencer)
    you = factory.credentials("you", YOU_USER_ID, YOUR_FUNDS)
    watcher_client = factory.account("watcher", WATCHER_USER_ID, {})
    markets = _markets(watcher_client, specs)
    cache = PriceCache()
    watcher = Watcher(watcher_client, cache)
    level_values = {
        symbol: LEVEL_VALUE_OVERRIDE.get(symbol, LEVEL_VALUE[m.settl_currency])
        for symbol, m in markets.items()
    }
    bots: list[Bot] = [watcher, *_makers(factory, specs, markets, cache, level_values)]
    for number, user_id in enumerate(TAKER_USER_IDS, start=1):
        name = f"taker-{number}"
        bots.append(
            Taker(
                name,
                factory.account(name, user_id, TAKER_FUNDS),
                list(markets.values()),
                cache,
                level_values,
                factory.rng(name),
            )
        )
    gamblers = []
    for spec in _gambler_markets(specs):
        market = markets[spec.symbol]
        currency = market.settl_currency
        for number, side in enumerate(("Buy", "Sell")):
            name = f"gambler-{spec.symbol}-{side.lower()}"
            user_id = GAMBLER_USER_ID_BASE + 2 * spec.index + number
            client = factory.account(name, user_id, {currency: GAMBLER_STAKE[currency]})
            gamblers.append(
                Gambler(
                    name,
                    client,
                    market,
                    cache,
                    side,
                    factory.top_up(name, user_id, currency),
                    account=user_id,
                )
            )
    bots.extend(gamblers)
    return Traders(you, BotRunner(bots, BOT_THREADS), gamblers)
