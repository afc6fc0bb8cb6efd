"""Named pipelines (the Orchestrator's task types) in every mode, per-step retries, and the
submit-time refusals: unknown pipeline (invalid) and unavailable pipeline (unschedulable)."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from handlers.task_functions.agents import analyse
from runtime.execution import functions, pipeline
from runtime.execution.errors import InvalidPayload, Unschedulable
from runtime.execution.functions import InvalidInput, TaskContext, task_function
from runtime.execution.interrupts import TaskCancelled
from runtime.execution.pipeline import (
    StepFailed,
    StepRetriesExhausted,
    get_pipeline,
    named_pipeline,
    run_pipeline,
)
from runtime.execution.submission import check_payload
from tests.execution.conftest import Gateway

DATA: dict[str, Any] = {
    "inputs": [
        {"input_id": "notes", "type": "text", "data": "Sales rose in May. Sales fell in June! Margins held."},
        {"input_id": "figures", "type": "json", "data": '[{"month": "May", "sales": 120}, {"sales": 80}]'},
        {"input_id": "chart", "type": "image", "data": "iVBORw0KGgo="},
    ],
    "metadata": {"report_title": "Q2 sales"},
}

_calls: Counter[str] = Counter()
_lock = threading.Lock()


@task_function("test_flaky")
def flaky(data: Any, ctx: TaskContext) -> dict[str, Any]:
    """Raises ConnectionError on its first `fail` calls per `key`, then answers."""
    with _lock:
        _calls[data["key"]] += 1
        calls = _calls[data["key"]]
    if calls <= data["fail"]:
        raise ConnectionError(f"refused (call {calls})")
    return {"calls": calls}


named_pipeline("test_flaky", stages=[["test_flaky"]], default_mode="sequential")
named_pipeline(
    "test_fan_in",
    stages=[["data_ingest", "data_analysis"], ["synthesis"]],
    default_mode="hybrid",
    description="ingest and analysis side by side, then the report",
)


@dataclass
class Context(TaskContext):
    """A task context whose progress is a list and whose backoff sleeps are recorded."""

    messages: list[tuple[int, str | None]] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._progress = lambda percent, message: self.messages.append((percent, message))

    def sleep(self, seconds: float) -> None:
        self.check()
        self.slept.append(seconds)


def context() -> Context:
    return Context("task_1", "acme", "node_1", 1, 0, time.monotonic() + 30)


def test_report_generation_runs_its_agents_in_sequence_each_on_the_previous_output() -> None:
    ctx = context()
    result = run_pipeline({"pipeline": "report_generation", "data": DATA}, ctx)
    assert (result["pipeline"], result["mode"]) == ("report_generation", "sequential")
    steps = result["steps"]
    assert [s["agent_id"] for s in steps] == [
        "agent-data-ingest-1",
        "agent-data-analysis-2",
        "agent-synthesis-3",
    ]
    assert [(s["index"], s["stage"], s["function"], s["status"]) for s in steps] == [
        (0, 0, "data_ingest", "completed"),
        (1, 1, "data_analysis", "completed"),
        (2, 2, "synthesis", "completed"),
    ]
    assert all(s["attempts"] == 1 and s["retry_count"] == 0 for s in steps)
    assert all({"execution_time_ms", "started_at", "output"} <= set(s) for s in steps)
    assert steps[0]["output"]["kind"] == "ingested" and steps[1]["output"]["kind"] == "analysis"
    report = result["output"]
    assert report["type"] == "json_report" and report["data"]["title"] == "Q2 sales"
    assert [s["heading"] for s in report["data"]["sections"]] == ["Inputs", "Text", "JSON data"]
    # one progress report per agent, naming it
    assert [p for p, _ in ctx.messages] == [33, 66, 100]
    assert [(m or "").split()[0] for _, m in ctx.messages] == [s["agent_id"] for s in steps]
    assert "stage 2/3" in (ctx.messages[1][1] or "")


def test_parallel_runs_every_agent_on_the_pipeline_data() -> None:
    sequential = run_pipeline({"pipeline": "report_generation", "data": DATA}, context())
    ctx = context()
    result = run_pipeline({"pipeline": "report_generation", "mode": "parallel", "data": DATA}, ctx)
    assert result["mode"] == "parallel" and {s["stage"] for s in result["steps"]} == {0}
    ingested, analysis, report = result["output"]
    assert ingested["kind"] == "ingested"
    assert analysis == sequential["steps"][1]["output"]  # the same from raw data as from records
    assert report == sequential["output"]
    assert sorted(p for p, _ in ctx.messages) == [33, 66, 100]


def test_hybrid_runs_declared_stages_in_order_and_each_stage_in_parallel() -> None:
    sequential = run_pipeline({"pipeline": "report_generation", "data": DATA}, context())
    result = run_pipeline({"pipeline": "test_fan_in", "data": DATA}, context())
    assert result["mode"] == "hybrid"
    assert [(s["function"], s["stage"]) for s in result["steps"]] == [
        ("data_ingest", 0),
        ("data_analysis", 0),
        ("synthesis", 1),
    ]
    assert result["output"] == sequential["output"]  # synthesis took the analysis of the list
    hybrid = run_pipeline({"pipeline": "report_generation", "mode": "hybrid", "data": DATA}, context())
    assert [s["stage"] for s in hybrid["steps"]] == [0, 1, 2]


def test_a_pipelines_default_mode_applies_when_the_payload_names_none() -> None:
    result = run_pipeline({"pipeline": "data_analysis", "data": DATA}, context())
    assert result["mode"] == "parallel"
    assert result["output"] == analyse(pipeline_data())


def pipeline_data() -> Any:
    from handlers.task_functions.agents import PipelineData

    return PipelineData.model_validate(DATA)


def test_pipeline_and_steps_together_or_an_unknown_name_are_invalid() -> None:
    with pytest.raises(InvalidInput, match="not both"):
        run_pipeline({"pipeline": "data_analysis", "steps": [{"function": "echo"}]}, context())
    with pytest.raises(InvalidInput, match="unknown pipeline 'nope'") as raised:
        run_pipeline({"pipeline": "nope"}, context())
    assert raised.value.field == "payload.pipeline"


def test_a_transient_step_failure_is_retried_with_exponential_backoff() -> None:
    ctx = context()
    result = run_pipeline({"pipeline": "test_flaky", "data": {"key": uuid.uuid4().hex, "fail": 2}}, ctx)
    [step] = result["steps"]
    assert (step["status"], step["attempts"], step["retry_count"]) == ("completed", 3, 2)
    assert step["output"] == {"calls": 3}
    assert ctx.slept == [0.2, 0.4]
    retries = [m or "" for _, m in ctx.messages if "retry" in (m or "")]
    assert retries[0].startswith("agent-test-flaky-1 retry 1/3 in 0.2s: ConnectionError")


def test_a_fourth_transient_failure_fails_the_step_for_good() -> None:
    ctx = context()
    with pytest.raises(StepFailed) as raised:
        run_pipeline({"pipeline": "test_flaky", "data": {"key": uuid.uuid4().hex, "fail": 9}}, ctx)
    assert isinstance(raised.value.cause, StepRetriesExhausted)
    assert not functions.is_transient(raised.value.cause)
    assert isinstance(raised.value.cause.__cause__, ConnectionError)
    [step] = raised.value.record["steps"]
    assert (step["status"], step["attempts"], step["retry_count"]) == ("failed", 4, 3)
    assert ctx.slept == [0.2, 0.4, 0.8]


def test_a_permanent_failure_is_not_retried_and_explicit_steps_still_work() -> None:
    ctx = context()
    with pytest.raises(StepFailed) as raised:
        run_pipeline({"steps": [{"function": "echo", "data": 1}, {"function": "fail"}]}, ctx)
    assert [s["attempts"] for s in raised.value.record["steps"]] == [1, 1]
    assert ctx.slept == []
    result = run_pipeline({"mode": "parallel", "steps": [{"function": "echo", "data": 1}]}, context())
    assert "pipeline" not in result and result["output"] == 1


def test_a_cancel_during_the_backoff_stops_the_pipeline() -> None:
    ctx = context()

    @task_function("test_cancelled_while_failing")
    def failing(data: Any, task: TaskContext) -> None:
        task.stop("cancel")
        raise TimeoutError("slow upstream")

    with pytest.raises(TaskCancelled):
        run_pipeline({"steps": [{"function": "test_cancelled_while_failing"}]}, ctx)
    assert ctx.slept == []


def test_check_payload_refuses_unknown_and_unavailable_pipelines() -> None:
    with pytest.raises(InvalidPayload) as invalid:
        check_payload("pipeline", {"pipeline": "video_magic", "data": DATA}, None)
    assert invalid.value.details["field"] == "payload.pipeline"
    assert "report_generation" in invalid.value.details["pipelines"]
    with pytest.raises(Unschedulable) as unschedulable:
        check_payload("pipeline", {"pipeline": "real_time_monitoring", "data": DATA}, None)
    assert unschedulable.value.details == {
        "pipeline": "real_time_monitoring",
        "reason": "no video decoder or detection model in this build",
    }
    with pytest.raises(InvalidPayload) as bad_data:
        check_payload("pipeline", {"pipeline": "report_generation", "data": {"inputs": "x"}}, None)
    assert bad_data.value.details["field"] == "payload.data.inputs"
    with pytest.raises(InvalidPayload):
        check_payload("pipeline", {"pipeline": "report_generation", "mode": "zigzag", "data": DATA}, None)
    for mode in ("sequential", "parallel", "hybrid"):
        assert (
            check_payload("pipeline", {"pipeline": "report_generation", "mode": mode, "data": DATA}, None)
            is None
        )


def test_named_pipelines_are_found_through_the_task_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"grey_lazy_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from runtime.execution.pipeline import named_pipeline\n"
        "named_pipeline('lazy_echo', stages=[['echo']], description='loaded lazily')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("GREY_TASK_MODULES", f"handlers.task_functions,{module}")
    monkeypatch.setattr(functions, "_builtins_loaded", False)
    monkeypatch.delitem(pipeline._PIPELINES, "lazy_echo", raising=False)
    found = get_pipeline("lazy_echo")
    assert found is not None and found.description == "loaded lazily" and module in sys.modules
    monkeypatch.delitem(pipeline._PIPELINES, "lazy_echo")


def test_registering_a_pipeline_checks_its_shape() -> None:
    with pytest.raises(ValueError, match="default_mode"):
        named_pipeline("bad", stages=[["echo"]], default_mode="zigzag")
    with pytest.raises(ValueError, match="stages"):
        named_pipeline("bad", stages=[[]])


# -- as real tasks -----------------------------------------------------------------------


async def test_named_pipelines_run_as_tasks_in_every_mode(gateway: Gateway) -> None:
    gateway.pool()
    ids = [
        (
            await gateway.submit(
                type="pipeline", payload={"pipeline": "report_generation", "mode": mode, "data": DATA}
            )
        )["task_id"]
        for mode in ("sequential", "parallel", "hybrid")
    ]
    tasks = await gateway.wait(ids)
    assert [t.status for t in tasks] == ["completed"] * 3
    sequential, parallel, hybrid = (t.result or {} for t in tasks)
    assert sequential["output"]["type"] == "json_report"
    assert sequential["output"]["data"]["title"] == "Q2 sales"
    assert parallel["output"][2] == sequential["output"] == hybrid["output"]
    assert [s["agent_id"] for s in sequential["steps"]] == [
        "agent-data-ingest-1",
        "agent-data-analysis-2",
        "agent-synthesis-3",
    ]
    events = gateway.store.tasks.events_after(ids[0], 0)
    agents = [(e.message or "").split()[0] for e in events if (e.message or "").startswith("agent-")]
    assert agents == ["agent-data-ingest-1", "agent-data-analysis-2", "agent-synthesis-3"]


async def test_submitting_an_unknown_or_unavailable_pipeline_is_refused(gateway: Gateway) -> None:
    unknown = await gateway.submit(expect=400, type="pipeline", payload={"pipeline": "nope", "data": DATA})
    assert unknown["error"]["details"]["field"] == "payload.pipeline"
    unavailable = await gateway.submit(
        expect=409, type="pipeline", payload={"pipeline": "real_time_monitoring", "data": DATA}
    )
    assert unavailable["error"]["code"] == "unschedulable"
    assert "no video decoder" in unavailable["error"]["message"]


async def test_step_retries_as_tasks_recover_or_fail_without_a_task_retry(gateway: Gateway) -> None:
    gateway.pool()
    recovering = {"pipeline": "test_flaky", "data": {"key": uuid.uuid4().hex, "fail": 2}}
    hopeless = {"pipeline": "test_flaky", "data": {"key": uuid.uuid4().hex, "fail": 99}}
    ids = [(await gateway.submit(type="pipeline", payload=p))["task_id"] for p in (recovering, hopeless)]
    recovered, failed = await gateway.wait(ids)
    assert recovered.status == "completed" and recovered.result is not None
    assert recovered.result["steps"][0]["retry_count"] == 2
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["code"] == "step_failed" and "StepRetriesExhausted" in failed.error["message"]
    assert failed.retry_count == 0  # the step's retries were the task's
    assert failed.result is not None and failed.result["steps"][0]["attempts"] == 4
