"""Sessions, status, clients and latest metrics of gswarm's profiler API."""

from __future__ import annotations

from datetime import timedelta

import httpx

from runtime.services import Services
from runtime.store.coltypes import utc_now
from runtime.store.profiler import ClientRecord, ProfilerRepository
from tests.handlers.gswarm_profiler.conftest import headers_for
from tests.support.envelope import data, error

Headers = dict[str, str]


async def test_start_answers_201_with_the_new_active_session(
    profiler_api: httpx.AsyncClient, admin: Headers
) -> None:
    body = {"name": "my_experiment", "sampling_frequency_ms": 250, "enable_bandwidth_profiling": True}
    session = data(await profiler_api.post("/profiling/start", json=body, headers=admin), 201)
    assert session["name"] == "my_experiment" and session["is_active"] is True
    assert session["session_id"].startswith("prof_") and "end_time" not in session
    assert (session["sampling_frequency_ms"], session["frames_collected"]) == (250, 0)
    assert session["enable_bandwidth_profiling"] is True and session["enable_nvlink_profiling"] is False


async def test_the_reference_body_alone_takes_the_defaults(
    profiler_api: httpx.AsyncClient, admin: Headers
) -> None:
    session = data(await profiler_api.post("/profiling/start", json={"name": "run"}, headers=admin), 201)
    assert session["sampling_frequency_ms"] == 1000


async def test_a_second_start_of_an_active_name_is_a_conflict(
    profiler_api: httpx.AsyncClient, admin: Headers
) -> None:
    data(await profiler_api.post("/profiling/start", json={"name": "run"}, headers=admin), 201)
    failure = error(
        await profiler_api.post("/profiling/start", json={"name": "run"}, headers=admin), 409, "CONFLICT"
    )
    assert failure["details"] == {"name": "run"}


async def test_stop_answers_the_stopped_session_and_then_the_name_is_free(
    profiler_api: httpx.AsyncClient, admin: Headers
) -> None:
    started = data(await profiler_api.post("/profiling/start", json={"name": "run"}, headers=admin), 201)
    stopped = data(await profiler_api.post("/profiling/stop", json={"name": "run"}, headers=admin))
    assert stopped["session_id"] == started["session_id"]
    assert stopped["is_active"] is False and stopped["end_time"] is not None
    again = data(await profiler_api.post("/profiling/start", json={"name": "run"}, headers=admin), 201)
    assert again["session_id"] != started["session_id"]


async def test_stopping_an_unknown_or_stopped_session_is_not_found(
    profiler_api: httpx.AsyncClient, admin: Headers
) -> None:
    error(await profiler_api.post("/profiling/stop", json={"name": "never"}, headers=admin), 404, "NOT_FOUND")
    data(await profiler_api.post("/profiling/start", json={"name": "run"}, headers=admin), 201)
    data(await profiler_api.post("/profiling/stop", json={"name": "run"}, headers=admin))
    error(await profiler_api.post("/profiling/stop", json={"name": "run"}, headers=admin), 404, "NOT_FOUND")


async def test_bad_bodies_are_invalid_requests(profiler_api: httpx.AsyncClient, admin: Headers) -> None:
    for body in (
        {},
        {"name": ""},
        {"name": "run", "sampling_frequency_ms": 1},
        {"name": "run", "unknown": True},
        {"name": "../etc"},
    ):
        error(await profiler_api.post("/profiling/start", json=body, headers=admin), 400, "INVALID_REQUEST")


async def test_sessions_are_listed_newest_first_and_filtered(
    profiler_api: httpx.AsyncClient, admin: Headers
) -> None:
    for name in ("first", "second"):
        data(await profiler_api.post("/profiling/start", json={"name": name}, headers=admin), 201)
    data(await profiler_api.post("/profiling/stop", json={"name": "first"}, headers=admin))
    every = data(await profiler_api.get("/profiling/sessions", headers=admin))["sessions"]
    assert [(s["name"], s["is_active"]) for s in every] == [("second", True), ("first", False)]
    active = data(await profiler_api.get("/profiling/sessions", params={"active": "true"}, headers=admin))
    assert [s["name"] for s in active["sessions"]] == ["second"]
    limited = data(await profiler_api.get("/profiling/sessions", params={"limit": 1}, headers=admin))
    assert len(limited["sessions"]) == 1


