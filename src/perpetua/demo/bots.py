"""The demo's traders. Each is an outside client: it holds an API key and speaks signed REST to
the exchange, nothing else. A bot's ``step()`` does one round of work and returns how many real
seconds to wait before the next; the ``BotRunner`` schedules them.

- ``Watcher``: reads ``/instrument/indices`` for everyone (the bots share one price cache, as a
  bot farm would) and the exchange's time from the index timestamps.
- ``MarketMaker``: one per market; every ``refresh_s`` moves its post-only ladder around the
  index (futures: plus carry to expiry) by amending its orders in place (``PUT /order/bulk``),
  skewed against its position, with an inventory limit past which it keeps only its farthest
  level on the side that would add.
- ``Taker``: cycles through the markets in a seeded random order, sending market orders of
  random (heavy-tailed) size, leaning against its own inventory.
- ``Gambler``: sets 100x isolated leverage (``POST /position/leverage``; cross margin if the
  gateway refuses), opens the largest position its thin wallet allows, holds it until the
  liquidation engine takes it, then asks the faucet for another stake and goes again on the
  other side.

Randomness: each bot has its own ``random.Random`` seeded from the demo seed and its name, so a
run's choices are reproducible; their timing against the market is not (they run in real time).
"""

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from perpetua.demo.client import ApiRejected, RestClient
from perpetua.demo.markets import (
    Market,
    QuoteParams,
    contracts_for_value,
    ladder,
    max_leverage_qty,
    reference_price,
)
from perpetua.wire.values import parse_iso_ns

__all__ = ["Gambler", "MarketMaker", "PriceCache", "Taker", "Watcher"]

log = logging.getLogger("perpetua.demo")
CARRY_PER_YEAR = Decimal("0.08")  # futures quote 8% a year over the index
PAUSE_CLOSED_S = 5.0  # a market that refuses orders (outside hours) is left alone this long
TOP_UP_INTERVAL_MIN_S = 5.0  # a gambler's stakes come no faster than this
GAMBLER_LEVERAGE = Decimal(100)  # isolated: a 0.5% adverse move (less fees) liquidates


