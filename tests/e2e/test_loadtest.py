"""The Locust users run against a real server without failures."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Server


def test_locust_users_complete_requests_without_failures(server: Server, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GREY_API_KEY": server.admin_key,
        "GREY_GRPC_TARGET": f"127.0.0.1:{server.grpc_port}",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "loadtest/locustfile.py",
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "4s",
            "--host",
            server.rest_url,
            "--csv",
            str(tmp_path / "run"),
            "--only-summary",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with (tmp_path / "run_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    assert int(total["Request Count"]) > 20
    assert int(total["Failure Count"]) == 0
    assert "SubmitTask" in rows and "POST /v1/tasks" in rows


def test_concurrent_grpc_users_overlap_their_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight gRPC users against a server whose SubmitTask takes 0.3 s: under gevent they wait
    side by side (~8 calls per 0.3 s); a grpcio that blocks the gevent hub serialises them
    (~1 call per 0.3 s, whatever the user count)."""
    from concurrent import futures

    import grpc

    monkeypatch.syspath_prepend(str(ROOT / "generated" / "grey" / "pb"))  # protoc's flat imports
    import grey_pb2
    import grey_pb2_grpc

    class SlowGrey(grey_pb2_grpc.GreyServiceServicer):
        def SubmitTask(self, request: object, context: object) -> object:
            time.sleep(0.3)
            return grey_pb2.SubmitTaskResponse(task_id="t-1")

        def GetTaskStatus(self, request: object, context: object) -> object:
            return grey_pb2.TaskStatus(task_id="t-1")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    grey_pb2_grpc.add_GreyServiceServicer_to_server(SlowGrey(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        env = {**os.environ, "GREY_API_KEY": "unused", "GREY_GRPC_TARGET": f"127.0.0.1:{port}"}
        command = [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "GrpcTenant"]
        options = [
            "--headless",
            "-u",
            "8",
            "-r",
            "8",
            "-t",
            "4s",
            "--csv",
            str(tmp_path / "run"),
            "--only-summary",
        ]
        subprocess.run([*command, *options], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    finally:
        server.stop(grace=None)
    with (tmp_path / "run_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    submitted = int(rows["SubmitTask"]["Request Count"])
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert submitted > 40, f"{submitted} SubmitTask calls in 4 s by 8 users: the users did not overlap"
