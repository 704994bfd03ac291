"""A deliberately naive reference exchange for the differential test of the fast book.

It knows only plain Limit and Market orders (GTC, IOC, FOK; ParticipateDoNotInitiate; displayed,
iceberg and hidden Limit orders), cancels and price/quantity amends, on any number of symbols,
with unlimited money. Everything is a linear scan over one flat list of resting orders, and the
best maker is found by sorting that list from scratch before every single fill, so there is no
clever structure to share a bug with the engine.

Rules (the engine's documented ones, restated independently):

* Priority: better price first; at one price every displayed order (iceberg tranches included)
  before every hidden one (``display == 0``); then the earlier arrival. An order arrives when it
  rests, when an amend moves its price or raises its quantity, and when an iceberg tranche is
  refilled.
* A taker trades with the best resting order of the other side whose price it accepts, at the
  maker's price, for ``min(taker leaves, maker's displayed tranche)`` (hidden: all its leaves).
* Self-trade prevention "cancel taker": reaching a resting order of its own account stops the
  taker, and its rest is cancelled; the resting order is untouched.
* Market orders get a limit of the band around a reference price (last trade, else the best
  opposite price); without one they are cancelled. The rest of a Market, IOC or FOK order is
  cancelled; FOK first tries the whole match on a copy and trades only if the copy fills.
* ParticipateDoNotInitiate: cancelled if the best opposite price crosses its limit.
* Amend: quantity at or below ``cum`` ends the order; a lower quantity at the same price keeps
  the place (the displayed part shrinks to at most the new leaves); a new price or a higher
  quantity takes the order out and places it again as a taker.
"""

import copy
from dataclasses import dataclass, field

__all__ = ["Fill", "RefOrder", "ReferenceExchange"]

BUY = 1
SELL = -1
GTC, IOC, FOK = "GTC", "IOC", "FOK"


@dataclass
class RefOrder:
    order_id: int
    account: int
    symbol: str
    side: int
    qty: int  # order quantity, cum included
    price: int | None  # None only for a Market order before it gets its band limit
    display: int | None  # None: all shown; 0: hidden; else the iceberg tranche size
    tif: str
    pdni: bool
    leaves: int = 0
    cum: int = 0
    visible: int = 0
    arrival: int = 0


@dataclass(frozen=True)
class Fill:
    maker: int
    taker: int
    qty: int
    price: int


