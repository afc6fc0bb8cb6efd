"""The Orchestrator's agents as task functions, and its task types as named pipelines.

Every agent takes the pipeline's data, `{"inputs": [{"input_id", "type", "data"}, ...],
"metadata": {...}}`, and the analysis agents also what an earlier agent returned, so each
works in any mode (sequential: each on the previous output; parallel: all on the data):

- `data_ingest`: inputs -> records (text: words, sentences, terms; json: parsed; other
  types: recorded as unsupported with the reason). Invalid JSON fails, naming the input.
- `data_analysis`: statistics over the records: per JSON field count/min/max/mean/stdev
  (population), text word and term frequencies.
- `synthesis`: a report `{"type": "json_report", "data": {title, sections, summary}}`.
- `api_caller`: the HTTP call each json input describes (`{"method", "url", "headers",
  "json"}`), only to hosts in `GREY_API_CALL_ALLOWED_HOSTS`; connection errors, timeouts,
  429 and 5xx are transient (a pipeline retries the step), other 4xx fail.

Deterministic: no clock or randomness in any output but api_caller's timings.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections import Counter
from typing import Any, Literal

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)

from runtime.execution.functions import TaskContext, TransientError, task_function
from runtime.execution.pipeline import named_pipeline
from runtime.settings import Settings

TOP_TERMS = 10
KEPT_TERMS = 200  # per text record: the term counts analysis sums
MAX_RESPONSE_BYTES = 1024 * 1024
ALLOWED_HOSTS_VAR = "GREY_API_CALL_ALLOWED_HOSTS"
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_SENTENCE = re.compile(r"[^.!?]*[^\W_][^.!?]*(?:[.!?]+|$)")
_STOPWORDS_TEXT = """
a an and are as at be but by for from had has have he her his i in is it its of on or our
she so that the their them there they this to was we were what which who will with you your
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_UNDECODED = {"image", "video", "audio"}


class AgentInputError(ValueError):
    """An input an agent cannot use (never worth retrying)."""

    transient = False


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PipelineInput(_Model):
    input_id: str
    type: str = "text"
    data: Any = None


class PipelineData(_Model):
    """The data of an Orchestrator pipeline."""

    inputs: list[PipelineInput]
    metadata: dict[str, Any] = Field(default_factory=dict)


class Ingested(_Model):
    kind: Literal["ingested"]
    records: list[dict[str, Any]]
    metadata: dict[str, Any] = Field(default_factory=dict)


class Analysis(_Model):
    kind: Literal["analysis"]
    inputs: dict[str, Any]
    text: dict[str, Any] | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")
    metadata: dict[str, Any] = Field(default_factory=dict)


Stageable = Analysis | Ingested | PipelineData
AnalysisInput = RootModel[Ingested | PipelineData | list[Ingested | PipelineData]]
SynthesisInput = RootModel[Stageable | list[Stageable]]


# -- data_ingest ------------------------------------------------------------------------


def text_stats(text: str) -> dict[str, Any]:
    words = [word.lower() for word in _WORD.findall(text)]
    terms = Counter(w for w in words if w not in _STOPWORDS and len(w) > 1 and not w.isdigit())
    ranked = sorted(terms.items(), key=lambda item: (-item[1], item[0]))
    return {
        "characters": len(text),
        "words": len(words),
        "unique_words": len(set(words)),
        "sentences": len(_SENTENCE.findall(text)),
        "top_terms": [{"term": term, "count": count} for term, count in ranked[:TOP_TERMS]],
        "term_counts": dict(ranked[:KEPT_TERMS]),
    }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _record(item: PipelineInput) -> dict[str, Any]:
    head = {"input_id": item.input_id, "type": item.type}
    kind = item.type.lower()
    if kind == "text":
        text = item.data if isinstance(item.data, str) else json.dumps(item.data, sort_keys=True)
        return {**head, "status": "ingested", "text": text_stats(text)}
    if kind == "json":
        value = item.data
        if isinstance(value, str):
            try:
                value = json.loads(value, parse_constant=_reject_constant)
            except ValueError as error:
                raise AgentInputError(f"input {item.input_id!r}: invalid JSON: {error}") from None
        return {**head, "status": "ingested", "json": {"kind": _json_kind(value), "value": value}}
    reason = (
        f"{kind} inputs need a decoder this build does not have"
        if kind in _UNDECODED
        else f"input type {item.type!r} is not supported (supported: text, json)"
    )
    return {**head, "status": "unsupported", "reason": reason}


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def ingest(data: PipelineData) -> dict[str, Any]:
    records = [_record(item) for item in data.inputs]
    return {
        "kind": "ingested",
        "records": records,
        "metadata": data.metadata,
        "summary": {
            "inputs": len(records),
            "ingested": sum(r["status"] == "ingested" for r in records),
            "unsupported": sum(r["status"] == "unsupported" for r in records),
            "by_type": dict(sorted(Counter(r["type"] for r in records).items())),
        },
    }


