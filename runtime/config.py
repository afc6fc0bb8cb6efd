"""The cluster config: one schema and one loader for the real cluster and its SimPy twin.

`grey serve` / `grey worker` and `grey simulate` / `grey plan` all read the same file, so a
capacity plan is made against exactly the cluster that runs.  This module must not import
the simulator: the runtime imports it.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

Priority = Literal["critical", "high", "normal", "low"]
PoolName = Literal["cpu", "gpu", "tee"]

#: Highest first: the order in which a free worker slot looks at its pool's queues.
PRIORITIES: tuple[str, ...] = ("critical", "high", "normal", "low")
POOLS: tuple[str, ...] = ("cpu", "gpu", "tee")


def route_pool(gpu: int, tee_required: bool) -> str:
    """Pool a task runs in (CloudAI's rule): TEE first, then GPU, else CPU. One rule for both sides."""
    if tee_required:
        return "tee"
    if gpu > 0:
        return "gpu"
    return "cpu"


def queue_name(pool: str, priority: str) -> str:
    """Broker queue of a pool and priority, e.g. `cpu.critical`."""
    return f"{pool}.{priority}"


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a capacity file must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FailureModel(_Strict):
    """Node failures for the twin (the runtime sees real ones): exponential up and down times."""

    mtbf_seconds: float = Field(gt=0, description="mean time between failures of one node")
    mttr_seconds: float = Field(gt=0, description="mean time to repair one node")


class PoolConfig(_Strict):
    """A pool of identical worker nodes."""

    nodes: int = Field(default=0, ge=0)
    threads_per_node: int = Field(default=8, ge=1, description="worker threads (task slots)")
    gpus_per_node: int = Field(default=0, ge=0)
    cpu_cores_per_node: float | None = Field(default=None, gt=0, description="defaults to threads_per_node")
    memory_gb_per_node: float = Field(default=64.0, gt=0)
    failures: FailureModel | None = None

    @property
    def cpu_cores(self) -> float:
        """Cores a node offers to task requests."""
        return float(self.threads_per_node if self.cpu_cores_per_node is None else self.cpu_cores_per_node)


class QueueConfig(_Strict):
    """Queues `{pool}.{priority}`; `strict` = non-preemptive priority, `fifo` = arrival order."""

    policy: Literal["strict", "fifo"] = "strict"


class RetryPolicy(_Strict):
    """Transient failures are retried with exponential backoff (the Orchestrator: at most 3 retries).

    Retry k (1-based) waits min(backoff_base_seconds * 2**(k-1) * U(1, 1.25), backoff_max_seconds)
    and goes to the back of its queue; losing a node is not a failure and spends no retry.
    """

    max_retries: int = Field(default=3, ge=0, le=20)
    backoff_base_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=60.0, ge=0)
    retry_on_timeout: bool = Field(default=False, description="is a timeout transient?")


class HeartbeatConfig(_Strict):
    """A node whose heartbeat stops for `timeout_seconds` is down; its tasks are re-queued.

    The same clock bounds the runtime's leases (runtime.execution.reconciler): a running
    attempt's lease and the coordinator's lease last `lease_seconds`, renewed every
    `interval_seconds`; a pending task whose message was last sent `resend_after_seconds`
    ago (default 2 x lease) is sent again if its queue holds fewer messages than such tasks.
    """

    interval_seconds: float = Field(default=5.0, gt=0)
    timeout_seconds: float = Field(default=15.0, ge=0)
    resend_after_seconds: float | None = Field(
        default=None, gt=0, description="pending tasks unsent this long may be sent again (2 x lease)"
    )

    @property
    def lease_seconds(self) -> float:
        """Lease of a running attempt and of the coordinator: `timeout_seconds`, and at least
        two heartbeats (a lease renewed every heartbeat survives one missed beat)."""
        return max(self.timeout_seconds, 2 * self.interval_seconds)

    @property
    def pending_resend_seconds(self) -> float:
        """How long a pending task's message may be unaccounted for before it is sent again."""
        return self.resend_after_seconds or 2 * self.lease_seconds


class TenantQuota(_Strict):
    """Per-tenant quotas (Grey Distributed's governance defaults). `null` means unlimited."""

    cpu_cores: float | None = Field(default=100.0, gt=0)
    memory_gb: float | None = Field(default=256.0, gt=0)
    max_concurrent_tasks: int | None = Field(default=10000, ge=1)
    max_queue_depth: int | None = Field(default=50000, ge=1)
    submit_rate_per_second: float | None = Field(default=1000.0, gt=0)


class ApiRateLimits(_Strict):
    """One API's own request limits per window, per tenant (per tenant and client address for
    calls without credentials), counted apart from the other APIs'. `null` means unlimited."""

    submit: int | None = Field(default=None, ge=1, description="submissions per window")
    tasks_read: int | None = Field(default=None, ge=1, description="task reads per window")
    cluster: int | None = Field(default=None, ge=1, description="cluster reads per window")
    other: int | None = Field(default=None, ge=1)
    websocket_connections: int | None = Field(
        default=None, ge=1, description="concurrent WebSocket connections per client"
    )


