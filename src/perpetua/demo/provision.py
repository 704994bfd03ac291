"""The demo's accounts: users and API keys made through the accounts service, money from the
testnet faucet (``services.faucet``: a ``Deposit`` through the sequencer), remembered in
``<data dir>/demo.json`` so a restarted demo reuses them.

``demo.json`` keeps, per demo account, its user id and key id (the secret stays encrypted in
the accounts database, read back with ``lookup_api_key``); the total the faucet paid per
currency (what ``perpetua replay`` must report as the ledger's conservation totals); and the
simulated feed's last prices and time, for a seamless restart. Writes are atomic (temporary
file, then rename) and serialised by a lock (gamblers top up from bot threads).

Demo users get random passwords nobody knows; they are hashed with light argon2 parameters
(``DEMO_PASSWORD_HASHER``) so twenty of them are made in well under a second. Real users of
the exchange go through the accounts service's defaults.
"""

import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from argon2 import PasswordHasher

from perpetua.core.events import Rejected
from perpetua.core.reasons import Reason
from perpetua.services.accounts import ApiKeyRecord
from perpetua.services.faucet import faucet_command

__all__ = ["DEMO_PASSWORD_HASHER", "Credentials", "DemoState", "FaucetError"]

STATE_FILE = "demo.json"
STATE_VERSION = 1
DEPOSIT_TIMEOUT_S = 30.0
DEMO_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class FaucetError(RuntimeError):
    """The core refused a faucet deposit for a reason other than a repeat."""


class Accounts(Protocol):
    def get_user(self, user_id: int) -> Any: ...

    def create_user(self, email: str, password: str, user_id: int | None = None) -> Any: ...

    def create_api_key(
        self, user_id: int, name: str = "", permissions: Any = (), cidr: Any = ()
    ) -> tuple[str, str]: ...

    def lookup_api_key(self, key_id: str) -> ApiKeyRecord | None: ...


class Submitter(Protocol):
    def execute(self, command: Any, timeout_s: float | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class Credentials:
    user_id: int
    key_id: str
    secret: str


class DemoState:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self._lock = threading.Lock()

    @classmethod
    def load(cls, data_dir: Path) -> "DemoState":
        path = data_dir / STATE_FILE
        data: dict[str, Any] = {
            "version": STATE_VERSION,
            "accounts": {},
            "deposits": {},
            "top_ups": {},
            "feed": {},
        }
        if path.exists():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if loaded.get("version") != STATE_VERSION:
                raise ValueError(f"{path}: unknown version {loaded.get('version')!r}")
            data.update(loaded)
        return cls(path, data)

    def _save_locked(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.path)

    @property
    def deposits(self) -> dict[str, int]:
        with self._lock:
            return dict(self.data["deposits"])

    def account(
        self,
        accounts: Accounts,
        sequencer: Submitter,
        name: str,
        user_id: int,
        funds: dict[str, int],
    ) -> Credentials:
        """The key of ``name`` (user ``user_id``): made and funded on first use, then reused."""
        with self._lock:
            known = self.data["accounts"].get(name)
        if known is not None:
            record = accounts.lookup_api_key(known["key_id"])
            if record is not None:
                return Credentials(known["user_id"], known["key_id"], record.secret)
        if accounts.get_user(user_id) is None:
            accounts.create_user(
                f"{name}@demo.perpetua.invalid", secrets.token_urlsafe(24), user_id=user_id
            )
        key_id, secret = accounts.create_api_key(user_id, name=name, permissions=["order"])
        for currency, amount in funds.items():
            self.fund(sequencer, user_id, currency, amount, f"demo-{name}-{currency}-0")
        with self._lock:
            self.data["accounts"][name] = {"user_id": user_id, "key_id": key_id}
            self._save_locked()
        return Credentials(user_id, key_id, secret)

    def top_up(
        self, sequencer: Submitter, name: str, user_id: int, currency: str, amount: int
    ) -> None:
        """Another stake for ``name``: a faucet deposit with the next transfer id."""
        with self._lock:
            count = int(self.data["top_ups"].get(name, 0)) + 1
            self.data["top_ups"][name] = count
        self.fund(sequencer, user_id, currency, amount, f"demo-{name}-{currency}-{count}")

    def fund(
        self, sequencer: Submitter, user_id: int, currency: str, amount: int, transfer_id: str
    ) -> None:
        """Pay ``amount`` through the faucet and count it; a repeat of ``transfer_id`` (paid
        before a restart lost the count) is neither paid nor counted twice."""
        result = sequencer.execute(
            faucet_command(user_id, currency, amount, transfer_id), DEPOSIT_TIMEOUT_S
        )
        for event in result.events:
            if type(event) is Rejected:
                if event.reason == Reason.TRANSFER_ID_DUPLICATE:
                    return
                raise FaucetError(f"faucet {transfer_id}: {Reason(event.reason).name}")
        with self._lock:
            deposits = self.data["deposits"]
            deposits[currency] = int(deposits.get(currency, 0)) + amount
            self._save_locked()

    def save_feed(self, ts_ns: int, prices: dict[str, int]) -> None:
        with self._lock:
            self.data["feed"] = {"ts_ns": ts_ns, "prices": prices}
            self._save_locked()

    def feed(self) -> tuple[int, dict[str, int]]:
        with self._lock:
            feed = self.data.get("feed") or {}
        return int(feed.get("ts_ns", 0)), {k: int(v) for k, v in feed.get("prices", {}).items()}
