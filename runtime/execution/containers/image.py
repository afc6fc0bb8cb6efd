"""A tiny local image from the `busybox-static` binary (no registry is reachable here).

`/bin/busybox` copied as `bin/busybox`, a relative link per applet (`sh`, `echo`, ...),
empty `tmp`, `proc`, `sys`, `dev`, `etc`, packed and `podman import`ed under a local tag.
The node's probe runs `true` in it; the tests run their commands in it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from runtime.execution.containers.settings import ContainerSettings

BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")


class ImageUnavailable(RuntimeError):
    """The image is not on the node and could not be built."""


def busybox_binary() -> Path | None:
    for candidate in BUSYBOX_PATHS:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def image_exists(settings: ContainerSettings, image: str) -> bool:
    done = subprocess.run(
        [settings.engine, "image", "exists", image], capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0


def build_busybox_image(settings: ContainerSettings, tag: str) -> None:
    """Imports a busybox image as `tag` (replacing one of that tag)."""
    binary = busybox_binary()
    if binary is None:
        raise ImageUnavailable("no busybox binary (install busybox-static) to build " + tag)
    applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True, timeout=30, check=True)
    with tempfile.TemporaryDirectory(prefix="grey-image-") as work:
        root = Path(work) / "root"
        for directory in ("bin", "tmp", "proc", "sys", "dev", "etc"):
            (root / directory).mkdir(parents=True)
        shutil.copy2(binary, root / "bin" / "busybox")
        for applet in applets.stdout.split():
            if applet != "busybox" and "/" not in applet:
                (root / "bin" / applet).symlink_to("busybox")
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
        archive = Path(work) / "image.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True, timeout=60)
        done = subprocess.run(
            [settings.engine, "import", "--quiet", str(archive), tag],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if done.returncode != 0:
        raise ImageUnavailable(f"{settings.engine} import {tag} failed: {done.stderr.strip()[-500:]}")


def ensure_busybox_image(settings: ContainerSettings, tag: str) -> None:
    """The image `tag` exists afterwards (built if it did not), or ImageUnavailable."""
    if not image_exists(settings, tag):
        build_busybox_image(settings, tag)
