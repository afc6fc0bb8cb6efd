"""The Orchestrator's agents: data_ingest, data_analysis, synthesis, api_caller (against a
local HTTP server)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from handlers.task_functions.agents import (
    AgentInputError,
    ApiCallerInput,
    ApiCallFailed,
    ApiCallRefused,
    PipelineData,
    analyse,
    api_caller,
    host_allowed,
    ingest,
)
from runtime.execution.errors import InvalidPayload
from runtime.execution.functions import TaskContext, TransientError, get_function, is_transient
from runtime.execution.pipeline import StepFailed, run_pipeline
from runtime.execution.submission import check_payload

RAW: dict[str, Any] = {
    "inputs": [
        {"input_id": "t1", "type": "text", "data": "The cat sat. The cat ran away! Dogs bark?"},
        {"input_id": "t2", "type": "text", "data": "A cat and a dog"},
        {
            "input_id": "j1",
            "type": "json",
            "data": json.dumps({"sales": [{"amount": 10, "region": "eu"}, {"amount": 30, "region": "us"}]}),
        },
        {"input_id": "j2", "type": "json", "data": {"sales": {"amount": 20, "region": "eu"}, "ok": True}},
        {"input_id": "pic", "type": "image", "data": "iVBORw0KGgo="},
        {"input_id": "odd", "type": "csv", "data": "a,b"},
    ],
    "metadata": {"report_title": "Weekly"},
}


@dataclass
class Context(TaskContext):
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.check()
        self.slept.append(seconds)


def context(seconds: float = 30) -> Context:
    return Context("task_1", "acme", "node_1", 1, 0, time.monotonic() + seconds)


def raw() -> PipelineData:
    return PipelineData.model_validate(RAW)


# -- data_ingest, data_analysis, synthesis -----------------------------------------------


def test_data_ingest_normalises_text_json_and_records_unsupported_types() -> None:
    out = ingest(raw())
    by_id = {r["input_id"]: r for r in out["records"]}
    text = by_id["t1"]["text"]
    assert (text["words"], text["unique_words"], text["sentences"]) == (9, 7, 3)
    assert text["top_terms"][0] == {"term": "cat", "count": 2}
    assert by_id["j1"]["json"]["kind"] == "object"
    assert by_id["j1"]["json"]["value"]["sales"][1]["amount"] == 30
    assert by_id["pic"]["status"] == "unsupported" and "decoder" in by_id["pic"]["reason"]
    assert by_id["odd"]["status"] == "unsupported" and "'csv'" in by_id["odd"]["reason"]
    assert out["summary"] == {
        "inputs": 6,
        "ingested": 4,
        "unsupported": 2,
        "by_type": {"csv": 1, "image": 1, "json": 2, "text": 2},
    }
    assert out["metadata"] == {"report_title": "Weekly"}


def test_invalid_json_fails_for_good_naming_the_input() -> None:
    data = PipelineData.model_validate({"inputs": [{"input_id": "broken", "type": "json", "data": "{nope"}]})
    with pytest.raises(AgentInputError, match="input 'broken': invalid JSON") as raised:
        ingest(data)
    assert not is_transient(raised.value)
    nan = PipelineData.model_validate({"inputs": [{"input_id": "nan", "type": "json", "data": "[NaN]"}]})
    with pytest.raises(AgentInputError, match="'nan'"):
        ingest(nan)


def test_data_analysis_gives_field_statistics_and_term_frequencies() -> None:
    analysis = analyse(raw())
    amount = analysis["json"]["numeric_fields"]["sales.amount"]
    assert amount == {"count": 3, "min": 10, "max": 30, "mean": 20.0, "stdev": 8.164966}
    assert analysis["json"]["other_fields"]["sales.region"] == {
        "count": 3,
        "types": {"string": 3},
        "distinct": 2,
    }
    assert analysis["json"]["other_fields"]["ok"]["types"] == {"boolean": 1}
    text = analysis["text"]
    assert (text["documents"], text["words"], text["sentences"]) == (2, 14, 4)
    assert text["top_terms"][0] == {"term": "cat", "count": 3, "frequency": round(3 / 14, 6)}
    assert [u["input_id"] for u in analysis["inputs"]["unsupported"]] == ["pic", "odd"]


def test_data_analysis_takes_raw_data_ingested_records_or_a_list_of_them() -> None:
    function = get_function("data_analysis")
    assert function is not None
    ctx = context()
    from_raw = function.fn(function.parse(RAW), ctx)
    from_records = function.fn(function.parse(ingest(raw())), ctx)
    assert from_raw == from_records
    halves = [
        {**RAW, "inputs": RAW["inputs"][:3]},
        ingest(PipelineData.model_validate({**RAW, "inputs": RAW["inputs"][3:]})),
    ]
    assert function.fn(function.parse(halves), ctx) == from_raw


def test_synthesis_reports_on_the_analysis() -> None:
    function = get_function("synthesis")
    assert function is not None
    report = function.fn(function.parse(analyse(raw())), context())
    assert report["type"] == "json_report"
    data = report["data"]
    assert data["title"] == "Weekly"
    assert [s["heading"] for s in data["sections"]] == ["Inputs", "Text", "JSON data"]
    assert "6 inputs" in data["summary"] and "sales.amount: mean 20" in data["summary"]
    assert function.fn(function.parse(RAW), context()) == report  # raw data: analysed first
    untitled = function.fn(function.parse({"inputs": []}), context())
    assert untitled["data"]["title"] == "Report" and [s["heading"] for s in untitled["data"]["sections"]] == [
        "Inputs"
    ]


# -- api_caller --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    hits: Counter[str] = Counter()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except ConnectionError:
            pass  # the client gave up (the timeout test)

    def do_GET(self) -> None:
        self.hits[self.path] += 1
        if self.path.startswith("/flaky/"):
            if self.hits[self.path] <= 1:
                return self._answer(503, {"error": "busy"})
            return self._answer(200, {"hits": self.hits[self.path]})
        if self.path == "/missing":
            return self._answer(404, {"error": "no such thing"})
        if self.path == "/slow":
            time.sleep(1.0)
        return self._answer(200, {"path": self.path, "header": self.headers.get("X-Probe")})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        return self._answer(201, {"received": json.loads(self.rfile.read(length))})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def calls(*specs: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    inputs = [{"input_id": f"c{n}", "type": "json", "data": json.dumps(s)} for n, s in enumerate(specs)]
    return {"inputs": inputs + (extra or []), "metadata": {}}


def call(data: dict[str, Any], seconds: float = 30) -> Any:
    return api_caller(ApiCallerInput.model_validate(data), context(seconds))


def test_api_caller_calls_allowed_hosts(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREY_API_CALL_ALLOWED_HOSTS", f"example.org, {server}")
    out = call(
        calls(
            {"url": f"http://{server}/hello", "headers": {"X-Probe": "yes"}},
            {"method": "post", "url": f"http://{server}/items", "json": {"n": 1}},
            extra=[{"input_id": "note", "type": "text", "data": "not a call"}],
        )
    )
    first, second = out["calls"]
    assert (first["status_code"], first["body"]) == (200, {"path": "/hello", "header": "yes"})
    assert (second["method"], second["status_code"], second["body"]) == ("POST", 201, {"received": {"n": 1}})
    assert out["skipped"] == [
        {"input_id": "note", "type": "text", "reason": "api_caller calls json inputs only"}
    ]


def test_api_caller_refuses_hosts_the_operator_did_not_allow(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GREY_API_CALL_ALLOWED_HOSTS", raising=False)
    with pytest.raises(ApiCallRefused, match="GREY_API_CALL_ALLOWED_HOSTS") as raised:
        call(calls({"url": f"http://{server}/hello"}))
    assert not is_transient(raised.value) and "now: none" in str(raised.value)
    monkeypatch.setenv("GREY_API_CALL_ALLOWED_HOSTS", "127.0.0.1:1")  # another port
    with pytest.raises(ApiCallRefused, match=f"host {server} is not allowed"):
        call(calls({"url": f"http://{server}/hello"}))


def test_api_caller_failures_are_transient_only_when_worth_retrying(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREY_API_CALL_ALLOWED_HOSTS", f"{server},127.0.0.1:9")
    with pytest.raises(TransientError, match="answered 503"):
        call(calls({"url": f"http://{server}/flaky/direct"}))
    with pytest.raises(ApiCallFailed, match="answered 404") as missing:
        call(calls({"url": f"http://{server}/missing"}))
    assert not is_transient(missing.value)
    with pytest.raises(ConnectionError):  # nothing listens on port 9 (discard)
        call(calls({"url": "http://127.0.0.1:9/"}))
    clock = time.monotonic()
    with pytest.raises(TimeoutError):  # the call's timeout is bounded by the task's deadline
        call(calls({"url": f"http://{server}/slow"}), seconds=0.3)
    assert time.monotonic() - clock < 0.9


def test_api_call_pipeline_retries_a_503_then_succeeds(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREY_API_CALL_ALLOWED_HOSTS", server)
    ctx = context()
    result = run_pipeline(
        {"pipeline": "api_call", "data": calls({"url": f"http://{server}/flaky/pipeline"})}, ctx
    )
    [step] = result["steps"]
    assert (step["agent_id"], step["status"], step["retry_count"]) == ("agent-api-caller-1", "completed", 1)
    assert step["output"]["calls"][0]["body"] == {"hits": 2}
    assert ctx.slept == [0.2]
    monkeypatch.setenv("GREY_API_CALL_ALLOWED_HOSTS", "")
    with pytest.raises(StepFailed) as refused:
        run_pipeline({"pipeline": "api_call", "data": calls({"url": f"http://{server}/x"})}, context())
    assert refused.value.record["steps"][0]["attempts"] == 1  # a refusal is not retried


def test_api_calls_are_checked_at_submit() -> None:
    bad = calls({"url": "ftp://example.org/file"})
    with pytest.raises(InvalidPayload, match="input 'c0' is no API call: url"):
        check_payload("pipeline", {"pipeline": "api_call", "data": bad}, None)
    unparsable = {"inputs": [{"input_id": "q", "type": "json", "data": "{"}]}
    with pytest.raises(InvalidPayload, match="input 'q' is no API call: invalid JSON"):
        check_payload("pipeline", {"pipeline": "api_call", "data": unparsable}, None)


def test_allowed_hosts_match_host_or_host_and_port() -> None:
    url = httpx.URL("https://api.example.org/v1")
    assert host_allowed(url, ("api.example.org",))
    assert host_allowed(url, ("api.example.org:443",))
    assert not host_allowed(url, ("api.example.org:8443", "example.org"))
    assert host_allowed(httpx.URL("http://[::1]:8080/"), ("[::1]:8080",))
    assert not host_allowed(httpx.URL("http://[::1]:8081/"), ("[::1]:8080",))
