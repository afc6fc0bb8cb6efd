"""Proto3 enums: drift pairs them with OpenAPI string enums, the converters translate them.

A sandbox API `spec/jobs` (not in the repository) has top-level and nested enums, prefixed
(`JOB_STATUS_PENDING` ↔ `PENDING`) and unprefixed (`SEQUENTIAL = 0` ↔ `sequential`), single,
`optional`, `repeated` and inside repeated sub-messages, in requests and in replies.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.descriptor_pb2 import EnumDescriptorProto

import generated
from codegen.contract import load_contract
from codegen.drift import DriftError, check_drift
from codegen.enums import match, member_names, rest_name
from codegen.pipeline import generate, generate_api
from codegen.protos import load_descriptors
from runtime.api.protobuf import to_enum, to_enums

JOBS_OPENAPI = """\
openapi: 3.0.3
info: {title: Jobs API, version: 1.0.0}
paths:
  /v1/jobs:
    post:
      operationId: createJob
      tags: [jobs]
      summary: Create a job
      x-grpc: JobService.CreateJob
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/CreateJobRequest'}
      responses:
        '200':
          description: The job
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Job'}
    get:
      operationId: listJobs
      tags: [jobs]
      summary: List jobs
      x-grpc: JobService.ListJobs
      parameters:
        - {name: status, in: query, schema: {$ref: '#/components/schemas/JobStatus'}}
      responses:
        '200':
          description: The jobs
          content:
            application/json:
              schema: {$ref: '#/components/schemas/JobList'}
components:
  schemas:
    JobStatus: {type: string, enum: [PENDING, RUNNING, SUCCEEDED, FAILED]}
    ExecutionMode: {type: string, enum: [sequential, parallel, hybrid]}
    StepKind: {type: string, enum: [shell, http]}
    Priority: {type: string, enum: [low, high]}
    Step:
      type: object
      required: [name]
      properties:
        name: {type: string}
        kind: {$ref: '#/components/schemas/StepKind'}
        retry_on: {type: array, items: {$ref: '#/components/schemas/JobStatus'}}
    CreateJobRequest:
      type: object
      required: [name]
      properties:
        name: {type: string}
        mode: {$ref: '#/components/schemas/ExecutionMode'}
        steps: {type: array, items: {$ref: '#/components/schemas/Step'}}
        notify_on: {type: array, items: {$ref: '#/components/schemas/JobStatus'}}
        priority: {$ref: '#/components/schemas/Priority'}
    Job:
      type: object
      required: [job_id, status]
      properties:
        job_id: {type: string}
        status: {$ref: '#/components/schemas/JobStatus'}
        previous_status: {$ref: '#/components/schemas/JobStatus'}
        mode: {$ref: '#/components/schemas/ExecutionMode'}
        steps: {type: array, items: {$ref: '#/components/schemas/Step'}}
        priority: {$ref: '#/components/schemas/Priority'}
    JobList:
      type: object
      properties:
        jobs: {type: array, items: {$ref: '#/components/schemas/Job'}}
"""

JOBS_PROTO = """\
syntax = "proto3";

package jobs.v1;

enum JobStatus {
  JOB_STATUS_UNSPECIFIED = 0;
  JOB_STATUS_PENDING = 1;
  JOB_STATUS_RUNNING = 2;
  JOB_STATUS_SUCCEEDED = 3;
  JOB_STATUS_FAILED = 4;
}

enum ExecutionMode {
  SEQUENTIAL = 0;
  PARALLEL = 1;
  HYBRID = 2;
}

message Step {
  enum Kind {
    KIND_UNSPECIFIED = 0;
    KIND_SHELL = 1;
    KIND_HTTP = 2;
  }
  string name = 1;
  Kind kind = 2;
  repeated JobStatus retry_on = 3;
}

message CreateJobRequest {
  string name = 1;
  ExecutionMode mode = 2;
  repeated Step steps = 3;
  repeated JobStatus notify_on = 4;
  string priority = 5;
}

message ListJobsRequest {
  optional JobStatus status = 1;
}

message Job {
  string job_id = 1;
  JobStatus status = 2;
  optional JobStatus previous_status = 3;
  ExecutionMode mode = 4;
  repeated Step steps = 5;
  string priority = 6;
}

message JobList {
  repeated Job jobs = 1;
}

