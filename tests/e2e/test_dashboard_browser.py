"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright
against a real `grey serve` (embedded default: SQLite, in-process workers).

What a user does: sign in with an API key, watch a task submitted through the API go
pending -> running -> completed on the page without reloading it, cancel another from its
task page, see a `grey worker` killed with SIGKILL go down on the cluster page. What must
never happen, checked on every page the tests open: the key in a URL, a request outside the
server's origin, a Content-Security-Policy violation. Without Chromium the tests fail when
CI is set and are skipped otherwise, saying what is missing (bench.browser).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from bench.browser import VIEWPORT, Recorder, chromium, chromium_missing, sign_in
from bench.cluster import Child
from tests.e2e.conftest import ROOT, Server, launch
from tests.execution.conftest import broker_url_for
from tests.support.containers import missing_or_skip

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

WAIT_MS = 30_000  # two cores shared with other work: generous bounds on waits for the page
STATUSES = ("pending", "running", "completed", "failed", "cancelled", "timeout")  # Grey's spelling
THREADS = "1"  # one in-process worker thread: a task submitted behind a busy one stays pending


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if (missing := chromium_missing()) is not None:
        missing_or_skip(f"{missing}; the dashboard's browser tests need it")
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    process, running = launch(tmp_path_factory.mktemp("dashboard"), GREY_WORKER_THREADS=THREADS)
    yield running
    _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _submit(server: Server, key: str, seconds: float) -> str:
    body = {"type": "stateless", "payload": {"function": "sleep", "data": {"seconds": seconds}}}
    answer = httpx.post(f"{server.rest_url}/v1/tasks", json=body, headers={"X-API-Key": key}, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["task_id"])


