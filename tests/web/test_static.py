"""The web terminal's files as the gateway serves them (``perpetua.web.static``): the shell and
hashed assets from a build directory, each with the strict CSP, long caching only for hashed
assets, gzip when asked, nothing outside the build, a clear 503 before the first build, and the
size limit. The browser tests (web/e2e) drive the real build in Chromium."""

import gzip
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perpetua.web import static
from perpetua.web.static import CSP, WebFiles, web_routes
from tests.gateway.harness import harness

SCRIPT = b"console.log('terminal');" * 100  # over GZIP_BYTES_MIN: served compressed


def build(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><script src=/assets/index-abc123.js>")
    (dist / "assets" / "index-abc123.js").write_bytes(SCRIPT)
    (dist / "assets" / "index-def456.css").write_text("body{}")
    (dist / "sw.js").write_text("self.addEventListener('fetch', () => {});")
    (dist / "manifest.webmanifest").write_text("{}")
    (root / "secret.txt").write_text("outside the build")
    return dist


def client(files: WebFiles) -> TestClient:
    return TestClient(Starlette(routes=web_routes(files)))


@pytest.mark.parametrize(
    ("path", "status", "content_type", "cache"),
    [
        ("/", 200, "text/html; charset=utf-8", "no-cache"),
        ("/index.html", 200, "text/html; charset=utf-8", "no-cache"),
        (
            "/assets/index-abc123.js",
            200,
            "application/javascript; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        (
            "/assets/index-def456.css",
            200,
            "text/css; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        ("/sw.js", 200, "application/javascript; charset=utf-8", "no-cache"),
        ("/manifest.webmanifest", 200, "application/manifest+json", "no-cache"),
        ("/assets/missing-000.js", 404, "text/plain; charset=utf-8", None),
        ("/assets/../secret.txt", 404, None, None),
        ("/assets/..%2F..%2Fsecret.txt", 404, "text/plain; charset=utf-8", None),
        ("/assets/%2e%2e/%2e%2e/secret.txt", 404, "text/plain; charset=utf-8", None),
    ],
)
def test_files_headers_and_caching(
    tmp_path: Path, path: str, status: int, content_type: str | None, cache: str | None
) -> None:
    response = client(WebFiles(build(tmp_path))).get(path)
    assert response.status_code == status
    assert b"outside the build" not in response.content
    if content_type is not None:
        assert response.headers["content-type"] == content_type
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get("cache-control") == cache


def test_csp_allows_nothing_inline_or_foreign() -> None:
    directives = dict(part.split(" ", 1) for part in CSP.split("; "))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'"
    assert "unsafe" not in CSP
    assert directives["frame-ancestors"] == "'none'"


def test_gzip_only_when_accepted(tmp_path: Path) -> None:
    test = client(WebFiles(build(tmp_path)))
    zipped = test.get("/assets/index-abc123.js", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == SCRIPT  # httpx decodes: the bytes are the file's
    assert zipped.headers["vary"] == "accept-encoding"
    plain = test.get("/assets/index-abc123.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == SCRIPT
    files = WebFiles(tmp_path / "dist")
    raw = files.files["/assets/index-abc123.js"].gzipped
    assert raw is not None and gzip.decompress(raw) == SCRIPT and len(raw) < len(SCRIPT)


def test_not_built_says_how_to_build(tmp_path: Path) -> None:
    test = client(WebFiles(tmp_path / "nothing"))
    response = test.get("/")
    assert response.status_code == 503
    assert "make web" in response.text
    assert test.get("/assets/index-abc123.js").status_code == 404


def test_build_over_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = build(tmp_path)
    monkeypatch.setattr(static, "DIST_BYTES_MAX", len(SCRIPT))
    with pytest.raises(ValueError, match="DIST_BYTES_MAX"):
        WebFiles(dist)


def test_the_gateway_serves_the_terminal_beside_the_api() -> None:
    """The real app: ``/`` is the terminal (or the not-built page), the API still answers."""
    with harness() as h:
        shell = h.client.get("/")
        assert shell.status_code == (200 if (static.DIST_DIR / "index.html").is_file() else 503)
        assert shell.headers["content-security-policy"] == CSP
        api = h.client.get("/api/v1/instrument/active")
        assert api.status_code == 200 and api.json()
        assert "content-security-policy" not in api.headers
