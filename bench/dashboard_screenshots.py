"""Screenshots of the dashboard's main pages for the README: docs/img/dashboard-*.png.

`python -m bench.dashboard_screenshots`: a `grey serve` of its own (embedded default, a
fresh store, in-process workers, its working directory a temporary one whose `out/` holds
one `grey simulate --out` run for the capacity page), tasks submitted through two APIs
(Grey Distributed: echo, wordcount, sha256, matmul, a failing one, sleepers still running;
OpenMCP Chain: wordcount), then headless Chromium signs in with the printed admin key and
takes 1280x800 PNGs of the tasks list, one task's page, the cluster, models and capacity.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.browser import VIEWPORT, chromium, chromium_missing, sign_in
from bench.cluster import ROOT
from bench.dashboard import Served, grey_serve

OUT = ROOT / "docs" / "img"
GREY_TASKS: list[dict[str, Any]] = [
    {"function": "echo", "data": {"hello": "dashboard"}},
    {"function": "wordcount", "data": {"text": "the quick brown fox jumps over the lazy dog"}},
    {"function": "sha256", "data": {"text": "grey"}},
    {"function": "matmul", "data": {"n": 64}},
    {"function": "fail", "data": {"message": "a failure, on purpose"}},
    {"function": "sleep", "data": {"seconds": 2}},
    {"function": "sleep", "data": {"seconds": 600}},  # still running in the screenshot
]


def _capacity_results(cwd: Path) -> None:
    """One twin run where the capacity page looks (`out/` of the server's directory)."""
    subprocess.run(
        [
            *(sys.executable, "-m", "runtime.cli", "simulate", "--cluster", "examples/cluster.yaml"),
            *("--workload", "examples/workload.yaml", "--until", "600", "--seed", "1"),
            *("--out", str(cwd / "out" / "before"), "--no-progress"),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _fill(served: Served, key: str) -> str:
    """Tasks through Grey Distributed and OpenMCP Chain; the id of one finished task."""
    headers = {"X-API-Key": key}
    ids = []
    for number, payload in enumerate(GREY_TASKS):
        body = {
            "type": "stateless",
            "payload": payload,
            "labels": {"team": ("search", "ml", "data")[number % 3], "env": "prod"},
            "priority": ("normal", "high", "low")[number % 3],
        }
        answer = httpx.post(f"{served.url}/v1/tasks", json=body, headers=headers, timeout=10)
        answer.raise_for_status()
        ids.append(answer.json()["task_id"])
    openmcp = served.rest("openmcp")
    token = httpx.post(
        f"{openmcp}/v1/auth/token", json={"workspace_id": "default", "workspace_secret": key}, timeout=10
    )
    token.raise_for_status()
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    body = {"workspace_id": "default", "type": "wordcount", "payload": {"text": "one two three two one"}}
    httpx.post(f"{openmcp}/v1/tasks", json=body, headers=bearer, timeout=10).raise_for_status()
    return str(ids[1])


def _models(served: Served, key: str, folder: Path) -> None:
    """Two small generated checkpoints downloaded (file://) to the placement node's disk and
    DRAM through gswarm's client API, so the models page has models and chunks to show."""
    from runtime.execution.serving.checkpoint import make_checkpoint

    gswarm = served.rest("gswarm_client")
    for name, device, size in (("tiny-llm", "disk", 4 << 20), ("embedder", "dram", 1 << 20)):
        path = make_checkpoint(folder / f"{name}.safetensors", size, seed=7)
        body = {"source_url": path.resolve().as_uri(), "target_device": device, "model_type": "llm"}
        answer = httpx.post(
            f"{gswarm}/api/v1/models/{name}/download", json=body, headers={"X-API-Key": key}, timeout=30
        )
        answer.raise_for_status()


def _until_finished(served: Served, key: str, task_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = httpx.get(f"{served.url}/v1/tasks/{task_id}", headers={"X-API-Key": key}, timeout=10).json()
        if task["status"] not in ("pending", "running"):
            return
        time.sleep(0.2)
    raise SystemExit(f"task {task_id} did not finish")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.dashboard_screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    args = parser.parse_args(argv)
    if (missing := chromium_missing()) is not None:
        raise SystemExit(missing)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grey-screenshots-") as tmp:
        cwd = Path(tmp)
        _capacity_results(cwd)
        env = {"GREY_WORKER_THREADS": "2", "GREY_PLACEMENT_FILE_ROOTS": str(cwd)}
        with grey_serve(cwd, env, cwd=cwd) as served, chromium() as browser:
            assert served.key is not None, "a fresh store: grey serve prints its admin key"
            shown = _fill(served, served.key)
            _models(served, served.key, cwd)
            _until_finished(served, served.key, shown)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            sign_in(page, served.url, served.key)
            views = (
                ("tasks", "#/tasks", "#tasks tr[data-task-id]"),
                ("task", f"#/tasks/{shown}", "#task-timeline li"),
                ("cluster", "#/cluster", "tr[data-worker-id]"),
                ("models", "#/models", "#models"),
                ("capacity", "#/capacity", "#capacity"),
            )
            for name, route, ready in views:
                page.evaluate("route => { location.hash = route; }", route)
                page.wait_for_selector(ready, timeout=30_000)
                page.wait_for_timeout(1500)  # charts and live updates settle
                path = args.out / f"dashboard-{name}.png"
                page.screenshot(path=str(path))
                print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
