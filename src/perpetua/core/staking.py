"""BMEX staking: staked balances, unstaking with a cooling-off period, daily rewards by tier,
and the staking tier's fee discount.

Money:
- Staking moves the amount from the user to ``STAKING`` (a system account): not spendable, still
  the user's, recorded in ``State.stakes[account]``. Per currency, ``STAKING``'s balance equals
  the sum over accounts of ``staked + unstaking`` (checked by the audit).
- An unstaking request moves ``amount`` from ``staked`` to ``unstaking`` at once (no ledger
  transfer); at ``release_ns`` (request time + ``UNSTAKING_COOLING_OFF_NS``) the engine's timer
  transfers it back from ``STAKING`` to the user. Cancelling before then moves it back to
  ``staked``. Request lifecycle: Pending -> Canceled | Released (``UNSTAKING_TRANSITIONS``).
  Only pending requests stay in state (an ended one lives on in the events), so a request id
  is unique among pending ones; callers make ids unique anyway (uuids).
- Daily rewards are paid at 00:00 UTC from ``STAKING_REWARDS`` (funded by ``FundStakingRewards``
  from outside, like a deposit). Each staker is owed ``floor(eligible * apr_ppm / (PPM * 365))``
  of the staked currency for the day just ended, where ``eligible`` is the least amount staked
  at any time that day (a stake counts from the next full day; an unstaking request lowers it
  at once). If the rewards account cannot pay everyone, every reward is scaled by
  ``available / owed`` (rounded down), so nobody is paid ahead of anyone else.

Fees: the staking tier (``STAKING_TIERS``, by ``eligible``) sets ``Account.staking_discount_ppm``
at each day boundary and lowers it at once on an unstaking request; a fill uses the larger of it
and the operator's ``SetFeeDiscount`` (``fees.fee_rates_ppm`` then applies the floor and cap).

Restrictions (``restrictions.check_spot_trade``, checked first): a frozen or close-only account,
or one denied spot products, cannot stake, nor cancel an unstaking request (that stakes the
amount again); it can still ask to unstake, and releases and rewards go on (they only return
or pay the account's own money).

Ordering: stakers are visited in account order, requests in request-id order; every loop is
bounded by the number of stakers or by ``UNSTAKING_REQUESTS_PER_ACCOUNT_MAX`` per account.
"""

from typing import NamedTuple

from perpetua.core import restrictions
from perpetua.core.commands import FundStakingRewards, Stake, UnstakeCancel, UnstakeRequest
from perpetua.core.events import Event, FeeSettingsChanged, StakingChanged, UnstakingUpdated
from perpetua.core.invariant import fail, invariant
from perpetua.core.ledger import EXTERNAL, STAKING, STAKING_REWARDS, TransferCode
from perpetua.core.limits import DAY_NS
from perpetua.core.placement import reject
from perpetua.core.reasons import Reason
from perpetua.core.state import Stake as StakeRecord  # the command is named Stake
from perpetua.core.state import State, Unstaking
from perpetua.core.units import PPM, mul_div_floor

__all__ = [
    "DAYS_PER_YEAR",
    "REQUEST_ID_LENGTH_MAX",
    "STAKING_CURRENCIES",
    "STAKING_TIERS",
    "UNSTAKING_COOLING_OFF_NS",
    "UNSTAKING_REQUESTS_PER_ACCOUNT_MAX",
    "UNSTAKING_TRANSITIONS",
    "StakingTier",
    "fund_rewards",
    "next_release_ns",
    "on_day_boundary",
    "release_due",
    "restore_discounts",
    "stake",
    "staking_discount_ppm",
    "staking_tier",
    "unstake_cancel",
    "unstake_request",
]


class StakingTier(NamedTuple):
    """One row of the staking table: from ``staked_min`` (BMEx), a fee discount and an APR."""

    staked_min: int
    discount_ppm: int  # of the positive fee
    apr_ppm: int  # yearly reward rate on the eligible stake


_BMEX = 1_000_000  # BMEx per BMEX
# The venue's table (a stated choice, in the spirit of BitMEX's BMEX tiers): more stake, a
# larger discount and a higher reward rate. Ordered by staked_min ascending, starting at 0.
STAKING_TIERS: tuple[StakingTier, ...] = (
    StakingTier(0, 0, 0),
    StakingTier(1_000 * _BMEX, 50_000, 20_000),
    StakingTier(10_000 * _BMEX, 100_000, 30_000),
    StakingTier(50_000 * _BMEX, 150_000, 40_000),
    StakingTier(100_000 * _BMEX, 200_000, 50_000),
    StakingTier(500_000 * _BMEX, 250_000, 60_000),
)
STAKING_CURRENCIES: tuple[str, ...] = ("BMEx",)
UNSTAKING_COOLING_OFF_NS = 7 * DAY_NS
UNSTAKING_REQUESTS_PER_ACCOUNT_MAX = 10  # pending at once
REQUEST_ID_LENGTH_MAX = 64
DAYS_PER_YEAR = 365

