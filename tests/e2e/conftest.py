"""A real `grey serve` process on free ports with a fresh store, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.serving import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    rest_url: str
    grpc_port: int
    admin_key: str
    home: Path
    banner: tuple[str, ...] = ()  # what `grey serve` printed before answering


def launch(home: Path, **env: str) -> tuple[subprocess.Popen[str], Server]:
    """`grey serve` on free ports with its store under `home`, once it answers /health."""
    rest_port, grpc_port = free_port(), free_port()
    environment = {**os.environ, "GREY_HOME": str(home), "PYTHONUNBUFFERED": "1", **env}
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
        env=environment,
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
        if not line and process.poll() is not None:
            break  # it exited
        lines.append(line)
        if match := re.search(r"(grey_api_key_\S+)", line):
            key = match.group(1)
        if line.startswith("Broker"):
            break
    url = f"http://127.0.0.1:{rest_port}"
    healthy = False
    while not healthy and key is not None and process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            healthy = httpx.get(f"{url}/health", timeout=1).status_code == 200
        if not healthy:
            time.sleep(0.1)
    if key is None or not healthy:
        process.kill()
        lines.append(process.stdout.read())
        problem = "print an admin key" if key is None else f"answer {url}/health"
        pytest.fail(f"grey serve did not {problem}:\n" + "".join(lines))
    return process, Server(url, grpc_port, key, home, tuple(lines))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    process, running = launch(tmp_path_factory.mktemp("grey-home"))
    yield running
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
