from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from runtime.store import InvalidCursor, Store, TaskRecord
from tests.store.helpers import T0, new_task


def _ids(tasks: list[TaskRecord]) -> list[str]:
    return [task.task_id for task in tasks]


def _insert(store: Store, count: int, tenant_id: str = "tenant-a", **fields: object) -> list[str]:
    """`count` tasks one second apart; ids returned newest first (the list order)."""
    ids = [store.tasks.insert(new_task(tenant_id, at=i, **fields)).task_id for i in range(count)]
    return ids[::-1]


def test_tasks_are_listed_newest_first(store: Store) -> None:
    newest_first = _insert(store, 3)
    page = store.tasks.list("tenant-a")
    assert _ids(page.tasks) == newest_first
    assert (page.total, page.has_more, page.next_cursor) == (3, False, None)


def test_status_filter_takes_several_statuses(store: Store) -> None:
    pending, running, completed = _insert(store, 3)[::-1]
    store.lifecycle.transition(running, from_statuses=("pending",), to_status="running")
    store.lifecycle.transition(completed, from_statuses=("pending",), to_status="completed")
    page = store.tasks.list("tenant-a", statuses=["running", "pending"])
    assert _ids(page.tasks) == [running, pending]
    assert page.total == 2
    assert _ids(store.tasks.list("tenant-a", statuses=["completed"]).tasks) == [completed]
    assert store.tasks.list("tenant-a", statuses=[]).total == 3  # empty means any


def test_type_filter(store: Store) -> None:
    [batch] = _insert(store, 1, type="batch")
    store.tasks.insert(new_task(type="stateless"))
    page = store.tasks.list("tenant-a", type="batch")
    assert (_ids(page.tasks), page.total) == ([batch], 1)


def test_every_label_filter_must_match(store: Store) -> None:
    both = store.tasks.insert(new_task(labels={"env": "prod", "team": "data"}, at=0))
    store.tasks.insert(new_task(labels={"env": "prod", "team": "web"}, at=1))
    store.tasks.insert(new_task(labels={"env": "dev", "team": "data"}, at=2))
    store.tasks.insert(new_task(labels={"team": "data"}, at=3))
    store.tasks.insert(new_task("tenant-b", labels={"env": "prod", "team": "data"}, at=4))

    page = store.tasks.list("tenant-a", labels={"env": "prod", "team": "data"})
    assert (_ids(page.tasks), page.total) == ([both.task_id], 1)
    assert store.tasks.list("tenant-a", labels={"team": "data"}).total == 3
    assert store.tasks.list("tenant-a", labels={"env": "staging"}).total == 0


def test_since_is_inclusive_and_until_exclusive(store: Store) -> None:
    newest_first = _insert(store, 5)  # created at T0 + 0..4 s
    page = store.tasks.list("tenant-a", since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3))
    assert _ids(page.tasks) == newest_first[2:4]  # created at 2 s and 1 s
    assert page.total == 2


def test_filters_combine(store: Store) -> None:
    match = store.tasks.insert(new_task(type="batch", labels={"env": "prod"}, at=5))
    store.tasks.insert(new_task(type="batch", labels={"env": "prod"}, at=50))  # too late
    store.tasks.insert(new_task(type="stateless", labels={"env": "prod"}, at=6))
    page = store.tasks.list(
        "tenant-a",
        statuses=["pending"],
        type="batch",
        labels={"env": "prod"},
        since=T0,
        until=T0 + timedelta(seconds=10),
    )
    assert _ids(page.tasks) == [match.task_id]


def _walk(store: Store, limit: int, **filters: object) -> list[tuple[list[str], int, bool]]:
    pages, cursor = [], None
    while True:
        page = store.tasks.list("tenant-a", limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        pages.append((_ids(page.tasks), page.total, page.has_more))
        if not page.has_more:
            assert page.next_cursor is None
            return pages
        assert page.next_cursor is not None
        cursor = page.next_cursor


def test_cursor_pages_cover_every_task_once_in_order(store: Store) -> None:
    newest_first = _insert(store, 25)
    pages = _walk(store, limit=10)
    assert [len(ids) for ids, _, _ in pages] == [10, 10, 5]
    assert [total for _, total, _ in pages] == [25, 25, 25]
    assert [has_more for _, _, has_more in pages] == [True, True, False]
    assert [task_id for ids, _, _ in pages for task_id in ids] == newest_first


def test_cursor_pages_break_ties_on_identical_creation_times(store: Store) -> None:
    ids = [store.tasks.insert(new_task(at=0)).task_id for _ in range(7)]
    pages = _walk(store, limit=3)
    assert [task_id for page_ids, _, _ in pages for task_id in page_ids] == sorted(ids, reverse=True)


def test_cursor_pages_keep_the_filters_and_their_total(store: Store) -> None:
    for i in range(12):
        store.tasks.insert(new_task(at=i, labels={"parity": "even" if i % 2 == 0 else "odd"}))
    pages = _walk(store, limit=4, labels={"parity": "even"})
    assert [(len(ids), total, more) for ids, total, more in pages] == [
        (4, 6, True),
        (2, 6, False),
    ]


def test_an_exactly_full_last_page_has_no_more(store: Store) -> None:
    _insert(store, 10)
    page = store.tasks.list("tenant-a", limit=10)
    assert (len(page.tasks), page.has_more, page.next_cursor) == (10, False, None)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "%%%",
        _b64(b"\xff\xfe"),
        _b64(b"not json"),
        _b64(b"[1, 2]"),
        _b64(json.dumps({"c": "2024-01-15T10:30:00+00:00"}).encode()),
        _b64(json.dumps({"c": "yesterday", "t": "task_x"}).encode()),
        _b64(json.dumps({"c": "2024-01-15T10:30:00", "t": "task_x"}).encode()),  # naive
        _b64(json.dumps({"c": "2024-01-15T10:30:00+00:00", "t": 7}).encode()),
    ],
)
def test_a_cursor_the_store_did_not_make_is_invalid(store: Store, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        store.tasks.list("tenant-a", cursor=cursor)


def test_limit_below_one_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.tasks.list("tenant-a", limit=0)
