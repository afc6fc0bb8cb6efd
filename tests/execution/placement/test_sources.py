"""Checkpoint sources refused at submit: what urllib could never fetch answers a clear
invalid-request error (400 in the API) instead of failing later inside a worker or a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.execution.placement.errors import InvalidPlacementRequest, SourceNotAllowed
from runtime.execution.placement.sources import check_url


@pytest.mark.parametrize(
    "url", ["http://exämple.com/model.safetensors", "https://[::1/model", "http:///model"]
)
def test_a_source_url_urllib_cannot_fetch_is_an_invalid_request(url: str) -> None:
    with pytest.raises(InvalidPlacementRequest):
        check_url(url, ())


def test_a_file_url_outside_the_allowed_roots_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceNotAllowed):
        check_url(f"file://{tmp_path}/model.safetensors", ())
    check_url(f"file://{tmp_path}/model.safetensors", (tmp_path,))
