"""What the dashboard's pages read: task pages and filters, a task's detail, the cluster,
models and the capacity outputs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from runtime.gateway.dashboard import data
from runtime.services import Services
from runtime.store import NewTask
from runtime.store.coltypes import utc_now
from tests.gateway.dashboard.conftest import SignIn
from tests.support.cloudai import seed_task, seed_worker
from tests.support.platform import make_key


def _tasks(services: Services, tenant: str, specs: list[tuple[str, str]]) -> list[str]:
    """Tasks (priority, pool) one millisecond apart, oldest first; their ids newest first."""
    start = utc_now() - timedelta(seconds=10)
    made = [
        services.store.tasks.insert(
            NewTask(
                tenant_id=tenant,
                type="stateless",
                payload={"function": "echo"},
                priority=priority,
                pool=pool,
                created_at=start + timedelta(milliseconds=index),
            )
        ).task_id
        for index, (priority, pool) in enumerate(specs)
    ]
    return made[::-1]


async def test_the_task_list_pages_by_cursor_newest_first(sign_in: SignIn, services: Services) -> None:
    ids = _tasks(services, "acme", [("normal", "cpu")] * 5)
    signed = await sign_in(make_key(services, "acme"))
    seen, cursor = [], None
    while True:
        page = (
            await signed.get(
                "/dashboard/api/tasks", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            )
        ).json()
        seen += [task["task_id"] for task in page["tasks"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == ids
    bad = await signed.get("/dashboard/api/tasks", params={"cursor": "nonsense"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"
    assert (await signed.get("/dashboard/api/tasks", params={"status": "finished"})).status_code == 400


async def test_priority_and_pool_filters_page_over_the_listing(sign_in: SignIn, services: Services) -> None:
    specs = [
        ("high", "cpu"),
        ("low", "cpu"),
        ("high", "gpu"),
        ("high", "cpu"),
        ("low", "gpu"),
        ("high", "cpu"),
    ]
    ids = _tasks(services, "acme", specs)
    wanted = [task_id for task_id, spec in zip(ids, specs[::-1], strict=True) if spec == ("high", "cpu")]
    signed = await sign_in(make_key(services, "acme"))
    first = (
        await signed.get("/dashboard/api/tasks", params={"priority": "high", "pool": "cpu", "limit": 2})
    ).json()
    assert [task["task_id"] for task in first["tasks"]] == wanted[:2]
    assert first["has_more"] is True
    second = await signed.get(
        "/dashboard/api/tasks",
        params={"priority": "high", "pool": "cpu", "limit": 2, "cursor": first["next_cursor"]},
    )
    rest = second.json()
    assert [task["task_id"] for task in rest["tasks"]] == wanted[2:]
    assert rest["has_more"] is False
    assert (await signed.get("/dashboard/api/tasks", params={"pool": "quantum"})).status_code == 400


async def test_a_filtered_page_is_full_when_its_matches_lie_past_the_first_unfiltered_page(
    sign_in: SignIn, services: Services
) -> None:
    # Oldest first: three gpu/critical tasks, then a full unfiltered page's worth and more of
    # others (and the same gpu/critical tasks of another tenant, newest of all).
    ids = _tasks(
        services, "acme", [("critical", "gpu")] * 3 + [("normal", "cpu")] * (data.MAX_PAGE_SIZE + 10)
    )
    _tasks(services, "globex", [("critical", "gpu")] * 3)
    wanted = ids[-3:]
    signed = await sign_in(make_key(services, "acme"))
    for params in ({"pool": "gpu"}, {"priority": "critical"}, {"pool": "gpu", "priority": "critical"}):
        first = (await signed.get("/dashboard/api/tasks", params={**params, "limit": 2})).json()
        assert [task["task_id"] for task in first["tasks"]] == wanted[:2], params
        assert (first["has_more"], first["total"], first["total_exact"]) == (True, 3, True)
        rest = (
            await signed.get(
                "/dashboard/api/tasks", params={**params, "limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        assert [task["task_id"] for task in rest["tasks"]] == wanted[2:], params
        assert rest["has_more"] is False
    pending = (await signed.get("/dashboard/api/tasks", params={"pool": "cpu", "status": "pending"})).json()
    assert pending["total"] == data.MAX_PAGE_SIZE + 10
    assert (await signed.get("/dashboard/api/tasks", params={"pool": "tee"})).json()["tasks"] == []


async def test_status_and_type_filters_use_grey_status_words(sign_in: SignIn, services: Services) -> None:
    done = seed_task(services, "acme", status="completed", result={"ok": True})
    running = seed_task(services, "acme", status="running")
    signed = await sign_in(make_key(services, "acme"))
    page = (await signed.get("/dashboard/api/tasks", params={"status": "completed"})).json()
    assert [(t["task_id"], t["status"]) for t in page["tasks"]] == [(done.task_id, "completed")]
    page = (
        await signed.get("/dashboard/api/tasks", params={"type": "container", "status": "running"})
    ).json()
    assert [(t["task_id"], t["status"], t["api"]) for t in page["tasks"]] == [
        (running.task_id, "running", "cloudai")
    ]
    labelled = (await signed.get("/dashboard/api/tasks", params={"label": "user_id=user-123"})).json()
    assert len(labelled["tasks"]) == 2


async def test_a_task_page_has_its_timeline_result_and_metrics(sign_in: SignIn, services: Services) -> None:
    task = seed_task(services, "acme", status="completed", result={"answer": 42})
    signed = await sign_in(make_key(services, "acme"))
    detail = (await signed.get(f"/dashboard/api/tasks/{task.task_id}")).json()
    assert detail["task"]["status"] == "completed" and detail["task"]["result"] == {"answer": 42}
    assert [event["status"] for event in detail["events"]] == ["running", "completed"]
    assert detail["task"]["metrics"]["retry_count"] == 0
    assert detail["cancellable"] is False and detail["proof"] is None and detail["api"] == "cloudai"


async def test_the_cluster_page_has_workers_nodes_and_queue_depth(
    sign_in: SignIn, services: Services
) -> None:
    seed_worker(services, "grey-worker-gpu", gpus=2, pool="gpu")
    seed_worker(services, "grey-worker-gone", status="down")
    seed_task(services, "acme", status="running", worker="grey-worker-gpu")
    _tasks(services, "beta", [("high", "cpu"), ("high", "cpu")])
    signed = await sign_in(make_key(services, "acme", frozenset({"cluster:read"})))
    view = (await signed.get("/dashboard/api/cluster")).json()
    workers = {w["worker_id"]: w for w in view["workers"]}
    assert workers["grey-worker-gpu"]["total"]["gpu"] == 2.0
    assert workers["grey-worker-gpu"]["allocated"]["cpu"] == 1.0
    assert workers["grey-worker-gpu"]["available"]["cpu"] == 7.0
    assert workers["grey-worker-gpu"]["running_tasks"] == 1
    assert (workers["grey-worker-gone"]["alive"], workers["grey-worker-gone"]["state"]) == (False, "down")
    assert {n["node_id"] for n in view["nodes"]} >= {"grey-worker-gpu", "grey-worker-gone"}
    queue = {(q["pool"], q["priority"]): q["pending"] for q in view["queues"]}
    assert queue[("cpu", "high")] == 2 and queue[("gpu", "low")] == 0
    assert "task_id" not in json.dumps(view)  # another tenant's task ids are never named
    assert (await signed.get("/dashboard/api/tasks")).status_code == 403  # no tasks:read


async def test_a_nodes_running_count_is_its_workers_whatever_its_last_heartbeat_said(
    sign_in: SignIn, services: Services
) -> None:
    seed_worker(services, "grey-worker-busy")
    seed_worker(services, "grey-worker-tee", pool="tee")  # a node, never a listed worker
    for worker in ("grey-worker-busy", "grey-worker-busy", "grey-worker-tee"):
        seed_task(services, "acme", status="running", worker=worker)
    services.store.nodes.heartbeat("grey-worker-busy", utc_now(), tasks_running=5)  # stale
    signed = await sign_in(make_key(services, "acme", frozenset({"cluster:read"})))
    view = (await signed.get("/dashboard/api/cluster")).json()
    workers = {w["worker_id"]: w for w in view["workers"]}
    nodes = {n["node_id"]: n for n in view["nodes"]}
    assert workers["grey-worker-busy"]["running_tasks"] == nodes["grey-worker-busy"]["tasks_running"] == 2
    assert nodes["grey-worker-busy"]["tasks_reported"] == 5
    assert nodes["grey-worker-tee"]["tasks_running"] == 1 and "grey-worker-tee" not in workers


async def test_the_models_page_is_the_tenant_own(sign_in: SignIn, services: Services) -> None:
    signed = await sign_in(make_key(services, "acme"))
    view = (await signed.get("/dashboard/api/models")).json()
    assert view == {"models": [], "chunks": [], "moves": [], "services": []}


async def test_capacity_lists_runs_serves_their_files_and_nothing_else(
    sign_in: SignIn, services: Services, capacity_root: Path
) -> None:
    signed = await sign_in(make_key(services, "acme"))
    assert (await signed.get("/dashboard/api/capacity")).json()["runs"] == []
    run = capacity_root / "calibration"
    run.mkdir(parents=True)
    (run / "fidelity.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    rows = [
        {
            "level": "low",
            "share_of_capacity": 0.3,
            "figure": "throughput",
            "measured": 10.0,
            "predicted": 9.5,
            "error": -0.05,
        }
    ]
    (run / "fidelity.json").write_text(json.dumps(rows))
    (run / "notes.txt").write_text("not served")
    view = (await signed.get("/dashboard/api/capacity")).json()
    assert [(r["run"], r["images"], r["fidelity"]) for r in view["runs"]] == [
        ("calibration", ["calibration/fidelity.png"], rows)
    ]
    image = await signed.get("/dashboard/api/capacity/files/calibration/fidelity.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    (capacity_root.parent / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # beside the root, not in it
    for path in ("calibration/notes.txt", "%2e%2e/secret.png", "calibration/%2e%2e/%2e%2e/secret.png"):
        assert (await signed.get(f"/dashboard/api/capacity/files/{path}")).status_code == 404, path
    with pytest.raises(data.NotFound):
        data.capacity_file(capacity_root, "../secret.png")
