"""`grey worker --node-id`: one process, the placement node, its node queues."""

from __future__ import annotations

import pytest

from runtime.execution.processes import WorkerPlan, WorkerStartError, _child_command, placement_plan
from runtime.execution.queues import node_queues, priority_of_queue


def test_a_placement_node_is_one_process_named_on_its_command_line() -> None:
    plan = placement_plan(WorkerPlan("cpu", 4, 8, ("critical", "high", "normal", "low")), "node7", None)
    assert (plan.processes, plan.node_id) == (1, "node7")
    assert _child_command(plan)[-2:] == ["--node-id", "node7"]


@pytest.mark.parametrize(("node_id", "processes"), [("node1", 2), ("../x", None), ("a.b", None)])
def test_several_processes_or_a_bad_node_id_are_refused(node_id: str, processes: int | None) -> None:
    with pytest.raises(WorkerStartError):
        placement_plan(WorkerPlan("cpu", 1, 8, ("normal",)), node_id, processes)


def test_node_queues_keep_their_priority() -> None:
    assert node_queues("node1") == [
        "node.node1.critical",
        "node.node1.high",
        "node.node1.normal",
        "node.node1.low",
    ]
    assert [priority_of_queue(q) for q in node_queues("node1")] == ["critical", "high", "normal", "low"]
    assert priority_of_queue("node.node1.critical.DQ") == "critical"
