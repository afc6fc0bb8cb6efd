"""A cluster config that leaves `pools` out runs the standard pools (as no config file does),
so `grey worker` plans its pool from it instead of failing on a missing `cpu`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runtime.config import ClusterConfig, load_cluster_config, standard_pools
from runtime.execution.processes import plan
from runtime.settings import Settings


def test_a_config_without_pools_has_the_standard_pools(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("version: 1\nname: lab\nrate_limits:\n  submit: 50\n")
    cfg = load_cluster_config(path)
    assert cfg.pools == standard_pools() == ClusterConfig.default().pools
    assert (cfg.pool("cpu").nodes, cfg.pool("cpu").threads_per_node) == (1, 8)
    assert cfg.pool("gpu").nodes == 0 and cfg.pool("tee").nodes == 0
    assert cfg.rate_limits.submit == 50


def test_given_pools_still_name_the_pools_with_nodes(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("pools:\n  gpu:\n    nodes: 2\n    gpus_per_node: 1\n")
    cfg = load_cluster_config(path)
    assert (cfg.pool("cpu").nodes, cfg.pool("gpu").nodes, cfg.pool("tee").nodes) == (0, 2, 0)


def test_grey_worker_plans_from_a_config_without_pools(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("name: lab\n")
    settings = dataclasses.replace(Settings(), cluster_config=path, broker_url="redis://127.0.0.1:6379/11")
    planned = plan(settings, "cpu", processes=1, threads=None, queues=None, emulate_gpus=None)
    assert (planned.pool, planned.threads) == ("cpu", 8)
