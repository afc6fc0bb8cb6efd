import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResourceRequest(_message.Message):
    __slots__ = ("cpu", "memory_gb", "gpu", "storage_gb")
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    STORAGE_GB_FIELD_NUMBER: _ClassVar[int]
    cpu: float
    memory_gb: float
    gpu: int
    storage_gb: float
    def __init__(
        self,
        cpu: _Optional[float] = ...,
        memory_gb: _Optional[float] = ...,
        gpu: _Optional[int] = ...,
        storage_gb: _Optional[float] = ...,
    ) -> None: ...

class SubmitTaskRequest(_message.Message):
    __slots__ = (
        "type",
        "payload",
        "priority",
        "timeout_seconds",
        "idempotency_key",
        "labels",
        "tee_required",
        "state_key",
        "dependencies",
        "resources",
        "payload_struct",
    )
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

    TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TEE_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    STATE_KEY_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_STRUCT_FIELD_NUMBER: _ClassVar[int]
    type: str
    payload: bytes
    priority: str
    timeout_seconds: int
    idempotency_key: str
    labels: _containers.ScalarMap[str, str]
    tee_required: bool
    state_key: str
    dependencies: _containers.RepeatedScalarFieldContainer[str]
    resources: ResourceRequest
    payload_struct: _struct_pb2.Struct
    def __init__(
        self,
        type: _Optional[str] = ...,
        payload: _Optional[bytes] = ...,
        priority: _Optional[str] = ...,
        timeout_seconds: _Optional[int] = ...,
        idempotency_key: _Optional[str] = ...,
        labels: _Optional[_Mapping[str, str]] = ...,
        tee_required: _Optional[bool] = ...,
        state_key: _Optional[str] = ...,
        dependencies: _Optional[_Iterable[str]] = ...,
        resources: _Optional[_Union[ResourceRequest, _Mapping]] = ...,
        payload_struct: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...,
    ) -> None: ...

class SubmitTaskResponse(_message.Message):
    __slots__ = ("task_id", "status", "created_at", "estimated_start")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_START_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: str
    created_at: _timestamp_pb2.Timestamp
    estimated_start: _timestamp_pb2.Timestamp
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        status: _Optional[str] = ...,
        created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
        estimated_start: _Optional[
            _Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]
        ] = ...,
    ) -> None: ...

class GetTaskStatusRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class TaskMetrics(_message.Message):
    __slots__ = ("queue_time_ms", "execution_time_ms", "retry_count")
    QUEUE_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    queue_time_ms: int
    execution_time_ms: int
    retry_count: int
    def __init__(
        self,
        queue_time_ms: _Optional[int] = ...,
        execution_time_ms: _Optional[int] = ...,
        retry_count: _Optional[int] = ...,
    ) -> None: ...

class TaskError(_message.Message):
    __slots__ = ("code", "message", "transient")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRANSIENT_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    transient: bool
    def __init__(
        self,
        code: _Optional[str] = ...,
        message: _Optional[str] = ...,
        transient: _Optional[bool] = ...,
    ) -> None: ...

