"""Names that become paths or queue names: checked once, here, before anything uses them.

A model name is what gswarm users write (`llama-7b`, `org/model` is refused: one path
segment); a device is `disk`, `dram`, `gpuN`, optionally node-qualified (`node1:gpu0`).
Nothing that fails these checks reaches the file system or a URL, so `../x`, `a/b`,
`%2e%2e`, NUL and the like are refused with InvalidPlacementRequest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.execution.placement.errors import InvalidPlacementRequest

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")  # no dots: queue names
DEVICE_PATTERN = re.compile(r"^(disk|dram|gpu[0-9]{1,2})$")
VOLATILE_PREFIXES = ("dram", "gpu")

MODEL = "model"
CHUNK = "chunk"
KINDS = (MODEL, CHUNK)


def check_name(name: str, what: str = "model_name") -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name in (".", "..") or ".." in name:
        raise InvalidPlacementRequest(
            f"{what} {name!r} is not a valid name: letters, digits, '.', '_' and '-', "
            "at most 128 characters, starting with a letter or digit",
            field=what,
        )
    return name


def check_node(node_id: str) -> str:
    if not isinstance(node_id, str) or not NODE_PATTERN.match(node_id):
        raise InvalidPlacementRequest(f"node {node_id!r} is not a valid node id", field="node")
    return node_id


def check_device(device: str) -> str:
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise InvalidPlacementRequest(
            f"device {device!r} is not a device: disk, dram or gpuN (optionally node:device)",
            field="device",
        )
    return device


def is_volatile(device: str) -> bool:
    """DRAM and GPU memory are held by the node's worker process: gone when it dies."""
    return device.startswith(VOLATILE_PREFIXES)


@dataclass(frozen=True, slots=True)
class Place:
    """A device of a node: `node1:gpu0`."""

    node_id: str
    device: str

    def __str__(self) -> str:
        return f"{self.node_id}:{self.device}"


def parse_place(text: str, default_node: str | None) -> Place:
    """`node1:gpu0` or `gpu0` (on `default_node`); InvalidPlacementRequest otherwise."""
    if not isinstance(text, str):
        raise InvalidPlacementRequest("device must be a string", field="device")
    node, sep, device = text.partition(":")
    if not sep:
        node, device = default_node or "", text
        if not node:
            raise InvalidPlacementRequest(f"device {text!r} needs its node: node:device", field="device")
    return Place(check_node(node), check_device(device))
