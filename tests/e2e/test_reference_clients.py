"""Clients written from the OpenMCP Chain and Orchestrator reference documents, against one
live `grey serve` that serves every API on its own listeners.

- OpenMCP Chain over REST (httpx, the reference's token exchange, submit, get and SSE) and
  over gRPC on stubs compiled here from the reference's proto text (reference_protos/).
- The Orchestrator over gRPC, its Python example as written (stubs compiled from the
  reference's messages, completed as reference_protos/orchestrator.proto says), and over REST
  from its HTTP examples: submit, status, cancel, /health, /metrics.

The gRPC clients run in a fresh interpreter: their stubs define `openmcp.chain.v1` and
`orchestrator.v1` again, and protobuf refuses a second file with the same symbols in a
process that has imported Grey's own generated modules (as this one has).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from grpc_tools import protoc
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Server, launch

REFERENCE = Path(__file__).parent / "reference_protos"
WORKSPACE = "default"  # the tenant of the admin key `grey serve` prints first


class SlowApi:
    """An HTTP API that answers a path only once the test releases it: holds a task running."""

    def __init__(self) -> None:
        gates: dict[str, threading.Event] = {}
        self.gates = gates

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gates.setdefault(self.path, threading.Event()).wait(timeout=60)
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        self.gates.setdefault(path, threading.Event())
        return f"http://127.0.0.1:{self.port}{path}"

    def release(self) -> None:
        for gate in self.gates.values():
            gate.set()

    def close(self) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def slow_api() -> Iterator[SlowApi]:
    api = SlowApi()
    yield api
    api.close()


@pytest.fixture(scope="module")
def grey(tmp_path_factory: pytest.TempPathFactory, slow_api: SlowApi) -> Iterator[Server]:
    """One `grey serve` for the module, whose api_call tasks may call the slow API."""
    process, running = launch(
        tmp_path_factory.mktemp("grey-home"), GREY_API_CALL_ALLOWED_HOSTS=f"127.0.0.1:{slow_api.port}"
    )
    yield running
    slow_api.release()  # no worker stays blocked on it through the shutdown
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def compile_reference(proto: str, into: Path, as_path: str) -> Path:
    """protoc (grpc_tools) on a reference proto placed at `as_path` under `into`: the import
    root that then holds the stubs."""
    target = into / as_path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REFERENCE / proto, target)
    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    code = protoc.main(
        ["protoc", f"-I{into}", f"-I{include}", f"--python_out={into}", f"--grpc_python_out={into}", as_path]
    )
    assert code == 0, f"protoc failed on {proto}"
    return into


def run_client(script: str, stubs: Path, *arguments: str) -> tuple[dict[str, Any], str]:
    """A client script of reference_protos/ in a fresh interpreter with the stubs importable:
    what it reported, and what it printed before."""
    environment = {**os.environ, "PYTHONPATH": str(stubs)}
    done = subprocess.run(
        [sys.executable, str(REFERENCE / script), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed, _, result = done.stdout.rpartition("RESULT ")
    return json.loads(result), printed


def sse(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event, data as JSON) of a Server-Sent Events stream."""
    name = "message"
    data: list[str] = []
    for line in response.iter_lines():
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].strip())


# -- OpenMCP Chain -----------------------------------------------------------------------


def openmcp_token(base: str, secret: str) -> str:
    """The reference's token exchange: POST /v1/auth/token with the workspace credentials."""
    answer = httpx.post(
        f"{base}/v1/auth/token",
        json={"workspace_id": WORKSPACE, "workspace_secret": secret},
        headers={"Content-Type": "application/json"},
    )
    answer.raise_for_status()
    token = answer.json()
    assert token["access_token"].startswith("eyJ") and token["expires_at"].endswith("Z"), token
    return str(token["access_token"])