class TaskStatus(_message.Message):
    __slots__ = (
        "task_id",
        "type",
        "status",
        "priority",
        "progress",
        "created_at",
        "started_at",
        "completed_at",
        "duration_ms",
        "executed_on",
        "payload",
        "result",
        "error",
        "labels",
        "timeout_seconds",
        "idempotency_key",
        "state_key",
        "dependencies",
        "resources",
        "tee_required",
        "tee_executed",
        "proof_available",
        "metrics",
        "pool",
        "device_emulated",
    )
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_ON_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_KEY_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    TEE_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    TEE_EXECUTED_FIELD_NUMBER: _ClassVar[int]
    PROOF_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_EMULATED_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    type: str
    status: str
    priority: str
    progress: int
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    duration_ms: int
    executed_on: str
    payload: _struct_pb2.Struct
    result: _struct_pb2.Struct
    error: TaskError
    labels: _containers.ScalarMap[str, str]
    timeout_seconds: int
    idempotency_key: str
    state_key: str
    dependencies: _containers.RepeatedScalarFieldContainer[str]
    resources: ResourceRequest
    tee_required: bool
    tee_executed: bool
    proof_available: bool
    metrics: TaskMetrics
    pool: str
    device_emulated: bool
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        type: _Optional[str] = ...,
        status: _Optional[str] = ...,
        priority: _Optional[str] = ...,
        progress: _Optional[int] = ...,
        created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
        started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
        completed_at: _Optional[
            _Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]
        ] = ...,
        duration_ms: _Optional[int] = ...,
        executed_on: _Optional[str] = ...,
        payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...,
        result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...,
        error: _Optional[_Union[TaskError, _Mapping]] = ...,
        labels: _Optional[_Mapping[str, str]] = ...,
        timeout_seconds: _Optional[int] = ...,
        idempotency_key: _Optional[str] = ...,
        state_key: _Optional[str] = ...,
        dependencies: _Optional[_Iterable[str]] = ...,
        resources: _Optional[_Union[ResourceRequest, _Mapping]] = ...,
        tee_required: _Optional[bool] = ...,
        tee_executed: _Optional[bool] = ...,
        proof_available: _Optional[bool] = ...,
        metrics: _Optional[_Union[TaskMetrics, _Mapping]] = ...,
        pool: _Optional[str] = ...,
        device_emulated: _Optional[bool] = ...,
    ) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("status", "type", "label", "since", "until", "limit", "cursor")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    status: str
    type: str
    label: _containers.RepeatedScalarFieldContainer[str]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    limit: int
    cursor: str
    def __init__(
        self,
        status: _Optional[str] = ...,
        type: _Optional[str] = ...,
        label: _Optional[_Iterable[str]] = ...,
        since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
        until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
        limit: _Optional[int] = ...,
        cursor: _Optional[str] = ...,
    ) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "total", "has_more", "next_cursor", "total_exact")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EXACT_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskStatus]
    total: int
    has_more: bool
    next_cursor: str
    total_exact: bool
    def __init__(
        self,
        tasks: _Optional[_Iterable[_Union[TaskStatus, _Mapping]]] = ...,
        total: _Optional[int] = ...,
        has_more: _Optional[bool] = ...,
        next_cursor: _Optional[str] = ...,
        total_exact: _Optional[bool] = ...,
    ) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelTaskResponse(_message.Message):
    __slots__ = ("task_id", "status", "cancelled_at")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_AT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: str
    cancelled_at: _timestamp_pb2.Timestamp
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        status: _Optional[str] = ...,
        cancelled_at: _Optional[
            _Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]
        ] = ...,
    ) -> None: ...

class GetTaskResultRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task_id", "result", "result_size_bytes")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RESULT_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    result: _struct_pb2.Struct
    result_size_bytes: int
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...,
        result_size_bytes: _Optional[int] = ...,
    ) -> None: ...

class StreamTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class TaskStatusUpdate(_message.Message):
    __slots__ = ("task_id", "status", "progress", "message", "timestamp")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: str
    progress: int
    message: str
    timestamp: _timestamp_pb2.Timestamp
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        status: _Optional[str] = ...,
        progress: _Optional[int] = ...,
        message: _Optional[str] = ...,
        timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
    ) -> None: ...

