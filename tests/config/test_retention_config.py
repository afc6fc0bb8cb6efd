"""The cluster config's `retention` section: a sane default, per-tenant ages, `forever`, and
errors that say what a retention age must be."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import ClusterConfig, ConfigError, RetentionConfig, load_cluster_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster.yaml"


def test_finished_tasks_are_kept_thirty_days_unless_configured() -> None:
    retention = ClusterConfig.default().retention
    assert retention.days_for(None) == 30.0
    assert retention.days_for("anyone") == 30.0
    assert retention.batch_rows > 0 and retention.batch_pause_seconds > 0


def test_the_example_file_overrides_per_tenant_and_keeps_one_forever() -> None:
    retention = load_cluster_config(EXAMPLE).retention
    assert retention.days_for("initech") == 7.0
    assert retention.days_for("acme") is None  # forever
    assert retention.days_for("globex") == retention.days_for(None) == 30.0


def test_forever_can_be_the_default_with_tenants_that_expire() -> None:
    retention = RetentionConfig.model_validate({"finished_days": "forever", "tenants": {"tmp": 0.5}})
    assert retention.days_for(None) is None and retention.days_for("tmp") == 0.5


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("finished_days: never", "retention.finished_days"),
        ("finished_days: 0", "retention.finished_days"),
        ("tenants: {acme: -3}", "retention.tenants.acme"),
        ("batch_rows: 0", "retention.batch_rows"),
        ("keep: 3", "retention.keep"),
    ],
)
def test_a_bad_retention_setting_names_its_field(tmp_path: Path, section: str, field: str) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(f"retention:\n  {section}\n")
    with pytest.raises(ConfigError) as raised:
        load_cluster_config(path)
    assert [where for where, _ in raised.value.problems] == [field]
    if "days" in field or "tenants" in field:
        assert "number of days above 0 or 'forever'" in str(raised.value)