UNSTAKING_TRANSITIONS: dict[str, frozenset[str]] = {
    "Pending": frozenset({"Canceled", "Released"}),
    "Canceled": frozenset(),
    "Released": frozenset(),
}


def staking_tier(eligible: int) -> int:
    """Index into ``STAKING_TIERS`` of the highest tier ``eligible`` reaches."""
    invariant(eligible >= 0, f"eligible stake must be non-negative: {eligible}")
    tier = 0
    for position, row in enumerate(STAKING_TIERS):
        if eligible >= row.staked_min:
            tier = position
    return tier


def _publish(state: State, record: StakeRecord, out: list[Event]) -> None:
    out.append(
        StakingChanged(
            state.ts_ns,
            record.account,
            record.currency,
            record.staked,
            record.unstaking,
            record.eligible,
            staking_tier(record.eligible),
        )
    )


def _publish_request(state: State, request: Unstaking, out: list[Event]) -> None:
    out.append(
        UnstakingUpdated(
            state.ts_ns,
            request.request_id,
            request.account,
            request.currency,
            request.amount,
            request.release_ns,
            request.status,
        )
    )


def _set_discount(state: State, account: int, out: list[Event]) -> None:
    """Make the account's staking discount the tier of its eligible stake (all currencies)."""
    best = staking_discount_ppm(state, account)
    acct = state.account(account)
    if acct.staking_discount_ppm != best:
        acct.staking_discount_ppm = best
        out.append(
            FeeSettingsChanged(state.ts_ns, account, acct.fee_tier, max(acct.discount_ppm, best))
        )


def staking_discount_ppm(state: State, account: int) -> int:
    """The discount of the account's staking tier: the best over its staked currencies."""
    best = 0
    for currency in STAKING_CURRENCIES:
        record = state.stakes.get((account, currency))
        if record is not None:
            best = max(best, STAKING_TIERS[staking_tier(record.eligible)].discount_ppm)
    return best


def restore_discounts(state: State) -> None:
    """Re-derive every staker's discount after a restore (it is a function of ``eligible``)."""
    for account, _ in sorted(state.stakes):
        state.account(account).staking_discount_ppm = staking_discount_ppm(state, account)


def stake(state: State, cmd: Stake, out: list[Event]) -> None:
    if not restrictions.check_spot_trade(state, cmd.account, "Stake", out):
        return
    if cmd.currency not in STAKING_CURRENCIES:
        reject(state, out, "Stake", cmd.account, Reason.STAKING_CURRENCY_INVALID)
        return
    if cmd.amount <= 0 or cmd.account <= 0:
        reason = Reason.AMOUNT_MUST_BE_POSITIVE if cmd.amount <= 0 else Reason.ACCOUNT_UNKNOWN
        reject(state, out, "Stake", cmd.account, reason)
        return
    if state.ledger.available(cmd.account, cmd.currency) < cmd.amount:
        reject(
            state,
            out,
            "Stake",
            cmd.account,
            Reason.BALANCE_INSUFFICIENT,
            required=cmd.amount,
            currency=cmd.currency,
        )
        return
    key = (cmd.account, cmd.currency)
    record = state.stakes.get(key)
    if record is None:
        record = StakeRecord(cmd.account, cmd.currency)
        state.stakes[key] = record
    state.account(cmd.account)
    state.ledger.transfer(
        out, state.ts_ns, cmd.account, STAKING, cmd.currency, cmd.amount, TransferCode.STAKE, 0
    )
    record.staked += cmd.amount
    _publish(state, record, out)


def unstake_request(state: State, cmd: UnstakeRequest, out: list[Event]) -> None:
    record = state.stakes.get((cmd.account, cmd.currency))
    if cmd.currency not in STAKING_CURRENCIES:
        reason = Reason.STAKING_CURRENCY_INVALID
    elif cmd.amount <= 0:
        reason = Reason.AMOUNT_MUST_BE_POSITIVE
    elif not cmd.request_id or len(cmd.request_id) > REQUEST_ID_LENGTH_MAX:
        reason = Reason.UNSTAKING_ID_INVALID
    elif cmd.request_id in state.unstaking:
        reason = Reason.TRANSFER_ID_DUPLICATE
    elif record is None or record.staked < cmd.amount:
        reason = Reason.STAKED_INSUFFICIENT
    elif len(record.pending) >= UNSTAKING_REQUESTS_PER_ACCOUNT_MAX:
        reason = Reason.UNSTAKING_REQUESTS_MAX
    else:
        reason = Reason.OK
    if reason != Reason.OK or record is None:
        reject(state, out, "UnstakeRequest", cmd.account, reason, currency=cmd.currency)
        return
    request = Unstaking(
        cmd.request_id,
        cmd.account,
        cmd.currency,
        cmd.amount,
        state.ts_ns + UNSTAKING_COOLING_OFF_NS,
    )
    state.unstaking[cmd.request_id] = request
    record.pending.append(cmd.request_id)
    record.staked -= cmd.amount
    record.unstaking += cmd.amount
    record.eligible = min(record.eligible, record.staked)
    _publish_request(state, request, out)
    _publish(state, record, out)
    _set_discount(state, cmd.account, out)


