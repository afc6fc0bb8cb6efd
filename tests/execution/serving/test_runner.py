"""The serving process: loads the checkpoint from a path or a URL, answers from its weights."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bench.serving import free_port
from runtime.execution.serving.checkpoint import IN_DIM, make_checkpoint, weights
from tests.execution.serving.conftest import SEED


def _run(source: str, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "runtime.execution.serving.runner", "--source", source]
    command += ["--port", str(port), "--service-id", "svc-1", "--model-name", "tiny"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _health(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)
            if answer.status_code == 200:
                return dict(answer.json())
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("the runner never answered")


@pytest.fixture
def runner(checkpoint: Path) -> Iterator[int]:
    port = free_port()
    process = _run(str(checkpoint), port)
    try:
        _health(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def test_predictions_are_the_inputs_times_the_checkpoints_weights(runner: int) -> None:
    weight, bias = weights(SEED)
    inputs = np.arange(2 * IN_DIM, dtype=np.float32).reshape(2, IN_DIM) / 7.0
    answer = httpx.post(f"http://127.0.0.1:{runner}/v1/predict", json={"inputs": inputs.tolist()})
    assert answer.status_code == 200
    outputs = np.asarray(answer.json()["outputs"], dtype=np.float32)
    assert np.allclose(outputs, inputs @ weight + bias, atol=1e-4)
    assert answer.json()["latency"] >= 0


def test_health_reports_the_load_time_and_counts_requests(runner: int) -> None:
    httpx.post(f"http://127.0.0.1:{runner}/v1/predict", json={"inputs": "some text to embed"})
    health = httpx.get(f"http://127.0.0.1:{runner}/health").json()
    assert health["load_time"] > 0
    assert health["requests_served"] == 1
    assert health["service_id"] == "svc-1"


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": [1.0, 2.0]}',  # not IN_DIM numbers
        b'{"inputs": {"a": 1}}',
        b'{"nope": 1}',
        b'{"inputs": [' + b",".join([b"1e999"] * IN_DIM) + b"]}",  # infinite
        b"not json",
    ],
)
def test_inputs_the_model_cannot_take_answer_400(runner: int, body: bytes) -> None:
    answer = httpx.post(f"http://127.0.0.1:{runner}/v1/predict", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"]


def test_the_runner_loads_from_an_http_url(tmp_path: Path) -> None:
    root = tmp_path / "served"
    make_checkpoint(root / "m.safetensors", 256 * 1024, seed=5)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    process = _run(f"http://127.0.0.1:{server.server_address[1]}/m.safetensors", port)
    try:
        _health(port, process)
        weight, bias = weights(5)
        row = np.ones(IN_DIM, dtype=np.float32)
        outputs = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"inputs": row.tolist()}).json()[
            "outputs"
        ]
        assert np.allclose(outputs, row @ weight + bias, atol=1e-4)
    finally:
        process.terminate()
        process.wait(10)
        server.shutdown()
        server.server_close()