class PriceCache:
    """Index prices and the exchange's time as last read by the Watcher. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prices: dict[str, Decimal] = {}
        self.now_s = 0

    def update(self, prices: dict[str, Decimal], now_s: int) -> None:
        with self._lock:
            self._prices.update(prices)
            self.now_s = max(self.now_s, now_s)

    def index(self, symbol: str) -> Decimal | None:
        with self._lock:
            return self._prices.get(symbol)

    def reference(self, market: Market) -> Decimal | None:
        index = self.index(market.reference_symbol)
        if index is None:
            return None
        return reference_price(market, index, self.now_s, CARRY_PER_YEAR)


class Watcher:
    name = "watcher"

    def __init__(self, client: RestClient, cache: PriceCache, interval_s: float = 0.75) -> None:
        self.client = client
        self.cache = cache
        self.interval_s = interval_s

    def step(self) -> float:
        prices: dict[str, Decimal] = {}
        now_ns = 0
        for row in self.client.get("/instrument/indices"):
            if row.get("lastPrice") is not None:
                prices[row["symbol"]] = Decimal(str(row["lastPrice"]))
            stamp = parse_iso_ns(str(row.get("timestamp") or ""))
            now_ns = max(now_ns, stamp or 0)
        self.cache.update(prices, now_ns // 1_000_000_000)
        return self.interval_s


def _position_qty(client: RestClient, symbol: str) -> int:
    for row in client.get("/position"):
        if row.get("symbol") == symbol:
            return int(row.get("currentQty") or 0)
    return 0


class MarketMaker:
    """``params.level_qty`` is set at the first quote from ``level_value`` (settlement minor
    units per level) at the reference price then; the inventory limit is ``inventory_levels``
    levels.

    Quotes are amended in place, as market makers on BitMEX do: each round reads the maker's
    open orders, pairs them best first with the new ladder's levels on each side and moves
    them with one ``PUT /order/bulk``; levels without an order are added (``POST
    /order/bulk``) and orders without a level cancelled, after the amends. The side moving
    away from the other goes first, so the maker never crosses itself, and a level is never
    pulled before its replacement is in: the book is never empty while the maker runs."""

    def __init__(
        self,
        client: RestClient,
        market: Market,
        cache: PriceCache,
        params: QuoteParams,
        rng: random.Random,
        level_value: Decimal,
        inventory_levels: int,
        refresh_s: float = 1.5,
    ) -> None:
        self.name = f"maker {market.symbol}"
        self.client = client
        self.market = market
        self.cache = cache
        self.params = params
        self.rng = rng
        self.level_value = level_value
        self.inventory_levels = inventory_levels
        self.refresh_s = refresh_s
        self.inventory = 0
        self.rounds = 0
        self.sized = False

    def step(self) -> float:
        reference = self.cache.reference(self.market)
        if reference is None:
            return 0.5
        if not self.sized:
            qty = contracts_for_value(self.market, self.level_value, reference)
            self.params = replace(
                self.params, level_qty=qty, inventory_max=self.inventory_levels * qty
            )
            self.sized = True
        if not self.market.is_spot and self.rounds % 2 == 0:
            self.inventory = _position_qty(self.client, self.market.symbol)
        self.rounds += 1
        quotes = ladder(self.market, reference, self.inventory, self.params)
        try:
            self._requote(quotes)
        except ApiRejected as error:
            log.debug("%s: %s", self.name, error.message)
            return PAUSE_CLOSED_S
        return self.refresh_s * (0.8 + 0.4 * self.rng.random())

    def _open_orders(self) -> dict[str, list[dict[str, Any]]]:
        """The maker's open orders by side, best first (bids high to low, asks low to high)."""
        rows = self.client.get(
            "/order",
            {"symbol": self.market.symbol, "count": 500, "filter": json.dumps({"open": True})},
        )
        sides: dict[str, list[dict[str, Any]]] = {"Buy": [], "Sell": []}
        for row in rows:
            if row.get("side") in sides and row.get("ordType") == "Limit":
                sides[row["side"]].append(row)
        sides["Buy"].sort(key=lambda r: -Decimal(str(r["price"])))
        sides["Sell"].sort(key=lambda r: Decimal(str(r["price"])))
        return sides

    def _requote(self, quotes: list[tuple[str, Decimal, int]]) -> None:
        live = self._open_orders()
        wanted: dict[str, list[tuple[Decimal, int]]] = {"Buy": [], "Sell": []}
        for side, price, qty in quotes:
            wanted[side].append((price, qty))
        amends: dict[str, list[dict[str, Any]]] = {"Buy": [], "Sell": []}
        placed: list[dict[str, Any]] = []
        surplus: list[str] = []
        for side in ("Buy", "Sell"):
            orders, levels = live[side], wanted[side]
            for order, (price, qty) in zip(orders, levels, strict=False):
                if Decimal(str(order["price"])) != price or int(order["leavesQty"]) != qty:
                    amends[side].append(
                        {"orderID": order["orderID"], "price": price, "leavesQty": qty}
                    )
            surplus.extend(order["orderID"] for order in orders[len(levels) :])
            placed.extend(
                {
                    "symbol": self.market.symbol,
                    "side": side,
                    "orderQty": qty,
                    "price": price,
                    "ordType": "Limit",
                    "execInst": "ParticipateDoNotInitiate",
                }
                for price, qty in levels[len(orders) :]
            )
        # Up: asks move first (away from the bids), then bids follow; down: the reverse.
        rising = _rising(live, wanted)
        ordered = amends["Sell"] + amends["Buy"] if rising else amends["Buy"] + amends["Sell"]
        if ordered:
            try:
                self.client.request("PUT", "/order/bulk", body={"orders": ordered})
            except ApiRejected as error:  # one was filled meanwhile; the others moved
                if "not open" in error.message or "trading hours" in error.message:
                    raise
                log.debug("%s: amend: %s", self.name, error.message)
        if placed:
            self.client.post("/order/bulk", {"orders": placed})
        if surplus:
            self.client.delete("/order", {"orderID": json.dumps(surplus)})


def _rising(
    live: dict[str, list[dict[str, Any]]], wanted: dict[str, list[tuple[Decimal, int]]]
) -> bool:
    """Does the new ladder sit above the live quotes (compared at the best bid, else ask)?"""
    for side in ("Buy", "Sell"):
        if live[side] and wanted[side]:
            return wanted[side][0][0] > Decimal(str(live[side][0]["price"]))
    return True


