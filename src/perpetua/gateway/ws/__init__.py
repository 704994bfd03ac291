"""WebSocket API: ``/realtime`` and ``/realtimePlatform`` sessions, topics, fan-out,
and the ``/realtimemd`` multiplexer."""
