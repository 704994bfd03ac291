"""Trading fees: the rate an account pays, and the fee on an execution.

A rate is in parts per million of the execution's absolute value (``750`` = 0.075%); a negative
rate is a rebate. Instruments with ``uses_fee_tiers`` take the account's ADV tier from
``catalogue.FEE_TIERS``; others use the instrument's own maker/taker rates. A staking discount
(``discount_ppm`` of the positive fee) then applies, bounded by BitMEX's floor for takers and cap
for maker rebates.

Rounding favours the exchange's solvency: a fee rounds up (``mul_div_ceil``), a rebate rounds
down, so the fees account can always pay the rebates it owes.
"""

from perpetua.core.catalogue import FEE_MAKER_REBATE_CAP_PPM, FEE_TAKER_FLOOR_PPM, FEE_TIERS
from perpetua.core.instruments import InstrumentSpec
from perpetua.core.units import PPM, mul_div_ceil, mul_div_floor

__all__ = ["fee_amount", "fee_rates_ppm"]


def fee_rates_ppm(spec: InstrumentSpec, tier: int, discount_ppm: int) -> tuple[int, int]:
    """``(maker_ppm, taker_ppm)`` for an account on ``spec``."""
    if spec.uses_fee_tiers:
        row = FEE_TIERS[tier]
        maker, taker = row.maker_fee_ppm, row.taker_fee_ppm
    else:
        maker, taker = spec.maker_fee_ppm, spec.taker_fee_ppm
    if discount_ppm:
        if taker > 0:
            taker -= mul_div_floor(taker, discount_ppm, PPM)
            if spec.uses_fee_tiers:
                taker = max(taker, FEE_TAKER_FLOOR_PPM)
        if maker > 0:
            maker -= mul_div_floor(maker, discount_ppm, PPM)
    if spec.uses_fee_tiers:
        maker = max(maker, FEE_MAKER_REBATE_CAP_PPM)
    return maker, taker


def fee_amount(value_abs: int, rate_ppm: int) -> int:
    """Signed fee on ``value_abs``: positive is paid (rounded up), negative a rebate (down)."""
    if rate_ppm >= 0:
        return mul_div_ceil(value_abs, rate_ppm, PPM)
    return -mul_div_floor(value_abs, -rate_ppm, PPM)
