"""A node's profiler sampler: one daemon thread in the node's worker process.

While any profiling session is active it samples this node — its GPUs (`gpus.py`) and its
CPU and memory (`system.py`) — at each session's `sampling_frequency_ms`, and writes one
frame per session due (runtime/store/profiler.py counts them). It reads the active
sessions every `poll_seconds`, so a session starts and stops being sampled within that; a
session stopped in between gets no further frame (the store writes frames only for active
sessions). One reading serves every session due at the same moment.

It also registers the node as a profiler client (its GPUs, hardware or emulated or none)
and heartbeats for it, which `/clients` reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
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
    """Samples one node for the active sessions; `start()` and `stop()` it with its worker."""

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
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples_taken = 0
        self.frames_written = 0
        self._owners = 1
        self._finished = False
        self._owners_lock = threading.Lock()
        self._on_stopped: Callable[[ProfilerSampler], None] | None = None

    # -- life -------------------------------------------------------------------------------

    def start(self) -> ProfilerSampler:
        """Registers the node as a client and starts the thread; never raises for the store (a
        worker boots without its profiler rather than not at all: the thread registers later)."""
        try:
            self._register()
        except Exception:
            logger.warning("profiler client %s: could not register yet", self.node_id, exc_info=True)
        self._stopped.clear()
        self._thread = threading.Thread(target=self._loop, name=f"grey-profiler-{self.node_id}", daemon=True)
        self._thread.start()
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
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
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
        return self._thread is not None and self._thread.is_alive()

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

    def refresh_sessions(self, now: float) -> None:
        """The active sessions from the store; a new one is due at once, a stopped one dropped."""
        self._sessions = {session.session_id: session for session in self.repository.active()}
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

    # -- the thread -------------------------------------------------------------------------

    def _loop(self) -> None:
        next_poll = next_beat = time.monotonic()
        while not self._stopped.is_set():
            now = time.monotonic()
            try:
                if now >= next_poll:
                    self.refresh_sessions(now)
                    next_poll = now + self.settings.poll_seconds
                if now >= next_beat:
                    if not self.repository.heartbeat(self.node_id, self._clock()):
                        self._register()  # never registered (store down at start), or removed
                    next_beat = now + self.settings.heartbeat_seconds
                self.sample_due(time.monotonic())
            except Exception:
                logger.warning("profiler sampler of %s failed; retrying", self.node_id, exc_info=True)
                next_poll = time.monotonic() + self.settings.poll_seconds
                for session_id, due in self._due.items():  # no spinning on a failing write
                    self._due[session_id] = max(due, next_poll)
            wake = min([next_poll, next_beat, *self._due.values()])
            self._stopped.wait(max(0.0, wake - time.monotonic()))
