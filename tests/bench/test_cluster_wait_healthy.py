"""bench.cluster.wait_healthy: the one wait for a started server's /health (bench.dashboard's
`grey serve` and GreyCluster's gateways)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.cluster import Child, wait_healthy
from bench.serving import free_port

SERVER = """
from http.server import BaseHTTPRequestHandler, HTTPServer
class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
HTTPServer(("127.0.0.1", {port}), Health).serve_forever()
"""


def test_it_returns_once_health_answers(tmp_path: Path) -> None:
    port = free_port()
    server = Child("server", [sys.executable, "-c", SERVER.format(port=port)], {}, tmp_path / "server.log")
    server.start()
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server, timeout=30)
    finally:
        server.terminate()


def test_a_process_that_exits_first_fails_with_its_log(tmp_path: Path) -> None:
    gone = Child("gone", [sys.executable, "-c", "print('no config')"], {}, tmp_path / "gone.log")
    gone.start()
    gone.wait(10)
    with pytest.raises(RuntimeError, match="gone exited") as failed:
        wait_healthy(f"http://127.0.0.1:{free_port()}", gone, timeout=30)
    assert "no config" in str(failed.value)