class ClusterHealth(_message.Message):
    __slots__ = (
        "healthy",
        "version",
        "nodes",
        "consensus",
        "queue",
        "utilization",
        "throughput",
        "problems",
    )
    class Nodes(_message.Message):
        __slots__ = ("total", "active", "draining", "quarantined", "down")
        TOTAL_FIELD_NUMBER: _ClassVar[int]
        ACTIVE_FIELD_NUMBER: _ClassVar[int]
        DRAINING_FIELD_NUMBER: _ClassVar[int]
        QUARANTINED_FIELD_NUMBER: _ClassVar[int]
        DOWN_FIELD_NUMBER: _ClassVar[int]
        total: int
        active: int
        draining: int
        quarantined: int
        down: int
        def __init__(
            self,
            total: _Optional[int] = ...,
            active: _Optional[int] = ...,
            draining: _Optional[int] = ...,
            quarantined: _Optional[int] = ...,
            down: _Optional[int] = ...,
        ) -> None: ...

    class Consensus(_message.Message):
        __slots__ = (
            "leader",
            "term",
            "quorum_satisfied",
            "members",
            "lease_expires_at",
            "leader_live",
        )
        LEADER_FIELD_NUMBER: _ClassVar[int]
        TERM_FIELD_NUMBER: _ClassVar[int]
        QUORUM_SATISFIED_FIELD_NUMBER: _ClassVar[int]
        MEMBERS_FIELD_NUMBER: _ClassVar[int]
        LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
        LEADER_LIVE_FIELD_NUMBER: _ClassVar[int]
        leader: str
        term: int
        quorum_satisfied: bool
        members: int
        lease_expires_at: _timestamp_pb2.Timestamp
        leader_live: bool
        def __init__(
            self,
            leader: _Optional[str] = ...,
            term: _Optional[int] = ...,
            quorum_satisfied: _Optional[bool] = ...,
            members: _Optional[int] = ...,
            lease_expires_at: _Optional[
                _Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]
            ] = ...,
            leader_live: _Optional[bool] = ...,
        ) -> None: ...

    class Queue(_message.Message):
        __slots__ = ("depth", "oldest_task_seconds")
        DEPTH_FIELD_NUMBER: _ClassVar[int]
        OLDEST_TASK_SECONDS_FIELD_NUMBER: _ClassVar[int]
        depth: int
        oldest_task_seconds: float
        def __init__(
            self, depth: _Optional[int] = ..., oldest_task_seconds: _Optional[float] = ...
        ) -> None: ...

    class Utilization(_message.Message):
        __slots__ = ("cpu_percent", "memory_percent")
        CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
        MEMORY_PERCENT_FIELD_NUMBER: _ClassVar[int]
        cpu_percent: float
        memory_percent: float
        def __init__(
            self, cpu_percent: _Optional[float] = ..., memory_percent: _Optional[float] = ...
        ) -> None: ...

    class Throughput(_message.Message):
        __slots__ = ("tasks_per_second", "tasks_last_hour")
        TASKS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
        TASKS_LAST_HOUR_FIELD_NUMBER: _ClassVar[int]
        tasks_per_second: float
        tasks_last_hour: int
        def __init__(
            self, tasks_per_second: _Optional[float] = ..., tasks_last_hour: _Optional[int] = ...
        ) -> None: ...

    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    healthy: bool
    version: str
    nodes: ClusterHealth.Nodes
    consensus: ClusterHealth.Consensus
    queue: ClusterHealth.Queue
    utilization: ClusterHealth.Utilization
    throughput: ClusterHealth.Throughput
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(
        self,
        healthy: _Optional[bool] = ...,
        version: _Optional[str] = ...,
        nodes: _Optional[_Union[ClusterHealth.Nodes, _Mapping]] = ...,
        consensus: _Optional[_Union[ClusterHealth.Consensus, _Mapping]] = ...,
        queue: _Optional[_Union[ClusterHealth.Queue, _Mapping]] = ...,
        utilization: _Optional[_Union[ClusterHealth.Utilization, _Mapping]] = ...,
        throughput: _Optional[_Union[ClusterHealth.Throughput, _Mapping]] = ...,
        problems: _Optional[_Iterable[str]] = ...,
    ) -> None: ...

class QuotaUsage(_message.Message):
    __slots__ = ("limit", "used", "available")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    limit: float
    used: float
    available: float
    def __init__(
        self,
        limit: _Optional[float] = ...,
        used: _Optional[float] = ...,
        available: _Optional[float] = ...,
    ) -> None: ...

class WindowUsage(_message.Message):
    __slots__ = ("limit", "current", "reset_at")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    RESET_AT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    current: int
    reset_at: _timestamp_pb2.Timestamp
    def __init__(
        self,
        limit: _Optional[int] = ...,
        current: _Optional[int] = ...,
        reset_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
    ) -> None: ...

