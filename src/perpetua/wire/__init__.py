"""BitMEX's wire vocabulary shared by every reader (architecture §4: above the sequencer,
below marketdata, store, feeds, services and the gateway).

``wallet``: the one fold of a wallet (balance and BitMEX's totals) from ledger events.
``values``: timestamps (ISO-8601 with milliseconds), exact prices from integer ticks, JSON.
"""