class Taker:
    def __init__(
        self,
        name: str,
        client: RestClient,
        markets: list[Market],
        cache: PriceCache,
        level_values: dict[str, Decimal],
        rng: random.Random,
        mean_interval_s: float = 0.7,
    ) -> None:
        self.name = name
        self.client = client
        self.markets = list(markets)
        rng.shuffle(self.markets)
        self.cache = cache
        self.level_values = level_values
        self.rng = rng
        self.mean_interval_s = mean_interval_s
        self.inventory: dict[str, int] = {}
        self.paused_until: dict[str, float] = {}
        self.turn = 0
        self.clock: Callable[[], float] = time.monotonic

    def _size(self, market: Market, price: Decimal) -> int:
        # heavy-tailed: mostly a fraction of a maker's level, now and then several levels
        scale = Decimal(str(round(min(self.rng.paretovariate(1.6) * 0.15, 2.5), 3)))
        return contracts_for_value(market, self.level_values[market.symbol] * scale, price)

    def _side(self, market: Market, qty: int) -> str:
        held = self.inventory.get(market.symbol, 0)
        limit = 6 * qty
        if held > limit:
            return "Sell"
        if held < -limit:
            return "Buy"
        return "Buy" if self.rng.random() < 0.5 else "Sell"

    def step(self) -> float:
        delay = self.rng.expovariate(1 / self.mean_interval_s)
        market = self.markets[self.turn % len(self.markets)]
        self.turn += 1
        if self.paused_until.get(market.symbol, 0.0) > self.clock():
            return 0.05
        price = self.cache.reference(market)
        if price is None:
            return delay
        qty = self._size(market, price)
        side = self._side(market, qty)
        try:
            order = self.client.post(
                "/order",
                {"symbol": market.symbol, "side": side, "orderQty": qty, "ordType": "Market"},
            )
        except ApiRejected as error:
            log.debug("%s on %s: %s", self.name, market.symbol, error.message)
            self.paused_until[market.symbol] = self.clock() + PAUSE_CLOSED_S
            return delay
        filled = int(order.get("cumQty") or 0)
        signed = filled if side == "Buy" else -filled
        self.inventory[market.symbol] = self.inventory.get(market.symbol, 0) + signed
        return delay


class Gambler:
    def __init__(
        self,
        name: str,
        client: RestClient,
        market: Market,
        cache: PriceCache,
        side: str,
        top_up: Callable[[], None],
        utilisation: Decimal = Decimal("0.9"),
        poll_s: float = 0.5,
        leverage: Decimal | None = GAMBLER_LEVERAGE,
        account: int = 0,
    ) -> None:
        self.name = name
        self.account = account  # the exchange's account id (its liquidations are counted there)
        self.leverage = leverage  # isolated, set once; None: cross margin on a thin wallet
        self.leverage_set = False
        self.client = client
        self.market = market
        self.cache = cache
        self.side = side
        self.top_up = top_up
        self.utilisation = utilisation
        self.poll_s = poll_s
        self.holding = False
        self.checked = False  # a restarted gambler first looks for the position it held
        self.liquidations = 0
        self.last_top_up_s = -TOP_UP_INTERVAL_MIN_S

    def _wallet(self) -> int:
        rows = self.client.get("/user/wallet", {"currency": self.market.settl_currency})
        row = rows[0] if isinstance(rows, list) else rows
        return int(row.get("amount") or 0)

    def _open(self) -> float:
        price = self.cache.reference(self.market)
        if price is None:
            return self.poll_s
        if self.leverage is not None and not self.leverage_set:
            self._set_leverage()
        wallet = self._wallet()
        qty = max_leverage_qty(self.market, wallet, price, self.utilisation, self.leverage)
        if qty <= 0:
            self._top_up()
            return self.poll_s
        try:
            order = self.client.post(
                "/order",
                {
                    "symbol": self.market.symbol,
                    "side": self.side,
                    "orderQty": qty,
                    "ordType": "Market",
                },
            )
        except ApiRejected as error:
            log.debug("%s: %s", self.name, error.message)
            self.utilisation = max(Decimal("0.5"), self.utilisation - Decimal("0.05"))
            return self.poll_s
        # A market order cancelled unfilled (no liquidity in the band) opened nothing: a
        # position that never was cannot be liquidated.
        self.holding = int(order.get("cumQty") or 0) > 0
        return self.poll_s

    def step(self) -> float:
        if not self.checked:
            self.holding = _position_qty(self.client, self.market.symbol) != 0
            self.checked = True
        if not self.holding:
            return self._open()
        if _position_qty(self.client, self.market.symbol) != 0:
            return self.poll_s
        # The position is gone: the liquidation engine took it. Another stake, other side.
        self.holding = False
        self.liquidations += 1
        self.side = "Sell" if self.side == "Buy" else "Buy"
        self._top_up()
        return self.poll_s

    def _set_leverage(self) -> None:
        """``POST /position/leverage``: isolated at ``leverage``x. A gateway without it (or a
        refusal) leaves the gambler on cross margin, sized by its thin wallet alone."""
        try:
            self.client.post(
                "/position/leverage", {"symbol": self.market.symbol, "leverage": self.leverage}
            )
        except ApiRejected as error:
            log.info("%s: no isolated leverage (%s); trading cross", self.name, error.message)
            self.leverage = None
        self.leverage_set = True

    def _top_up(self) -> None:
        """Ask for a new stake, at most once per ``TOP_UP_INTERVAL_MIN_S``."""
        now = time.monotonic()
        if now - self.last_top_up_s >= TOP_UP_INTERVAL_MIN_S:
            self.last_top_up_s = now
            self.top_up()
