"""The Orchestrator as its clients call it: REST with `X-API-Key`, and a slow HTTP endpoint
for the `api_call` pipeline, the way to keep an agent busy (cancel, timeout)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from runtime.services import Services

REPORT_INPUTS: list[dict[str, Any]] = [
    {"input_id": "notes", "type": "text", "data": "Sales rose in May. Sales fell in June! Margins held."},
    {"input_id": "figures", "type": "json", "data": '[{"month": "May", "sales": 120}, {"sales": 80}]'},
]


@pytest.fixture
def orchestrator(api_rest: Callable[[str], httpx.AsyncClient]) -> httpx.AsyncClient:
    return api_rest("orchestrator")


@pytest.fixture
def headers(key: str) -> dict[str, str]:
    """Tenant `acme`'s key, in the header the Orchestrator's reference uses."""
    return {"X-API-Key": key}


class SlowEndpoint:
    """`GET /slow` answers only when released (or after 10 s): an `api_caller` agent calling it
    stays running until then."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        release = self.release
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.calls += 1
                release.wait(10)
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def inputs(self, timeout_seconds: float = 10) -> list[dict[str, Any]]:
        """The `api_call` pipeline's inputs: one call to this endpoint."""
        call = f'{{"url": "http://{self.host}/slow", "timeout_seconds": {timeout_seconds}}}'
        return [{"input_id": "slow", "type": "json", "data": call}]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_endpoint(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowEndpoint]:
    """Allowed to `api_caller` (GREY_API_CALL_ALLOWED_HOSTS); released before the workers stop
    (it depends on `services`, so it is torn down first)."""
    endpoint = SlowEndpoint()
    monkeypatch.setenv("GREY_API_CALL_ALLOWED_HOSTS", endpoint.host)
    yield endpoint
    endpoint.close()