def test_openmcp_chain_rest_client_from_the_reference(grey: Server) -> None:
    base = grey.rest("openmcp")
    headers = {"Authorization": f"Bearer {openmcp_token(base, grey.admin_key)}"}

    submitted = httpx.post(
        f"{base}/v1/tasks",
        json={
            "workspace_id": WORKSPACE,
            "type": "wordcount",
            "payload": {"text": "the quick brown fox jumps over the lazy dog"},
            "metadata": {"priority": "high"},
        },
        headers=headers,
    )
    submitted.raise_for_status()
    summary = submitted.json()
    assert summary["status"] == "PENDING" and summary["submitted_at"].endswith("Z"), summary

    deadline = time.monotonic() + 30
    task = httpx.get(f"{base}/v1/tasks/{summary['task_id']}", headers=headers).json()
    while task["status"] in ("PENDING", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.05)
        task = httpx.get(f"{base}/v1/tasks/{summary['task_id']}", headers=headers).json()
    assert task["status"] == "SUCCEEDED", task
    assert task["task_id"] == summary["task_id"] and task["submitted_at"] == summary["submitted_at"]
    assert task["updated_at"] >= task["submitted_at"]
    assert task["result"]["words"] == 9 and task.get("error") is None, task

    # "Stream Task Events (optional)": an SSE message per lifecycle transition.
    sleeper = httpx.post(
        f"{base}/v1/tasks",
        json={"workspace_id": WORKSPACE, "type": "sleep", "payload": {"seconds": 0.6}},
        headers=headers,
    ).json()
    stream_headers = {**headers, "Accept": "text/event-stream"}
    with httpx.stream(
        "GET", f"{base}/v1/tasks/{sleeper['task_id']}/events", headers=stream_headers, timeout=30
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = list(sse(stream))
    assert events[-1] == ("done", {}), events
    statuses = [data["status"] for name, data in events if name == "status"]
    order = ["PENDING", "RUNNING", "SUCCEEDED"]
    assert statuses[-1] == "SUCCEEDED" and "RUNNING" in statuses, statuses
    assert [order.index(status) for status in statuses] == sorted(order.index(s) for s in statuses)
    assert all(data["task_id"] == sleeper["task_id"] for name, data in events if name == "status")

    # The reference's error shape: {"error": {"code": "TASK_NOT_FOUND", "message": ...}}.
    missing = httpx.get(f"{base}/v1/tasks/task-1f7f", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "TASK_NOT_FOUND"
    # "Tokens are short-lived; refresh them when receiving 401 Unauthorized."
    assert httpx.get(f"{base}/v1/tasks/{summary['task_id']}").status_code == 401


def test_openmcp_chain_grpc_client_on_stubs_from_the_reference_proto(grey: Server, tmp_path: Path) -> None:
    stubs = compile_reference("openmcp_chain.proto", tmp_path, "openmcp_chain.proto")
    seen, _ = run_client(
        "openmcp_chain_grpc_client.py", stubs, grey.grpc("openmcp"), WORKSPACE, grey.admin_key
    )

    assert seen["token"]["token"] and seen["token"]["expires_at"].endswith("Z")
    summary = seen["summary"]
    assert summary["status"] == "TASK_STATUS_PENDING" and summary["task_id"], summary
    events = seen["events"]
    assert events and events[-1]["status"] == "TASK_STATUS_SUCCEEDED", events
    assert all(event["task_id"] == summary["task_id"] for event in events)
    detail = seen["detail"]
    assert detail["status"] == "TASK_STATUS_SUCCEEDED" and detail["submitted_at"] == summary["submitted_at"]
    assert detail["result"]["words"] == 9, detail
    # "gRPC methods use canonical status codes. The status.details field carries the same
    # machine-readable error payload."
    assert seen["missing"] == {"code": "NOT_FOUND", "reasons": ["TASK_NOT_FOUND"]}
    assert seen["bad_secret"] == "UNAUTHENTICATED"
    assert seen["no_token"] == "UNAUTHENTICATED"


# -- Orchestrator ------------------------------------------------------------------------


def test_orchestrator_grpc_python_example_as_the_reference_writes_it(
    grey: Server, slow_api: SlowApi, tmp_path: Path
) -> None:
    # The example imports `from grpc_services.generated import orchestrator_pb2, ...`.
    stubs = compile_reference("orchestrator.proto", tmp_path, "grpc_services/generated/orchestrator.proto")
    seen, printed = run_client(
        "orchestrator_grpc_client.py",
        stubs,
        grey.grpc("orchestrator").replace("127.0.0.1", "localhost"),
        grey.admin_key,
        slow_api.url("/grpc-cancel"),
    )
    slow_api.release()

    assert seen["submitted"]["task_id"] == "task-001"
    assert seen["submitted"]["status"] == "TASK_STATUS_QUEUED", seen["submitted"]
    assert "Task submitted: task-001, status: 1" in printed  # the enum's number, as grpcio prints it
    updates = seen["updates"]
    assert updates[-1]["status"] == "TASK_STATUS_COMPLETED" and updates[-1]["progress_percent"] == 100
    progress = [update.get("progress_percent", 0) for update in updates]
    assert progress == sorted(progress), progress
    assert "Progress: 100%, Status: 3" in printed

    status = seen["status"]
    assert status["status"] == "TASK_STATUS_COMPLETED"
    agents = [execution["agent_type"] for execution in status["agent_executions"]]
    assert agents == ["data_ingest", "data_analysis", "synthesis"]  # report_generation's pipeline
    assert status["output"]["type"] == "json_report"
    assert int(status["metrics"]["agents_used"]) == 3

    # proto3 JSON leaves out a false `success`: the finished task is not cancelled.
    assert "success" not in seen["cancel_ended"], seen["cancel_ended"]
    assert "already ended" in seen["cancel_ended"]["message"]
    assert seen["before_cancel"] == "TASK_STATUS_RUNNING"
    assert seen["cancel_running"] == {"success": True, "message": "Task cancelled successfully"}
    after = seen["after_cancel"]
    assert after["status"] == "TASK_STATUS_CANCELLED" and after["error"]["code"] == "CANCELLED", after

    assert seen["no_key"] == "UNAUTHENTICATED"
    assert seen["unknown_type"]["code"] == "INVALID_ARGUMENT"
    assert seen["unknown_type"]["trailers"]["grey-error-code"] == "VALIDATION_ERROR"


def test_orchestrator_rest_client_from_the_reference(grey: Server, slow_api: SlowApi) -> None:
    base = grey.rest("orchestrator")
    headers = {"X-API-Key": grey.admin_key, "Content-Type": "application/json"}
    body = {
        "task_id": "task-rest-001",
        "task_type": "report_generation",
        "inputs": [{"input_id": "input-1", "type": "text", "data": "Sample data"}],
        "execution_mode": "sequential",
        "priority": 5,
        "timeout_ms": 30000,
        "metadata": {"report_title": "My Report"},
    }
    submitted = httpx.post(f"{base}/api/v1/tasks", json=body, headers=headers)
    submitted.raise_for_status()
    answer = submitted.json()
    assert answer["task_id"] == "task-rest-001" and answer["status"] == "queued", answer
    assert answer["message"] == "Task submitted successfully"

    deadline = time.monotonic() + 30
    status = httpx.get(f"{base}/api/v1/tasks/task-rest-001", headers=headers).json()
    while status["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        status = httpx.get(f"{base}/api/v1/tasks/task-rest-001", headers=headers).json()
    assert status["status"] == "completed", status
    first = status["agent_executions"][0]
    assert first["agent_id"] == "agent-data-ingest-1" and first["agent_type"] == "data_ingest"
    assert first["status"] == "completed" and first["execution_time_ms"] >= 0
    assert status["output"]["type"] == "json_report"
    assert status["output"]["data"]["title"] == "My Report"  # from metadata.report_title
    metrics = status["metrics"]
    assert set(metrics) >= {"total_duration_ms", "queue_time_ms", "execution_time_ms", "retry_count"}
    assert metrics["agents_used"] == 3 and metrics["retry_count"] == 0

    # Cancel Task: DELETE with {"reason": ...}; a finished task is not cancelled.
    ended = httpx.request(
        "DELETE",
        f"{base}/api/v1/tasks/task-rest-001",
        json={"reason": "User requested cancellation"},
        headers=headers,
    )
    assert ended.status_code == 200 and ended.json()["success"] is False, ended.text
    call = {"url": slow_api.url("/rest-cancel"), "timeout_seconds": 60}
    held = {
        "task_id": "task-rest-002",
        "task_type": "api_call",
        "inputs": [{"input_id": "input-1", "type": "json", "data": json.dumps(call)}],
        "execution_mode": "parallel",
        "priority": 5,
        "timeout_ms": 60000,
    }
    httpx.post(f"{base}/api/v1/tasks", json=held, headers=headers).raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(f"{base}/api/v1/tasks/task-rest-002", headers=headers).json()["status"] == "running":
            break
        time.sleep(0.05)
    cancelled = httpx.request(
        "DELETE",
        f"{base}/api/v1/tasks/task-rest-002",
        json={"reason": "User requested cancellation"},
        headers=headers,
    )
    slow_api.release()
    assert cancelled.json() == {"success": True, "message": "Task cancelled successfully"}
    after = httpx.get(f"{base}/api/v1/tasks/task-rest-002", headers=headers).json()
    assert after["status"] == "cancelled" and after["error"]["code"] == "CANCELLED", after

    health = httpx.get(f"{base}/health")
    assert health.status_code == 200
    assert health.json()["healthy"] is True and health.json()["version"]
    assert isinstance(health.json()["uptime_seconds"], int | float)
    assert "active_tasks" in health.json()["stats"]

    exposition = httpx.get(f"{base}/metrics")
    assert exposition.status_code == 200 and exposition.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, sample.labels.get("quantile"))
        for family in text_string_to_metric_families(exposition.text)
        for sample in family.samples
        if sample.labels.get("api") == "orchestrator"
    }
    assert ("tasks_submitted_total", None) in samples
    assert ("tasks_completed_total", None) in samples
    for quantile in ("0.5", "0.95", "0.99"):
        assert ("task_execution_time_ms", quantile) in samples, quantile

    # The reference's error vocabulary.
    invalid = httpx.post(f"{base}/api/v1/tasks", json={**body, "priority": "high"}, headers=headers)
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "VALIDATION_ERROR"
    again = httpx.post(f"{base}/api/v1/tasks", json=body, headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "TASK_ALREADY_EXISTS"
    assert httpx.get(f"{base}/api/v1/tasks/task-rest-001").status_code == 401