def _move(request: Unstaking, status: str) -> None:
    if status not in UNSTAKING_TRANSITIONS[request.status]:
        fail(f"unstaking {request.request_id}: {request.status} -> {status}")
    request.status = status


def _close(state: State, record: StakeRecord, request: Unstaking, status: str) -> None:
    _move(request, status)
    record.pending.remove(request.request_id)
    del state.unstaking[request.request_id]  # ended: the event stream keeps its history
    record.unstaking -= request.amount
    invariant(record.unstaking >= 0, f"unstaking of {record.account} went negative")


def unstake_cancel(state: State, cmd: UnstakeCancel, out: list[Event]) -> None:
    request = state.unstaking.get(cmd.request_id)
    if request is None or request.account != cmd.account:
        reject(state, out, "UnstakeCancel", cmd.account, Reason.UNSTAKING_NOT_FOUND)
        return
    if request.status != "Pending":
        reject(state, out, "UnstakeCancel", cmd.account, Reason.UNSTAKING_STATE_INVALID)
        return
    if not restrictions.check_spot_trade(state, cmd.account, "UnstakeCancel", out):
        return  # cancelling stakes the amount again
    record = state.stakes[(request.account, request.currency)]
    _close(state, record, request, "Canceled")
    record.staked += request.amount  # eligible again from the next full day
    _publish_request(state, request, out)
    _publish(state, record, out)


def next_release_ns(state: State) -> int:
    """The earliest pending release, or 0 when nothing is pending."""
    due = [state.unstaking[rid].release_ns for r in state.stakes.values() for rid in r.pending]
    return min(due, default=0)


def release_due(state: State, out: list[Event]) -> None:
    """Pay back every pending request whose cooling-off has ended, in request-id order."""
    due = sorted(
        rid
        for record in state.stakes.values()
        for rid in record.pending
        if state.unstaking[rid].release_ns <= state.ts_ns
    )
    for rid in due:
        request = state.unstaking[rid]
        record = state.stakes[(request.account, request.currency)]
        _close(state, record, request, "Released")
        state.ledger.transfer(
            out,
            state.ts_ns,
            STAKING,
            request.account,
            request.currency,
            request.amount,
            TransferCode.UNSTAKE,
            0,
        )
        _publish_request(state, request, out)
        _publish(state, record, out)


def on_day_boundary(state: State, out: list[Event]) -> None:
    """Pay the day's rewards on ``eligible``, then make today's eligible the current stake and
    reset each staker's discount to its tier."""
    for currency in STAKING_CURRENCIES:
        _pay_rewards(state, currency, out)
    for key in sorted(state.stakes):
        record = state.stakes[key]
        if record.eligible != record.staked:
            record.eligible = record.staked
            _publish(state, record, out)
        _set_discount(state, record.account, out)


def _pay_rewards(state: State, currency: str, out: list[Event]) -> None:
    owed: list[tuple[int, int]] = []
    for key in sorted(state.stakes):
        record = state.stakes[key]
        if record.currency != currency or record.eligible == 0:
            continue
        apr = STAKING_TIERS[staking_tier(record.eligible)].apr_ppm
        amount = mul_div_floor(record.eligible, apr, PPM * DAYS_PER_YEAR)
        if amount > 0:
            owed.append((record.account, amount))
    total = sum(amount for _, amount in owed)
    available = state.ledger.balance(STAKING_REWARDS, currency)
    for account, amount in owed:
        paid = amount if available >= total else mul_div_floor(amount, available, total)
        if paid > 0:
            state.ledger.transfer(
                out,
                state.ts_ns,
                STAKING_REWARDS,
                account,
                currency,
                paid,
                TransferCode.STAKING_REWARD,
                0,
            )


def fund_rewards(state: State, cmd: FundStakingRewards, out: list[Event]) -> None:
    """Operator funding of the rewards account from outside (idempotent by ``transfer_id``)."""
    key = "sr:" + cmd.transfer_id
    if cmd.currency not in STAKING_CURRENCIES:
        reject(state, out, "FundStakingRewards", 0, Reason.STAKING_CURRENCY_INVALID)
    elif cmd.amount <= 0:
        reject(state, out, "FundStakingRewards", 0, Reason.AMOUNT_MUST_BE_POSITIVE)
    elif not cmd.transfer_id or key in state.deposits:
        reject(state, out, "FundStakingRewards", 0, Reason.TRANSFER_ID_DUPLICATE)
    else:
        state.deposits[key] = STAKING_REWARDS
        state.ledger.transfer(
            out,
            state.ts_ns,
            EXTERNAL,
            STAKING_REWARDS,
            cmd.currency,
            cmd.amount,
            TransferCode.STAKING_REWARDS_FUNDING,
            0,
        )