@dataclass
class ReferenceExchange:
    band_ppm: dict[str, int]  # symbol -> market order band
    max_price: dict[str, int]  # symbol -> highest price in ticks
    resting: list[RefOrder] = field(default_factory=list)
    last_price: dict[str, int] = field(default_factory=dict)
    next_id: int = 1
    clock: int = 0

    # Queries -------------------------------------------------------------------------------

    def find(self, order_id: int) -> RefOrder | None:
        for order in self.resting:
            if order.order_id == order_id:
                return order
        return None

    def l2(self, symbol: str) -> dict[int, dict[int, int]]:
        """side -> price -> displayed size, levels with nothing displayed left out."""
        book: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}
        for order in self.resting:
            if order.symbol == symbol and order.display != 0:
                level = book[order.side]
                level[order.price] = level.get(order.price, 0) + order.visible  # type: ignore[index]
        return book

    def live(self) -> dict[int, tuple[int, int, int | None]]:
        """order id -> (leaves, visible, price) of every resting order."""
        return {o.order_id: (o.leaves, o.visible, o.price) for o in self.resting}

    # Commands ------------------------------------------------------------------------------

    def place(
        self,
        account: int,
        symbol: str,
        side: int,
        qty: int,
        price: int | None,
        tif: str = GTC,
        pdni: bool = False,
        display: int | None = None,
    ) -> tuple[int, list[Fill]]:
        """Accept an order; return its id and its fills."""
        order = RefOrder(self.next_id, account, symbol, side, qty, price, display, tif, pdni)
        self.next_id += 1
        order.leaves = qty
        order.visible = self._tranche(order)
        if price is None:
            order.price = self._market_limit(symbol, side)
            if order.price is None:
                return order.order_id, []
        return order.order_id, self._work(order, market=price is None)

    def cancel(self, account: int, order_id: int) -> bool:
        order = self.find(order_id)
        if order is None or order.account != account:
            return False
        self.resting.remove(order)
        return True

    def cancel_all(self, account: int, symbol: str) -> None:
        self.resting = [
            o
            for o in self.resting
            if not (o.account == account and (not symbol or o.symbol == symbol))
        ]

    def amend(
        self,
        account: int,
        order_id: int,
        qty: int | None = None,
        leaves: int | None = None,
        price: int | None = None,
    ) -> tuple[bool, list[Fill]]:
        """Return (accepted, fills)."""
        order = self.find(order_id)
        if order is None or order.account != account:
            return False, []
        new_qty = qty if qty is not None else (None if leaves is None else order.cum + leaves)
        if new_qty is not None and new_qty <= order.cum:
            self.resting.remove(order)
            return True, []
        new_leaves = order.leaves if new_qty is None else new_qty - order.cum
        new_price = order.price if price is None else price
        if new_price == order.price and new_leaves <= order.leaves:
            order.qty -= order.leaves - new_leaves
            order.leaves = new_leaves
            order.visible = min(order.visible, new_leaves)
            return True, []
        self.resting.remove(order)
        order.qty += new_leaves - order.leaves
        order.leaves = new_leaves
        order.price = new_price
        order.visible = self._tranche(order)
        return True, self._work(order, market=False)

    # Matching ------------------------------------------------------------------------------

    def _tranche(self, order: RefOrder) -> int:
        return order.leaves if order.display is None else min(order.display, order.leaves)

    def _market_limit(self, symbol: str, side: int) -> int | None:
        reference = self.last_price.get(symbol)
        if reference is None:
            best = self._best_opposite(symbol, side)
            reference = None if best is None else best.price
        if reference is None:
            return None
        band = reference * self.band_ppm[symbol] // 1_000_000
        if side == BUY:
            return min(self.max_price[symbol], reference + band)
        return max(1, reference - band)

    def _priority(self, order: RefOrder) -> tuple[int, int, int]:
        price = order.price or 0
        return (
            -price if order.side == BUY else price,
            1 if order.display == 0 else 0,
            order.arrival,
        )

    def _best_opposite(self, symbol: str, side: int) -> RefOrder | None:
        makers = [o for o in self.resting if o.symbol == symbol and o.side == -side]
        makers.sort(key=self._priority)
        return makers[0] if makers else None

    def _accepts(self, taker: RefOrder, maker: RefOrder) -> bool:
        limit = taker.price or 0
        price = maker.price or 0
        return price <= limit if taker.side == BUY else price >= limit

    def _work(self, order: RefOrder, market: bool) -> list[Fill]:
        best = self._best_opposite(order.symbol, order.side)
        crosses = best is not None and self._accepts(order, best)
        if order.pdni and crosses:
            return []
        if order.tif == FOK:
            trial_order = copy.deepcopy(order)
            copy.deepcopy(self)._match(trial_order)
            if trial_order.leaves > 0:
                return []
        fills, self_trade = self._match(order)
        if order.leaves > 0 and not self_trade and not market and order.tif == GTC:
            self._rest(order)
        return fills

    def _match(self, taker: RefOrder) -> tuple[list[Fill], bool]:
        fills: list[Fill] = []
        while taker.leaves > 0:
            maker = self._best_opposite(taker.symbol, taker.side)
            if maker is None or not self._accepts(taker, maker):
                break
            if maker.account == taker.account:
                return fills, True
            available = maker.leaves if maker.display == 0 else maker.visible
            qty = min(taker.leaves, available)
            fills.append(Fill(maker.order_id, taker.order_id, qty, maker.price or 0))
            self.last_price[taker.symbol] = maker.price or 0
            for order in (taker, maker):
                order.leaves -= qty
                order.cum += qty
            if maker.display != 0:
                maker.visible -= qty
            if maker.leaves == 0:
                self.resting.remove(maker)
            elif maker.display != 0 and maker.visible == 0:
                maker.visible = self._tranche(maker)
                maker.arrival = self._tick()
        return fills, False

    def _rest(self, order: RefOrder) -> None:
        order.arrival = self._tick()
        order.visible = self._tranche(order)
        self.resting.append(order)

    def _tick(self) -> int:
        self.clock += 1
        return self.clock