@task_function("data_ingest", input=PipelineData)
def data_ingest(data: PipelineData, ctx: TaskContext) -> dict[str, Any]:
    """Pipeline inputs -> normalised records (text stats, parsed JSON, unsupported types)."""
    return ingest(data)


# -- data_analysis ----------------------------------------------------------------------


def _leaves(value: Any, path: str, into: dict[str, list[Any]]) -> None:
    """JSON leaves by key path (`a.b`; lists keep their parent's path; the root is `$`)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _leaves(item, f"{path}.{key}" if path else str(key), into)
    elif isinstance(value, list):
        for item in value:
            _leaves(item, path, into)
    else:
        into.setdefault(path or "$", []).append(value)


def _number_stats(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "min": min(values),
        "max": max(values),
        "mean": round(statistics.fmean(values), 6),
        "stdev": round(statistics.pstdev(values), 6),
    }


def _json_section(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    values = [r["json"]["value"] for r in records if "json" in r]
    if not values:
        return None
    leaves: dict[str, list[Any]] = {}
    for value in values:
        _leaves(value, "", leaves)
    fields: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for path, found in sorted(leaves.items()):
        numbers: list[float] = [v for v in found if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(found) and all(math.isfinite(n) for n in numbers):
            fields[path] = _number_stats(numbers)
        else:
            types = Counter(_json_kind(v) for v in found)
            other[path] = {"count": len(found), "types": dict(sorted(types.items()))}
            strings = [v for v in found if isinstance(v, str)]
            if strings:
                other[path]["distinct"] = len(set(strings))
    return {"documents": len(values), "numeric_fields": fields, "other_fields": other}


def _text_section(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    texts = [r["text"] for r in records if "text" in r]
    if not texts:
        return None
    words = sum(t["words"] for t in texts)
    sentences = sum(t["sentences"] for t in texts)
    terms: Counter[str] = Counter()
    for t in texts:
        terms.update(t["term_counts"])
    ranked = sorted(terms.items(), key=lambda item: (-item[1], item[0]))[: TOP_TERMS * 2]
    return {
        "documents": len(texts),
        "characters": sum(t["characters"] for t in texts),
        "words": words,
        "sentences": sentences,
        "distinct_terms": len(terms),
        "words_per_sentence": round(words / sentences, 3) if sentences else 0.0,
        "words_per_document": round(words / len(texts), 3),
        "top_terms": [
            {"term": term, "count": count, "frequency": round(count / words, 6)} for term, count in ranked
        ],
    }


def _ingested(value: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Records and metadata of raw data, ingested data, or a list of either."""
    parts = value if isinstance(value, list) else [value]
    records: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    for part in parts:
        ingested = part if isinstance(part, Ingested) else Ingested.model_validate(ingest(part))
        records += ingested.records
        metadata.update(ingested.metadata)
    return records, metadata


def analyse(value: Ingested | PipelineData | list[Ingested | PipelineData]) -> dict[str, Any]:
    records, metadata = _ingested(value)
    unsupported = [
        {"input_id": r["input_id"], "type": r["type"], "reason": r["reason"]}
        for r in records
        if r["status"] != "ingested"
    ]
    return {
        "kind": "analysis",
        "inputs": {
            "total": len(records),
            "analysed": len(records) - len(unsupported),
            "by_type": dict(sorted(Counter(r["type"] for r in records).items())),
            "unsupported": unsupported,
        },
        "text": _text_section(records),
        "json": _json_section(records),
        "metadata": metadata,
    }


