"""SIGTERM to a gateway with a long task running and a stream open: the stream ends with its
final event and the process exits within the configured grace."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import launch

GRACE_SECONDS = 6


def test_sigterm_ends_streams_with_a_final_event_and_exits_within_the_grace(tmp_path: Path) -> None:
    process, server = launch(tmp_path, GREY_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS))
    try:
        headers = {"X-API-Key": server.admin_key}
        submitted = httpx.post(
            f"{server.rest_url}/v1/tasks",
            json={"type": "stateless", "payload": {"function": "sleep", "data": {"seconds": 120}}},
            headers=headers,
        )
        assert submitted.status_code == 201, submitted.text
        task_id = submitted.json()["task_id"]
        received: list[str] = []
        opened = threading.Event()

        def read_stream() -> None:
            url = f"{server.rest_url}/v1/tasks/{task_id}/stream"
            with httpx.stream("GET", url, headers=headers, timeout=60) as stream:
                for line in stream.iter_lines():
                    received.append(line)
                    opened.set()

        reader = threading.Thread(target=read_stream, daemon=True)
        reader.start()
        assert opened.wait(10), "the stream never answered"

        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=GRACE_SECONDS + 10)
        took = time.monotonic() - began
        reader.join(5)

        assert took < GRACE_SECONDS + 2, f"exited after {took:.1f} s"
        assert "event: done" in received, received
    finally:
        if process.poll() is None:
            process.kill()