def _status(server: Server, key: str, task_id: str) -> str:
    answer = httpx.get(f"{server.rest_url}/v1/tasks/{task_id}", headers={"X-API-Key": key}, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


def _mint_key(server: Server, tenant: str) -> str:
    """A key of another tenant, minted with `grey keys create` on the server's store."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "runtime.cli", "keys", "create", "--tenant", tenant),
            *("--scopes", "tasks:read,tasks:write,cluster:read", "--database-url", _store_url(server.home)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return next(word for word in done.stdout.split() if word.startswith("grey_api_key_"))


def _store_url(home: Path) -> str:
    return f"sqlite:///{home / 'grey.db'}"


@contextmanager
def _dashboard(browser: Browser, server: Server, key: str) -> Iterator[tuple[Page, Recorder]]:
    """A fresh browser context (its own cookies), signed in, its traffic recorded; on leaving,
    what must never happen is checked: the key in a URL, another origin, a CSP violation."""
    context = browser.new_context(viewport=VIEWPORT)
    recorder = Recorder()
    page = recorder.attach(context.new_page())
    page.on("dialog", lambda dialog: dialog.accept())  # a "cancel this task?" confirm
    try:
        sign_in(page, server.rest_url, key, timeout_ms=WAIT_MS)
        deadline = time.monotonic() + WAIT_MS / 1000
        while recorder.frames_received == 0:  # the live socket is open: it has said hello
            assert time.monotonic() < deadline, f"no message on the live socket {recorder.websockets}"
            page.wait_for_timeout(50)
        yield page, recorder
        _assert_clean(recorder, server.rest_url, key)
    finally:
        context.close()


def _assert_clean(recorder: Recorder, origin: str, key: str) -> None:
    assert recorder.urls, "the page made no request at all"
    assert not [url for url in recorder.urls + recorder.websockets if key in url or _quoted(key) in url]
    assert recorder.foreign(origin) == []
    assert recorder.csp_violations() == []


def _quoted(key: str) -> str:
    from urllib.parse import quote

    return quote(key, safe="")


def _go(page: Page, route: str) -> None:
    """Hash routing: the page changes view without loading a document."""
    page.evaluate("route => { location.hash = route; }", route)


def _mark(page: Page) -> None:
    """A mark only this document holds: a reload or navigation would lose it."""
    page.evaluate("() => { window.__greyTestMark = 'kept'; }")


def _still_marked(page: Page) -> bool:
    return bool(page.evaluate("() => window.__greyTestMark === 'kept'"))


WATCH_STATUS = """
id => {
  window.__statuses = [];
  const read = () => {
    const cell = document.querySelector(`tr[data-task-id="${id}"] [data-field="status"]`);
    const status = cell ? cell.textContent.trim() : null;
    const seen = window.__statuses;
    if (status && seen[seen.length - 1] !== status) seen.push(status);
  };
  new MutationObserver(read).observe(document.documentElement,
    {subtree: true, childList: true, characterData: true, attributes: true});
  read();
}
"""


def test_the_recorder_sees_a_csp_violation_and_a_request_to_another_origin(browser: Browser) -> None:
    # What the other tests assert is absent must be seen when present: a page (answered by
    # the test itself, no network) whose inline script its own policy refuses, and which
    # loads an image from another origin.
    context = browser.new_context()
    recorder = Recorder()
    page = recorder.attach(context.new_page())
    policy = "default-src 'none'; script-src 'self'; img-src *"
    body = '<img src="http://elsewhere.test/pixel.png"><script>document.title = "ran"</script>'
    try:
        context.route(
            "http://dashboard.test/",
            lambda route: route.fulfill(
                body=body, content_type="text/html", headers={"content-security-policy": policy}
            ),
        )
        context.route("http://elsewhere.test/**", lambda route: route.fulfill(status=404))
        page.goto("http://dashboard.test/")
        page.wait_for_load_state("load")
        assert page.title() != "ran"
        assert recorder.csp_violations(), recorder.console
        assert recorder.foreign("http://dashboard.test") == ["http://elsewhere.test/pixel.png"]
    finally:
        context.close()


def test_a_wrong_key_shows_the_sign_in_error(browser: Browser, server: Server) -> None:
    context = browser.new_context()
    recorder = Recorder()
    page = recorder.attach(context.new_page())
    try:
        page.goto(f"{server.rest_url}/dashboard/")
        wrong = "grey_api_key_" + "x" * 40
        page.fill("#api-key", wrong)
        page.click("#sign-in")
        page.wait_for_selector("#sign-in-error", state="visible", timeout=WAIT_MS)
        assert page.locator("#sign-in-error").inner_text().strip()
        assert not page.locator("#signed-in-tenant").is_visible()
        assert page.get_attribute("#api-key", "type") == "password"
        _assert_clean(recorder, server.rest_url, wrong)
    finally:
        context.close()


def test_the_page_is_served_with_a_strict_csp_and_needs_nothing_from_elsewhere(
    browser: Browser, server: Server
) -> None:
    answer = httpx.get(f"{server.rest_url}/dashboard/", timeout=10)
    assert answer.status_code == 200
    policy = answer.headers.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives.get("default-src") in (["'self'"], ["'none'"]), policy
    scripts = directives.get("script-src", directives["default-src"])
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"} & set(scripts), policy
    with _dashboard(browser, server, server.admin_key) as (page, _):
        for view, selector in (
            ("tasks", "#tasks"),
            ("cluster", "#as-of"),
            ("models", "#models"),
            ("capacity", "#capacity"),
        ):
            page.click(f'a[data-nav="{view}"]')
            page.wait_for_selector(selector, state="visible", timeout=WAIT_MS)
            assert page.url.endswith(f"#/{view}")
        _go(page, "#/models")
        for selector in ("#models", "#chunks", "#services"):
            page.wait_for_selector(selector, state="visible", timeout=WAIT_MS)
        assert page.locator("#signed-in-tenant").inner_text().strip()


def test_a_submitted_task_goes_pending_running_completed_on_the_page_without_reloading(
    browser: Browser, server: Server
) -> None:
    key = server.admin_key
    with _dashboard(browser, server, key) as (page, recorder):
        _go(page, "#/tasks")
        page.wait_for_selector("#tasks", timeout=WAIT_MS)
        _mark(page)
        documents = len(recorder.documents)
        # The only worker thread is busy for a few seconds: the watched task waits pending.
        busy = _submit(server, key, 4.0)
        page.wait_for_selector(f'tr[data-task-id="{busy}"]', timeout=WAIT_MS)
        watched = _submit(server, key, 2.0)
        page.wait_for_selector(f'tr[data-task-id="{watched}"]', timeout=WAIT_MS)
        page.evaluate(WATCH_STATUS, watched)
        page.wait_for_function("() => (window.__statuses || []).includes('completed')", timeout=WAIT_MS * 2)
        seen = page.evaluate("() => window.__statuses")
        assert _status(server, key, watched) == "completed"
        assert seen[-1] == "completed"
        assert seen == ["pending", "running", "completed"], seen
        assert _still_marked(page), "the page was reloaded"
        assert len(recorder.documents) == documents, recorder.documents


WATCH_TASK_PAGE = """
() => {
  window.__statuses = [];
  const read = () => {
    const node = document.querySelector('#task-status');
    const status = node ? node.textContent.trim() : null;
    const seen = window.__statuses;
    if (status && seen[seen.length - 1] !== status) seen.push(status);
  };
  new MutationObserver(read).observe(document.documentElement,
    {subtree: true, childList: true, characterData: true, attributes: true});
  read();
}
"""


def test_a_task_page_follows_its_task_from_pending_to_completed_without_reloading(
    browser: Browser, server: Server
) -> None:
    key = server.admin_key
    with _dashboard(browser, server, key) as (page, recorder):
        busy = _submit(server, key, 4.0)  # the only worker thread: the watched task waits pending
        watched = _submit(server, key, 2.0)
        _go(page, f"#/tasks/{watched}")
        page.wait_for_function(
            "id => document.querySelector('#task-status')?.textContent.trim() === 'pending'",
            arg=watched,
            timeout=WAIT_MS,
        )
        page.evaluate(WATCH_TASK_PAGE)
        _mark(page)
        documents = len(recorder.documents)
        page.wait_for_function("() => window.__statuses.includes('completed')", timeout=WAIT_MS * 2)
        seen = page.evaluate("() => window.__statuses")
        assert seen == ["pending", "running", "completed"], seen
        assert _status(server, key, busy) == "completed"
        assert page.locator("#task-timeline li").count() >= 2  # started, completed
        assert _still_marked(page), "the page was reloaded"
        assert len(recorder.documents) == documents, recorder.documents


def test_a_task_cancelled_from_its_page_shows_cancelled(browser: Browser, server: Server) -> None:
    key = server.admin_key
    victim = _submit(server, key, 120.0)
    with _dashboard(browser, server, key) as (page, _):
        _go(page, f"#/tasks/{victim}")
        page.wait_for_function(
            "() => document.querySelector('#task-status')?.textContent.trim() === 'running'",
            timeout=WAIT_MS * 2,
        )
        assert page.locator("#task-timeline li").count() >= 1
        _mark(page)
        page.click("button#cancel-task")
        page.wait_for_function(
            "() => document.querySelector('#task-status')?.textContent.trim() === 'cancelled'",
            timeout=WAIT_MS,
        )
        assert _status(server, key, victim) == "cancelled"
        assert _still_marked(page), "the page was reloaded"


def test_the_status_filter_shows_only_tasks_of_that_status(browser: Browser, server: Server) -> None:
    key, headers = server.admin_key, {"X-API-Key": server.admin_key}
    body = {"type": "stateless", "payload": {"function": "fail", "data": {"message": "on purpose"}}}
    answer = httpx.post(f"{server.rest_url}/v1/tasks", json=body, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    failed, completed = answer.json()["task_id"], _submit(server, key, 0.0)
    deadline = time.monotonic() + 60
    while {_status(server, key, failed), _status(server, key, completed)} != {"failed", "completed"}:
        assert time.monotonic() < deadline, "the tasks did not finish"
        time.sleep(0.1)
    with _dashboard(browser, server, key) as (page, _):
        _go(page, "#/tasks")
        page.wait_for_selector(f'tr[data-task-id="{completed}"]', timeout=WAIT_MS)
        page.select_option("select#filter-status", "failed")
        page.wait_for_selector(f'tr[data-task-id="{completed}"]', state="detached", timeout=WAIT_MS)
        page.wait_for_selector(f'tr[data-task-id="{failed}"]', timeout=WAIT_MS)
        shown = page.locator('#tasks tr[data-task-id] [data-field="status"]').all_inner_texts()
        assert shown and {text.strip() for text in shown} == {"failed"}, shown


def test_another_tenant_does_not_see_the_task(browser: Browser, server: Server) -> None:
    theirs = _submit(server, server.admin_key, 0.1)
    other_key = _mint_key(server, "tenant-b")
    own = _submit(server, other_key, 0.1)
    with _dashboard(browser, server, other_key) as (page, _):
        assert page.locator("#signed-in-tenant").inner_text().strip() == "tenant-b"
        _go(page, "#/tasks")
        page.wait_for_selector(f'tr[data-task-id="{own}"]', timeout=WAIT_MS)
        assert page.locator(f'tr[data-task-id="{theirs}"]').count() == 0
        with page.expect_response(lambda response: theirs in response.url, timeout=WAIT_MS) as asked:
            _go(page, f"#/tasks/{theirs}")
        assert asked.value.status == 404, asked.value.status  # not found, as the API says
        page.wait_for_timeout(500)  # the page has rendered that answer (no DOM sign to wait for)
        shown = page.locator("#task-status").all_inner_texts()
        assert not [text for text in shown if text.strip() in STATUSES], shown


# -- a worker process going down --------------------------------------------------------------

HEARTBEAT = {"interval_seconds": 0.5, "timeout_seconds": 3.0}  # down 3 s after the last beat


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """`grey serve` on Redis (db of GREY_TEST_REDIS_URL) and SQLite, no in-process workers,
    short heartbeats; the environment a `grey worker` of the same cluster needs."""
    broker = broker_url_for("redis")
    home = tmp_path_factory.mktemp("dashboard-cluster")
    config = home / "cluster.yaml"
    config.write_text(
        yaml.safe_dump({"pools": {"cpu": {"nodes": 1, "threads_per_node": 1}}, "heartbeat": HEARTBEAT})
    )
    env = {
        "GREY_BROKER_URL": broker,
        "GREY_DATABASE_URL": _store_url(home),
        "GREY_CLUSTER_CONFIG": str(config),
        "GREY_WORKER_THREADS": "0",
    }
    process, running = launch(home, **env)
    yield running, {**os.environ, "PYTHONPATH": str(ROOT), "GREY_HOME": str(home), **env}
    _stop(process)


def _nodes(server: Server) -> object:
    answer = httpx.get(
        f"{server.rest_url}/v1/cluster/nodes", headers={"X-API-Key": server.admin_key}, timeout=10
    )
    return answer.json()


def _worker_rows(page: Page) -> dict[str, str]:
    rows: Any = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('tr[data-worker-id]')]"
        ".map(row => [row.dataset.workerId, row.dataset.alive]))"
    )
    return dict(rows)


def test_a_killed_worker_goes_down_on_the_cluster_page(
    browser: Browser, cluster: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = cluster
    with _dashboard(browser, server, server.admin_key) as (page, _):
        _go(page, "#/cluster")
        page.wait_for_selector("#as-of", timeout=WAIT_MS)
        before = _worker_rows(page)
        _mark(page)
        argv = [sys.executable, "-m", "runtime.cli", "worker", "--processes", "1", "--threads", "1"]
        worker = Child("worker", argv, env, tmp_path / "worker.log").start()
        try:
            deadline = time.monotonic() + 60
            while not (new := {w: a for w, a in _worker_rows(page).items() if w not in before}):
                assert worker.alive, worker.log_text()
                assert time.monotonic() < deadline, (
                    f"no new worker on the page ({_worker_rows(page)}); the API's nodes: "
                    f"{_nodes(server)}; the worker's log:\n{worker.log_text()[-2000:]}"
                )
                page.wait_for_timeout(200)
            (worker_id,) = new
            row = f'tr[data-worker-id="{worker_id}"]'
            page.wait_for_selector(f'{row}[data-alive="true"]', timeout=WAIT_MS)
            as_of = page.locator("#as-of").inner_text().strip()
            assert as_of
        finally:
            worker.kill()  # SIGKILL to the worker and its node processes
        page.wait_for_selector(f'{row}[data-alive="false"]', timeout=WAIT_MS * 2)
        assert page.locator(f'{row} [data-field="state"]').inner_text().strip() == "down"
        assert page.locator("#as-of").inner_text().strip() != as_of, "the as-of time did not move"
        assert _still_marked(page), "the page was reloaded"
