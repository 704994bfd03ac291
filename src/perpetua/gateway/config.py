"""Gateway configuration: one frozen value passed to ``create_app``."""

from dataclasses import dataclass, field

from perpetua.core.catalogue import default_catalogue
from perpetua.core.instruments import InstrumentSpec
from perpetua.gateway.ratelimit import RateLimitConfig

__all__ = ["GatewayConfig"]

WS_QUEUE_MESSAGES_MAX = 5_000  # per connection; a consumer this far behind is disconnected
WS_WRITE_BUFFER_BYTES_MAX = 16 * 1024 * 1024  # per connection, raw frames: the same rule
WS_CONNECTIONS_PER_HOUR = 60  # BitMEX's published limit, per IP
WS_SUBSCRIPTIONS_MAX = 200  # topics per connection
WS_ERRORS_MAX = 50  # error frames one socket may cause before it is closed


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """``operator_key`` guards the admin routes (testnet faucet); empty disables them."""

    instruments: tuple[InstrumentSpec, ...] = field(default_factory=default_catalogue)
    public_host: str = ""  # host:port written into the served swagger; "" = the request's Host
    operator_key: str = ""
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    ws_queue_messages_max: int = WS_QUEUE_MESSAGES_MAX
    ws_write_buffer_bytes_max: int = WS_WRITE_BUFFER_BYTES_MAX
    ws_connections_per_hour: int = WS_CONNECTIONS_PER_HOUR
    ws_subscriptions_max: int = WS_SUBSCRIPTIONS_MAX
    ws_errors_max: int = WS_ERRORS_MAX
    bin_roll_interval_s: float = 1.0
