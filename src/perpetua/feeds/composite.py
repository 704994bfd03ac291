"""Composite indices: constituent venue prints combined by weight, with BitMEX's protections.

Pure: a function of the venues' last prints and the time, no state, no I/O.

Rules (reference §7.8):
- A venue is *fresh* when it printed within the protection window (15 minutes): ``now_ns -
  logged_ns < protection_window_ns``. A venue that has not printed for the window, or never
  printed, is dropped: its effective weight is 0 and the fresh venues' weights are
  renormalised to sum to one.
- The index is the weighted average of the fresh venues' last prices,
  ``sum(w_i * p_i) // sum(w_i)``, floored to the index's decimals.
- With no fresh venue the index is *stale*: ``compose`` returns no value and the caller holds
  the last published one, flagged stale, and publishes nothing until a venue prints again.

Effective weights are reported in ppm, each floored, so they may sum to a few ppm under one
million.
"""

from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "CompositeValue",
    "ConstituentRow",
    "ConstituentStatus",
    "IndexStatus",
    "VenuePrint",
    "compose",
]

PPM = 1_000_000


class IndexStatus(StrEnum):
    LIVE = "live"  # at least one fresh constituent: published
    STALE = "stale"  # every constituent dropped: held, flagged, not published
    CLOSED = "closed"  # outside the underlying's trading hours: held, not published


class ConstituentStatus(StrEnum):
    FRESH = "fresh"
    DROPPED = "dropped"  # silent for the protection window: weight 0
    NEVER = "never"  # no print yet: weight 0


class VenuePrint(NamedTuple):
    """A venue's last print: ``units`` of ``10**-decimals`` (0: none yet) at ``logged_ns``."""

    venue: str
    weight_ppm: int
    units: int
    logged_ns: int


class ConstituentRow(NamedTuple):
    venue: str
    weight_ppm: int  # configured
    effective_weight_ppm: int  # after dropping and renormalising; 0 when dropped
    units: int  # last print (0: none yet)
    logged_ns: int
    status: ConstituentStatus


class CompositeValue(NamedTuple):
    units: int  # 0 when stale (no fresh constituent)
    status: IndexStatus
    constituents: tuple[ConstituentRow, ...]


def _status(vp: VenuePrint, now_ns: int, window_ns: int) -> ConstituentStatus:
    if vp.units <= 0:
        return ConstituentStatus.NEVER
    if now_ns - vp.logged_ns < window_ns:
        return ConstituentStatus.FRESH
    return ConstituentStatus.DROPPED


def compose(
    prints: tuple[VenuePrint, ...] | list[VenuePrint], now_ns: int, protection_window_ns: int
) -> CompositeValue:
    """The composite of ``prints`` at ``now_ns``; see the module docstring for the rules."""
    if protection_window_ns <= 0:
        raise ValueError("protection_window_ns must be positive")
    statuses = [_status(vp, now_ns, protection_window_ns) for vp in prints]
    fresh_weight = sum(
        vp.weight_ppm
        for vp, status in zip(prints, statuses, strict=True)
        if status == ConstituentStatus.FRESH
    )
    rows = []
    weighted = 0
    for vp, status in zip(prints, statuses, strict=True):
        effective = 0
        if status == ConstituentStatus.FRESH:
            effective = vp.weight_ppm * PPM // fresh_weight
            weighted += vp.weight_ppm * vp.units
        rows.append(
            ConstituentRow(vp.venue, vp.weight_ppm, effective, vp.units, vp.logged_ns, status)
        )
    if fresh_weight == 0:
        return CompositeValue(0, IndexStatus.STALE, tuple(rows))
    return CompositeValue(weighted // fresh_weight, IndexStatus.LIVE, tuple(rows))
