"""The cluster config loader: one schema for runtime and twin, errors that say where and what."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import (
    ClusterConfig,
    ConfigError,
    load_cluster_config,
    queue_name,
    route_pool,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster.yaml"


def write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_cluster_file_loads_with_all_three_pools() -> None:
    cfg = load_cluster_config(EXAMPLE)
    assert set(cfg.pools) == {"cpu", "gpu", "tee"}
    assert cfg.pools["cpu"].nodes > 0 and cfg.pools["gpu"].gpus_per_node > 0
    assert cfg.queues.policy == "strict"


def test_default_is_one_cpu_node_with_eight_threads_and_seed_quotas() -> None:
    cfg = ClusterConfig.default()
    assert (cfg.pools["cpu"].nodes, cfg.pools["cpu"].threads_per_node) == (1, 8)
    assert cfg.pools["gpu"].nodes == 0 and cfg.pools["tee"].nodes == 0
    q = cfg.quota_for("anyone")
    assert (
        q.cpu_cores,
        q.memory_gb,
        q.max_concurrent_tasks,
        q.max_queue_depth,
        q.submit_rate_per_second,
    ) == (100, 256, 10000, 50000, 1000)
    rl = cfg.rate_limits
    assert (rl.submit, rl.tasks_read, rl.cluster, rl.other, rl.window_seconds) == (
        1000,
        10000,
        1000,
        5000,
        60,
    )
    assert cfg.retry.max_retries == 3


def test_json_and_yaml_give_the_same_config(tmp_path: Path) -> None:
    y = write(tmp_path, "pools:\n  cpu: {nodes: 3, threads_per_node: 4}\nqueues: {policy: fifo}\n")
    j = write(
        tmp_path,
        '{"pools": {"cpu": {"nodes": 3, "threads_per_node": 4}}, "queues": {"policy": "fifo"}}',
        "cluster.json",
    )
    assert load_cluster_config(y) == load_cluster_config(j)


def test_missing_pools_exist_with_zero_nodes(tmp_path: Path) -> None:
    cfg = load_cluster_config(write(tmp_path, "pools:\n  gpu: {nodes: 2, gpus_per_node: 4}\n"))
    assert cfg.pools["cpu"].nodes == 0 and cfg.pools["tee"].nodes == 0
    assert cfg.pools["gpu"].nodes == 2


def test_tenant_override_falls_back_to_default_quota(tmp_path: Path) -> None:
    cfg = load_cluster_config(write(tmp_path, "tenants:\n  acme: {max_queue_depth: 10}\n"))
    assert cfg.quota_for("acme").max_queue_depth == 10
    assert cfg.quota_for("acme").cpu_cores == 100  # unspecified fields keep Grey Distributed's defaults
    assert cfg.quota_for("other").max_queue_depth == 50000


def test_error_names_file_field_path_and_expectation(tmp_path: Path) -> None:
    path = write(tmp_path, "pools:\n  cpu:\n    nodes: -2\n")
    with pytest.raises(ConfigError) as info:
        load_cluster_config(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "pools.cpu.nodes" in msg
    assert "expected a value greater than or equal to 0" in msg and "-2" in msg
    assert info.value.problems[0][0] == "pools.cpu.nodes"


def test_unknown_key_is_an_error_listing_the_allowed_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "pools:\n  cpu:\n    threads: 4\n")
    with pytest.raises(ConfigError) as info:
        load_cluster_config(path)
    msg = str(info.value)
    assert "pools.cpu.threads" in msg and "unknown field" in msg
    assert "threads_per_node" in msg  # the likely intended name is suggested


def test_bad_pool_name_and_policy_are_both_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "pools:\n  fpga: {nodes: 1}\nqueues:\n  policy: lifo\n")
    with pytest.raises(ConfigError) as info:
        load_cluster_config(path)
    fields = [f for f, _ in info.value.problems]
    assert "pools.fpga (key)" in fields and "queues.policy" in fields
    assert "'strict' or 'fifo'" in str(info.value)


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, "default_quota:\n  max_queue_depth: lots\n")
    with pytest.raises(
        ConfigError,
        match=r"default_quota\.max_queue_depth: expected a valid "
        r"integer.*'lots'",
    ):
        load_cluster_config(path)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "pools:\n  cpu: {nodes: 1\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+") as info:
        load_cluster_config(path)
    assert str(path) in str(info.value)


def test_unreadable_file_and_non_mapping_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_cluster_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_cluster_config(write(tmp_path, "- a\n- b\n"))


def test_routing_and_queue_names_follow_the_decisions() -> None:
    assert route_pool(gpu=0, tee_required=False) == "cpu"
    assert route_pool(gpu=1, tee_required=False) == "gpu"
    assert route_pool(gpu=2, tee_required=True) == "tee"
    assert queue_name("gpu", "critical") == "gpu.critical"


def test_with_nodes_changes_only_node_counts() -> None:
    cfg = ClusterConfig.default()
    other = cfg.with_nodes({"cpu": 5, "gpu": 2})
    assert (other.pools["cpu"].nodes, other.pools["gpu"].nodes) == (5, 2)
    assert other.pools["cpu"].threads_per_node == cfg.pools["cpu"].threads_per_node
    assert cfg.pools["cpu"].nodes == 1
