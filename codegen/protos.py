"""gRPC code from spec/<api>/proto/**/*.proto: betterproto2 messages + grpclib bases, grpcio stubs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2


def proto_root(api_folder: Path) -> Path:
    """Where an API's protos live: spec/<api>/proto/, the import root of its packages."""
    return api_folder / "proto"


def proto_files(api_folder: Path) -> tuple[str, ...]:
    """An API's .proto files relative to its proto root, sorted; none for a REST-only API."""
    folder = proto_root(api_folder)
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.proto")))


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


def render_betterproto(api_folder: Path, out: Path) -> None:
    """betterproto2 messages and grpclib service bases (server_generation=async)."""
    out.mkdir(parents=True, exist_ok=True)
    _protoc(
        [
            f"-I{proto_root(api_folder)}",
            f"--python_betterproto2_out={out}",
            "--python_betterproto2_opt=server_generation=async",
            *proto_files(api_folder),
        ]
    )


def render_grpcio_stubs(api_folder: Path, out: Path) -> None:
    """Standard `<name>_pb2` / `<name>_pb2_grpc` modules, flat, as plain grpcio clients import them."""
    out.mkdir(parents=True, exist_ok=True)
    for proto in proto_files(api_folder):
        folder = proto_root(api_folder) / Path(proto).parent
        _protoc(
            [
                f"-I{folder}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                Path(proto).name,
            ]
        )


def load_descriptors(api_folder: Path) -> descriptor_pb2.FileDescriptorSet:
    """Every file an API's protos define or import; empty for a REST-only API."""
    descriptors = descriptor_pb2.FileDescriptorSet()
    files = proto_files(api_folder)
    if not files:
        return descriptors
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "set.pb"
        _protoc(
            [f"-I{proto_root(api_folder)}", "--include_imports", f"--descriptor_set_out={target}", *files]
        )
        descriptors.ParseFromString(target.read_bytes())
        return descriptors
