"""The web trading terminal as the gateway serves it: its TypeScript sources live in ``web/`` at
the repository root and are built by Vite (``make web``) into ``perpetua/web/dist``; ``static``
serves that build at ``/`` with long-cache hashed assets and a strict Content-Security-Policy."""

from perpetua.web.static import CSP, DIST_DIR, WebFiles, web_routes

__all__ = ["CSP", "DIST_DIR", "WebFiles", "web_routes"]