class ResourceUsage(_message.Message):
    __slots__ = ("tenant_id", "quotas", "rate_limits", "throttled")
    class Quotas(_message.Message):
        __slots__ = ("cpu_cores", "memory_gb", "max_concurrent_tasks", "max_queue_depth")
        CPU_CORES_FIELD_NUMBER: _ClassVar[int]
        MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
        MAX_CONCURRENT_TASKS_FIELD_NUMBER: _ClassVar[int]
        MAX_QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
        cpu_cores: QuotaUsage
        memory_gb: QuotaUsage
        max_concurrent_tasks: QuotaUsage
        max_queue_depth: QuotaUsage
        def __init__(
            self,
            cpu_cores: _Optional[_Union[QuotaUsage, _Mapping]] = ...,
            memory_gb: _Optional[_Union[QuotaUsage, _Mapping]] = ...,
            max_concurrent_tasks: _Optional[_Union[QuotaUsage, _Mapping]] = ...,
            max_queue_depth: _Optional[_Union[QuotaUsage, _Mapping]] = ...,
        ) -> None: ...

    class RateLimits(_message.Message):
        __slots__ = ("submit_rate",)
        SUBMIT_RATE_FIELD_NUMBER: _ClassVar[int]
        submit_rate: WindowUsage
        def __init__(self, submit_rate: _Optional[_Union[WindowUsage, _Mapping]] = ...) -> None: ...

    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    THROTTLED_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    quotas: ResourceUsage.Quotas
    rate_limits: ResourceUsage.RateLimits
    throttled: bool
    def __init__(
        self,
        tenant_id: _Optional[str] = ...,
        quotas: _Optional[_Union[ResourceUsage.Quotas, _Mapping]] = ...,
        rate_limits: _Optional[_Union[ResourceUsage.RateLimits, _Mapping]] = ...,
        throttled: _Optional[bool] = ...,
    ) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ("role", "status")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    role: str
    status: str
    def __init__(self, role: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class GpuDevice(_message.Message):
    __slots__ = (
        "index",
        "name",
        "memory_total_mb",
        "memory_used_mb",
        "utilization_percent",
        "emulated",
        "uuid",
    )
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_MB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_MB_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_PERCENT_FIELD_NUMBER: _ClassVar[int]
    EMULATED_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    memory_total_mb: int
    memory_used_mb: int
    utilization_percent: int
    emulated: bool
    uuid: str
    def __init__(
        self,
        index: _Optional[int] = ...,
        name: _Optional[str] = ...,
        memory_total_mb: _Optional[int] = ...,
        memory_used_mb: _Optional[int] = ...,
        utilization_percent: _Optional[int] = ...,
        emulated: _Optional[bool] = ...,
        uuid: _Optional[str] = ...,
    ) -> None: ...

class NodeResources(_message.Message):
    __slots__ = ("cpu_cores", "memory_gb", "gpus", "gpu_devices")
    CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPU_DEVICES_FIELD_NUMBER: _ClassVar[int]
    cpu_cores: float
    memory_gb: float
    gpus: int
    gpu_devices: _containers.RepeatedCompositeFieldContainer[GpuDevice]
    def __init__(
        self,
        cpu_cores: _Optional[float] = ...,
        memory_gb: _Optional[float] = ...,
        gpus: _Optional[int] = ...,
        gpu_devices: _Optional[_Iterable[_Union[GpuDevice, _Mapping]]] = ...,
    ) -> None: ...

class Node(_message.Message):
    __slots__ = (
        "node_id",
        "role",
        "status",
        "pool",
        "address",
        "started_at",
        "last_heartbeat",
        "resources",
        "tasks_running",
        "is_leader",
        "tee_enabled",
        "allocated",
        "capacity",
    )
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    TASKS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    IS_LEADER_FIELD_NUMBER: _ClassVar[int]
    TEE_ENABLED_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    role: str
    status: str
    pool: str
    address: str
    started_at: _timestamp_pb2.Timestamp
    last_heartbeat: _timestamp_pb2.Timestamp
    resources: NodeResources
    tasks_running: int
    is_leader: bool
    tee_enabled: bool
    allocated: NodeResources
    capacity: NodeResources
    def __init__(
        self,
        node_id: _Optional[str] = ...,
        role: _Optional[str] = ...,
        status: _Optional[str] = ...,
        pool: _Optional[str] = ...,
        address: _Optional[str] = ...,
        started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
        last_heartbeat: _Optional[
            _Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]
        ] = ...,
        resources: _Optional[_Union[NodeResources, _Mapping]] = ...,
        tasks_running: _Optional[int] = ...,
        is_leader: _Optional[bool] = ...,
        tee_enabled: _Optional[bool] = ...,
        allocated: _Optional[_Union[NodeResources, _Mapping]] = ...,
        capacity: _Optional[_Union[NodeResources, _Mapping]] = ...,
    ) -> None: ...

