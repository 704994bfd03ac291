"""The BitMEX-compatible gateway: REST under /api/v1, WebSocket /realtime, auth, limits."""

from perpetua.gateway.app import create_app
from perpetua.gateway.config import GatewayConfig
from perpetua.gateway.memory_accounts import MemoryAccounts
from perpetua.gateway.ports import ApiKeyRecord, Overloaded, Result

__all__ = ["ApiKeyRecord", "GatewayConfig", "MemoryAccounts", "Overloaded", "Result", "create_app"]
