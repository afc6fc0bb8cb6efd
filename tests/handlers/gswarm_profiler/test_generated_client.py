"""The generated client of the profiler contract: it takes `data` out of the envelope and
raises the envelope's error, as a Python user of the reference's API would want."""

from __future__ import annotations

import httpx
import pytest

from generated.gswarm_profiler.client import AsyncGswarmProfilerClient, GreyApiError
from runtime.gateway.app import Platform
from runtime.services import Services
from tests.support.platform import make_key


async def test_the_client_starts_lists_and_stops_a_session(every_api: Platform, services: Services) -> None:
    transport = httpx.ASGITransport(app=every_api.gateways["gswarm_profiler"].rest)
    client = AsyncGswarmProfilerClient(
        "http://profiler.test", make_key(services, "acme"), transport=transport
    )
    try:
        started = await client.start_profiling({"name": "my_experiment"})
        assert started.is_active and started.end_time is None
        with pytest.raises(GreyApiError) as conflict:
            await client.start_profiling({"name": "my_experiment"})
        assert (conflict.value.status, conflict.value.code) == (409, "CONFLICT")
        status = await client.get_status()
        assert [s.name for s in status.active_sessions] == ["my_experiment"]
        stopped = await client.stop_profiling({"name": "my_experiment"})
        assert not stopped.is_active and stopped.end_time is not None
        with pytest.raises(GreyApiError) as missing:
            await client.stop_profiling({"name": "my_experiment"})
        assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
        assert [s.is_active for s in (await client.list_sessions(active=False)).sessions] == [False]
    finally:
        await client.aclose()
