"""The Locust users run against a real server without failures."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

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
