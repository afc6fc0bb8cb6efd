"""Each placement node's byte server: HTTP access to the bytes it holds, for other nodes
(cross-node copies and moves) and for serving processes (loading a model from DRAM).

    GET    /alive                                      {"node_id", "boot_id"}
    GET    /objects/<tenant>/<kind>/<name>?device=D    the bytes (Range: bytes=a-b honoured)
    PUT    /objects/<tenant>/<kind>/<name>?device=D    store the body (Content-Length; sha256=)
    DELETE /objects/<tenant>/<kind>/<name>?device=D    location removed, then the bytes

Everything but /alive needs the node's token (`X-Grey-Placement-Token` header or `token`
query parameter), which only the store holds: readers are nodes and services of the
cluster, never API clients. Names are checked as everywhere (no path reaches the file
system unchecked). It binds GREY_PLACEMENT_BIND (default 127.0.0.1) on a free port.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runtime.execution.placement import operations
from runtime.execution.placement.devices import DiskDevice, Key, MemoryDevice, Source
from runtime.execution.placement.errors import PlacementError
from runtime.execution.placement.names import KINDS, check_device, check_name
from runtime.execution.placement.node import PlacementNode

logger = logging.getLogger("grey.placement.bytes")

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
SEND_BLOCK = 4 * 1024 * 1024


class _BodySource(Source):
    def __init__(self, stream: Any, size: int) -> None:
        self._stream, self.size, self._left = stream, size, size

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        got = self._stream.readinto(buffer[:n]) or 0
        self._left -= got
        return got

    def drain(self) -> None:
        scratch = memoryview(bytearray(1 << 20))
        while self._left > 0 and self.readinto(scratch):
            pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _target(self) -> tuple[Key, str] | None:
        parsed = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        token = self.headers.get(operations.TOKEN_HEADER) or (query.get("token") or [""])[0]
        if not hmac.compare_digest(token.encode(), self.server.node.token.encode()):
            self._json(403, {"error": "forbidden"})
            return None
        parts = [urllib.parse.unquote(part) for part in parsed.path.split("/")[1:]]
        try:
            if len(parts) != 4 or parts[0] != "objects" or parts[2] not in KINDS:
                raise PlacementError("not an object path")
            key = Key(check_name(parts[1], "tenant"), parts[2], check_name(parts[3], "name"))
            device = check_device((query.get("device") or ["disk"])[0])
        except PlacementError as error:
            self._json(400, {"error": error.message})
            return None
        return key, device

    def do_GET(self) -> None:
        if self.path == "/alive":
            node = self.server.node
            self._json(200, {"node_id": node.node_id, "boot_id": node.boot_id})
            return
        target = self._target()
        if target is None:
            return
        key, device_name = target
        device = self.server.node.devices.get(device_name)
        if device is None or not device.has(key):
            self._json(404, {"error": "not on this device"})
            return
        size = device.size(key)
        if key.kind == "chunk":
            self.server.node.repo.touch_chunk(key.tenant_id, key.name)
        start, end = 0, size - 1
        match = RANGE.match(self.headers.get("Range", ""))
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(end, int(match.group(2))) if match.group(2) else end
            else:
                start = max(0, size - int(match.group(2)))
            if start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        length = end - start + 1 if size else 0
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if isinstance(device, MemoryDevice):
            view = device.buffer(key)
            for offset in range(start, start + length, SEND_BLOCK):
                self.wfile.write(view[offset : min(offset + SEND_BLOCK, start + length)])
        elif isinstance(device, DiskDevice):
            with open(device.path(key), "rb") as source:
                offset, left = start, length
                while left > 0:
                    sent_now = os.sendfile(self.wfile.fileno(), source.fileno(), offset, min(left, 1 << 30))
                    if not sent_now:
                        break
                    offset, left = offset + sent_now, left - sent_now
        else:  # a real GPU: through the host
            reader = device.source(key)
            buffer = memoryview(bytearray(min(SEND_BLOCK, max(size, 1))))
            sent = skipped = 0
            while sent < length:
                got = reader.readinto(buffer)
                chunk = buffer[:got]
                if skipped < start:
                    drop = min(got, start - skipped)
                    skipped += drop
                    chunk = chunk[drop:]
                chunk = chunk[: length - sent]
                self.wfile.write(chunk)
                sent += len(chunk)

    def do_DELETE(self) -> None:
        target = self._target()
        if target is None:
            return
        key, device = target
        removed = operations.remove(self.server.node, key.tenant_id, key.kind, key.name, device)
        self.send_response(204 if removed else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        target = self._target()
        if target is None:
            return
        key, device = target
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._json(411, {"error": "Content-Length required"})
            return
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        expected = query["sha256"][0] if query.get("sha256") else None
        node = self.server.node
        body = _BodySource(self.rfile, int(length))
        try:
            subject_ = operations.subject(node.repo, key.tenant_id, key.kind, key.name)
            record = operations.store_bytes(node, subject_, device, body, expected_sha256=expected)
        except PlacementError as error:
            body.drain()  # the client is still sending: read it out, then answer
            self.close_connection = True
            self._json(
                409 if error.code != "not_found" else 404,
                {"error": error.message, "code": error.code, "details": error.details},
            )
            return
        self._json(201, {"location": record.place, "size": record.size, "sha256": record.sha256})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, node: PlacementNode) -> None:
        self.node = node
        super().__init__((node.settings.bind, 0), _Handler)


class ByteServer:
    def __init__(self, node: PlacementNode) -> None:
        self._server = _Server(node)
        host = node.settings.advertise or node.settings.bind
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"grey-bytes-{node.node_id}", daemon=True
        )

    def start(self) -> ByteServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
