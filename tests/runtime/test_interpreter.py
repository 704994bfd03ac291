"""``runtime.venue.tune_interpreter``: what a serving process sets once its start-up is done."""

import gc
import sys
from collections.abc import Iterator

import pytest

from perpetua.runtime.venue import GC_THRESHOLDS, SWITCH_INTERVAL_S, tune_interpreter


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)


def test_the_serving_process_hands_the_gil_over_sooner_and_collects_less(restored: None) -> None:
    assert sys.getswitchinterval() == pytest.approx(0.005)  # CPython's default, until tuned
    kept = [[n] for n in range(1_000)]  # built before start-up ends: frozen, not scanned again
    tune_interpreter()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    assert SWITCH_INTERVAL_S < 0.005
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() >= len(kept)
