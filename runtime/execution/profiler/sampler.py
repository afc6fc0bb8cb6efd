"""A node's profiler sampler, run by its process's one sampling thread.

While any profiling session is active a node's sampler samples the node — its GPUs
(`gpus.py`) and its CPU and memory (`system.py`) — at each session's
`sampling_frequency_ms`, and writes one frame per session due (runtime/store/profiler.py
counts them). One reading serves every session due at the same moment.

The nodes of one process (its worker pools, its placement node) share one daemon thread
per store (`SamplingThread`): it reads the active sessions once every `poll_seconds` for
all of them, so a session starts and stops being sampled within that; a session stopped in
between gets no further frame (the store writes frames only for active sessions). The
thread starts with the process's first started sampler and ends with its last stop.

A sampler also registers its node as a profiler client (its GPUs, hardware or emulated or
none) and heartbeats for it, which `/clients` reports.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from runtime.execution.nodes import hostname
from runtime.execution.profiler.gpus import GpuReader
from runtime.execution.profiler.settings import SamplerSettings
from runtime.execution.profiler.system import SystemReader
from runtime.store.coltypes import utc_now
from runtime.store.profiler import FRAMES_PER_SESSION, ClientRecord, ProfilerRepository, SessionRecord

logger = logging.getLogger("grey.profiler")


class ProfilerSampler:
    """Samples one node for the active sessions; `start()` and `stop()` it with its worker
    (its process's `SamplingThread` runs it meanwhile)."""

    def __init__(
        self,
        repository: ProfilerRepository,
        node_id: str,
        gpus: GpuReader,
        settings: SamplerSettings | None = None,
        *,
        system: SystemReader | None = None,
        clock: Callable[[], datetime] = utc_now,
        frames_per_session: int = FRAMES_PER_SESSION,
    ) -> None:
        self.repository, self.node_id, self.gpus = repository, node_id, gpus
        self.settings = settings or SamplerSettings()
        self.system = system or SystemReader()
        self._clock = clock
        self._keep = frames_per_session
        self._prune_every = max(1, min(100, frames_per_session // 10))
        self._hostname = hostname()
        self._sessions: dict[str, SessionRecord] = {}
        self._due: dict[str, float] = {}
        self._since_prune: dict[str, int] = {}
        self._thread: SamplingThread | None = None
        self._next_beat = 0.0
        self.samples_taken = 0
        self.frames_written = 0
        self._owners = 1
        self._finished = False
        self._owners_lock = threading.Lock()
        self._on_stopped: Callable[[ProfilerSampler], None] | None = None

    # -- life -------------------------------------------------------------------------------

    def start(self) -> ProfilerSampler:
        """Registers the node as a client and joins the process's sampling thread (starting it
        if it is the first); never raises for the store (a worker boots without its profiler
        rather than not at all: the thread registers it later)."""
        try:
            self._register()
            self._next_beat = time.monotonic() + self.settings.heartbeat_seconds
        except Exception:
            logger.warning("profiler client %s: could not register yet", self.node_id, exc_info=True)
            self._next_beat = 0.0
        self._thread = SamplingThread.of(self.repository)
        self._thread.attach(self)
        return self

    def acquire(self) -> ProfilerSampler:
        """One more owner (a worker pool and a placement node of one node id in one process
        share the node's sampler); each owner's `stop` releases it, the last one stops it."""
        with self._owners_lock:
            self._owners += 1
        return self

    def stop(self, disconnect: bool = True) -> None:
        """Releases this owner's hold; the last owner stops sampling. `disconnect` (a clean
        stop) tells `/clients` at once, else (a crash, in tests) the node goes unhealthy
        when its heartbeats stop."""
        with self._owners_lock:
            self._owners = max(0, self._owners - 1)
            if self._owners or self._finished:
                return  # another owner still samples, or stopped already (a kill, then a stop)
            self._finished = True
        if self._thread is not None:
            self._thread.detach(self)  # after any pass over this node in progress
            self._thread = None
        if self._on_stopped is not None:
            self._on_stopped(self)
        if disconnect:
            try:
                self.repository.disconnect(self.node_id)
            except Exception:
                logger.warning("profiler client %s: could not record its stop", self.node_id, exc_info=True)
        self.gpus.close()

    def use_gpus(self, gpus: GpuReader) -> None:
        """The node's GPUs as its placement devices have them (they replace the machine's view
        the sampler started with): reported from the next frame and in `/clients` at once."""
        before, self.gpus = self.gpus, gpus
        before.close()
        try:
            self._register()
        except Exception:
            logger.warning("profiler client %s: could not record its GPUs", self.node_id, exc_info=True)

    def _register(self) -> None:
        now = self._clock()
        self.repository.register(
            ClientRecord(
                node_id=self.node_id,
                hostname=self._hostname,
                gpu_source=self.gpus.source,
                gpus=self.gpus.devices(),
                started_at=now,
                last_update=now,
            )
        )

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.running

    # -- one sample -------------------------------------------------------------------------

    def sample(self, *, bandwidth: bool, nvlink: bool) -> dict[str, Any]:
        """One reading of this node: the payload of a frame."""
        reading = self.system.read()
        self.samples_taken += 1
        return {
            "node_id": self.node_id,
            "hostname": self._hostname,
            "timestamp": self._clock().isoformat(),
            "gpu_source": self.gpus.source,
            "gpus": self.gpus.read(bandwidth=bandwidth, nvlink=nvlink),
            "cpu": reading["cpu"],
            "memory": reading["memory"],
        }

    def refresh_sessions(self, now: float, active: Sequence[SessionRecord] | None = None) -> None:
        """The active sessions (`active`, as the sampling thread read them for every node of
        the process; else from the store): a new one is due at once, a stopped one dropped."""
        if active is None:
            active = self.repository.active()
        self._sessions = {session.session_id: session for session in active}
        for gone in set(self._due) - set(self._sessions):
            self._due.pop(gone, None)
            self._since_prune.pop(gone, None)
        for session_id in self._sessions:
            self._due.setdefault(session_id, now)

    def sample_due(self, now: float) -> list[str]:
        """A frame for every session due at `now` (one reading for all); the sessions written."""
        ready = [sid for sid, due in self._due.items() if due <= now]
        if not ready:
            return []
        sessions = [self._sessions[sid] for sid in ready]
        payload = self.sample(
            bandwidth=any(s.enable_bandwidth_profiling for s in sessions),
            nvlink=any(s.enable_nvlink_profiling for s in sessions),
        )
        written = self.repository.add_frames(self.node_id, self._clock(), payload, ready)
        self.frames_written += len(written)
        for session in sessions:
            period = session.sampling_frequency_ms / 1000.0
            # The next one a period after this one was due: the cadence holds; after a
            # stall it restarts from now rather than sampling in a burst to catch up.
            self._due[session.session_id] = max(self._due[session.session_id] + period, now)
        for session_id in set(ready) - set(written):  # stopped meanwhile
            self._due.pop(session_id, None)
        for session_id in written:
            self._since_prune[session_id] = self._since_prune.get(session_id, 0) + 1
            if self._since_prune[session_id] >= self._prune_every:
                self._since_prune[session_id] = 0
                self.repository.prune(session_id, self._keep)
        return written

    # -- run by the sampling thread --------------------------------------------------------

    def beat(self, now: float) -> None:
        """The node's heartbeat when it is due (registering it if it never was, or was removed)."""
        if now < self._next_beat:
            return
        if not self.repository.heartbeat(self.node_id, self._clock()):
            self._register()  # never registered (store down at start), or removed
        self._next_beat = now + self.settings.heartbeat_seconds

    def defer(self, until: float) -> None:
        """After a failure: nothing due before `until` (no spinning on a failing write)."""
        for session_id, due in self._due.items():
            self._due[session_id] = max(due, until)
        self._next_beat = max(self._next_beat, until)

    def wake_at(self) -> float:
        """When this node next has something to do (a heartbeat, a frame)."""
        return min([self._next_beat, *self._due.values()])


#: The process's sampling threads by store (`id` of the repository, which a thread holds):
#: one goes once it has no sampler and its thread has ended.
_THREADS: weakref.WeakValueDictionary[int, SamplingThread] = weakref.WeakValueDictionary()
_THREADS_LOCK = threading.Lock()


class SamplingThread:
    """The one daemon thread of a process that runs its nodes' samplers on one store: one
    read of the active sessions per `poll_seconds` (the shortest of its samplers') for all of
    them, each node's heartbeats and frames. It runs while any sampler is attached."""

    def __init__(self, repository: ProfilerRepository) -> None:
        self.repository = repository
        self._samplers: list[ProfilerSampler] = []
        self._lock = threading.Lock()  # held while attaching, detaching, and for a pass over the samplers
        self._wake = threading.Event()
        self._stop: threading.Event | None = None  # of the thread running now
        self._thread: threading.Thread | None = None
        self._poll_now = True
        self.polls = 0  # reads of the active sessions

    @classmethod
    def of(cls, repository: ProfilerRepository) -> SamplingThread:
        """The process's sampling thread on `repository`'s store."""
        with _THREADS_LOCK:
            thread = _THREADS.get(id(repository))
            if thread is None:
                thread = _THREADS[id(repository)] = cls(repository)
            return thread

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def samplers(self) -> list[ProfilerSampler]:
        with self._lock:
            return list(self._samplers)

    def attach(self, sampler: ProfilerSampler) -> None:
        """Runs `sampler` from now (its sessions read at once); starts the thread if need be."""
        with self._lock:
            self._samplers.append(sampler)
            self._poll_now = True
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._loop, args=(self._stop,), name="grey-profiler", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def detach(self, sampler: ProfilerSampler) -> None:
        """Runs `sampler` no more (returns once no pass touches it); the last one stops the thread."""
        with self._lock:
            if sampler in self._samplers:
                self._samplers.remove(sampler)
            if self._samplers or self._thread is None or self._stop is None:
                return
            thread, stop = self._thread, self._stop
            self._thread = self._stop = None
            stop.set()  # under the lock: a pass that follows sees it and ends
        self._wake.set()
        thread.join(timeout=5)

    def _loop(self, stop: threading.Event) -> None:
        next_poll = time.monotonic()
        while not stop.is_set():
            wake = time.monotonic() + 3600.0
            with self._lock:
                if stop.is_set() or not self._samplers:
                    return
                samplers = list(self._samplers)
                poll_seconds = min(sampler.settings.poll_seconds for sampler in samplers)
                now = time.monotonic()
                if self._poll_now or now >= next_poll:
                    self._poll_now = False
                    next_poll = now + poll_seconds
                    try:
                        active = self.repository.active()
                        self.polls += 1
                    except Exception:
                        logger.warning(
                            "profiler: could not read the active sessions; retrying", exc_info=True
                        )
                        active = None
                    for sampler in samplers:
                        if active is None:
                            sampler.defer(next_poll)
                        else:
                            sampler.refresh_sessions(now, active)
                for sampler in samplers:
                    try:
                        sampler.beat(now)
                        sampler.sample_due(time.monotonic())
                    except Exception:
                        logger.warning(
                            "profiler sampler of %s failed; retrying", sampler.node_id, exc_info=True
                        )
                        sampler.defer(time.monotonic() + poll_seconds)
                    wake = min(wake, sampler.wake_at())
            self._wake.wait(max(0.0, min(wake, next_poll) - time.monotonic()))
            self._wake.clear()
