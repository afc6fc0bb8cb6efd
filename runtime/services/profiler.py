"""The profiler (gswarm's profiler API) over the store: sessions, clients and latest frames.

Sessions are cluster-wide (see runtime/store/profiler.py); nodes sample for them in their
own processes (runtime/execution/profiler), so everything here is a read or a write of the
store, and every gateway process answers the same.

Errors: `SessionActive` (start: that name is active) and `SessionNotActive` (stop: no
active session of that name) are the store's; the handlers answer 409 and 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from runtime.execution.profiler import SamplerSettings
from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.profiler import (
    ClientRecord,
    FrameRecord,
    ProfilerRepository,
    SessionActive,
    SessionNotActive,
    SessionRecord,
)

__all__ = [
    "DEFAULT_SAMPLING_FREQUENCY_MS",
    "ClientView",
    "NodeFrame",
    "ProfilerStatus",
    "SessionActive",
    "SessionNotActive",
    "SessionRecord",
    "clients",
    "latest_frames",
    "sessions",
    "start",
    "status",
    "stop",
]

#: The reference's `sampling_frequency_ms` where a start does not say.
DEFAULT_SAMPLING_FREQUENCY_MS = 1000
#: A client is healthy while heard from within this many of its heartbeats.
HEALTHY_HEARTBEATS = 3
#: A client no longer heartbeating stays listed (unhealthy) this long.
LISTED_FOR = timedelta(hours=1)


def _repository(store: Store) -> ProfilerRepository:
    return ProfilerRepository.of(store.engine)


@dataclass(frozen=True, slots=True)
class ProfilerStatus:
    is_profiling: bool
    active_sessions: list[SessionRecord]
    connected_clients: int
    enable_bandwidth_profiling: bool
    enable_nvlink_profiling: bool
    sampling_frequency_ms: int


@dataclass(frozen=True, slots=True)
class ClientView:
    client: ClientRecord
    healthy: bool


@dataclass(frozen=True, slots=True)
class NodeFrame:
    frame: FrameRecord
    session_name: str | None


def start(
    store: Store,
    name: str,
    *,
    sampling_frequency_ms: int = DEFAULT_SAMPLING_FREQUENCY_MS,
    enable_bandwidth_profiling: bool = False,
    enable_nvlink_profiling: bool = False,
    started_by: str | None = None,
) -> SessionRecord:
    """A new active session every node samples for; SessionActive when the name is active."""
    return _repository(store).start(
        name,
        sampling_frequency_ms=sampling_frequency_ms,
        enable_bandwidth_profiling=enable_bandwidth_profiling,
        enable_nvlink_profiling=enable_nvlink_profiling,
        started_by=started_by,
        now=utc_now(),
    )


def stop(store: Store, name: str) -> SessionRecord:
    """The session stopped (with its final count); SessionNotActive when none of that name is active."""
    return _repository(store).stop(name, utc_now())


def sessions(store: Store, active: bool | None = None, limit: int = 100) -> list[SessionRecord]:
    return _repository(store).sessions(active=active, limit=limit)


def clients(
    store: Store, now: datetime | None = None, settings: SamplerSettings | None = None
) -> list[ClientView]:
    """The sampling nodes heard from within the last hour; healthy while their sampler runs
    and heartbeats (within three of this process's `GREY_PROFILER_HEARTBEAT_SECONDS`)."""
    now = now or utc_now()
    settings = settings or SamplerSettings.from_env()
    fresh = now - timedelta(seconds=HEALTHY_HEARTBEATS * settings.heartbeat_seconds)
    return [
        ClientView(client, healthy=client.connected and client.last_update >= fresh)
        for client in _repository(store).clients(since=now - LISTED_FOR)
    ]


def status(store: Store, now: datetime | None = None) -> ProfilerStatus:
    """The reference's status: the active sessions, the healthy clients, and the settings of
    the most recently started active session (the defaults when none is active)."""
    active = _repository(store).active()
    newest = active[0] if active else None
    return ProfilerStatus(
        is_profiling=bool(active),
        active_sessions=active,
        connected_clients=sum(1 for view in clients(store, now) if view.healthy),
        enable_bandwidth_profiling=bool(newest and newest.enable_bandwidth_profiling),
        enable_nvlink_profiling=bool(newest and newest.enable_nvlink_profiling),
        sampling_frequency_ms=newest.sampling_frequency_ms if newest else DEFAULT_SAMPLING_FREQUENCY_MS,
    )


def latest_frames(store: Store) -> list[NodeFrame]:
    """The newest retained frame of each node, with the name of the session it was written for."""
    repository = _repository(store)
    frames = repository.latest_frames()
    if not frames:
        return []
    names = repository.session_names({frame.session_id for frame in frames})
    return [NodeFrame(frame, names.get(frame.session_id)) for frame in frames]