@task_function("data_analysis", input=AnalysisInput)
def data_analysis(data: Ingested | PipelineData | list[Ingested | PipelineData], ctx: TaskContext) -> Any:
    """Statistics over pipeline inputs or data_ingest's records: JSON fields, text terms."""
    return analyse(data)


# -- synthesis --------------------------------------------------------------------------


def _analysis_of(value: Stageable | list[Stageable]) -> Analysis:
    parts = value if isinstance(value, list) else [value]
    done = [part for part in parts if isinstance(part, Analysis)]
    if done:
        return done[0]
    rest = [part for part in parts if not isinstance(part, Analysis)]
    return Analysis.model_validate(analyse(rest))


def _sections(analysis: Analysis) -> list[dict[str, Any]]:
    inputs = analysis.inputs
    kinds = ", ".join(f"{n} {kind}" for kind, n in inputs["by_type"].items()) or "none"
    sections = [
        {
            "heading": "Inputs",
            "summary": f"{inputs['total']} inputs ({kinds}); {inputs['analysed']} analysed, "
            f"{len(inputs['unsupported'])} unsupported",
            "data": inputs,
        }
    ]
    if analysis.text is not None:
        text = analysis.text
        top = ", ".join(f"{t['term']} ({t['count']})" for t in text["top_terms"][:5]) or "none"
        sections.append(
            {
                "heading": "Text",
                "summary": f"{text['words']} words in {text['sentences']} sentences across "
                f"{text['documents']} documents; top terms: {top}",
                "data": text,
            }
        )
    if analysis.json_ is not None:
        fields = analysis.json_["numeric_fields"]
        described = "; ".join(
            f"{name}: mean {s['mean']:g} (min {s['min']:g}, max {s['max']:g}, n={s['count']})"
            for name, s in list(fields.items())[:5]
        )
        sections.append(
            {
                "heading": "JSON data",
                "summary": f"{len(fields)} numeric fields across {analysis.json_['documents']} documents"
                + (f": {described}" if described else ""),
                "data": analysis.json_,
            }
        )
    return sections


@task_function("synthesis", input=SynthesisInput)
def synthesis(data: Stageable | list[Stageable], ctx: TaskContext) -> dict[str, Any]:
    """A JSON report (title from metadata.report_title, sections, summary) of the analysis."""
    analysis = _analysis_of(data)
    sections = _sections(analysis)
    return {
        "type": "json_report",
        "data": {
            "title": str(analysis.metadata.get("report_title") or "Report"),
            "sections": sections,
            "summary": ". ".join(section["summary"] for section in sections) + ".",
            "metadata": analysis.metadata,
        },
    }


# -- api_caller -------------------------------------------------------------------------


class ApiCallRefused(Exception):
    """A call to a host the operator does not allow (never worth retrying)."""

    transient = False


class ApiCallFailed(Exception):
    """The API answered a client error (4xx other than 429)."""

    transient = False


