"""Runs one task container through the engine's CLI and stops it when told to.

The engine's output (the container's stdout and stderr, merged, and the engine's own
errors) is read as it comes, keeping the last bytes only (bounded memory whatever the
container prints). `check` is called every `POLL_SECONDS` while the container runs; when
it raises (the task was cancelled or timed out), the container is stopped (`stop -t`,
then `rm --force`) before the exception goes on. The stop (and the log's hand-over) runs
in a helper thread that is waited for even if the worker's interrupter raises in this
thread meanwhile, so a stop is never abandoned half-way.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from runtime.execution.containers.command import ContainerSpec, remove_argv, run_argv, stop_argv
from runtime.execution.containers.settings import ContainerSettings
from runtime.execution.interrupts import TaskInterrupted

logger = logging.getLogger("grey.containers")

POLL_SECONDS = 0.1
#: How long a stop may take before the engine's process is killed outright.
STOP_WAIT_SECONDS = 20.0


@functools.cache
def engine_cwd() -> str:
    """A private working directory for the engine: conmon leaves an `oom` marker file in its
    working directory when a container is OOM-killed, which must not land in the worker's."""
    return tempfile.mkdtemp(prefix="grey-container-engine-")


class TailBuffer:
    """The last `limit` bytes written, and how many were written in all."""

    def __init__(self, limit: int) -> None:
        self.limit, self.total = limit, 0
        self._data = bytearray()
        self._lock = threading.Lock()

    def write(self, chunk: bytes) -> None:
        with self._lock:
            self.total += len(chunk)
            self._data += chunk
            if len(self._data) > self.limit:
                del self._data[: len(self._data) - self.limit]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def text(self, limit: int | None = None) -> tuple[str, bool]:
        """The last `limit` bytes (default all kept) as text, and whether any were cut;
        a cut output starts with a line saying how much was left out."""
        with self._lock:
            data = bytes(self._data if limit is None else self._data[-limit:])
        cut = self.total - len(data)
        text = data.decode("utf-8", errors="replace")
        if cut > 0:
            text = f"[output truncated: first {cut} of {self.total} bytes omitted]\n" + text
        return text, cut > 0


@dataclass(frozen=True)
class ContainerOutcome:
    exit_code: int
    output: str  # the last `output_bytes`, with a truncation line when cut
    output_truncated: bool
    output_bytes: int  # all the bytes the container printed
    duration_ms: int
    log: str  # the last `log_bytes`
    log_truncated: bool

    def result(self) -> dict[str, object]:
        """The task's result (the agreed task shape)."""
        return {
            "exit_code": self.exit_code,
            "output": self.output,
            "output_truncated": self.output_truncated,
            "output_bytes": self.output_bytes,
            "duration_ms": self.duration_ms,
        }


def _pump(stream: IO[bytes], buffer: TailBuffer) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
        buffer.write(chunk)


def _patiently(work: Callable[[], None]) -> None:
    """Runs `work` to its end in a helper thread, even if the worker's interrupter raises
    in this thread meanwhile (it raises once, after a task's cooperative stop)."""
    helper = threading.Thread(target=work, name="grey-container-wind-up")
    helper.start()
    while helper.is_alive():
        try:
            helper.join()
        except TaskInterrupted:
            continue


class ContainerRunner:
    """Runs containers with the settings of one node."""

    def __init__(self, settings: ContainerSettings) -> None:
        self.settings = settings

    def run(
        self,
        spec: ContainerSpec,
        check: Callable[[], None],
        on_output: Callable[[TailBuffer], None] | None = None,
    ) -> ContainerOutcome:
        """Runs `spec` to its end; `check` raising stops the container and propagates.
        `on_output` (when given) gets the log buffer when the run ends in any way."""
        buffer = TailBuffer(max(self.settings.log_bytes, self.settings.output_bytes))
        started = time.monotonic()
        process = subprocess.Popen(
            run_argv(self.settings, spec),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a signal to the worker's group is not the container's
            cwd=engine_cwd(),
        )
        assert process.stdout is not None
        reader = threading.Thread(target=_pump, args=(process.stdout, buffer), daemon=True)
        reader.start()
        try:
            while True:
                try:
                    code = process.wait(timeout=POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    check()
        finally:

            def wind_up() -> None:
                if process.returncode is None:
                    self.stop(spec.name, process)
                reader.join(timeout=5)
                if on_output is not None:
                    on_output(buffer)

            _patiently(wind_up)
        output, output_cut = buffer.text(self.settings.output_bytes)
        log, log_cut = buffer.text()
        return ContainerOutcome(
            exit_code=code,
            output=output,
            output_truncated=output_cut,
            output_bytes=buffer.total,
            duration_ms=round((time.monotonic() - started) * 1000),
            log=log,
            log_truncated=log_cut,
        )

    def stop(self, name: str, process: subprocess.Popen[bytes] | None = None) -> None:
        """Stops and removes the container `name`, and reaps the engine's process. The
        stop is repeated while the engine still runs: a container still being created
        when the first stop came is stopped by the next."""
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        try:
            while True:
                self._engine(stop_argv(self.settings, name), STOP_WAIT_SECONDS)
                if process is None:
                    break
                try:
                    process.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        process.kill()
                        process.wait()
                        break
        finally:
            self.remove(name)

    def remove(self, name: str) -> None:
        self._engine(remove_argv(self.settings, name), STOP_WAIT_SECONDS)

    def _engine(self, argv: list[str], timeout: float) -> None:
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, cwd=engine_cwd())
        except (OSError, subprocess.TimeoutExpired) as error:
            logger.warning("%s failed: %s", " ".join(argv[:4]), error)
            return
        if done.returncode != 0:
            logger.warning("%s: exit %d: %s", " ".join(argv), done.returncode, done.stderr[-500:])
