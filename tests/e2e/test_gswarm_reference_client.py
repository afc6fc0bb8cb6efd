"""A client written from the gswarm reference's examples (its REST conventions and calls,
made httpx calls) against a live `grey serve`: the host API on its own listener (the
reference's 9010), the client API (9011) and the profiler (8091), every answer in the
reference's `{success, data, error}` envelope with its codes.

`grey serve` runs the placement node `node1` in-process (disk, DRAM and an emulated GPU);
no model hub is reachable here, so the checkpoint the reference downloads from Hugging Face
is a small generated safetensors file served by a local HTTP server.
"""

from __future__ import annotations

import functools
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.execution.serving.checkpoint import make_checkpoint
from tests.e2e.conftest import Server, launch

MIB = 1024 * 1024


class GswarmError(Exception):
    """An answer with `success: false`: the reference's error object."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"{status} {error['code']}: {error['message']}")
        self.status, self.code, self.details = status, error["code"], error.get("details", {})


class Gswarm:
    """The reference's REST conventions: JSON requests, `{success, data, error}` answers."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"X-API-Key": api_key, "Content-Type": "application/json", "Accept": "application/json"},
            timeout=30,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """`data` of a success; GswarmError for an error; None for 204."""
        response = self.http.request(method, path, **kwargs)
        if response.status_code == 204:
            assert not response.content
            return None
        body = response.json()
        assert set(body) == {"success", "data", "error"}, body
        if not body["success"]:
            assert body["data"] is None and response.status_code >= 400
            raise GswarmError(response.status_code, body["error"])
        assert body["error"] is None and response.status_code < 300
        return body["data"]

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, json=body or {})

    def delete(self, path: str, **params: Any) -> Any:
        return self.call("DELETE", path, params=params)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def checkpoint_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 1 MiB safetensors checkpoint over http:// (what the reference's `source_url` names)."""
    root = tmp_path_factory.mktemp("models")
    make_checkpoint(root / "tiny-llm.safetensors", MIB)  # what the built-in runner serves
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tiny-llm.safetensors"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def grey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("grey-home")
    process, running = launch(
        home,
        GREY_PLACEMENT_ROOT=str(Path(home) / "placement"),
        GREY_PLACEMENT_DRAM_BYTES=str(64 * MIB),
        GREY_PLACEMENT_GPU_BYTES=str(64 * MIB),
    )
    yield running
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def host(grey: Server) -> Gswarm:
    return Gswarm(grey.rest("gswarm_host"), grey.admin_key)


@pytest.fixture(scope="module")
def client(grey: Server) -> Gswarm:
    return Gswarm(grey.rest("gswarm_client"), grey.admin_key)


@pytest.fixture(scope="module")
def profiler(grey: Server) -> Gswarm:
    return Gswarm(grey.rest("gswarm_profiler"), grey.admin_key)


