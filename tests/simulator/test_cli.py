"""`grey simulate` and `grey plan` as a user runs them, on the example files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from runtime.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def simulate(*args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        [
            "simulate",
            "--cluster",
            str(EXAMPLES / "cluster.yaml"),
            "--workload",
            str(EXAMPLES / "workload.yaml"),
            "--no-progress",
            *args,
        ],
    )
    return result.exit_code, result.output


def test_simulate_prints_tables_and_writes_json_and_plots(tmp_path: Path) -> None:
    code, out = simulate("--tasks", "3000", "--replications", "2", "--seed", "4", "--out", str(tmp_path))
    assert code == 0, out
    assert "By priority" in out and "By pool" in out and "Little's law" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["replications"] == 2 and data["seed"] == 4
    assert data["mean"]["overall"]["arrivals"] > 0
    assert data["ci95"]["overall"]["e2e"]["p99"] is not None
    for name in ("queue_length.png", "latency.png", "utilization.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG


def test_simulate_with_a_seed_is_reproducible(tmp_path: Path) -> None:
    for run in ("a", "b"):
        code, out = simulate("--tasks", "1500", "--seed", "9", "--out", str(tmp_path / run))
        assert code == 0, out
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert a == b


def test_simulate_until_a_time(tmp_path: Path) -> None:
    code, out = simulate("--until", "60", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert abs(data["window"]["end"] - 60) < 1e-6 and data["window"]["start"] > 0


def test_invalid_config_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "cluster.yaml"
    bad.write_text("pools:\n  cpu: {nodes: many}\n")
    result = runner.invoke(
        app,
        ["simulate", "--cluster", str(bad), "--workload", str(EXAMPLES / "workload.yaml"), "--tasks", "10"],
    )
    assert result.exit_code == 2
    assert str(bad) in result.output and "pools.cpu.nodes" in result.output


def test_tasks_and_until_together_are_refused() -> None:
    code, out = simulate("--tasks", "10", "--until", "5")
    assert code == 2 and "not both" in out


def test_plan_prints_the_answer_and_writes_the_sweep(tmp_path: Path) -> None:
    wl = tmp_path / "wl.yaml"
    wl.write_text(
        "functions:\n  f: {service: {dist: exponential, mean: 1.0}}\n"
        "streams:\n  - arrivals: {process: poisson, rate: 3}\n"
        "    mix: [{function: f, priority: critical}]\n"
        "slo: ['p99 wait <= 1.2s for critical']\n"
    )
    cl = tmp_path / "cl.yaml"
    cl.write_text("pools:\n  cpu: {nodes: 1, threads_per_node: 1}\n")
    result = runner.invoke(
        app,
        [
            "plan",
            "--cluster",
            str(cl),
            "--workload",
            str(wl),
            "--tasks",
            "8000",
            "--replications",
            "3",
            "--no-progress",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Smallest cluster meeting every objective" in result.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["feasible"] and plan["nodes"]["cpu"] == 6
    assert (tmp_path / "sweep.png").read_bytes()[:8] == PNG


def test_plan_without_objectives_is_an_error(tmp_path: Path) -> None:
    wl = tmp_path / "wl.yaml"
    wl.write_text(
        "functions:\n  f: {service: {dist: constant, value: 1}}\n"
        "streams:\n  - arrivals: {process: poisson, rate: 1}\n"
        "    mix: [{function: f}]\n"
    )
    result = runner.invoke(app, ["plan", "--workload", str(wl), "--no-progress"])
    assert result.exit_code == 2 and "no objectives" in result.output
