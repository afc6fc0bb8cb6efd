"""The one load tool both systems get: wrk for throughput, an httpx asyncio client for latency.

- `saturate`: wrk (1 thread, `connections` connections) POSTs the submit body for `seconds`
  as fast as the server answers; the caller then counts completions in the system's record.
- `steady`: an open loop at `rate` submits/s for `seconds`, noting when each POST was
  sent. Submit -> completed is then read from the system's record (its completion time,
  stamped by the worker in the transaction that makes the final state readable), not by
  polling: polling every few ms loads the status endpoint as much as the run itself (a
  2 ms poll sent the peer's `AsyncResult` reads into seconds of backlog), so it would
  measure the observer.
- `final_states`: the status of each given task, read over HTTP.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    """How a system takes a submit and shows a task's status over HTTP."""

    name: str
    base_url: str
    submit_path: str
    body: dict[str, Any]
    status_path: str  # with `{task_id}`
    done: frozenset[str]  # final statuses of a task that ran
    failed: frozenset[str] = frozenset()
    headers: dict[str, str] = field(default_factory=dict)


def saturate(target: Target, seconds: float, connections: int = 16) -> int:
    """wrk at full speed for `seconds`; the number of submits answered."""
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = '{json.dumps(target.body)}'",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in target.headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", handle.name]
    output = subprocess.run(
        [*argv, target.base_url + target.submit_path], capture_output=True, text=True, check=True
    ).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        raise SystemExit(f"wrk saw errors from {target.name}:\n{output}")
    found = re.search(r"(\d+) requests in", output)
    if found is None:
        raise SystemExit(f"unexpected wrk output:\n{output}")
    return int(found.group(1))


async def _steady(target: Target, rate: float, seconds: float) -> list[tuple[str, float]]:
    import httpx

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=target.base_url, headers=target.headers, timeout=30, limits=limits
    ) as client:

        async def one() -> tuple[str, float]:
            sent = time.time()
            response = await client.post(target.submit_path, json=target.body)
            response.raise_for_status()
            return response.json()["task_id"], sent

        for _ in range(5):  # warm the connections and both systems' first-call paths
            await one()
        count = max(1, round(rate * seconds))
        start = time.perf_counter()
        runs = []
        for index in range(count):
            await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
            runs.append(asyncio.create_task(one()))
        return list(await asyncio.gather(*runs))


def steady(target: Target, rate: float, seconds: float) -> list[tuple[str, float]]:
    """An open loop of `rate` submits/s for `seconds`: (task id, when its POST was sent, epoch s)."""
    return asyncio.run(_steady(target, rate, seconds))


async def _states(target: Target, ids: list[str], concurrency: int) -> collections.Counter[str]:
    import httpx

    counts: collections.Counter[str] = collections.Counter()
    queue = list(ids)
    async with httpx.AsyncClient(base_url=target.base_url, headers=target.headers, timeout=30) as client:

        async def pump() -> None:
            while queue:
                task_id = queue.pop()
                response = await client.get(target.status_path.format(task_id=task_id))
                counts[
                    response.json()["status"] if response.status_code == 200 else str(response.status_code)
                ] += 1

        await asyncio.gather(*(pump() for _ in range(concurrency)))
    return counts


def final_states(target: Target, ids: list[str], concurrency: int = 16) -> collections.Counter[str]:
    """How many of `ids` show each status over HTTP."""
    return asyncio.run(_states(target, ids, concurrency))


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]
