"""gswarm placement fixtures (tests/handlers/gswarm_support.py): `gswarm` (the runtime with
the in-process placement node `node1`) and `served` (a checkpoint over HTTP)."""

from tests.handlers.gswarm_support import gswarm, served

__all__ = ["gswarm", "served"]