service JobService {
  rpc CreateJob(CreateJobRequest) returns (Job);
  rpc ListJobs(ListJobsRequest) returns (JobList);
}
"""


def _write_jobs(root: Path, openapi: str = JOBS_OPENAPI, proto: str = JOBS_PROTO) -> Path:
    folder = root / "spec" / "jobs"
    (folder / "proto" / "jobs" / "v1").mkdir(parents=True)
    (folder / "openapi.yaml").write_text(openapi)
    (folder / "proto" / "jobs" / "v1" / "jobs.proto").write_text(proto)
    return folder


def _drift(tmp_path: Path, openapi: str = JOBS_OPENAPI, proto: str = JOBS_PROTO) -> dict[str, dict[int, str]]:
    folder = _write_jobs(tmp_path, openapi, proto)
    return check_drift(load_contract(folder / "openapi.yaml"), load_descriptors(folder))


def _drift_problems(tmp_path: Path, openapi: str = JOBS_OPENAPI, proto: str = JOBS_PROTO) -> str:
    with pytest.raises(DriftError) as stopped:
        _drift(tmp_path, openapi, proto)
    return str(stopped.value)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The sandbox API generated and imported as `generated.jobs` (its folder joins the package)."""
    root = tmp_path_factory.mktemp("jobs")
    _write_jobs(root)
    out = root / "generated"
    generate(root, out)
    generated.__path__.append(str(out))
    try:
        yield importlib.import_module("generated.jobs")
    finally:
        generated.__path__.remove(str(out))
        for name in [name for name in sys.modules if name.startswith("generated.jobs")]:
            del sys.modules[name]


