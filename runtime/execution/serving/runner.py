"""The serving process of one replica: loads a model from its location and answers HTTP.

    python -m runtime.execution.serving.runner --source <path-or-url> --port N
        [--host 127.0.0.1] [--framework builtin] [--model-name M] [--service-id S]
        [--parent-pid P]

`--source` is a checkpoint file on the node (its disk location) or an http URL of the
node's byte server (a DRAM/GPU location; its token comes in GREY_SERVING_SOURCE_TOKEN,
never on the command line). The model is loaded before the port opens, so a replica that
answers `GET /health` has its weights in memory; `load_time` says how long that took.

    GET  /health       {"status": "ok", "model_name", "load_time", "uptime", "requests_served", ...}
    POST /v1/predict   {"inputs": ..., "parameters": {...}} -> {"outputs", "latency", ...}

With `--parent-pid` it exits when that process (the node's worker) is gone: a replica never
outlives the worker that records it.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
import urllib.parse
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runtime.execution.serving.errors import ServingError
from runtime.execution.serving.frameworks import BUILTIN, VLLM, BuiltinModel, Model, check_framework

logger = logging.getLogger("grey.serving.runner")

TOKEN_VARIABLE = "GREY_SERVING_SOURCE_TOKEN"
TOKEN_HEADER = "X-Grey-Placement-Token"
READ_BLOCK = 16 * 1024 * 1024
MAX_BODY = 8 * 1024 * 1024


def read_source(source: str) -> bytearray:
    """The checkpoint's bytes from a file path (or file:// URL) or an http(s) URL."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        headers = {}
        token = os.environ.get(TOKEN_VARIABLE)
        if token:
            headers[TOKEN_HEADER] = token
        with httpx.stream("GET", source, headers=headers, timeout=60.0) as answer:
            answer.raise_for_status()
            size = int(answer.headers.get("Content-Length") or 0)
            buffer = bytearray(size) if size else bytearray()
            done = 0
            for block in answer.iter_bytes(READ_BLOCK):
                if size:
                    buffer[done : done + len(block)] = block
                else:
                    buffer += block
                done += len(block)
            if size and done != size:
                raise OSError(f"source ended after {done} of {size} bytes")
            return buffer
    path = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else source
    size = os.path.getsize(path)
    buffer = bytearray(size)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        done = 0
        while done < size:
            got = handle.readinto(view[done : done + READ_BLOCK])
            if not got:
                raise OSError(f"{path} ended after {done} of {size} bytes")
            done += got
    return buffer


def load_model(source: str, framework: str) -> Model:
    if framework == VLLM:  # pragma: no cover - needs vLLM
        from runtime.execution.serving.frameworks import VllmModel

        return VllmModel(source)
    return BuiltinModel.load(read_source(source))


class Replica:
    """What the HTTP app serves: the model, its load time and counters."""

    def __init__(
        self, model: Model, load_time: float, model_name: str, service_id: str, framework: str
    ) -> None:
        self.model, self.load_time = model, load_time
        self.model_name, self.service_id, self.framework = model_name, service_id, framework
        self.started = time.monotonic()
        self.requests_served = 0
        self._lock = threading.Lock()

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "model_name": self.model_name,
            "service_id": self.service_id,
            "framework": self.framework,
            "load_time": self.load_time,
            "uptime": time.monotonic() - self.started,
            "requests_served": self.requests_served,
            "pid": os.getpid(),
            "model": self.model.describe(),
        }

    def predict(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or "inputs" not in body:
            raise ServingError("body must be an object with `inputs`")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ServingError("`parameters` must be an object")
        started = time.perf_counter()
        outputs = self.model.predict(body["inputs"], parameters)
        latency = time.perf_counter() - started
        with self._lock:
            self.requests_served += 1
        return {
            "model_name": self.model_name,
            "service_id": self.service_id,
            "outputs": outputs,
            "latency": latency,
        }


def build_app(replica: Replica) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        return JSONResponse(replica.health())

    async def predict(request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            import json

            body = json.loads(raw or b"null")
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        try:
            return JSONResponse(replica.predict(body))
        except ServingError as error:
            return JSONResponse({"error": error.message, "details": error.details}, status_code=400)

    return Starlette(routes=[Route("/health", health), Route("/v1/predict", predict, methods=["POST"])])


def _watch_parent(parent: int) -> None:
    """Exit once the worker that started this replica is gone (reparented)."""
    while True:
        if os.getppid() != parent:
            logger.warning("parent %d is gone: replica exits", parent)
            os._exit(0)
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="grey-serving-runner")
    parser.add_argument("--source", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--framework", default=BUILTIN)
    parser.add_argument("--model-name", default="model")
    parser.add_argument("--service-id", default="")
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    framework = check_framework(args.framework)
    started = time.perf_counter()
    model = load_model(args.source, framework)
    load_time = time.perf_counter() - started
    logger.info(
        "%s loaded in %.3fs (%s); serving on %s:%d",
        args.model_name,
        load_time,
        framework,
        args.host,
        args.port,
    )
    replica = Replica(model, load_time, args.model_name, args.service_id, framework)
    uvicorn.run(build_app(replica), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
