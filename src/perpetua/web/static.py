"""The web terminal's built files (``web/`` built by Vite into ``perpetua/web/dist``), served at
``/`` by the gateway.

Invariants:
1. Only files that exist in the build are served, looked up by exact name in a table read once
   at start: no path from a request ever reaches the file system, so there is no traversal.
2. Hashed assets (``/assets/<name>-<hash>.<ext>``) are immutable for a year; the shell
   (``/``, ``/index.html``, ``/sw.js``, ``/manifest.webmanifest``) is revalidated on every load,
   so a new build reaches browsers at once and its new asset names bust their caches.
3. Every response carries the strict Content-Security-Policy (``CSP``): scripts, styles and
   connections from this origin only, no inline code, no framing.
4. The whole build is held in memory, at most ``DIST_BYTES_MAX``; a larger one is refused at
   start with an error naming the limit (a bundle that big is a mistake, not a terminal).
5. Without a build, ``/`` answers 503 with a page that says how to build it; the API is
   unaffected.
"""

import gzip
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["CSP", "DIST_BYTES_MAX", "DIST_DIR", "WebFiles", "web_routes"]

DIST_DIR = Path(__file__).resolve().parent / "dist"
DIST_BYTES_MAX = 16 * 1024 * 1024
GZIP_BYTES_MIN = 1024  # smaller files are sent as they are
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"
CACHE_REVALIDATE = "no-cache"
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
NOT_BUILT_HTML = (
    "<!doctype html><meta charset=utf-8><title>Perpetua</title>"
    "<p>The web terminal is not built. Run <code>make web</code> (needs node and npm), or "
    "<code>make run</code>, which builds it. The API is at <a href=/api/explorer>"
    "/api/explorer</a>.</p>"
)
TEXT_TYPES = (
    "text/",
    "application/javascript",
    "application/json",
    "application/manifest",
    "image/svg",
)


@dataclass(frozen=True, slots=True)
class WebFile:
    body: bytes
    gzipped: bytes | None
    content_type: str
    cache_control: str


def _content_type(name: str) -> str:
    if name.endswith(".webmanifest"):
        return "application/manifest+json"
    if name.endswith((".js", ".mjs")):
        return "application/javascript; charset=utf-8"
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guessed + "; charset=utf-8" if guessed.startswith("text/") else guessed


class WebFiles:
    """The build, by URL path: ``/`` is ``index.html``; assets keep their hashed names."""

    def __init__(self, dist_dir: Path = DIST_DIR) -> None:
        self.files: dict[str, WebFile] = {}
        index = dist_dir / "index.html"
        if not index.is_file():
            return
        total = 0
        for path in sorted(dist_dir.rglob("*")):
            if not path.is_file():
                continue
            body = path.read_bytes()
            total += len(body)
            if total > DIST_BYTES_MAX:
                raise ValueError(
                    f"web build in {dist_dir} exceeds DIST_BYTES_MAX ({DIST_BYTES_MAX} bytes)"
                )
            relative = path.relative_to(dist_dir).as_posix()
            self.files["/" + relative] = self._file(relative, body)
        self.files["/"] = self.files["/index.html"]

    @staticmethod
    def _file(relative: str, body: bytes) -> WebFile:
        content_type = _content_type(relative)
        compress = len(body) >= GZIP_BYTES_MIN and content_type.startswith(TEXT_TYPES)
        immutable = relative.startswith("assets/")
        return WebFile(
            body,
            gzip.compress(body, 9, mtime=0) if compress else None,
            content_type,
            CACHE_IMMUTABLE if immutable else CACHE_REVALIDATE,
        )

    @property
    def built(self) -> bool:
        return bool(self.files)

    def response(self, path: str, accept_encoding: str) -> Response:
        headers = dict(SECURITY_HEADERS)
        file = self.files.get(path)
        if file is None:
            if not self.built and path in ("/", "/index.html"):
                return Response(NOT_BUILT_HTML, 503, headers, "text/html; charset=utf-8")
            return Response(b"Not Found", 404, headers, "text/plain; charset=utf-8")
        headers["cache-control"] = file.cache_control
        body = file.body
        if file.gzipped is not None:
            headers["vary"] = "accept-encoding"
            if "gzip" in accept_encoding:
                headers["content-encoding"] = "gzip"
                body = file.gzipped
        return Response(body, 200, headers, file.content_type)


def web_routes(files: WebFiles | None = None) -> list[Route]:
    """``/``, the shell files and ``/assets/...``; ``files`` defaults to the installed build."""
    table = files if files is not None else WebFiles()

    async def serve(request: Request) -> Response:
        return table.response(request.url.path, request.headers.get("accept-encoding", ""))

    shell = ["/", "/index.html", "/sw.js", "/manifest.webmanifest", "/icon.svg"]
    routes = [Route(path, serve, methods=["GET"]) for path in shell]
    routes.append(Route("/assets/{name:path}", serve, methods=["GET"]))
    return routes
