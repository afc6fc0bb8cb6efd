"""Leftover task containers: removed when the store says their attempt no longer runs.

A worker that died leaves its containers to the engine (`--timeout` kills them at the
task's timeout plus a margin); the next worker pool on the machine to start, and every
running one now and then, removes sooner every task container whose task is not
`running` in that same attempt any more (best effort: a container of another node's
running attempt is left alone).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time

from runtime.execution.containers.command import ATTEMPT_LABEL, STORE_LABEL, TASK_LABEL, store_label
from runtime.execution.containers.runner import ContainerRunner
from runtime.store import Store
from runtime.store.records import RUNNING

logger = logging.getLogger("grey.containers")

#: A process looks for leftovers at most this often (its pools share the one look).
SWEEP_INTERVAL_SECONDS = 60.0
_last_sweep: dict[str, float] = {}
_lock = threading.Lock()


def due(store_id: str, now: float | None = None) -> bool:
    """True at most once per `SWEEP_INTERVAL_SECONDS` per store in this process."""
    now = time.monotonic() if now is None else now
    with _lock:
        last = _last_sweep.get(store_id)
        if last is not None and now - last < SWEEP_INTERVAL_SECONDS:
            return False
        _last_sweep[store_id] = now
        return True


def task_containers(runner: ContainerRunner, store_id: str) -> list[tuple[str, str, int]]:
    """(name, task id, attempt) of every task container of the store `store_id` the
    engine holds, running or not."""
    settings = runner.settings
    fmt = "\t".join(
        ["{{.Names}}", *(f'{{{{index .Labels "{label}"}}}}' for label in (TASK_LABEL, ATTEMPT_LABEL))]
    )
    done = subprocess.run(
        [
            *settings.engine_argv(),
            "ps",
            "--all",
            "--filter",
            f"label={STORE_LABEL}={store_id}",
            "--format",
            fmt,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    found: list[tuple[str, str, int]] = []
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].isdigit():
            found.append((parts[0], parts[1], int(parts[2])))
    return found


def sweep(runner: ContainerRunner, store: Store, force: bool = False) -> list[str]:
    """Removes the task containers whose attempt is over (when `due`, or `force`); their names."""
    store_id = store_label(store.engine.url)
    if not (due(store_id) or force):
        return []
    removed: list[str] = []
    try:
        for name, task_id, attempt in task_containers(runner, store_id):
            task = store.tasks.get(None, task_id)
            if task is not None and task.status == RUNNING and task.attempt == attempt:
                continue
            runner.remove(name)
            removed.append(name)
    except (OSError, subprocess.SubprocessError):
        logger.warning("could not sweep leftover containers", exc_info=True)
    if removed:
        logger.warning("removed %d leftover task containers: %s", len(removed), ", ".join(removed))
    return removed
