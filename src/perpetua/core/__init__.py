"""The pure, deterministic trading core: ``Engine.apply(command) -> list[Event]``
(``perpetua.core.engine``).

No I/O, clock, randomness, threads or asyncio; standard library only. See
``docs/architecture`` and each module's docstring for its invariants and rounding rules.

This file imports nothing: ``perpetua.corebuild`` chooses between the compiled modules and
these sources after the package is created and before any module of it is imported.
"""

__all__ = ["PUBLIC_MODULES"]

# The modules the rest of the system may import (tests/test_layering.py enforces it): commands
# in, events out, and the vocabulary both are written in. ``perpetua.core.engine`` is for the
# sequencer, which may import any core module.
PUBLIC_MODULES = (
    "perpetua.core.commands",
    "perpetua.core.events",
    "perpetua.core.reasons",
    "perpetua.core.instruments",
    "perpetua.core.catalogue",
    "perpetua.core.units",
    # OrderEvent's int enums, Transfer's codes and the system account ids (readers decode them)
    "perpetua.core.enums",
    "perpetua.core.ledger",
    # trading-hours values and their pure queries (is_open): the index feeds hold TradFi
    # indices still outside the hours the instruments carry
    "perpetua.core.calendar",
    # pure margin arithmetic: the gateway derives breakEvenPrice from published positions by
    # the core's own formula, and formats the published ADL quintiles (ADL_BUCKETS)
    "perpetua.core.risk",
    # pure fee arithmetic: /user/commission shows the rates the core charges by its formula
    "perpetua.core.fees",
    # the staking tier table and limits: routes list them and check requests before the core
    "perpetua.core.staking",
    # convert pricing: the quoting service prices by the same walk the core guards with
    "perpetua.core.convert",
)
