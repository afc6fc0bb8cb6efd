"""The README's promises that code can check."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.api.errors import ERRORS
from tests.not_built import NOT_BUILT

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BUILTINS = Path(__file__).resolve().parents[1] / "handlers" / "task_functions"


def test_error_table_matches_the_error_model() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (\d{3}) \| `(\w+)` \|$", README, flags=re.MULTILINE)
    table = {code: (int(status), grpc) for code, status, grpc in rows}
    assert table == {code: (kind.http_status, kind.grpc_status.name) for code, kind in ERRORS.items()}


def test_not_built_list_matches_the_schemathesis_exclusions() -> None:
    section = README.split("## Not built yet", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))
    assert listed == set(NOT_BUILT)


def test_status_table_matches_each_apis_views() -> None:
    from handlers.cloudai.views import STATUS as CLOUDAI
    from handlers.openmcp.views import STATUS as OPENMCP
    from handlers.orchestrator.views import STATUS as ORCHESTRATOR

    rows = re.findall(
        r"^\| `(\w+)` \| `(\w+)`[^|]* \| `(\w+)`[^|]* \| `(\w+)`[^|]* \|$", README, flags=re.MULTILINE
    )
    table = {grey: (openmcp, orchestrator, cloudai) for grey, openmcp, orchestrator, cloudai in rows}
    assert table == {status: (OPENMCP[status], ORCHESTRATOR[status], CLOUDAI[status]) for status in OPENMCP}


def test_task_type_table_names_every_registered_pipeline() -> None:
    from runtime.execution.pipeline import get_pipeline, pipeline_names

    listed = re.findall(
        r"^\| `(\w+)` \| `\w+`.*\| (sequential|parallel|hybrid|\*\*not runnable)", README, re.M
    )
    builtin = set(
        re.findall(r'named_pipeline\(\s*"(\w+)"', "".join(p.read_text() for p in BUILTINS.glob("*.py")))
    )
    assert {name for name, _ in listed} == builtin  # tests register pipelines of their own
    assert builtin <= set(pipeline_names())
    for name, mode in listed:
        pipeline = get_pipeline(name)
        assert pipeline is not None
        assert (pipeline.unavailable is not None) == mode.startswith("**not")
        assert pipeline.unavailable is not None or pipeline.default_mode == mode
