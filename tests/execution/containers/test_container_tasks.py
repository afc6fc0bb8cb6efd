"""Container tasks really run: output and exit code into the result, the log kept."""

from __future__ import annotations

from tests.execution.conftest import Gateway
from tests.execution.containers.conftest import submit_container


async def test_a_container_task_completes_with_its_output_and_exit_code(container_gateway: Gateway) -> None:
    task = await submit_container(container_gateway, "echo hello from $(uname -s); echo oops >&2")
    [done] = await container_gateway.wait(task.task_id, timeout=60)
    assert done.status == "completed", (done.error, done.result)
    assert done.result is not None
    assert done.result["exit_code"] == 0
    assert "hello from Linux" in done.result["output"] and "oops" in done.result["output"]
    assert done.result["output_truncated"] is False
    assert done.result["duration_ms"] > 0
    log = container_gateway.store.logs.get("acme", task.task_id)
    assert log is not None and "hello from Linux" in log.text and log.attempt == done.attempt
    assert container_gateway.store.logs.get("another-tenant", task.task_id) is None


async def test_a_non_zero_exit_fails_the_task_and_keeps_its_result(container_gateway: Gateway) -> None:
    task = await submit_container(container_gateway, "echo about to fail; exit 3")
    [done] = await container_gateway.wait(task.task_id, timeout=60)
    assert done.status == "failed"
    assert done.result is not None and done.result["exit_code"] == 3
    assert "about to fail" in done.result["output"]
    assert done.error is not None and done.error["code"] == "container_failed"


async def test_long_output_is_truncated_in_the_result_and_kept_in_the_log(container_gateway: Gateway) -> None:
    # 100 KiB of output, then a last line: the result keeps the last 64 KiB, saying so.
    task = await submit_container(container_gateway, "head -c 102400 /dev/zero | tr '\\0' x; echo; echo LAST")
    [done] = await container_gateway.wait(task.task_id, timeout=60)
    assert done.status == "completed", done.error
    assert done.result is not None
    assert done.result["output_truncated"] is True
    assert done.result["output_bytes"] == 102400 + 1 + 5
    assert done.result["output"].startswith("[output truncated:")
    assert done.result["output"].rstrip().endswith("LAST")
    assert len(done.result["output"].encode()) <= 64 * 1024 + 100
    log = container_gateway.store.logs.get("acme", task.task_id)
    assert log is not None and log.truncated is False and log.total_bytes == 102400 + 6


async def test_a_missing_image_fails_the_task_with_the_engines_message(container_gateway: Gateway) -> None:
    task = await submit_container(container_gateway, "true", image="localhost/no-such-image:never")
    [done] = await container_gateway.wait(task.task_id, timeout=60)
    assert done.status == "failed"
    assert done.result is not None and done.result["exit_code"] != 0
    assert "no-such-image" in done.result["output"]
