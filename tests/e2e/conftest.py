"""A real `grey serve` process on free ports with a fresh store, for end-to-end tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    rest_url: str
    grpc_port: int
    admin_key: str
    home: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("grey-home")
    rest_port, grpc_port = free_port(), free_port()
    env = {**os.environ, "GREY_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "serve",
            "--rest-port",
            str(rest_port),
            "--grpc-port",
            str(grpc_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    key = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if match := re.search(r"(grey_api_key_\S+)", line):
            key = match.group(1)
        if line.startswith("gRPC"):
            break
    url = f"http://127.0.0.1:{rest_port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    if key is None:
        process.kill()
        pytest.fail("grey serve did not print an admin key:\n" + "".join(lines))
    yield Server(url, grpc_port, key, home)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
