"""gRPC code from spec/grey/v1/*.proto: betterproto2 messages + grpclib bases, grpcio stubs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

PROTO_ROOT = "spec"
PROTO_FILES = ("grey/v1/grey.proto",)


def _protoc(args: list[str]) -> None:
    env = dict(os.environ)
    # protoc finds its plugins on PATH; they live next to this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"protoc failed:\n{result.stderr}")


def render_betterproto(root: Path, out: Path) -> None:
    """betterproto2 messages and grpclib service bases (server_generation=async)."""
    out.mkdir(parents=True, exist_ok=True)
    _protoc(
        [
            f"-I{root / PROTO_ROOT}",
            f"--python_betterproto2_out={out}",
            "--python_betterproto2_opt=server_generation=async",
            *PROTO_FILES,
        ]
    )


def render_grpcio_stubs(root: Path, out: Path) -> None:
    """Standard `grey_pb2` / `grey_pb2_grpc` modules, flat, as plain grpcio clients import them."""
    out.mkdir(parents=True, exist_ok=True)
    for proto in PROTO_FILES:
        folder = root / PROTO_ROOT / Path(proto).parent
        _protoc(
            [
                f"-I{folder}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                Path(proto).name,
            ]
        )


def load_descriptors(root: Path) -> descriptor_pb2.FileDescriptorSet:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "set.pb"
        _protoc(
            [f"-I{root / PROTO_ROOT}", "--include_imports", f"--descriptor_set_out={target}", *PROTO_FILES]
        )
        descriptors = descriptor_pb2.FileDescriptorSet()
        descriptors.ParseFromString(target.read_bytes())
        return descriptors