#: The limits an API's reference states; an operator's `rate_limits.apis.<api>` overrides them
#: field by field. CloudAI: 10 submissions and 60 status queries a minute, 5 WebSockets.
API_RATE_LIMITS: dict[str, dict[str, int | None]] = {
    "cloudai": {"submit": 10, "tasks_read": 60, "cluster": 60, "other": 60, "websocket_connections": 5},
}


def _api_limits_with_defaults(given: object) -> object:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        return given  # pydantic names the problem
    merged: dict[str, object] = {name: dict(limits) for name, limits in API_RATE_LIMITS.items()}
    for name, limits in given.items():
        if isinstance(limits, ApiRateLimits):
            limits = limits.model_dump(exclude_unset=True)
        merged[name] = {**API_RATE_LIMITS.get(name, {}), **limits} if isinstance(limits, dict) else limits
    return merged


class RateLimits(_Strict):
    """Per-tenant request limits per window (Grey Distributed's), counted as a sliding-window counter (the
    `limits` library's algorithm, as runtime/services/ratelimit.py does). `null` means unlimited."""

    window_seconds: float = Field(default=60.0, gt=0)
    submit: int | None = Field(default=1000, ge=1, description="POST /v1/tasks per window")
    tasks_read: int | None = Field(default=10000, ge=1, description="GET /v1/tasks/* per window")
    cluster: int | None = Field(default=1000, ge=1, description="GET /v1/cluster/* per window")
    other: int | None = Field(default=5000, ge=1)
    auth_failures: int | None = Field(
        default=20,
        ge=1,
        description="Failed authentications or token exchanges per client address per window; "
        "past it, every attempt from that address answers 429 until the window has room",
    )
    streams_per_tenant: int | None = Field(
        default=100, ge=1, description="Open task streams per tenant on one gateway (429 past it)"
    )
    apis: dict[str, ApiRateLimits] = Field(
        default_factory=lambda: {name: ApiRateLimits(**limits) for name, limits in API_RATE_LIMITS.items()},
        description="Per-API limits counted apart from the ones above (default: CloudAI's reference)",
    )

    @field_validator("apis", mode="before")
    @classmethod
    def _api_defaults(cls, given: object) -> object:
        return _api_limits_with_defaults(given)

    def for_api(self, api: str) -> ApiRateLimits | None:
        """The API's own limits, or None when it counts against the shared ones above."""
        return self.apis.get(api)


def _keep(value: object) -> float | str:
    """A number of days above 0, or `forever`: one clear message for anything else."""
    if value == "forever":
        return "forever"
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ValueError("expected a number of days above 0 or 'forever'")


Keep = Annotated[float | Literal["forever"], BeforeValidator(_keep)]
"""Days a finished task is kept, or `forever`."""


class RetentionConfig(_Strict):
    """How long finished tasks (with their events, labels, results, proofs and logs) are
    kept after they ended: `finished_days` for every tenant, `tenants` overriding it per
    tenant, `forever` keeping them. Unfinished tasks are never deleted. The coordinator
    deletes what has expired (runtime.execution.retention) at most every `every_seconds`,
    `batch_rows` tasks per transaction with `batch_pause_seconds` between transactions, so
    submits keep going in between; an expired task then answers 404 like an unknown one."""

    finished_days: Keep = 30.0
    tenants: dict[str, Keep] = Field(default_factory=dict)
    every_seconds: float = Field(default=60.0, gt=0, description="how often the coordinator looks")
    batch_rows: int = Field(default=500, ge=1, le=10_000, description="tasks deleted per transaction")
    batch_pause_seconds: float = Field(default=0.05, ge=0, description="pause between transactions")

    def days_for(self, tenant: str | None) -> float | None:
        """Days the tenant's finished tasks are kept (None tenant: the default); None: forever."""
        keep = self.finished_days if tenant is None else self.tenants.get(tenant, self.finished_days)
        return None if keep == "forever" else float(keep)


def standard_pools() -> dict[PoolName, PoolConfig]:
    """The pools of a cluster config that names none: one CPU node of 8 worker threads, no
    GPU or TEE nodes (what `grey serve` / `grey worker` run with no config file at all)."""
    return {
        "cpu": PoolConfig(nodes=1, threads_per_node=8),
        "gpu": PoolConfig(nodes=0),
        "tee": PoolConfig(nodes=0),
    }


