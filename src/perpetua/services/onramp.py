"""Buy crypto: on-ramp providers behind one Protocol, and the built-in bank transfer.

1. ``OnRampProvider``: ``quote`` (fiat in, crypto out), ``checkout`` (an order and the hosted
   page to send the buyer to) and ``verify_webhook`` (the provider's signed notice that an order
   was paid). ``HostedCheckoutProvider`` is the shape of a card provider: its webhooks are signed
   ``X-Onramp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``; a
   signature that does not verify, a timestamp more than ``WEBHOOK_TOLERANCE_S`` away, or an
   event id already seen is refused (replays).
2. Credit is one core ``Deposit`` with transfer id ``onramp:<provider>:<order>``: the core
   refuses a second credit of the same order, so a provider retrying a webhook credits once.
3. Amounts are limited per order by the buyer's KYC level (``KycLevels``, from the compliance
   service; ``AllowAll`` until it is wired): ``KYC_ORDER_LIMIT_USDT``.
4. Bank transfer (``BankTransfer``): the buyer asks for an order and gets a reference code to
   put on the transfer; an operator who sees the money arrive confirms the reference. Up to
   ``four_eyes_usdt`` one confirmation credits; above it two operators must confirm (different
   names), the first leaves it ``AwaitingSecondApproval``. Orders are kept by a
   ``BankOrders`` store: in the embedded venue an append-only JSON-lines file in the data dir
   (fsync'd, replayed at start: ``FileBankOrders``); on a cluster's gateways the shared
   database's ``bank_orders`` table (``SqlBankOrders``), where each change is one transaction
   holding the order's row lock, so two gateways confirming one order at once see each other's
   approval (the second approver must still be someone else) and an order is credited once.
   The store's calls do I/O: routes run them in a worker thread.
Order lifecycle: AwaitingFunds -> (AwaitingSecondApproval ->) Approved -> Credited, or
Canceled before approval. Approved means the Deposit may be submitted; a refused Deposit leaves
it Approved, and confirming again retries it without another approval.
"""

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final, Protocol

from sqlalchemy import Engine, insert, select, update

from perpetua.store.schema import bank_orders

__all__ = [
    "KYC_ORDER_LIMIT_USDT",
    "WEBHOOK_TOLERANCE_S",
    "AllowAll",
    "BankOrder",
    "BankOrders",
    "BankTransfer",
    "Checkout",
    "FileBankOrders",
    "HostedCheckoutProvider",
    "KycLevels",
    "OnRamp",
    "OnRampError",
    "OnRampProvider",
    "OnRampQuote",
    "SqlBankOrders",
    "WebhookEvent",
    "kyc_limit",
    "sign_webhook",
]

USDT_MINOR: Final = 1_000_000
KYC_ORDER_LIMIT_USDT: Final = {0: 0, 1: 2_000, 2: 100_000}  # per order, by KYC level
WEBHOOK_TOLERANCE_S: Final = 300
SEEN_EVENTS_MAX: Final = 100_000
TRANSITIONS: Final = {
    "AwaitingFunds": frozenset({"AwaitingSecondApproval", "Approved", "Canceled"}),
    "AwaitingSecondApproval": frozenset({"Approved", "Canceled"}),
    "Approved": frozenset({"Credited"}),
    "Credited": frozenset(),
    "Canceled": frozenset(),
}


class OnRampError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class KycLevels(Protocol):
    async def kyc_level(self, account: int) -> int: ...


class AllowAll:
    """The permissive default until the compliance service is wired: every account level 2."""

    async def kyc_level(self, account: int) -> int:
        return 2


async def kyc_limit(levels: KycLevels, account: int, amount: int) -> None:
    """Refuse ``amount`` (USDt) above what the account's KYC level allows per order (3)."""
    level = await levels.kyc_level(account)
    limit = KYC_ORDER_LIMIT_USDT.get(level, 0) * USDT_MINOR
    if amount > limit:
        raise OnRampError(
            f"Buy crypto: at most {limit // USDT_MINOR} USDT per order at KYC level {level}", 403
        )


@dataclass(frozen=True, slots=True)
class OnRampQuote:
    provider: str
    fiat: str
    fiat_amount_cents: int
    currency: str
    amount: int  # minor units credited


@dataclass(frozen=True, slots=True)
class Checkout:
    order_id: str
    redirect_url: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    event_id: str
    order_id: str
    account: int
    currency: str
    amount: int


