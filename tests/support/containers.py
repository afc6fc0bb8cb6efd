"""Container test support: the tiny local image `localhost/grey-busybox:test`, once per
session, and the settings that run tasks in it.

No registry is reachable here: the image is `podman import`ed from the `busybox-static`
binary (runtime.execution.containers.image). Without podman, runc or busybox the tests
that need them fail when CI is set and are skipped otherwise, saying what is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from runtime.execution.containers.image import ImageUnavailable, busybox_binary, ensure_busybox_image
from runtime.execution.containers.probe import probe
from runtime.execution.containers.settings import ContainerSettings

TEST_IMAGE = "localhost/grey-busybox:test"


def missing_or_skip(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def what_is_missing() -> str | None:
    for tool, package in (("podman", "podman"), ("runc", "runc")):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install -y {package}); container tests need it"
    if busybox_binary() is None:
        return "busybox is missing (apt-get install -y busybox-static); the test image is built from it"
    return None


@pytest.fixture(scope="session")
def container_settings() -> Iterator[ContainerSettings]:
    """Settings whose probe image is the test image, built once per session."""
    missing = what_is_missing()
    if missing is not None:
        missing_or_skip(missing)
    settings = ContainerSettings(probe_image=TEST_IMAGE, build_probe_image=False, pull="never")
    try:
        ensure_busybox_image(settings, TEST_IMAGE)
    except ImageUnavailable as error:
        missing_or_skip(f"the test image could not be built: {error}")
    capability = probe(settings)
    if not capability.available:
        missing_or_skip(f"podman cannot run a container here: {capability.reason}")
    yield settings