class ClusterConfig(_Strict):
    """The whole cluster: pools, queues, quotas, limits.

    Every section may be left out and keeps its defaults, `pools` included: a file that only
    sets, say, `rate_limits` runs the standard pools (standard_pools: one CPU node of 8
    threads, no GPU or TEE nodes), as a Celery worker with no queues configured serves the
    default queue and a Ray node with no resources given offers the machine's. A `pools`
    that is given lists the pools that have nodes; a pool it leaves out has none."""

    version: Literal[1] = 1
    name: str = "grey"
    pools: dict[PoolName, PoolConfig] = Field(
        default_factory=standard_pools,
        description="pool -> its nodes; left out: the standard pools (one CPU node of 8 threads)",
    )
    queues: QueueConfig = QueueConfig()
    retry: RetryPolicy = RetryPolicy()
    heartbeat: HeartbeatConfig = HeartbeatConfig()
    default_quota: TenantQuota = TenantQuota()
    tenants: dict[str, TenantQuota] = Field(default_factory=dict)
    rate_limits: RateLimits = RateLimits()
    retention: RetentionConfig = RetentionConfig()
    anonymous_tenants: dict[str, Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]] = Field(
        default_factory=dict,
        description="API name -> the tenant its calls without credentials act as, for an API "
        "served to a trusted network (only CloudAI takes it); GREY_<API>_ANONYMOUS_TENANT wins",
    )

    def pool(self, name: str) -> PoolConfig:
        """The pool called `name` (a task's or node's pool, read from the store as text)."""
        return self.pools[name]  # type: ignore[index]  # KeyError for a name that is no pool

    @field_validator("pools", mode="after")
    @classmethod
    def _all_pools_present(cls, pools: dict[str, PoolConfig]) -> dict[str, PoolConfig]:
        # Every pool exists (possibly with 0 nodes) so routing never meets a missing key.
        return {p: pools.get(p, PoolConfig(nodes=0)) for p in POOLS}

    @classmethod
    def default(cls) -> ClusterConfig:
        """Embedded default: the standard pools (one CPU node with 8 worker threads, no GPU
        or TEE nodes) and every other section's defaults."""
        return cls()

    def quota_for(self, tenant: str) -> TenantQuota:
        """Quota of a tenant: its own entry, else the default."""
        return self.tenants.get(tenant, self.default_quota)

    def with_nodes(self, nodes: dict[str, int]) -> ClusterConfig:
        """Copy with other node counts per pool (what a capacity planner varies)."""
        pools = {
            name: pool.model_copy(update={"nodes": nodes.get(name, pool.nodes)})
            for name, pool in self.pools.items()
        }
        return self.model_copy(update={"pools": pools})


# ---------------------------------------------------------------------------------------
# Loading with errors that name the file, the field and what was expected.


class ConfigError(ValueError):
    """A config file is unreadable or invalid; `problems` holds (field path, what's wrong)."""

    def __init__(self, path: str | Path, problems: list[tuple[str, str]]) -> None:
        self.path = str(path)
        self.problems = problems
        lines = [f"{self.path}: {field or '<root>'}: {what}" for field, what in problems]
        head = f"invalid config file {self.path}" if len(lines) > 1 else lines[0]
        super().__init__(head if len(lines) == 1 else "\n".join([head, *lines]))


def format_loc(loc: tuple[Any, ...]) -> str:
    """Pydantic location -> `pools.cpu.nodes` / `streams[0].mix[1].weight`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += ("." if out else "") + str(part)
    return out


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Field names allowed at `loc` (the parent of an unknown key), to suggest the fix."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
            continue
        current = _container_item(current)
        if current is None:
            return None
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _container_item(tp: Any) -> Any:
    tp = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    return None


def _describe(err: dict[str, Any], model: type[BaseModel]) -> str:
    """One pydantic error -> `expected ..., got ...` in plain words."""
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    given = err.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, tuple(err["loc"][:-1]))
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return f"unknown field{hint}"
    if msg.startswith("Input should be "):
        msg = msg[len("Input should be ") :]
        if msg.startswith(("greater", "less")):
            msg = "a value " + msg
        msg = "expected " + msg
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{msg}, got {given!r}" if not isinstance(given, dict | list) else msg


def validation_problems(exc: ValidationError, model: type[BaseModel]) -> list[tuple[str, str]]:
    """All problems of a pydantic ValidationError as (field path, description)."""
    return [(format_loc(tuple(e["loc"])), _describe(dict(e), model)) for e in exc.errors()]


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file that must hold a mapping; errors name the file (and line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(p, [("", f"cannot read file: {exc.strerror or exc}")]) from exc
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(p, [("", f"invalid JSON at line {exc.lineno}: {exc.msg}")]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(p, [("", f"invalid YAML{where}: {problem}")]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ConfigError(p, [("", f"expected a mapping at the top level, got {got}")])
    return data


def load_cluster_config(path: str | Path) -> ClusterConfig:
    """Load and validate a cluster config file (YAML or JSON)."""
    data = read_mapping(path)
    try:
        return ClusterConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, validation_problems(exc, ClusterConfig)) from exc
