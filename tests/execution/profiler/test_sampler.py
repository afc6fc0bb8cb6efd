"""A node's sampler: frames at the session's frequency, none after a stop, GPUs as they are."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pynvml
import pytest

from runtime.execution.gpu import emulated
from runtime.execution.profiler import SamplerSettings, SamplingThread, placement_gpus, start_sampler
from runtime.execution.profiler.gpus import NoGpus, reader_for
from runtime.execution.profiler.sampler import ProfilerSampler
from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.profiler import ProfilerRepository

FAST = SamplerSettings(poll_seconds=0.05, heartbeat_seconds=0.2)


def start_session(repository: ProfilerRepository, name: str, every_ms: int) -> str:
    return repository.start(
        name,
        sampling_frequency_ms=every_ms,
        enable_bandwidth_profiling=True,
        enable_nvlink_profiling=True,
        started_by="acme",
        now=utc_now(),
    ).session_id


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def samplers() -> Iterator[list[ProfilerSampler]]:
    started: list[ProfilerSampler] = []
    yield started
    for sampler in started:
        sampler.stop()


def test_frames_come_at_about_the_asked_frequency(
    store: Store, repository: ProfilerRepository, samplers: list[ProfilerSampler]
) -> None:
    session = start_session(repository, "run", every_ms=100)
    sampler = start_sampler(store.engine, "node1", [], settings=FAST)
    assert sampler is not None
    samplers.append(sampler)
    wait_until(lambda: len(repository.frames(session)) >= 1)
    time.sleep(1.5)
    frames = repository.frames(session)
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(frames)]
    # 100 ms asked; a shared 2-core machine adds jitter, never a burst (gaps stay near the period).
    assert 0.08 <= statistics.median(gaps) <= 0.15, gaps
    assert 10 <= len(frames) <= 20
    assert repository.sessions()[0].frames_collected == len(frames)


def test_no_frame_is_written_after_the_stop(
    store: Store, repository: ProfilerRepository, samplers: list[ProfilerSampler]
) -> None:
    session = start_session(repository, "run", every_ms=50)
    sampler = start_sampler(store.engine, "node1", [], settings=FAST)
    assert sampler is not None
    samplers.append(sampler)
    wait_until(lambda: len(repository.frames(session)) >= 3)
    stopped = repository.stop("run", utc_now())
    time.sleep(0.3)
    assert len(repository.frames(session)) == stopped.frames_collected
    assert repository.sessions()[0].frames_collected == stopped.frames_collected


def test_nothing_is_sampled_without_an_active_session(
    store: Store, repository: ProfilerRepository, samplers: list[ProfilerSampler]
) -> None:
    sampler = start_sampler(store.engine, "node1", [], settings=FAST)
    assert sampler is not None
    samplers.append(sampler)
    time.sleep(0.3)
    assert sampler.samples_taken == 0
    assert [c.node_id for c in repository.clients()] == ["node1"]  # registered all the same


def test_a_machine_without_gpus_samples_cpu_and_memory_and_says_gpus_are_absent(
    store: Store,
    repository: ProfilerRepository,
    samplers: list[ProfilerSampler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_driver() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    assert isinstance(reader_for(None), NoGpus)
    session = start_session(repository, "run", every_ms=50)
    sampler = start_sampler(store.engine, "node1", None, settings=FAST)
    assert sampler is not None
    samplers.append(sampler)
    wait_until(lambda: len(repository.frames(session)) >= 2)
    payload = repository.frames(session)[-1].payload
    assert payload["gpu_source"] == "absent" and payload["gpus"] == []
    assert 0.0 <= payload["cpu"]["percent"] <= 100.0 and payload["cpu"]["count"] >= 1
    assert 0 < payload["memory"]["used"] <= payload["memory"]["total"]
    (client,) = repository.clients()
    assert client.gpu_source == "absent" and client.gpus == []


def test_emulated_gpus_are_reported_emulated_and_never_measured(
    store: Store, repository: ProfilerRepository, samplers: list[ProfilerSampler]
) -> None:
    session = start_session(repository, "run", every_ms=50)
    sampler = start_sampler(store.engine, "node1", emulated(2, memory_mb=8192), settings=FAST)
    assert sampler is not None
    samplers.append(sampler)
    wait_until(lambda: len(repository.frames(session)) >= 1)
    payload = repository.frames(session)[-1].payload
    assert payload["gpu_source"] == "emulated"
    assert [(g["device_id"], g["emulated"], g["memory_total"]) for g in payload["gpus"]] == [
        (0, True, 8192),
        (1, True, 8192),
    ]
    for gpu in payload["gpus"]:
        assert gpu["utilization_percent"] is None and gpu["temperature_c"] is None
        assert gpu["pcie"] is None and gpu["nvlink"] is None
    (client,) = repository.clients()
    assert client.gpu_source == "emulated"
    assert all(gpu["emulated"] and gpu["compute_capability"] is None for gpu in client.gpus)


def test_a_tee_pool_and_a_disabled_profiler_run_no_sampler(store: Store) -> None:
    assert start_sampler(store.engine, "tee1", [], pool="tee", settings=FAST) is None
    assert start_sampler(store.engine, "node1", [], settings=SamplerSettings(enabled=False)) is None


def test_a_crashed_sampler_stays_registered_and_a_clean_stop_disconnects(
    store: Store, repository: ProfilerRepository
) -> None:
    crashed = start_sampler(store.engine, "crashed", [], settings=FAST)
    clean = start_sampler(store.engine, "clean", [], settings=FAST)
    assert crashed is not None and clean is not None
    crashed.stop(disconnect=False)
    clean.stop()
    connected = {c.node_id: c.connected for c in repository.clients()}
    assert connected == {"clean": False, "crashed": True}


def test_retention_keeps_the_newest_frames_of_a_session(store: Store, repository: ProfilerRepository) -> None:
    session = start_session(repository, "run", every_ms=50)
    sampler = ProfilerSampler(repository, "node1", NoGpus(), FAST, frames_per_session=5)
    sampler.refresh_sessions(now=0.0)
    for tick in range(12):
        sampler.sample_due(now=tick * 1.0)
    frames = repository.frames(session)
    assert len(frames) == 5  # pruned every max(1, keep // 10) writes: here at every write
    assert frames[-1].seq - frames[0].seq == 4
    assert repository.sessions()[0].frames_collected == 12


def test_a_worker_and_a_placement_node_of_one_id_share_one_sampler(
    store: Store, repository: ProfilerRepository
) -> None:
    """The worker boots first with the machine's view (no GPU); the placement node then says
    its gpu0 is emulated: one sampler, reporting the emulated GPU, until its last owner stops."""
    worker = start_sampler(store.engine, "node1", [], settings=FAST)
    gpu0 = SimpleNamespace(total=2 * 2**30, emulated=True)
    placement = start_sampler(
        store.engine, "node1", placement_gpus({"disk": object(), "gpu0": gpu0}), settings=FAST
    )
    assert worker is not None and placement is worker
    (client,) = repository.clients()
    assert client.gpu_source == "emulated"
    assert client.gpus[0]["memory_total"] == 2048 and client.gpus[0]["emulated"] is True
    worker.stop()
    assert placement.running and repository.clients()[0].connected
    placement.stop()
    assert not placement.running and not repository.clients()[0].connected
    again = start_sampler(store.engine, "node1", [], settings=FAST)
    assert again is not None and again is not worker  # a fresh one once the last owner stopped
    again.stop()


def test_the_nodes_of_a_process_share_one_thread_and_one_poll(
    store: Store, repository: ProfilerRepository, samplers: list[ProfilerSampler]
) -> None:
    """A worker pool's node and another node of the same process (grey serve's pools): one
    sampling thread reads the active sessions once per poll for both, and both write frames."""

    def sampling_threads() -> int:
        return [t.name for t in threading.enumerate()].count("grey-profiler")

    before = sampling_threads()  # of other stores, if any
    session = start_session(repository, "run", every_ms=50)
    for node_id in ("node-cpu", "node-gpu"):
        sampler = start_sampler(store.engine, node_id, [], settings=FAST)
        assert sampler is not None
        samplers.append(sampler)
    first, second = samplers
    assert first._thread is second._thread is SamplingThread.of(repository)
    assert sampling_threads() == before + 1
    wait_until(lambda: {f.node_id for f in repository.frames(session)} == {"node-cpu", "node-gpu"})
    thread = SamplingThread.of(repository)
    polls, started = thread.polls, time.monotonic()
    time.sleep(0.5)
    elapsed = time.monotonic() - started
    assert thread.polls - polls <= elapsed / FAST.poll_seconds + 2  # once per poll, not once per node
    first.stop()
    assert second.running and thread.samplers == [second]
    second.stop()
    samplers.clear()
    assert not thread.running
    assert sampling_threads() == before
