"""`make codegen`: deterministic, fails on drift, writes 501 skeletons without touching code."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codegen.pipeline import _same_tree, generate, run
from generated.grey.operations import OPERATIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of spec/, handlers/ and generated/ to run codegen in."""
    root = tmp_path_factory.mktemp("repo")
    for folder in ("spec", "handlers", "generated"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _edit_spec(root: Path, change) -> None:
    path = root / "spec" / "grey" / "openapi.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_committed_generated_folder_is_fresh() -> None:
    assert run(ROOT, check=True) == 0


def test_two_runs_write_identical_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    generate(ROOT, first)
    generate(ROOT, second)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_drift_names_the_operation_and_the_field(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "spec", root / "spec")
    proto = root / "spec" / "grey" / "proto" / "grey" / "v1" / "grey.proto"
    proto.write_text(proto.read_text().replace("  optional string reason = 2;\n", ""))
    with pytest.raises(SystemExit) as stopped:
        generate(root, tmp_path / "out")
    assert "cancelTask" in str(stopped.value) and "'reason'" in str(stopped.value)
    assert str(stopped.value).startswith("spec/grey: "), "the message names the API"


def test_drift_of_a_field_type_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "spec", root / "spec")
    proto = root / "spec" / "grey" / "proto" / "grey" / "v1" / "grey.proto"
    proto.write_text(proto.read_text().replace("int32 progress = 5;", "string progress = 5;"))
    with pytest.raises(SystemExit) as stopped:
        generate(root, tmp_path / "out")
    assert "'progress' is integer in the OpenAPI but string" in str(stopped.value)


def test_an_rpc_without_an_operation_is_drift(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "spec", root / "spec")
    _edit_spec(root, lambda d: d["paths"]["/v1/cluster/nodes"]["get"].update({"x-grpc": "none"}))
    with pytest.raises(SystemExit) as stopped:
        generate(root, tmp_path / "out")
    assert "GreyService.ListNodes" in str(stopped.value)


def test_an_allowed_difference_passes(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "spec", root / "spec")
    proto = root / "spec" / "grey" / "proto" / "grey" / "v1" / "grey.proto"
    proto.write_text(proto.read_text().replace("  optional string reason = 2;\n", ""))
    _edit_spec(
        root,
        lambda d: d["paths"]["/v1/tasks/{task_id}"]["delete"].update(
            {"x-grey-drift-allow": {"reason": "REST only"}}
        ),
    )
    generate(root, tmp_path / "out")


def test_new_operation_gets_a_501_skeleton_and_written_handlers_stay(sandbox: Path) -> None:
    tasks_before = (sandbox / "handlers" / "grey" / "tasks.py").read_text()

    def add_operation(document: dict) -> None:
        document["paths"]["/v1/tasks/{task_id}/retry"] = {
            "post": {
                "operationId": "retryTask",
                "tags": ["tasks"],
                "summary": "Run a finished task again",
                "x-grey-scopes": ["tasks:write"],
                "x-grpc": "none",
                "parameters": [{"$ref": "#/components/parameters/TaskId"}],
                "responses": {
                    "200": {
                        "description": "Queued again",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}},
                    }
                },
            }
        }

    _edit_spec(sandbox, add_operation)
    assert run(sandbox, check=True) == 1
    assert run(sandbox, check=False) == 0
    handlers = (sandbox / "handlers" / "grey" / "tasks.py").read_text()
    assert handlers.startswith(tasks_before)
    assert (
        "async def retry_task(request: models.RetryTaskInput, ctx: RequestContext) -> models.Task:"
        in handlers
    )
    assert 'raise ApiError.not_implemented("retryTask")' in handlers
    assert "retryTask" in (sandbox / "generated" / "grey" / "operations.py").read_text()
    assert run(sandbox, check=True) == 0
    assert run(sandbox, check=False) == 0
    assert (sandbox / "handlers" / "grey" / "tasks.py").read_text() == handlers


def test_every_operation_has_a_handler_with_the_interface_types() -> None:
    import inspect

    for operation in OPERATIONS.values():
        function = getattr(importlib.import_module(f"handlers.grey.{operation.tag}"), operation.handler)
        signature = inspect.signature(function)
        assert list(signature.parameters) == ["request", "ctx"], operation.operation_id
        assert signature.parameters["request"].annotation in (
            f"models.{operation.input_model.__name__}",
            operation.input_model,
        ), operation.operation_id


def test_handler_table_has_every_operation_and_its_tag_function() -> None:
    from handlers.grey import HANDLERS

    assert set(HANDLERS) == set(OPERATIONS)
    for operation_id, operation in OPERATIONS.items():
        module = importlib.import_module(f"handlers.grey.{operation.tag}")
        assert HANDLERS[operation_id] is getattr(module, operation.handler), operation_id


