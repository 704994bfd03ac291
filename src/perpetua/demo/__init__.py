"""``perpetua demo``: the exchange, simulated index feeds and trading bots in one process.

``run_demo(DemoOptions(...))`` is what ``make run`` starts; see ``app`` for the pieces and their
order, ``traders`` for the accounts and bots, ``bots`` for how each bot trades.
"""

from perpetua.demo.app import DemoOptions, demo_markets, run_demo

__all__ = ["DemoOptions", "demo_markets", "run_demo"]
