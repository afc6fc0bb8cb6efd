"""The profiler's records in gswarm's words (runtime/services/profiler.py has the records)."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from generated.gswarm_profiler import models
from runtime.services.profiler import ClientView, NodeFrame, ProfilerStatus, SessionRecord

logger = logging.getLogger("grey.profiler")


def session(record: SessionRecord) -> models.ProfilingSession:
    return models.ProfilingSession(
        name=record.name,
        session_id=record.session_id,
        is_active=record.active,
        start_time=record.started_at,
        end_time=record.stopped_at,
        frames_collected=record.frames_collected,
        sampling_frequency_ms=record.sampling_frequency_ms,
        enable_bandwidth_profiling=record.enable_bandwidth_profiling,
        enable_nvlink_profiling=record.enable_nvlink_profiling,
    )


def status(view: ProfilerStatus) -> models.ProfilerStatus:
    return models.ProfilerStatus(
        is_profiling=view.is_profiling,
        active_sessions=[session(record) for record in view.active_sessions],
        connected_clients=view.connected_clients,
        enable_bandwidth_profiling=view.enable_bandwidth_profiling,
        enable_nvlink_profiling=view.enable_nvlink_profiling,
        sampling_frequency_ms=view.sampling_frequency_ms,
    )


def client(view: ClientView) -> models.Client:
    record = view.client
    return models.Client.model_validate(
        {
            "client_id": record.node_id,
            "hostname": record.hostname,
            "gpu_source": record.gpu_source,
            "gpus": record.gpus,
            "last_update": record.last_update,
            "status": "healthy" if view.healthy else "unhealthy",
        }
    )


def node_metrics(view: NodeFrame) -> models.NodeMetrics | None:
    """The frame as the API shows it; None (logged) for a payload this build cannot read."""
    frame, payload = view.frame, view.frame.payload
    try:
        return models.NodeMetrics.model_validate(
            {
                "client_id": frame.node_id,
                "hostname": payload.get("hostname", ""),
                "session": view.session_name,
                "timestamp": frame.at,
                "gpu_source": payload.get("gpu_source"),
                "gpus": payload.get("gpus"),
                "cpu": payload.get("cpu"),
                "memory": payload.get("memory"),
            }
        )
    except ValidationError:
        logger.warning("profiler frame %s of %s is unreadable; not shown", frame.seq, frame.node_id)
        return None
