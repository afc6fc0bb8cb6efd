from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEQUENTIAL: _ClassVar[ExecutionMode]
    PARALLEL: _ClassVar[ExecutionMode]
    HYBRID: _ClassVar[ExecutionMode]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_QUEUED: _ClassVar[TaskStatus]
    TASK_STATUS_RUNNING: _ClassVar[TaskStatus]
    TASK_STATUS_COMPLETED: _ClassVar[TaskStatus]
    TASK_STATUS_FAILED: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELLED: _ClassVar[TaskStatus]
    TASK_STATUS_TIMEOUT: _ClassVar[TaskStatus]

SEQUENTIAL: ExecutionMode
PARALLEL: ExecutionMode
HYBRID: ExecutionMode
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_QUEUED: TaskStatus
TASK_STATUS_RUNNING: TaskStatus
TASK_STATUS_COMPLETED: TaskStatus
TASK_STATUS_FAILED: TaskStatus
TASK_STATUS_CANCELLED: TaskStatus
TASK_STATUS_TIMEOUT: TaskStatus

class Input(_message.Message):
    __slots__ = ("input_id", "type", "data")
    INPUT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    input_id: str
    type: str
    data: str
    def __init__(
        self, input_id: _Optional[str] = ..., type: _Optional[str] = ..., data: _Optional[str] = ...
    ) -> None: ...

class TaskRequest(_message.Message):
    __slots__ = (
        "task_id",
        "task_type",
        "metadata",
        "inputs",
        "execution_mode",
        "priority",
        "timeout_ms",
    )
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_MODE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    task_type: str
    metadata: _containers.ScalarMap[str, str]
    inputs: _containers.RepeatedCompositeFieldContainer[Input]
    execution_mode: ExecutionMode
    priority: int
    timeout_ms: int
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        task_type: _Optional[str] = ...,
        metadata: _Optional[_Mapping[str, str]] = ...,
        inputs: _Optional[_Iterable[_Union[Input, _Mapping]]] = ...,
        execution_mode: _Optional[_Union[ExecutionMode, str]] = ...,
        priority: _Optional[int] = ...,
        timeout_ms: _Optional[int] = ...,
    ) -> None: ...

class TaskResponse(_message.Message):
    __slots__ = ("task_id", "status", "message", "estimated_completion_ms")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETION_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: TaskStatus
    message: str
    estimated_completion_ms: int
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        status: _Optional[_Union[TaskStatus, str]] = ...,
        message: _Optional[str] = ...,
        estimated_completion_ms: _Optional[int] = ...,
    ) -> None: ...

class TaskStatusRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class AgentExecution(_message.Message):
    __slots__ = ("agent_id", "agent_type", "status", "execution_time_ms", "retry_count", "error")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    agent_type: str
    status: TaskStatus
    execution_time_ms: int
    retry_count: int
    error: str
    def __init__(
        self,
        agent_id: _Optional[str] = ...,
        agent_type: _Optional[str] = ...,
        status: _Optional[_Union[TaskStatus, str]] = ...,
        execution_time_ms: _Optional[int] = ...,
        retry_count: _Optional[int] = ...,
        error: _Optional[str] = ...,
    ) -> None: ...

class Output(_message.Message):
    __slots__ = ("type", "data")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    type: str
    data: _struct_pb2.Struct
    def __init__(
        self,
        type: _Optional[str] = ...,
        data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...,
    ) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class TaskMetrics(_message.Message):
    __slots__ = (
        "total_duration_ms",
        "queue_time_ms",
        "execution_time_ms",
        "retry_count",
        "agents_used",
    )
    TOTAL_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    AGENTS_USED_FIELD_NUMBER: _ClassVar[int]
    total_duration_ms: int
    queue_time_ms: int
    execution_time_ms: int
    retry_count: int
    agents_used: int
    def __init__(
        self,
        total_duration_ms: _Optional[int] = ...,
        queue_time_ms: _Optional[int] = ...,
        execution_time_ms: _Optional[int] = ...,
        retry_count: _Optional[int] = ...,
        agents_used: _Optional[int] = ...,
    ) -> None: ...

class TaskStatusResponse(_message.Message):
    __slots__ = ("task_id", "status", "agent_executions", "output", "error", "metrics")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: TaskStatus
    agent_executions: _containers.RepeatedCompositeFieldContainer[AgentExecution]
    output: Output
    error: Error
    metrics: TaskMetrics
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        status: _Optional[_Union[TaskStatus, str]] = ...,
        agent_executions: _Optional[_Iterable[_Union[AgentExecution, _Mapping]]] = ...,
        output: _Optional[_Union[Output, _Mapping]] = ...,
        error: _Optional[_Union[Error, _Mapping]] = ...,
        metrics: _Optional[_Union[TaskMetrics, _Mapping]] = ...,
    ) -> None: ...

class TaskUpdate(_message.Message):
    __slots__ = ("task_id", "status", "agent_id", "message", "progress_percent", "timestamp_ms")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: TaskStatus
    agent_id: str
    message: str
    progress_percent: int
    timestamp_ms: int
    def __init__(
        self,
        task_id: _Optional[str] = ...,
        status: _Optional[_Union[TaskStatus, str]] = ...,
        agent_id: _Optional[str] = ...,
        message: _Optional[str] = ...,
        progress_percent: _Optional[int] = ...,
        timestamp_ms: _Optional[int] = ...,
    ) -> None: ...

class TaskCancelRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TaskCancelResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...
