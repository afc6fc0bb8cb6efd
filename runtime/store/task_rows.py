"""What the task modules share: rows as records, event rows, and who is told of a commit.

Every status change and progress report appends a row to `task_events` in the
transaction that makes it (streams replay them in order); once committed, the listeners
(the runtime's event bus) are told. Tenant cancels (tasks.py) and the runtime's
transitions (lifecycle.py) both do this, so they share one list of listeners.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from runtime.store.records import TaskRecord
from runtime.store.schema import task_events, tasks

INSERT_EVENT = task_events.insert()

if tuple(tasks.c.keys()) != tuple(field.name for field in dataclass_fields(TaskRecord)):
    raise RuntimeError("TaskRecord fields must list the tasks columns in table order")


def as_record(row: Row[Any] | tuple[Any, ...]) -> TaskRecord:
    """Positional: several times faster than by name, and the check above keeps it right."""
    return TaskRecord(*row)


def event_row(
    task_id: str, seq: int, status: str, progress: int, message: str | None, at: datetime
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "seq": seq,
        "status": status,
        "progress": progress,
        "message": message,
        "at": at,
    }


class ChangeListener:
    """Told about every task event once it is committed (visible to every reader)."""

    def after_commit(self, task_id: str) -> None:
        """Runs after the commit, in the writer's thread: must not block."""


class Listeners(list[ChangeListener]):
    """The listeners of one store: the runtime appends its event bus here."""

    def committed(self, task_id: str) -> None:
        for listener in self:
            listener.after_commit(task_id)