def _until_finished(host: Gswarm, task_id: str, seconds: float = 60) -> dict[str, Any]:
    """The queue's view of the task once it has finished (GET /api/v1/queue/tasks/{task_id})."""
    deadline = time.monotonic() + seconds
    while True:
        task = host.get(f"/api/v1/queue/tasks/{task_id}")
        if task["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return dict(task)
        time.sleep(0.1)


def test_health_nodes_queue_and_profiler_status(grey: Server, host: Gswarm, profiler: Gswarm) -> None:
    # The listeners `grey serve` announces, on the reference's ports unless placed elsewhere.
    banner = "".join(grey.banner)
    for title in ("gswarm Model Host", "gswarm Model Client", "gswarm Profiler"):
        assert title in banner

    # Health Check needs no credential.
    health = httpx.get(f"{grey.rest('gswarm_host')}/api/v1/health").json()
    assert health["success"] is True and health["data"]["status"] in ("healthy", "degraded")

    # List Nodes: the in-process placement node with its devices.
    nodes = host.get("/api/v1/nodes")["nodes"]
    node1 = next(node for node in nodes if node["node_id"] == "node1")
    assert node1["status"] == "online"
    assert "gpu0" in node1["capabilities"]["gpus"]
    assert {"disk", "dram"} <= set(node1["capabilities"]["storage"])

    # Get Queue Status: the reference's fields.
    queue = host.get("/api/v1/queue")
    assert {"pending", "running", "completed", "config"} <= set(queue)
    assert queue["config"]["priority_levels"] == ["critical", "high", "normal", "low"]
    assert queue["config"]["max_concurrent_tasks"] >= 1
    assert host.get("/api/v1/queue/tasks", status="running", limit=10) == {"tasks": []}
    assert host.get("/api/v1/queue/history", limit=10, since="2024-01-01T00:00:00Z") == {"tasks": []}

    # The profiler's Get Status.
    status = profiler.get("/status")
    assert {"is_profiling", "active_sessions", "connected_clients", "sampling_frequency_ms"} <= set(status)


def test_errors_come_in_the_references_envelope_and_codes(grey: Server, host: Gswarm) -> None:
    with pytest.raises(GswarmError) as missing:
        host.get("/api/v1/queue/tasks/download-llama-7b-1234")
    assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
    with pytest.raises(GswarmError) as unknown:
        host.get("/api/v1/queue/tasks", limit=0)
    assert (unknown.value.status, unknown.value.code) == (400, "INVALID_REQUEST")
    with pytest.raises(GswarmError) as no_key:
        Gswarm(grey.rest("gswarm_host"), "").get("/api/v1/queue")
    assert (no_key.value.status, no_key.value.code) == (401, "UNAUTHORIZED")
    answer = httpx.get(f"{grey.rest('gswarm_host')}/api/v2/models")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"


def test_download_then_move_to_the_gpu_through_the_queue(
    host: Gswarm, client: Gswarm, checkpoint_url: str
) -> None:
    # Register Model, then Download Model with the reference's body.
    host.post("/api/v1/models", {"model_name": "tiny-llm", "model_type": "llm", "source_url": checkpoint_url})
    queued = client.post(
        "/api/v1/models/tiny-llm/download",
        {
            "source_url": checkpoint_url,
            "target_device": "disk",
            "priority": "normal",
            "verify_checksum": True,
        },
    )
    assert queued["status"] == "queued" and queued["position"] >= 0 and queued["estimated_time"] >= 0
    download = _until_finished(host, queued["task_id"])
    assert download["status"] == "completed", download
    assert download["task_type"] == "download" and "tiny-llm" in download["resources"]["models"]

    # Move Model disk → gpu0 (emulated here), high priority, after the download.
    queued = client.post(
        "/api/v1/models/tiny-llm/move",
        {
            "source_device": "disk",
            "target_device": "gpu0",
            "keep_source": True,
            "priority": "high",
            "compression": "none",
            "verify_checksum": True,
            "dependencies": [download["task_id"]],
        },
    )
    move = _until_finished(host, queued["task_id"])
    assert move["status"] == "completed", move
    assert move["priority"] == "high" and move["dependencies"] == [download["task_id"]]

    locations = {
        location["device"] for location in host.get("/api/v1/models/tiny-llm/locations")["locations"]
    }
    assert {"node1:disk", "node1:gpu0"} <= locations
    model = host.get("/api/v1/models/tiny-llm")
    assert model["status"] == "ready" and model["model_size"] > 0
    history = host.get("/api/v1/queue/history", status="completed")["tasks"]
    assert {download["task_id"], move["task_id"]} <= {task["task_id"] for task in history}
    assert host.get("/api/v1/queue")["completed"] >= 2


def test_deploy_a_service_and_predict(host: Gswarm, client: Gswarm, checkpoint_url: str) -> None:
    host.post(
        "/api/v1/models", {"model_name": "served-llm", "model_type": "llm", "source_url": checkpoint_url}
    )
    queued = client.post(
        "/api/v1/models/served-llm/download", {"source_url": checkpoint_url, "target_device": "disk"}
    )
    assert _until_finished(host, queued["task_id"])["status"] == "completed"

    deployment = host.post(
        "/api/v1/services", {"model_name": "served-llm", "nodes": ["node1"], "config": {"replicas": 1}}
    )
    service_id = deployment["services"][0]["service_id"]
    deadline = time.monotonic() + 60
    while (service := host.get(f"/api/v1/services/{service_id}"))["status"] != "running":
        assert service["status"] == "starting" and time.monotonic() < deadline, f"{service}"
        time.sleep(0.2)
    answer = host.post("/api/v1/models/served-llm/predict", {"inputs": "Hello"})
    assert answer["model_name"] == "served-llm" and answer["service_id"] == service_id
    assert answer["cold_start"] is False
    host.delete(f"/api/v1/services/{service_id}")
    with pytest.raises(GswarmError) as gone:
        host.delete("/api/v1/models/not-registered")
    assert (gone.value.status, gone.value.code) == (404, "MODEL_NOT_FOUND")
