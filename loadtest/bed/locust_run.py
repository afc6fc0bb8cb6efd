"""One Locust run, headless in a process of its own, and what its CSV says about the submits.

Locust monkey-patches the standard library with gevent when imported, so it never runs inside
the process that drives the cluster."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.cluster import ROOT

USERS_FILE = "loadtest/bed/users.py"
USER_CLASSES = {"rest": "RestSubmitter", "grpc": "GrpcSubmitter"}


def start_locust(
    protocol: str,
    schedule: Path,
    labels: dict[str, str],
    *,
    rest_url: str,
    grpc_target: str,
    api_key: str,
    users: int,
    seconds: float,
    out: Path,
) -> subprocess.Popen[bytes]:
    """Starts `locust --headless` for `seconds`; its HTML report and CSVs go to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GREY_API_KEY": api_key,
        "GREY_GRPC_TARGET": grpc_target,
        "GREY_BED_SCHEDULE": str(schedule),
        "GREY_BED_LABELS": json.dumps(labels),
    }
    argv = [sys.executable, "-m", "locust", "-f", USERS_FILE, USER_CLASSES[protocol], "--headless"]
    argv += ["--host", rest_url, "-u", str(users), "-r", str(users), "-t", f"{max(1, round(seconds))}s"]
    argv += ["--stop-timeout", "30", "--html", str(out / "report.html"), "--csv", str(out / "locust")]
    argv += ["--only-summary", "--exit-code-on-error", "0"]
    with (out / "locust.log").open("wb") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def submit_stats(out: Path) -> dict[str, Any]:
    """Submit latency (ms) and errors from Locust's `locust_stats.csv`."""
    path = out / "locust_stats.csv"
    if not path.is_file():
        return {"requests": 0, "failures": 0, "error": f"no {path.name}: see {out / 'locust.log'}"}
    with path.open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] != "Aggregated"]
    if not rows:
        return {"requests": 0, "failures": 0}
    row = rows[0]

    def number(key: str) -> float:
        try:
            return float(row[key])
        except (KeyError, ValueError):
            return 0.0

    return {
        "name": row["Name"],
        "requests": int(number("Request Count")),
        "failures": int(number("Failure Count")),
        "p50_ms": number("50%"),
        "p95_ms": number("95%"),
        "p99_ms": number("99%"),
        "mean_ms": number("Average Response Time"),
    }
