"""Containers a dead worker left behind are removed once their attempt is over; a running
attempt's container and other clusters' containers are left alone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.execution.containers.command import ATTEMPT_LABEL, STORE_LABEL, TASK_LABEL, store_label
from runtime.execution.containers.runner import ContainerRunner
from runtime.execution.containers.settings import ContainerSettings
from runtime.execution.containers.sweep import sweep
from runtime.store import NewTask, Store
from tests.execution.containers.conftest import grey_containers


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'grey.db'}") as store:
        yield store


def _leftover(settings: ContainerSettings, task_id: str, attempt: int, store_id: str) -> str:
    name = f"grey-{task_id}-{attempt}"
    subprocess.run(
        [
            *settings.engine_argv(),
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--label",
            f"{TASK_LABEL}={task_id}",
            "--label",
            f"{ATTEMPT_LABEL}={attempt}",
            "--label",
            f"{STORE_LABEL}={store_id}",
            settings.probe_image,
            "sleep",
            "300",
        ],
        check=True,
        capture_output=True,
    )
    return name


def test_a_sweep_removes_the_containers_of_attempts_that_are_over(
    store: Store, container_settings: ContainerSettings
) -> None:
    runner = ContainerRunner(container_settings)
    mine = store_label(store.engine.url)
    running = store.tasks.insert(NewTask(tenant_id="acme", type="container", payload={}))
    assert store.lifecycle.transition(
        running.task_id, from_statuses=("pending",), to_status="running", executed_on="w", attempt=1
    )
    requeued = store.tasks.insert(NewTask(tenant_id="acme", type="container", payload={}))
    names = {
        "current": _leftover(container_settings, running.task_id, 1, mine),
        "old attempt": _leftover(container_settings, running.task_id, 0, mine),
        "not running": _leftover(container_settings, requeued.task_id, 1, mine),
        "other cluster": _leftover(container_settings, "task_other-cluster", 1, "another-store"),
    }
    try:
        removed = sweep(runner, store, force=True)
        assert sorted(removed) == sorted([names["old attempt"], names["not running"]])
        left = set(grey_containers(container_settings))
        assert names["current"] in left and names["other cluster"] in left
        assert names["old attempt"] not in left and names["not running"] not in left
    finally:
        for name in names.values():
            runner.remove(name)
