"""``Wallets``: the wallets of one venue, assembled (the runtime builds it; the gateway and the
background jobs call it). Every method is synchronous (SQL and chain RPC): the gateway calls
them in a worker thread, the jobs likewise.

- Network switches: ``network_status`` rows; absent means both deposits and withdrawals on.
- ``jobs``: per network, the deposit follower and the sender as ``PeriodicJob``s.
- ``recover``: settles withdrawals a crash left half-done; the first run of each network's
  sender job calls it (the sequencer runs by then), before its first step. With
  ``recover_after_ns`` set (cluster mode: gateways in other processes may have a request in
  flight, and a leader may have died with one), every step settles the rows last touched at
  least that long ago instead.
- ``reserve_addresses``: every address the exchange controls on a network (hot wallet, deposit
  addresses) plus the cold address it only sends to: what Proof of Reserves sums.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from perpetua.chain.adapter import DepositWatcher, Sweeper, WithdrawalSigner
from perpetua.services.jobs import PeriodicJob
from perpetua.services.wallets.addresses import AddressBook
from perpetua.services.wallets.errors import WalletError
from perpetua.services.wallets.follower import DepositFollower
from perpetua.services.wallets.networks import Network
from perpetua.services.wallets.policy import WithdrawalPolicy
from perpetua.services.wallets.ports import Clock, Submit, Verifier
from perpetua.services.wallets.sender import Sender
from perpetua.services.wallets.sweeps import Sweeps
from perpetua.services.wallets.withdrawals import WithdrawalDesk, WithdrawalRow
from perpetua.store.schema import chain_deposits, network_status, wallet_addresses

__all__ = ["DepositRow", "NetworkState", "Wallets"]

POLL_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class NetworkState:
    deposits_enabled: bool
    withdrawals_enabled: bool


@dataclass(frozen=True, slots=True)
class DepositRow:
    id: str
    transfer_id: str
    account: int
    network: str
    currency: str
    amount: int
    tx: str
    address: str
    status: str  # Pending | Held | Credited | Reversed | Orphaned | BelowMinimum
    seen_ns: int
    updated_ns: int


class Wallets:
    def __init__(
        self,
        engine: Engine,
        networks: Mapping[str, Network],
        watchers: Mapping[str, DepositWatcher],
        signers: Mapping[str, WithdrawalSigner],
        verifier: Verifier,
        submit: Submit,
        policy: WithdrawalPolicy,
        clock_ns: Clock = time.time_ns,
        cold_addresses: Mapping[str, str] | None = None,
        start_block: int | None = None,
        sweepers: Mapping[str, Sweeper] | None = None,
        recover_after_ns: int | None = None,
    ) -> None:
        self.engine = engine
        self.recover_after_ns = recover_after_ns
        self.networks = dict(networks)
        self.watchers = dict(watchers)
        self.signers = dict(signers)
        self.policy = policy
        self.clock_ns = clock_ns
        self.cold_addresses = dict(cold_addresses or {})
        self.book = AddressBook(engine, self.networks, self.watchers, verifier, clock_ns)
        self.desk = WithdrawalDesk(
            engine,
            self.networks,
            self.book,
            policy,
            verifier,
            submit,
            lambda n: self.state(n).withdrawals_enabled,
            clock_ns,
        )
        self.followers = {
            name: DepositFollower(
                self.networks[name],
                watcher,
                engine,
                submit,
                policy,
                lambda n: self.state(n).deposits_enabled,
                clock_ns,
                start_block,
            )
            for name, watcher in self.watchers.items()
        }
        self.sweeps = {
            name: Sweeps(name, sweeper, engine) for name, sweeper in (sweepers or {}).items()
        }
        self.senders = {
            name: Sender(self.networks[name], signer, engine, self.desk, submit, clock_ns)
            for name, signer in self.signers.items()
        }

    # -- network switches -----------------------------------------------------------------

    def state(self, network: str) -> NetworkState:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(network_status).where(network_status.c.network == network)
            ).first()
        if row is None:
            return NetworkState(True, True)
        return NetworkState(bool(row.deposits_enabled), bool(row.withdrawals_enabled))

    def set_state(
        self, network: str, deposits: bool | None, withdrawals: bool | None
    ) -> NetworkState:
        if network not in self.networks:
            raise WalletError(400, f"Unknown network {network!r}")
        now = self.state(network)
        new = NetworkState(
            now.deposits_enabled if deposits is None else deposits,
            now.withdrawals_enabled if withdrawals is None else withdrawals,
        )
        with self.engine.begin() as conn:
            conn.execute(delete(network_status).where(network_status.c.network == network))
            conn.execute(
                insert(network_status).values(
                    network=network,
                    deposits_enabled=new.deposits_enabled,
                    withdrawals_enabled=new.withdrawals_enabled,
                    updated_ns=self.clock_ns(),
                )
            )
        return new

    # -- reads ----------------------------------------------------------------------------

    def deposits(self, account: int | None = None) -> list[DepositRow]:
        query = select(chain_deposits).order_by(chain_deposits.c.seen_ns)
        if account is not None:
            query = query.where(chain_deposits.c.account == account)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            DepositRow(
                r.id,
                r.transfer_id,
                int(r.account),
                r.network,
                r.currency,
                int(r.amount),
                r.tx,
                r.address,
                r.status,
                int(r.seen_ns),
                int(r.updated_ns),
            )  # fmt: skip
            for r in rows
        ]

    def withdrawals(self, account: int | None = None) -> list[WithdrawalRow]:
        return self.desk.rows(account)

    def reserve_addresses(self, network: str) -> list[str]:
        """Hot wallet, deposit addresses, cold address (module docstring)."""
        out: list[str] = []
        signer = self.signers.get(network)
        if signer is not None:
            out.append(signer.hot_address)
        with self.engine.connect() as conn:
            out += [
                str(r[0])
                for r in conn.execute(
                    select(wallet_addresses.c.address)
                    .where(wallet_addresses.c.network == network)
                    .order_by(wallet_addresses.c.account)
                ).all()
            ]
        cold = self.cold_addresses.get(network)
        if cold:
            out.append(cold)
        return out

    # -- running --------------------------------------------------------------------------

    def recover(self) -> int:
        return self.desk.recover()

    def jobs(self, interval_s: float = POLL_INTERVAL_S) -> list[PeriodicJob]:
        jobs = []
        for name, follower in self.followers.items():
            jobs.append(PeriodicJob(f"wallets.follow.{name}", interval_s, _threaded(follower.step)))
        for name, sender in self.senders.items():
            step = self._send_step(name, sender)
            jobs.append(PeriodicJob(f"wallets.send.{name}", interval_s, _threaded(step)))
        return jobs

    def _send_step(self, network: str, sender: Sender) -> Any:
        recovered = False
        sweeps = self.sweeps.get(network)

        def step() -> None:
            nonlocal recovered
            if self.recover_after_ns is not None:
                self.desk.recover(self.recover_after_ns)
            elif not recovered:
                self.recover()
                recovered = True
            sender.step()
            if sweeps is not None and not any(
                w.network == network for w in self.desk.rows(status="Signed")
            ):
                sweeps.step()  # the hot wallet's nonces: one actor at a time (sweeps, 3)

        return step


def _threaded(step: Any) -> Any:
    async def run() -> None:
        await asyncio.to_thread(step)

    return run
