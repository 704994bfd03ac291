"""The live order: mutable core-internal state, and its lifecycle table.

An ``Order`` exists in core state only while it is live (New or PartiallyFilled, working or
waiting for a trigger). Each change is published as an ``OrderEvent`` built by ``to_event``;
terminal orders leave core state (history lives in read models). Status changes go through
``transition``, which enforces ``TRANSITIONS``: a change not in the table is a programmer error.

Invariants: ``0 <= leaves_qty``, ``cum_qty + leaves_qty <= order_qty`` and equality while live;
``visible_qty <= leaves_qty``; a terminal order has ``leaves_qty == 0``.
"""

from perpetua.core.emit import NEW, ORDER_EVENT
from perpetua.core.enums import ExecInst, ExecType, Liquidity, OrdStatus, TriggerSource
from perpetua.core.events import OrderEvent
from perpetua.core.invariant import fail
from perpetua.core.position import Position

__all__ = ["ORDER_FIELDS", "TRANSITIONS", "Order", "transition"]

# Every attribute of a live order, in snapshot order.
ORDER_FIELDS = (
    "order_id",
    "account",
    "symbol",
    "side",
    "ord_type",
    "time_in_force",
    "exec_inst",
    "order_qty",
    "leaves_qty",
    "cum_qty",
    "cum_px_qty",
    "price",
    "stop_px",
    "display_qty",
    "visible_qty",
    "peg_price_type",
    "peg_offset",
    "contingency_type",
    "cl_ord_id",
    "cl_ord_link_id",
    "status",
    "triggered",
    "working",
    "held_by_link",
    "text",
    "transact_ts_ns",
    "trigger_source",
    "hold_amount",
    "margin_value",
    "margin_qty",
    "in_book",
    "limit_price",
)

TRANSITIONS: dict[OrdStatus, frozenset[OrdStatus]] = {
    OrdStatus.NEW: frozenset(
        {
            OrdStatus.NEW,
            OrdStatus.PARTIALLY_FILLED,
            OrdStatus.FILLED,
            OrdStatus.CANCELED,
            OrdStatus.EXPIRED,
        }
    ),
    OrdStatus.PARTIALLY_FILLED: frozenset(
        {OrdStatus.PARTIALLY_FILLED, OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.EXPIRED}
    ),
    OrdStatus.FILLED: frozenset(),
    OrdStatus.CANCELED: frozenset(),
    OrdStatus.REJECTED: frozenset(),
    OrdStatus.EXPIRED: frozenset(),
}


class Order:
    # ``position`` is derived (set by registry.register, rebuilt on restore): not a field.
    __slots__ = (*ORDER_FIELDS, "position")

    def __init__(
        self,
        order_id: int,
        account: int,
        symbol: str,
        side: int,
        ord_type: int,
        time_in_force: int,
        exec_inst: int,
        order_qty: int,
        price: int | None,
        stop_px: int | None,
        display_qty: int | None,
        peg_price_type: int,
        peg_offset: int | None,
        contingency_type: int,
        cl_ord_id: str,
        cl_ord_link_id: str,
        text: str,
        ts_ns: int,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.ord_type = ord_type
        self.time_in_force = time_in_force
        self.exec_inst = exec_inst
        self.order_qty = order_qty
        self.leaves_qty = order_qty
        self.cum_qty = 0
        self.cum_px_qty = 0
        self.price = price
        self.stop_px = stop_px
        self.display_qty = display_qty
        self.visible_qty = order_qty if display_qty is None else min(display_qty, order_qty)
        self.peg_price_type = peg_price_type
        self.peg_offset = peg_offset
        self.contingency_type = contingency_type
        self.cl_ord_id = cl_ord_id
        self.cl_ord_link_id = cl_ord_link_id
        self.status = OrdStatus.NEW
        self.triggered = False
        self.working = False
        self.held_by_link = False
        self.in_book = False  # beside the other flags: the compiled class packs them in a word
        self.text = text
        self.transact_ts_ns = ts_ns
        self.trigger_source = trigger_source_of(exec_inst)
        self.hold_amount = 0
        self.margin_value = 0
        self.margin_qty = 0
        # The price limit used for matching, holds and margin: ``price`` for priced orders,
        # the protective band price for market orders, None while untriggered and unpriced.
        self.limit_price = price
        # The order's position while it is registered (``Market.position_of``): a registered
        # order counts in its position's ``open_orders_count``, so that position is never
        # dropped and replaced under it. Saves a dictionary lookup by account per use.
        self.position: Position | None = None

    @property
    def reduce_only(self) -> bool:
        return bool(self.exec_inst & (ExecInst.REDUCE_ONLY | ExecInst.CLOSE))

    @property
    def hidden(self) -> bool:
        return self.display_qty == 0

    def to_event(
        self,
        ts_ns: int,
        exec_type: ExecType,
        exec_id: int,
        last_qty: int = 0,
        last_px: int | None = None,
        trd_match_id: int = 0,
        exec_cost: int = 0,
        exec_comm: int = 0,
        fee_rate_ppm: int = 0,
        liquidity: Liquidity = Liquidity.NONE,
    ) -> OrderEvent:
        # emit.NEW, not OrderEvent(...): see emit.py.
        return NEW(
            ORDER_EVENT,
            (
                ts_ns,
                exec_type,
                exec_id,
                self.order_id,
                self.account,
                self.symbol,
                self.side,
                self.ord_type,
                self.time_in_force,
                self.exec_inst,
                self.order_qty,
                self.price,
                self.stop_px,
                self.display_qty,
                self.peg_price_type,
                self.peg_offset,
                self.contingency_type,
                self.cl_ord_id,
                self.cl_ord_link_id,
                self.status,
                self.triggered,
                self.working,
                self.leaves_qty,
                self.cum_qty,
                self.cum_px_qty,
                self.text,
                last_qty,
                last_px,
                trd_match_id,
                exec_cost,
                exec_comm,
                fee_rate_ppm,
                liquidity,
                self.transact_ts_ns,
            ),
        )


def trigger_source_of(exec_inst: int) -> TriggerSource:
    if exec_inst & ExecInst.LAST_PRICE:
        return TriggerSource.LAST
    if exec_inst & ExecInst.INDEX_PRICE:
        return TriggerSource.INDEX
    return TriggerSource.MARK


def transition(order: Order, status: OrdStatus) -> None:
    if status not in TRANSITIONS[order.status]:
        fail(f"order {order.order_id}: {order.status.name} -> {status.name} is not allowed")
    order.status = status