class ApiCall(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(default=None, alias="json")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("url must be an absolute http(s) URL")
        return value


class ApiCallerInput(PipelineData):
    @model_validator(mode="after")
    def _calls_parse(self) -> ApiCallerInput:
        self.calls()
        return self

    def calls(self) -> list[tuple[str, ApiCall]]:
        """The json inputs as calls; ValueError naming the input that is not one."""
        calls = []
        for item in self.inputs:
            if item.type.lower() != "json":
                continue
            try:
                raw = json.loads(item.data) if isinstance(item.data, str) else item.data
                calls.append((item.input_id, ApiCall.model_validate(raw)))
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "data"
                raise ValueError(f"input {item.input_id!r} is no API call: {where}: {first['msg']}") from None
            except ValueError as error:
                raise ValueError(f"input {item.input_id!r} is no API call: invalid JSON: {error}") from None
        return calls


def _split_host(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [::1]:8080
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    host, colon, port = entry.rpartition(":")
    if colon and host and ":" not in host and port.isdigit():
        return host, int(port)
    return entry, None


def host_allowed(url: httpx.URL, allowed: tuple[str, ...]) -> bool:
    port = url.port or (443 if url.scheme == "https" else 80)
    for entry in allowed:
        host, only = _split_host(entry)
        if host.lower() == url.host.lower() and only in (None, port):
            return True
    return False


def _call(client: httpx.Client, input_id: str, call: ApiCall, ctx: TaskContext) -> dict[str, Any]:
    ctx.check()
    left = ctx.deadline - time.monotonic()
    timeout = max(0.001, min(call.timeout_seconds, left))
    what = f"input {input_id!r}: {call.method} {call.url}"
    clock = time.perf_counter()
    request = client.build_request(
        call.method,
        call.url,
        headers=call.headers,
        json=call.body if call.body is not None else None,
        timeout=timeout,
    )
    try:
        response = client.send(request, stream=True)
        try:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    break
        finally:
            response.close()
    except httpx.TimeoutException:
        raise TimeoutError(f"{what}: no answer within {timeout:.2f}s") from None
    except httpx.TransportError as error:
        raise ConnectionError(f"{what}: {type(error).__name__}: {error}") from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientError(f"{what}: answered {status}")
    if status >= 400:
        raise ApiCallFailed(f"{what}: answered {status}: {body[:200].decode(errors='replace')}")
    return {
        "input_id": input_id,
        "method": call.method,
        "url": call.url,
        "status_code": status,
        "elapsed_ms": round((time.perf_counter() - clock) * 1000),
        "content_type": response.headers.get("content-type"),
        "truncated": len(body) > MAX_RESPONSE_BYTES,
        "body": _decoded(body[:MAX_RESPONSE_BYTES], response),
    } | ({"timeout_seconds": round(timeout, 3)} if timeout < call.timeout_seconds else {})


def _decoded(body: bytes, response: httpx.Response) -> Any:
    text = body.decode(response.encoding or "utf-8", errors="replace")
    if "json" in (response.headers.get("content-type") or ""):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


@task_function("api_caller", input=ApiCallerInput)
def api_caller(data: ApiCallerInput, ctx: TaskContext) -> dict[str, Any]:
    """The HTTP call each json input describes, to hosts in GREY_API_CALL_ALLOWED_HOSTS only."""
    allowed = Settings.from_env().api_call_allowed_hosts
    calls = data.calls()
    for input_id, call in calls:  # every host is checked before any call is made
        url = httpx.URL(call.url)
        if not host_allowed(url, allowed):
            port = url.port or (443 if url.scheme == "https" else 80)
            raise ApiCallRefused(
                f"input {input_id!r}: host {url.host}:{port} is not allowed; the operator allows "
                f"hosts with {ALLOWED_HOSTS_VAR} on the workers (comma-separated host or host:port; "
                f"now: {', '.join(allowed) or 'none'})"
            )
    skipped = [
        {"input_id": item.input_id, "type": item.type, "reason": "api_caller calls json inputs only"}
        for item in data.inputs
        if item.type.lower() != "json"
    ]
    with httpx.Client(follow_redirects=False) as client:
        results = [_call(client, input_id, call, ctx) for input_id, call in calls]
    return {"calls": results, "skipped": skipped, "metadata": data.metadata}


# -- the Orchestrator's task types ------------------------------------------------------

named_pipeline(
    "report_generation",
    stages=[["data_ingest"], ["data_analysis"], ["synthesis"]],
    default_mode="sequential",
    description="Analytical report from text and JSON inputs: data_ingest -> data_analysis -> synthesis",
)
named_pipeline(
    "data_analysis",
    stages=[["data_analysis"]],
    default_mode="parallel",
    description="Statistics over JSON and text inputs",
)
named_pipeline(
    "api_call",
    stages=[["api_caller"]],
    default_mode="parallel",
    description="HTTP calls described by JSON inputs, to allowed hosts, transient failures retried",
)
named_pipeline(
    "real_time_monitoring",
    stages=[["video_detection"], ["alerting"]],
    default_mode="sequential",
    description="Object detection on video streams, then alerting",
    unavailable="no video decoder or detection model in this build",
)