def test_a_new_tag_module_is_announced_and_a_stream_skeleton_is_a_generator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    for folder in ("spec", "handlers", "generated"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))

    def add_operation(document: dict) -> None:
        document["paths"]["/v1/reports/stream"] = {
            "get": {
                "operationId": "streamReports",
                "tags": ["reports"],
                "summary": "Reports as they are written",
                "x-grey-scopes": ["tasks:read"],
                "x-grpc": "none",
                "x-grey-event-schema": "TaskStatusUpdate",
                "responses": {
                    "200": {
                        "description": "An event stream",
                        "content": {
                            "text/event-stream": {"schema": {"$ref": "#/components/schemas/TaskStreamEvent"}}
                        },
                    }
                },
            }
        }

    _edit_spec(root, add_operation)
    assert run(root, check=False) == 0
    printed = capsys.readouterr().out
    assert "handlers/grey/reports.py: new tag module; add it to handlers/grey/__init__.py" in printed
    interfaces = (root / "generated" / "grey" / "interfaces.py").read_text()
    assert "class ReportsHandlers(Protocol):" in interfaces
    assert '"streamReports": reports.stream_reports,' in interfaces
    module = ast.parse((root / "handlers" / "grey" / "reports.py").read_text())
    (skeleton,) = [node for node in module.body if isinstance(node, ast.AsyncFunctionDef)]
    assert skeleton.name == "stream_reports"
    assert any(isinstance(node, ast.Yield) for node in ast.walk(skeleton))
    assert run(root, check=True) == 0
    assert "new tag module" not in capsys.readouterr().out


DEMO_SPEC = """\
openapi: 3.0.3
info:
  title: Demo API
  version: 1.0.0
paths:
  /v1/greetings/{name}:
    get:
      operationId: getGreeting
      tags: [greetings]
      summary: Greet someone
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
      responses:
        "200":
          description: A greeting
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Greeting"}
components:
  schemas:
    Greeting:
      type: object
      required: [text]
      properties:
        text: {type: string}
"""


def test_a_new_api_folder_is_generated_into_its_own_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sixth API: spec/demo/openapi.yaml alone (no proto) → generated/demo/ and handlers/demo/."""
    root = tmp_path / "repo"
    for folder in ("spec", "handlers", "generated"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "spec" / "demo").mkdir()
    (root / "spec" / "demo" / "openapi.yaml").write_text(DEMO_SPEC)
    assert run(root, check=True) == 1  # generated/demo/ is missing: stale
    assert run(root, check=False) == 0
    printed = capsys.readouterr().out
    assert "handlers/demo/greetings.py: wrote a 501 skeleton for getGreeting" in printed
    assert "generated/demo/: 1 operations written." in printed

    demo = root / "generated" / "demo"
    assert sorted(p.name for p in demo.iterdir() if p.name != "__pycache__") == [
        "__init__.py",
        "client.py",
        "errors.py",
        "interfaces.py",
        "models.py",
        "operations.py",
    ]  # REST only: no gRPC bindings, converters or stubs without a proto
    assert "class GetGreetingInput(BaseModel):" in (demo / "models.py").read_text()
    assert '"getGreeting": OperationSpec(' in (demo / "operations.py").read_text()
    assert "from generated.demo import models" in (demo / "client.py").read_text()
    assert "class DemoClient(GreyClientBase):" in (demo / "client.py").read_text()
    assert "ERROR_CODES: dict[str, str] = {" in (demo / "errors.py").read_text()
    skeleton = (root / "handlers" / "demo" / "greetings.py").read_text()
    assert (
        "async def get_greeting(request: models.GetGreetingInput, ctx: RequestContext) -> models.Greeting:"
        in skeleton
    )
    assert 'raise ApiError.not_implemented("getGreeting")' in skeleton
    package = (root / "handlers" / "demo" / "__init__.py").read_text()
    assert "interfaces.handler_table(" in package and "greetings=greetings" in package

    # Grey's output and handlers are untouched.
    assert _same_tree(ROOT / "generated" / "grey", root / "generated" / "grey") == []
    for module in (ROOT / "handlers" / "grey").glob("*.py"):
        assert (root / "handlers" / "grey" / module.name).read_text() == module.read_text(), module.name

    assert run(root, check=True) == 0
    assert run(root, check=False) == 0
    assert (root / "handlers" / "demo" / "greetings.py").read_text() == skeleton

    # The new package imports and its handler table covers the operation (the sandbox first on
    # the path for generated/ and handlers/, this checkout for runtime/).
    probe = (
        "import handlers.demo, generated.demo.operations as o; "
        "assert set(handlers.demo.HANDLERS) == set(o.OPERATIONS) == {'getGreeting'}; print('ok')"
    )
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{ROOT}"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