async def test_status_shows_the_active_sessions_and_the_newest_ones_settings(
    profiler_api: httpx.AsyncClient, admin: Headers, repository: ProfilerRepository
) -> None:
    idle = data(await profiler_api.get("/status", headers=admin))
    assert idle["is_profiling"] is False and idle["active_sessions"] == []
    assert idle["sampling_frequency_ms"] == 1000 and idle["connected_clients"] == 0
    data(await profiler_api.post("/profiling/start", json={"name": "old"}, headers=admin), 201)
    body = {"name": "training_run_1", "sampling_frequency_ms": 500, "enable_nvlink_profiling": True}
    started = data(await profiler_api.post("/profiling/start", json=body, headers=admin), 201)
    repository.add_frames("node1", utc_now(), {}, [started["session_id"]])
    status = data(await profiler_api.get("/status", headers=admin))
    assert status["is_profiling"] is True
    assert [(s["name"], s["frames_collected"]) for s in status["active_sessions"]] == [
        ("training_run_1", 1),
        ("old", 0),
    ]
    assert (status["sampling_frequency_ms"], status["enable_nvlink_profiling"]) == (500, True)
    assert status["enable_bandwidth_profiling"] is False


async def test_clients_are_the_sampling_nodes_with_their_gpus_and_health(
    profiler_api: httpx.AsyncClient, admin: Headers, repository: ProfilerRepository
) -> None:
    now = utc_now()
    gpu = {"device_id": 0, "name": "emulated", "memory_total": 16384, "emulated": True}
    registered = {**gpu, "compute_capability": None}  # what the sampler stores; null is not sent
    repository.register(ClientRecord("node1", "host-a", "emulated", [registered], now, now))
    silent = now - timedelta(minutes=5)
    repository.register(ClientRecord("node2", "host-b", "absent", [], silent, silent))
    gone = now - timedelta(hours=2)
    repository.register(ClientRecord("node3", "host-c", "absent", [], gone, gone))
    clients = data(await profiler_api.get("/clients", headers=admin))["clients"]
    assert [(c["client_id"], c["status"], c["gpu_source"]) for c in clients] == [
        ("node1", "healthy", "emulated"),
        ("node2", "unhealthy", "absent"),
    ]
    assert clients[0]["gpus"] == [gpu] and clients[0]["hostname"] == "host-a"
    assert data(await profiler_api.get("/status", headers=admin))["connected_clients"] == 1


async def test_latest_metrics_are_the_newest_frame_of_each_node(
    profiler_api: httpx.AsyncClient, admin: Headers, repository: ProfilerRepository
) -> None:
    assert data(await profiler_api.get("/metrics/latest", headers=admin)) == {"metrics": []}
    session = data(await profiler_api.post("/profiling/start", json={"name": "run"}, headers=admin), 201)
    for node, percent in [("node1", 10.0), ("node2", 20.0), ("node1", 30.0)]:
        payload = {
            "hostname": f"{node}-host",
            "gpu_source": "absent",
            "gpus": [],
            "cpu": {"percent": percent, "count": 2, "load_1m": 0.5},
            "memory": {"total": 4096, "used": 1024, "available": 3072, "percent": 25.0, "process_rss": 100},
        }
        repository.add_frames(node, utc_now(), payload, [session["session_id"]])
    metrics = data(await profiler_api.get("/metrics/latest", headers=admin))["metrics"]
    assert [(m["client_id"], m["session"], m["cpu"]["percent"]) for m in metrics] == [
        ("node1", "run", 30.0),
        ("node2", "run", 20.0),
    ]
    assert metrics[0]["gpu_source"] == "absent" and metrics[0]["memory"]["used"] == 1024


async def test_a_tasks_read_key_cannot_start_or_stop_profiling(
    profiler_api: httpx.AsyncClient, services: Services, admin: Headers
) -> None:
    """The attacker's side: a key that may only read tasks starts nothing and sees nothing."""
    reader = headers_for(services, frozenset({"tasks:read"}))
    forbidden = error(
        await profiler_api.post("/profiling/start", json={"name": "x"}, headers=reader), 403, "FORBIDDEN"
    )
    assert "cluster:admin" in forbidden["message"]
    data(await profiler_api.post("/profiling/start", json={"name": "run"}, headers=admin), 201)
    error(await profiler_api.post("/profiling/stop", json={"name": "run"}, headers=reader), 403, "FORBIDDEN")
    for path in ("/status", "/profiling/sessions", "/clients", "/metrics/latest"):
        error(await profiler_api.get(path, headers=reader), 403, "FORBIDDEN")
    sessions = data(await profiler_api.get("/profiling/sessions", headers=admin))["sessions"]
    assert [(s["name"], s["is_active"]) for s in sessions] == [("run", True)]


async def test_a_cluster_read_key_sees_but_cannot_start(
    profiler_api: httpx.AsyncClient, services: Services
) -> None:
    viewer = headers_for(services, frozenset({"cluster:read"}))
    error(await profiler_api.post("/profiling/start", json={"name": "x"}, headers=viewer), 403, "FORBIDDEN")
    assert data(await profiler_api.get("/status", headers=viewer))["is_profiling"] is False


async def test_every_call_needs_a_credential(profiler_api: httpx.AsyncClient) -> None:
    error(await profiler_api.get("/status"), 401, "UNAUTHORIZED")
    error(await profiler_api.post("/profiling/start", json={"name": "x"}), 401, "UNAUTHORIZED")
