"""Sweeps: deposit addresses -> hot wallet, hot wallet above its ceiling -> cold address.

1. Coins stay the exchange's wherever they sit among its addresses, so a sweep moves nothing in
   the ledger; Proof of Reserves counts every address (``Wallets.reserve_addresses``).
2. Only addresses with a credited deposit not yet swept are looked at (``swept`` holds the
   deposit ids done since start; after a restart they are looked at once more: harmless, an
   empty address is left alone).
3. The sender's job runs sweeps after its own step and only when no withdrawal is ``Signed``
   (recorded but maybe unsent): the hot wallet's nonces then belong to one actor at a time.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, select

from perpetua.chain.adapter import Sweeper
from perpetua.store.schema import chain_deposits, wallet_addresses

__all__ = ["SWEEPS_PER_STEP_MAX", "Sweeps"]

log = logging.getLogger("perpetua.wallets.sweeps")
SWEEPS_PER_STEP_MAX = 50


class Sweeps:
    def __init__(self, network: str, sweeper: Sweeper, engine: Engine) -> None:
        self.network = network
        self.sweeper = sweeper
        self.engine = engine
        self.swept: set[str] = set()

    def step(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(chain_deposits.c.id, wallet_addresses.c.address,
                       wallet_addresses.c.derivation_index)
                .join(wallet_addresses, (wallet_addresses.c.account == chain_deposits.c.account)
                      & (wallet_addresses.c.network == chain_deposits.c.network))
                .where(chain_deposits.c.network == self.network,
                       chain_deposits.c.status == "Credited")
            ).all()  # fmt: skip
        todo: dict[int, tuple[str, list[str]]] = {}
        for row in rows:
            if row.id not in self.swept:
                todo.setdefault(int(row.derivation_index), (row.address, []))[1].append(row.id)
        sent: list[str] = []
        for index, (address, ids) in list(todo.items())[:SWEEPS_PER_STEP_MAX]:
            sent += self.sweeper.sweep(index, address)
            self.swept.update(ids)
        sent += self.sweeper.to_cold()
        if sent:
            log.info("%s: %d sweep transactions", self.network, len(sent))
        return sent
