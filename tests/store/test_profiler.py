"""Profiler sessions, frames and clients in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.profiler import ClientRecord, ProfilerRepository, SessionActive, SessionNotActive

PAYLOAD = {"gpu_source": "absent", "gpus": [], "cpu": {"percent": 1.0}, "memory": {"total": 1}}


@pytest.fixture
def profiler(store: Store) -> ProfilerRepository:
    return ProfilerRepository.of(store.engine)


def start(profiler: ProfilerRepository, name: str, **settings: object) -> str:
    options = {
        "sampling_frequency_ms": 1000,
        "enable_bandwidth_profiling": False,
        "enable_nvlink_profiling": False,
        "started_by": "acme",
        "now": utc_now(),
    }
    options.update(settings)
    return profiler.start(name, **options).session_id  # type: ignore[arg-type]


def test_a_second_start_of_an_active_name_is_refused(profiler: ProfilerRepository) -> None:
    start(profiler, "run")
    with pytest.raises(SessionActive):
        start(profiler, "run")
    assert [s.name for s in profiler.active()] == ["run"]


def test_a_stopped_name_starts_again_as_a_new_session(profiler: ProfilerRepository) -> None:
    first = start(profiler, "run")
    stopped = profiler.stop("run", utc_now())
    second = start(profiler, "run")
    assert stopped.session_id == first and not stopped.active and stopped.stopped_at is not None
    assert second != first
    assert [(s.session_id, s.active) for s in profiler.sessions()] == [(second, True), (first, False)]


def test_stopping_an_unknown_or_stopped_name_is_not_found(profiler: ProfilerRepository) -> None:
    with pytest.raises(SessionNotActive):
        profiler.stop("never", utc_now())
    start(profiler, "run")
    profiler.stop("run", utc_now())
    with pytest.raises(SessionNotActive):
        profiler.stop("run", utc_now())


def test_sessions_filter_on_active(profiler: ProfilerRepository) -> None:
    start(profiler, "a", now=utc_now() - timedelta(seconds=2))
    start(profiler, "b")
    profiler.stop("a", utc_now())
    assert [s.name for s in profiler.sessions(active=True)] == ["b"]
    assert [s.name for s in profiler.sessions(active=False)] == ["a"]


def test_frames_are_written_and_counted_only_for_active_sessions(profiler: ProfilerRepository) -> None:
    running, stopped = start(profiler, "running"), start(profiler, "stopped")
    profiler.stop("stopped", utc_now())
    written = profiler.add_frames("node1", utc_now(), PAYLOAD, [running, stopped])
    assert written == [running]
    assert [f.payload for f in profiler.frames(running)] == [PAYLOAD]
    assert profiler.frames(stopped) == []
    counts = {s.name: s.frames_collected for s in profiler.sessions()}
    assert counts == {"running": 1, "stopped": 0}


def test_prune_keeps_the_newest_frames_and_the_count(profiler: ProfilerRepository) -> None:
    session = start(profiler, "run")
    for i in range(7):
        profiler.add_frames("node1", utc_now(), {**PAYLOAD, "i": i}, [session])
    assert profiler.prune(session, keep=3) == 4
    assert [f.payload["i"] for f in profiler.frames(session)] == [4, 5, 6]
    assert profiler.sessions()[0].frames_collected == 7


def test_only_the_newest_stopped_sessions_keep_frames(profiler: ProfilerRepository) -> None:
    ids = []
    for name in ("a", "b", "c"):
        ids.append(start(profiler, name))
        profiler.add_frames("node1", utc_now(), PAYLOAD, [ids[-1]])
        profiler.stop(name, utc_now())
    assert profiler.prune_stopped(keep_sessions=2) == 1
    assert [len(profiler.frames(sid)) for sid in ids] == [0, 1, 1]
    assert [s.frames_collected for s in profiler.sessions()] == [1, 1, 1]  # rows and counts stay


def test_latest_frames_are_the_newest_per_node(profiler: ProfilerRepository) -> None:
    session = start(profiler, "run")
    for node, i in [("node1", 1), ("node2", 2), ("node1", 3)]:
        profiler.add_frames(node, utc_now(), {**PAYLOAD, "i": i}, [session])
    latest = profiler.latest_frames()
    assert [(f.node_id, f.payload["i"]) for f in latest] == [("node1", 3), ("node2", 2)]
    assert profiler.session_names({session}) == {session: "run"}


def test_clients_register_heartbeat_and_disconnect(profiler: ProfilerRepository) -> None:
    then = utc_now() - timedelta(minutes=5)
    gpus = [{"device_id": 0, "name": "emulated", "memory_total": 1024, "emulated": True}]
    profiler.register(ClientRecord("node1", "host", "emulated", gpus, then, then))
    assert profiler.heartbeat("node1", utc_now())
    assert not profiler.heartbeat("nobody", utc_now())
    (client,) = profiler.clients()
    assert client.gpus == gpus and client.last_update > then and client.connected
    profiler.disconnect("node1")
    assert not profiler.clients()[0].connected
    assert profiler.clients(since=utc_now() + timedelta(seconds=1)) == []
