"""Headless Chromium from Debian's packages, driven by Playwright, for the dashboard.

No browser can be downloaded here (never `playwright install`): Playwright launches the
`chromium` apt package's binary. The browser test (tests/e2e/test_dashboard_browser.py),
the screenshots (bench.dashboard_screenshots) and the first-paint bench (bench.dashboard)
launch it the same way and sign in the same way: the key goes in a POST body, never in a URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, ViewportSize, WebSocket

CHROMIUM = Path("/usr/bin/chromium")
#: No network beyond the page's own: no QUIC, no component updates, no sync, no first-run.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def chromium_missing() -> str | None:
    """Why the browser cannot be driven here, or None (Debian's chromium and Playwright exist)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium chromium-driver; .ci/browser-tools)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    """Chromium on a fresh profile (Playwright gives each launch a new temporary
    user-data-dir and removes it afterwards)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Recorder:
    """Every request a page made (documents apart), its WebSockets and the console's
    messages: what the tests assert against (no key in a URL, no other origin, no document
    loaded again, no CSP violation)."""

    urls: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)  # documents loaded: a reload adds one
    frames_received: int = 0  # WebSocket messages from the server

    def attach(self, page: Page) -> Page:
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        page.on("websocket", self._websocket)
        return page

    def _websocket(self, socket: WebSocket) -> None:
        self.websockets.append(socket.url)
        socket.on("framereceived", self._frame)

    def _frame(self, _: object) -> None:
        self.frames_received += 1

    def _request(self, request: Request) -> None:
        self.urls.append(request.url)
        if request.resource_type == "document":
            self.documents.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def foreign(self, origin: str) -> list[str]:
        """Requested URLs outside `origin` (scheme://host:port); ws:// counts as its http origin."""
        own = urlsplit(origin)
        found = []
        for url in self.urls + self.websockets:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about"):
                continue
            scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
            if (scheme, parts.netloc) != (own.scheme, own.netloc):
                found.append(url)
        return found

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line or "CSP" in line]


def sign_in(page: Page, base_url: str, key: str, timeout_ms: float = 15_000) -> None:
    """Opens the dashboard and signs in through its form: the key is typed, then POSTed."""
    page.goto(f"{base_url}/dashboard/")
    page.fill("#api-key", key)
    page.click("#sign-in")
    page.wait_for_selector("#signed-in-tenant", state="visible", timeout=timeout_ms)
