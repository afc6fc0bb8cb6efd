"""The peer's HTTP side: FastAPI, as its documentation and Celery's show.

`POST /tasks` sends the task (`noop.delay()`) and answers its id; `GET /tasks/{task_id}`
reads its state from the result backend (`AsyncResult`). Both are plain `def` endpoints:
FastAPI's documentation says to use `def` when calling blocking libraries (the Celery
client is one), which FastAPI then runs in its thread pool. Served by uvicorn with
uvloop and httptools, one process, as Grey's gateway is in this bench.
"""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult
from fastapi import FastAPI
from pydantic import BaseModel

from bench.peers.celery_app import app as celery_app
from bench.peers.celery_app import noop

app = FastAPI(title="peer")


class Submit(BaseModel):
    """The same body Grey takes for a no-op task."""

    type: str = "stateless"
    payload: dict[str, Any] = {}


@app.post("/tasks", status_code=201)
def submit(body: Submit) -> dict[str, str]:
    result = noop.delay()
    return {"task_id": result.id, "status": "PENDING"}


@app.get("/tasks/{task_id}")
def status(task_id: str) -> dict[str, Any]:
    result = AsyncResult(task_id, app=celery_app)
    return {"task_id": task_id, "status": result.state}
