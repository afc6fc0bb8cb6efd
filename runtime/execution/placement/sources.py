"""Where downloaded bytes come from: `http(s)://` URLs, `file://` paths inside the allowed
roots (GREY_PLACEMENT_FILE_ROOTS; none by default), and other nodes' byte servers.

A `file://` path is resolved (symlinks and `..` followed) before it is compared with the
roots, so `file:///allowed/../etc/passwd` or a link out of a root is refused.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from runtime.execution.placement.devices import Source
from runtime.execution.placement.errors import (
    InvalidPlacementRequest,
    NetworkFailure,
    NotOnDevice,
    SourceNotAllowed,
)

TIMEOUT_SECONDS = 30.0


class _FileSource(Source):
    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115
        self.size = os.fstat(self._file.fileno()).st_size

    def readinto(self, buffer: memoryview) -> int:
        return self._file.readinto(buffer) or 0

    def close(self) -> None:
        self._file.close()


class HttpSource(Source):
    def __init__(self, response: http.client.HTTPResponse, size: int) -> None:
        self._response, self.size = response, size

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as error:
            raise NetworkFailure(f"reading the source failed: {error}") from None

    def close(self) -> None:
        self._response.close()


def filename_of(url: str) -> str:
    """The checkpoint file's name (the URL's last segment), or `model.bin`."""
    name = PurePosixPath(urllib.parse.urlparse(url).path).name
    safe = "".join(ch for ch in name if ch.isalnum() or ch in "._-")[:128].lstrip(".")
    return safe or "model.bin"


def check_url(url: str, roots: tuple[Path, ...]) -> None:
    """Refuses at submit what could never be read: other schemes, file:// outside the roots,
    URLs that are not ASCII (IRIs: urllib cannot send them) or do not parse."""
    if not url.isascii():
        raise InvalidPlacementRequest(
            "source_url must be ASCII (percent-encode the rest)", field="source_url"
        )
    try:
        parsed = urllib.parse.urlparse(url)
    except ValueError as error:  # e.g. an unclosed IPv6 bracket
        raise InvalidPlacementRequest(f"source_url does not parse: {error}", field="source_url") from None
    if parsed.scheme in ("http", "https"):
        if not parsed.netloc:
            raise InvalidPlacementRequest(f"source_url {url!r} has no host", field="source_url")
        return
    if parsed.scheme == "file":
        _allowed_path(parsed, roots)
        return
    raise SourceNotAllowed(
        f"source_url scheme {parsed.scheme!r} is not served: http, https or file", field="source_url"
    )


def _allowed_path(parsed: urllib.parse.ParseResult, roots: tuple[Path, ...]) -> Path:
    if parsed.netloc not in ("", "localhost"):
        raise SourceNotAllowed("file:// URLs name no host", field="source_url")
    path = Path(urllib.parse.unquote(parsed.path)).resolve()
    if not any(path == root or root in path.parents for root in roots):
        raise SourceNotAllowed(
            "file:// source outside the allowed roots (GREY_PLACEMENT_FILE_ROOTS)", field="source_url"
        )
    return path


def open_url(url: str, roots: tuple[Path, ...], headers: dict[str, str] | None = None) -> Source:
    """A Source of the URL's bytes with its size known (Content-Length or the file's)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = _allowed_path(parsed, roots)
        if not path.is_file():
            raise NotOnDevice(f"no file at {url}")
        return _FileSource(path)
    if parsed.scheme not in ("http", "https"):
        raise SourceNotAllowed(f"source_url scheme {parsed.scheme!r} is not served", field="source_url")
    request = urllib.request.Request(url, headers=headers or {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise NotOnDevice(f"{urllib.parse.urlunparse(parsed._replace(query=''))} answered 404") from None
        raise NetworkFailure(f"the source answered {error.code}", status=error.code) from None
    except (urllib.error.URLError, OSError) as error:
        raise NetworkFailure(f"cannot reach the source: {error}") from None
    length = response.headers.get("Content-Length")
    if length is None or not length.isdigit():
        response.close()
        raise NetworkFailure("the source did not say how many bytes it has (no Content-Length)")
    return HttpSource(response, int(length))
