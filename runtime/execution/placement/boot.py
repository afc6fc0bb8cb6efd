"""Starting a placement node in this process: its devices, byte server and task functions."""

from __future__ import annotations

from sqlalchemy import Engine

from runtime.execution.placement import tasks  # noqa: F401  (registers the gswarm task functions)
from runtime.execution.placement.byteserver import ByteServer
from runtime.execution.placement.node import PlacementNode
from runtime.execution.placement.settings import PlacementSettings
from runtime.store.placement import PlacementRepository


def start_placement(engine: Engine, node_id: str, settings: PlacementSettings | None = None) -> PlacementNode:
    """Starts the placement node `node_id` (a worker pool with a node id, grey serve's node1)."""
    repo = PlacementRepository.of(engine)
    node = PlacementNode(node_id, repo, settings or PlacementSettings.from_env())
    return node.start(lambda started: ByteServer(started).start())
