"""In-memory public market data fed by the event stream: instruments, index rows, L2 books,
quotes, recent trades and trade bins, with the WebSocket deltas each command causes."""

from perpetua.marketdata.book import LEVEL_ID_STRIDE, L2Book, level_id
from perpetua.marketdata.deltas import Delta
from perpetua.marketdata.hub import MarketData

__all__ = ["LEVEL_ID_STRIDE", "Delta", "L2Book", "MarketData", "level_id"]