def _module(jobs: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{jobs.__name__}.{name}")


# The naming rule -----------------------------------------------------------------------------


def _enum(name: str, *values: str) -> EnumDescriptorProto:
    enum = EnumDescriptorProto(name=name)
    for number, value in enumerate(values):
        enum.value.add(name=value, number=number)
    return enum


def test_rest_name_drops_the_screaming_snake_prefix_of_the_enum() -> None:
    assert rest_name("TaskStatus", "TASK_STATUS_PENDING") == "PENDING"
    assert rest_name("TaskStatus", "TASK_STATUS_UNSPECIFIED") == "UNSPECIFIED"
    assert rest_name("ExecutionMode", "SEQUENTIAL") == "SEQUENTIAL"
    assert rest_name("Kind", "KIND_HTTP") == "HTTP"


def test_match_is_case_insensitive_and_zero_maps_only_when_listed() -> None:
    status = _enum("TaskStatus", "TASK_STATUS_UNSPECIFIED", "TASK_STATUS_QUEUED", "TASK_STATUS_RUNNING")
    assert match(status, ["queued", "running"]) == ({1: "queued", 2: "running"}, [], [])
    mode = _enum("ExecutionMode", "SEQUENTIAL", "PARALLEL")
    assert match(mode, ["sequential", "parallel"]) == ({0: "sequential", 1: "parallel"}, [], [])
    assert match(status, ["queued", "paused"]) == ({1: "queued"}, ["TASK_STATUS_RUNNING"], ["paused"])


def test_member_names_are_betterproto2s(jobs: ModuleType) -> None:
    pb = _module(jobs, "grpc.jobs.v1")
    descriptors = load_descriptors(Path(str(jobs.__file__)).parents[2] / "spec" / "jobs")
    (file,) = [f for f in descriptors.file if f.package == "jobs.v1"]
    enums = {enum.name: enum for enum in file.enum_type}
    enums["StepKind"] = file.message_type[0].enum_type[0]
    for python, enum in enums.items():
        generated_members = {member.value: member.name for member in getattr(pb, python)}
        assert member_names(enum) == generated_members, python


# Drift ---------------------------------------------------------------------------------------


def test_enums_that_correspond_pass_drift_and_give_their_rest_spelling(tmp_path: Path) -> None:
    assert _drift(tmp_path) == {
        ".jobs.v1.ExecutionMode": {0: "sequential", 1: "parallel", 2: "hybrid"},
        ".jobs.v1.JobStatus": {1: "PENDING", 2: "RUNNING", 3: "SUCCEEDED", 4: "FAILED"},
        ".jobs.v1.Step.Kind": {1: "shell", 2: "http"},
    }


def test_a_proto_value_missing_from_the_openapi_is_named(tmp_path: Path) -> None:
    proto = JOBS_PROTO.replace(
        "  JOB_STATUS_FAILED = 4;\n", "  JOB_STATUS_FAILED = 4;\n  JOB_STATUS_PAUSED = 5;\n"
    )
    problems = _drift_problems(tmp_path, proto=proto)
    assert (
        "createJob (JobService.CreateJob) response: field 'status': proto enum JobStatus values "
        "missing from the OpenAPI enum: JOB_STATUS_PAUSED" in problems
    )
    assert "listJobs (JobService.ListJobs) request: field 'status'" in problems


def test_an_openapi_value_missing_from_the_proto_is_named(tmp_path: Path) -> None:
    openapi = JOBS_OPENAPI.replace(
        "enum: [sequential, parallel, hybrid]", "enum: [sequential, parallel, hybrid, eager]"
    )
    problems = _drift_problems(tmp_path, openapi=openapi)
    assert (
        "createJob (JobService.CreateJob) request: field 'mode': OpenAPI enum values missing "
        "from the proto enum ExecutionMode: eager" in problems
    )


def test_enums_in_nested_and_repeated_messages_are_checked(tmp_path: Path) -> None:
    openapi = JOBS_OPENAPI.replace("enum: [shell, http]", "enum: [shell, http, grpc]")
    problems = _drift_problems(tmp_path, openapi=openapi)
    assert "createJob (JobService.CreateJob) request.steps[]: field 'kind'" in problems
    assert "listJobs (JobService.ListJobs) response.jobs[].steps[]: field 'kind'" in problems
    assert "missing from the proto enum Kind: grpc" in problems


def test_repeated_enum_items_are_checked(tmp_path: Path) -> None:
    openapi = JOBS_OPENAPI.replace(
        "notify_on: {type: array, items: {$ref: '#/components/schemas/JobStatus'}}",
        "notify_on: {type: array, items: {type: string, enum: [PENDING, DONE]}}",
    )
    problems = _drift_problems(tmp_path, openapi=openapi)
    assert "request: items of field 'notify_on': proto enum JobStatus values missing" in problems
    assert "JOB_STATUS_RUNNING, JOB_STATUS_SUCCEEDED, JOB_STATUS_FAILED" in problems
    assert "OpenAPI enum values missing from the proto enum JobStatus: DONE" in problems


def test_a_proto_enum_needs_an_openapi_enum(tmp_path: Path) -> None:
    openapi = JOBS_OPENAPI.replace(
        "mode: {$ref: '#/components/schemas/ExecutionMode'}", "mode: {type: string}"
    )
    problems = _drift_problems(tmp_path, openapi=openapi)
    assert (
        "createJob (JobService.CreateJob) request: field 'mode' is a proto enum ExecutionMode "
        "but string without an `enum` list in the OpenAPI" in problems
    )


def test_an_enum_spelled_two_ways_is_drift(tmp_path: Path) -> None:
    openapi = JOBS_OPENAPI.replace(
        "- {name: status, in: query, schema: {$ref: '#/components/schemas/JobStatus'}}",
        "- {name: status, in: query, schema: {type: string, enum: [pending, running, succeeded, failed]}}",
    )
    problems = _drift_problems(tmp_path, openapi=openapi)
    assert "proto enum JobStatus is spelled differently here" in problems


def test_a_proto_string_may_carry_an_openapi_enum(tmp_path: Path) -> None:
    assert ".jobs.v1.Priority" not in _drift(tmp_path)  # `priority` is a proto string: no table


def test_drift_of_an_enum_names_the_api(tmp_path: Path) -> None:
    proto = JOBS_PROTO.replace("  HYBRID = 2;\n", "  HYBRID = 2;\n  EAGER = 3;\n")
    _write_jobs(tmp_path, proto=proto)
    with pytest.raises(DriftError) as stopped:
        generate_api(tmp_path, "jobs", tmp_path / "out")
    assert str(stopped.value).startswith("spec/jobs: ")
    assert "missing from the OpenAPI enum: EAGER" in str(stopped.value)


# Converters ----------------------------------------------------------------------------------


def test_generated_tables_use_the_openapi_spelling(jobs: ModuleType) -> None:
    convert = _module(jobs, "grpc_convert")
    pb = _module(jobs, "grpc.jobs.v1")
    assert convert.JOB_STATUS_TO_REST == {
        pb.JobStatus.PENDING: "PENDING",
        pb.JobStatus.RUNNING: "RUNNING",
        pb.JobStatus.SUCCEEDED: "SUCCEEDED",
        pb.JobStatus.FAILED: "FAILED",
    }
    assert convert.EXECUTION_MODE_FROM_REST["sequential"] is pb.ExecutionMode.SEQUENTIAL
    assert convert.STEP_KIND_FROM_REST == {"shell": pb.StepKind.SHELL, "http": pb.StepKind.HTTP}


def test_a_proto_without_well_known_types_generates_importable_bindings(jobs: ModuleType) -> None:
    service = _module(jobs, "grpc_service")
    pb = _module(jobs, "grpc.jobs.v1")
    assert service.RPC_MESSAGES["JobService.ListJobs"] == (pb.ListJobsRequest, pb.JobList)


def test_a_request_message_reads_as_rest_strings(jobs: ModuleType) -> None:
    convert = _module(jobs, "grpc_convert")
    pb = _module(jobs, "grpc.jobs.v1")
    models = _module(jobs, "models")
    message = pb.CreateJobRequest(
        name="nightly",
        mode=pb.ExecutionMode.HYBRID,
        steps=[
            pb.Step(name="build", kind=pb.StepKind.SHELL, retry_on=[pb.JobStatus.FAILED]),
            pb.Step(name="plain"),
        ],
        notify_on=[pb.JobStatus.SUCCEEDED, pb.JobStatus.UNSPECIFIED, pb.JobStatus.FAILED],
        priority="high",
    )
    wire = pb.CreateJobRequest.parse(bytes(message))
    read: Callable[[Any], dict[str, Any]] = convert.CONVERTERS["JobService.CreateJob"][0]
    data = read(wire)
    assert data == {
        "name": "nightly",
        "mode": "hybrid",
        "steps": [
            {"name": "build", "kind": "shell", "retry_on": ["FAILED"]},
            {"name": "plain"},  # kind 0 has no REST string: left out
        ],
        "notify_on": ["SUCCEEDED", "FAILED"],
        "priority": "high",
    }
    models.CreateJobInput.model_validate(data)


def test_zero_that_maps_is_sent_and_zero_that_does_not_is_left_out(jobs: ModuleType) -> None:
    convert = _module(jobs, "grpc_convert")
    pb = _module(jobs, "grpc.jobs.v1")
    assert convert.create_job_request_to_dict(pb.CreateJobRequest(name="n")) == {
        "name": "n",
        "mode": "sequential",  # SEQUENTIAL = 0 is listed in the OpenAPI
    }
    assert convert.list_jobs_request_to_dict(pb.ListJobsRequest()) == {}
    assert convert.list_jobs_request_to_dict(pb.ListJobsRequest(status=pb.JobStatus.UNSPECIFIED)) == {}
    assert convert.list_jobs_request_to_dict(pb.ListJobsRequest(status=pb.JobStatus.RUNNING)) == {
        "status": "RUNNING"
    }


def test_a_reply_model_becomes_enum_members(jobs: ModuleType) -> None:
    convert = _module(jobs, "grpc_convert")
    pb = _module(jobs, "grpc.jobs.v1")
    models = _module(jobs, "models")
    job = models.Job(
        job_id="j1",
        status="RUNNING",
        previous_status="PENDING",
        mode="parallel",
        steps=[models.Step(name="s", kind="http", retry_on=["FAILED", "PENDING"])],
        priority="low",
    )
    write: Callable[[Any], Any] = convert.CONVERTERS["JobService.CreateJob"][1]
    message = pb.Job.parse(bytes(write(job)))
    assert message.status is pb.JobStatus.RUNNING
    assert message.previous_status is pb.JobStatus.PENDING
    assert message.mode is pb.ExecutionMode.PARALLEL
    assert message.steps[0].kind is pb.StepKind.HTTP
    assert message.steps[0].retry_on == [pb.JobStatus.FAILED, pb.JobStatus.PENDING]
    assert message.priority == "low"


def test_absent_rest_values_are_zero_or_unset(jobs: ModuleType) -> None:
    convert = _module(jobs, "grpc_convert")
    pb = _module(jobs, "grpc.jobs.v1")
    listed = convert.job_list_from({"jobs": [{"job_id": "j", "status": "FAILED", "steps": [{"name": "s"}]}]})
    (job,) = listed.jobs
    assert job.status is pb.JobStatus.FAILED
    assert job.previous_status is None  # proto3 optional: stays unset
    assert job.mode is pb.ExecutionMode.SEQUENTIAL  # the enum's 0
    assert job.steps[0].kind is pb.StepKind.UNSPECIFIED
    assert job.steps[0].retry_on == []


def test_an_unknown_rest_value_is_a_clear_error(jobs: ModuleType) -> None:
    convert = _module(jobs, "grpc_convert")
    with pytest.raises(ValueError, match="'DONE' is not one of the REST values 'PENDING', 'RUNNING'"):
        convert.job_list_from({"jobs": [{"job_id": "j", "status": "DONE"}]})
    with pytest.raises(ValueError, match="'nope'"):
        to_enums(convert.JOB_STATUS_FROM_REST, ["PENDING", "nope"])


def test_to_enum_accepts_a_python_enum_of_rest_strings() -> None:
    import enum

    class Mode(enum.Enum):
        FAST = "fast"

    table = {"fast": 1}
    assert to_enum(table, Mode.FAST, 0) == 1
    assert to_enum(table, None, 0) == 0
    assert to_enums(table, None) == []
