"""Per-account trading-cost views fed by the event stream: each account's fee tier and
effective discount (``FeeSettingsChanged``), its BMEX stake (``StakingChanged``) and its recent
unstaking requests (``UnstakingUpdated``).

They back ``/user/commission`` (the rates the core charges the account, from the same
``core.fees.fee_rates_ppm``), ``/user/staking`` and ``/user/unstakingRequests``. Seeded from the
recovered engine (``sequencer.seed.engine_seed``: fees, stakes, pending requests) and, for the ended
unstaking requests the engine forgets, from the read models (``unstaking_requests``); the newest
``UNSTAKING_RETAINED_MAX`` ended ones are kept per account (all of them remain in that table, and
their money in wallet history as transfers).
"""

from collections import OrderedDict
from collections.abc import Iterable

from perpetua.core.events import FeeSettingsChanged, StakingChanged, UnstakingUpdated
from perpetua.core.fees import fee_rates_ppm
from perpetua.core.instruments import InstrumentSpec

__all__ = ["UNSTAKING_RETAINED_MAX", "CostViews"]

UNSTAKING_RETAINED_MAX = 100  # per account


class CostViews:
    def __init__(self) -> None:
        self.fees: dict[int, tuple[int, int]] = {}  # account -> (tier, effective discount ppm)
        self.stakes: dict[tuple[int, str], StakingChanged] = {}
        self.unstaking: dict[int, OrderedDict[str, UnstakingUpdated]] = {}

    def seed(
        self,
        fees: dict[int, tuple[int, int]],
        stakes: Iterable[StakingChanged],
        unstaking: Iterable[UnstakingUpdated],
    ) -> None:
        self.fees.update(fees)
        for event in stakes:
            self.on_stake(event)
        for request in unstaking:
            self.on_unstaking(request)

    def on_fees(self, event: FeeSettingsChanged) -> None:
        self.fees[event.account] = (event.tier, event.discount_ppm)

    def on_stake(self, event: StakingChanged) -> None:
        self.stakes[(event.account, event.currency)] = event

    def on_unstaking(self, event: UnstakingUpdated) -> None:
        table = self.unstaking.setdefault(event.account, OrderedDict())
        table[event.request_id] = event
        table.move_to_end(event.request_id)
        ended = [rid for rid, e in table.items() if e.status != "Pending"]
        for rid in ended[: max(0, len(ended) - UNSTAKING_RETAINED_MAX)]:
            del table[rid]

    def rates_ppm(self, account: int, spec: InstrumentSpec) -> tuple[int, int]:
        """``(maker, taker)`` ppm the core charges ``account`` on ``spec`` now."""
        tier, discount = self.fees.get(account, (0, 0))
        return fee_rates_ppm(spec, tier, discount)

    def tier(self, account: int) -> int:
        return self.fees.get(account, (0, 0))[0]

    def stake(self, account: int, currency: str) -> StakingChanged | None:
        return self.stakes.get((account, currency))

    def requests(self, account: int) -> list[UnstakingUpdated]:
        return list(self.unstaking.get(account, {}).values())