class OnRampProvider(Protocol):
    @property
    def name(self) -> str: ...

    def quote(self, account: int, fiat_amount_cents: int) -> OnRampQuote: ...

    def checkout(self, account: int, quote: OnRampQuote) -> Checkout: ...

    def verify_webhook(self, body: bytes, signature: str, now_s: float) -> WebhookEvent: ...


def sign_webhook(secret: str, body: bytes, timestamp_s: int) -> str:
    """The ``X-Onramp-Signature`` value for ``body`` sent at ``timestamp_s``."""
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return f"t={timestamp_s},v1={mac.hexdigest()}"


class HostedCheckoutProvider:
    """A card provider with a hosted checkout page and HMAC-signed webhooks (1). USD to USDT
    at 1:1 less ``fee_ppm``."""

    def __init__(self, name: str, secret: str, checkout_url: str, fee_ppm: int = 0) -> None:
        self._name = name
        self.secret = secret
        self.checkout_url = checkout_url
        self.fee_ppm = fee_ppm
        self.seen: dict[str, None] = {}
        self.lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def quote(self, account: int, fiat_amount_cents: int) -> OnRampQuote:
        if fiat_amount_cents <= 0:
            raise OnRampError("Buy crypto: amount must be positive")
        gross = fiat_amount_cents * (USDT_MINOR // 100)
        net = gross - -(-gross * self.fee_ppm // 1_000_000)
        return OnRampQuote(self._name, "USD", fiat_amount_cents, "USDt", net)

    def checkout(self, account: int, quote: OnRampQuote) -> Checkout:
        order_id = secrets.token_hex(12)
        return Checkout(order_id, f"{self.checkout_url}?order={order_id}&amount={quote.amount}")

    def verify_webhook(self, body: bytes, signature: str, now_s: float) -> WebhookEvent:
        parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
        try:
            timestamp = int(parts.get("t", ""))
        except ValueError:
            raise OnRampError("Webhook: bad signature", 401) from None
        expected = sign_webhook(self.secret, body, timestamp)
        if not hmac.compare_digest(expected, signature):
            raise OnRampError("Webhook: bad signature", 401)
        if abs(now_s - timestamp) > WEBHOOK_TOLERANCE_S:
            raise OnRampError("Webhook: timestamp outside the tolerance (replay?)", 400)
        try:
            data = json.loads(body)
            event = WebhookEvent(
                str(data["id"]), str(data["order"]), int(data["account"]),
                str(data["currency"]), int(data["amount"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            raise OnRampError("Webhook: malformed body", 400) from None
        with self.lock:
            if event.event_id in self.seen:
                raise OnRampError("Webhook: event already received (replay)", 409)
            self.seen[event.event_id] = None
            while len(self.seen) > SEEN_EVENTS_MAX:
                self.seen.pop(next(iter(self.seen)))
        return event


@dataclass(frozen=True, slots=True)
class BankOrder:
    reference: str
    account: int
    currency: str
    amount: int
    status: str
    created_s: float
    approvals: tuple[str, ...] = ()


Step = Callable[[BankOrder | None], BankOrder]  # an order's next state (raises to refuse)


class BankOrders(Protocol):
    """Where bank orders are kept (rule 4): ``change`` runs ``step`` on the order's current
    state and stores what it returns, atomically with respect to every other ``change``."""

    def insert(self, order: BankOrder) -> None: ...

    def change(self, reference: str, step: Step) -> BankOrder: ...

    def of(self, account: int | None) -> list[BankOrder]: ...


class FileBankOrders:
    """An append-only JSON-lines file, replayed at start; one process (the embedded venue)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.orders: dict[str, BankOrder] = {}
        self.lock = threading.Lock()
        if path.exists():
            for line in path.read_text("utf-8").splitlines():
                row = json.loads(line)
                row["approvals"] = tuple(row["approvals"])
                order = BankOrder(**row)
                self.orders[order.reference] = order

    def _append(self, order: BankOrder) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(asdict(order)) + "\n")
            file.flush()
            os.fsync(file.fileno())
        self.orders[order.reference] = order

    def insert(self, order: BankOrder) -> None:
        with self.lock:
            self._append(order)

    def change(self, reference: str, step: Step) -> BankOrder:
        with self.lock:
            before = self.orders.get(reference)
            after = step(before)
            if after != before:
                self._append(after)
            return after

    def of(self, account: int | None) -> list[BankOrder]:
        with self.lock:  # routes call from worker threads: no read while another appends
            return [o for o in self.orders.values() if account is None or o.account == account]


class SqlBankOrders:
    """The ``bank_orders`` table of a shared database (a cluster's gateways): ``change`` holds
    the row's lock (``SELECT ... FOR UPDATE``) for its transaction. That lock is PostgreSQL's,
    the cluster's database; SQLite ignores it, and the embedded venue keeps the file store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def _order(row: Any) -> BankOrder:
        approvals = tuple(json.loads(row.approvals))
        return BankOrder(row.reference, int(row.account), row.currency, int(row.amount),
                         row.status, float(row.created_s), approvals)  # fmt: skip

    def insert(self, order: BankOrder) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(bank_orders).values(**self._values(order)))

    @staticmethod
    def _values(order: BankOrder) -> dict[str, Any]:
        return {**asdict(order), "approvals": json.dumps(list(order.approvals))}

    def change(self, reference: str, step: Step) -> BankOrder:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(bank_orders).where(bank_orders.c.reference == reference).with_for_update()
            ).first()
            before = None if row is None else self._order(row)
            after = step(before)
            if after != before:
                values = self._values(after)
                conn.execute(
                    update(bank_orders)
                    .where(bank_orders.c.reference == reference)
                    .values(status=values["status"], approvals=values["approvals"])
                )
            return after

    def of(self, account: int | None) -> list[BankOrder]:
        query = select(bank_orders).order_by(bank_orders.c.created_s)
        if account is not None:
            query = query.where(bank_orders.c.account == account)
        with self.engine.connect() as conn:
            return [self._order(row) for row in conn.execute(query)]


class BankTransfer:
    """The built-in bank-transfer on-ramp (4)."""

    name = "bank"

    def __init__(
        self, orders: BankOrders | Path, four_eyes_usdt: int = 10_000, bank_details: str = ""
    ) -> None:
        """``orders``: the store, or the path of a ``FileBankOrders`` file."""
        self.orders = FileBankOrders(orders) if isinstance(orders, Path) else orders
        self.four_eyes = four_eyes_usdt * USDT_MINOR
        self.bank_details = bank_details or "Bank details: ask the operator (see [onramp])"

    def create(self, account: int, amount: int, currency: str = "USDt") -> BankOrder:
        if amount <= 0:
            raise OnRampError("Buy crypto: amount must be positive")
        reference = "PPT-" + secrets.token_hex(4).upper()
        order = BankOrder(reference, account, currency, amount, "AwaitingFunds", time.time())
        self.orders.insert(order)
        return order

    def confirm(self, reference: str, approver: str) -> BankOrder:
        """An operator saw the money: returns the order, ``Approved`` when it may be credited
        now (the caller submits the Deposit, then ``credited``), else
        ``AwaitingSecondApproval``."""
        if not approver:
            raise OnRampError("Bank transfer: the approver's name is required")

        def step(order: BankOrder | None) -> BankOrder:
            if order is None:
                raise OnRampError("Bank transfer: reference not found", 404)
            if order.status == "Approved":
                return order  # the Deposit was refused before: try it again
            if order.status not in ("AwaitingFunds", "AwaitingSecondApproval"):
                raise OnRampError(f"Bank transfer: the order is {order.status}")
            if approver in order.approvals:
                raise OnRampError("Bank transfer: a second approver must be someone else")
            approvals = (*order.approvals, approver)
            needed = 2 if order.amount > self.four_eyes else 1
            status = "Approved" if len(approvals) >= needed else "AwaitingSecondApproval"
            return _moved(order, replace(order, status=status, approvals=approvals))

        return self.orders.change(reference, step)

    def credited(self, reference: str) -> BankOrder:
        def step(order: BankOrder | None) -> BankOrder:
            if order is None:
                raise OnRampError("Bank transfer: reference not found", 404)
            return (
                order
                if order.status == "Credited"
                else _moved(order, replace(order, status="Credited"))
            )

        return self.orders.change(reference, step)

    def of(self, account: int | None) -> list[dict[str, Any]]:
        return [asdict(o) for o in self.orders.of(account)]


def _moved(before: BankOrder, after: BankOrder) -> BankOrder:
    """``after``, if the lifecycle allows ``before.status`` to become it."""
    if after.status != before.status and after.status not in TRANSITIONS[before.status]:
        raise OnRampError(f"Bank transfer: {before.status} cannot become {after.status}")
    return after


class OnRamp:
    """The venue's on-ramp: the bank transfer and any hosted providers, by name."""

    def __init__(self, bank: BankTransfer, providers: tuple[OnRampProvider, ...] = ()) -> None:
        self.bank = bank
        self.providers = {p.name: p for p in providers}