class NodeList(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    def __init__(self, nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ...) -> None: ...

class AttestationRequest(_message.Message):
    __slots__ = ("node_id", "challenge")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    challenge: str
    def __init__(self, node_id: _Optional[str] = ..., challenge: _Optional[str] = ...) -> None: ...

class AttestationEvidence(_message.Message):
    __slots__ = (
        "platform",
        "quote",
        "signature",
        "debug",
        "nonce",
        "mrenclave",
        "mrsigner",
        "node_key",
    )
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DEBUG_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    MRENCLAVE_FIELD_NUMBER: _ClassVar[int]
    MRSIGNER_FIELD_NUMBER: _ClassVar[int]
    NODE_KEY_FIELD_NUMBER: _ClassVar[int]
    platform: str
    quote: str
    signature: str
    debug: bool
    nonce: str
    mrenclave: str
    mrsigner: str
    node_key: _struct_pb2.Struct
    def __init__(
        self,
        platform: _Optional[str] = ...,
        quote: _Optional[str] = ...,
        signature: _Optional[str] = ...,
        debug: _Optional[bool] = ...,
        nonce: _Optional[str] = ...,
        mrenclave: _Optional[str] = ...,
        mrsigner: _Optional[str] = ...,
        node_key: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...,
    ) -> None: ...

class AttestationResponse(_message.Message):
    __slots__ = ("node_id", "attestation", "verified", "verified_at", "expires_at", "reason")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    attestation: AttestationEvidence
    verified: bool
    verified_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(
        self,
        node_id: _Optional[str] = ...,
        attestation: _Optional[_Union[AttestationEvidence, _Mapping]] = ...,
        verified: _Optional[bool] = ...,
        verified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
        expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
        reason: _Optional[str] = ...,
    ) -> None: ...

class GetProofRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class ProofResponse(_message.Message):
    __slots__ = (
        "task_id",
        "platform",
        "mrenclave",
        "mrsigner",
        "quote",
        "verified",
        "verified_at",
        "debug",
        "verification_error",
        "node_id",
        "nonce",
        "node_key",
        "receipt",
    )
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    MRENCLAVE_FIELD_NUMBER: _ClassVar[int]
    MRSIGNER_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    DEBUG_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_ERROR_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    NODE_KEY_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    platform: str
    mrenclave: str
    mrsigner: str
    quote: str
    verified: bool
    verified_at: _timestamp_pb2.Timestamp
    debug: bool
    verification_error: str
    node_id: str
    nonce: str
    node_key: _struct_pb2.Struct
    receipt: _struct_pb2.Struct
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        platform: _Optional[str] = ...,
        mrenclave: _Optional[str] = ...,
        mrsigner: _Optional[str] = ...,
        quote: _Optional[str] = ...,
        verified: _Optional[bool] = ...,
        verified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
        debug: _Optional[bool] = ...,
        verification_error: _Optional[str] = ...,
        node_id: _Optional[str] = ...,
        nonce: _Optional[str] = ...,
        node_key: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...,
        receipt: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...,
    ) -> None: ...

class AuthRequest(_message.Message):
    __slots__ = ("workspace_id", "workspace_secret")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_SECRET_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    workspace_secret: str
    def __init__(
        self, workspace_id: _Optional[str] = ..., workspace_secret: _Optional[str] = ...
    ) -> None: ...

class AuthToken(_message.Message):
    __slots__ = ("token", "expires_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(
        self,
        token: _Optional[str] = ...,
        expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...,
    ) -> None: ...
