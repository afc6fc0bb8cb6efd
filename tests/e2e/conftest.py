"""A real `grey serve` process with a fresh store, every API on free ports, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.serving import free_port
from runtime.gateway.contracts import CONTRACTS

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    rest_url: str  # Grey Distributed's
    grpc_port: int  # Grey Distributed's
    admin_key: str
    home: Path
    banner: tuple[str, ...] = ()  # what `grey serve` printed before answering
    # Every API's (REST port, gRPC port or None), by name (runtime/gateway/contracts.py),
    # whether or not `GREY_APIS` serves it.
    ports: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def rest(self, api: str) -> str:
        """The base URL of an API's REST listener (without any `GREY_<API>_BASE_PATH`)."""
        return f"http://127.0.0.1:{self.ports[api][0]}"

    def grpc(self, api: str) -> str:
        """`host:port` of an API's gRPC listener."""
        port = self.ports[api][1]
        assert port is not None, f"{api} has no gRPC listener"
        return f"127.0.0.1:{port}"


def _free_ports(env: dict[str, str]) -> dict[str, tuple[int, int | None]]:
    """A free port per listener of every API, unless `env` places it (`GREY_<API>_*_PORT`)."""
    found: dict[str, tuple[int, int | None]] = {}
    for contract in CONTRACTS.values():
        prefix = contract.env_prefix
        rest = int(env.get(f"{prefix}REST_PORT") or free_port())
        served_over_grpc = contract.grpc_services is not None
        grpc = int(env.get(f"{prefix}GRPC_PORT") or free_port()) if served_over_grpc else None
        found[contract.name] = (rest, grpc)
    return found


def launch(home: Path, **env: str) -> tuple[subprocess.Popen[str], Server]:
    """`grey serve` with its store under `home` and every API on free ports, once it answers.

    `env` adds to the environment; a `GREY_<API>_REST_PORT` / `_GRPC_PORT` in it is kept.
    """
    ports = _free_ports(env)
    rest_port, grpc_port = ports["grey"]
    assert grpc_port is not None
    placed = {}
    for name, (rest, grpc) in ports.items():
        prefix = CONTRACTS[name].env_prefix
        placed[f"{prefix}REST_PORT"] = str(rest)
        if grpc is not None:
            placed[f"{prefix}GRPC_PORT"] = str(grpc)
    environment = {**os.environ, "GREY_HOME": str(home), "PYTHONUNBUFFERED": "1", **placed, **env}
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
    # Every listener is up once one REST listener answers (gRPC servers start first): Grey's
    # /health with 200, or, when GREY_APIS leaves Grey out, any answer of the first API's.
    served = [name.strip() for name in environment.get("GREY_APIS", "").split(",") if name.strip()]
    probe = "grey" if not served or "grey" in served or served[0] not in ports else served[0]
    probe_url = f"http://127.0.0.1:{ports[probe][0]}/health"
    healthy = False
    while not healthy and key is not None and process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            healthy = httpx.get(probe_url, timeout=1).status_code == 200 or probe != "grey"
        if not healthy:
            time.sleep(0.1)
    if key is None or not healthy:
        process.kill()
        lines.append(process.stdout.read())
        problem = "print an admin key" if key is None else f"answer {probe_url}"
        pytest.fail(f"grey serve did not {problem}:\n" + "".join(lines))
    return process, Server(url, grpc_port, key, home, tuple(lines), ports)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    process, running = launch(tmp_path_factory.mktemp("grey-home"))
    yield running
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
