"""gswarm placement: models and data chunks as real bytes on a node's devices.

`devices` (disk files, DRAM held by the worker process, GPU memory: PyTorch on a real GPU,
else emulated in host memory and said so), `node` (a placement node: its devices,
reconciliation at start, heartbeat), `byteserver` (HTTP access to a node's bytes for other
nodes and serving processes), `copying` (the copy loop: in-place reads, SHA-256,
bandwidth limit), `sources` (http(s)/file downloads, the file:// allow-list),
`operations` (download, move/copy on a node and across nodes, remove), `tasks` (the
gswarm task functions run from the node's queues), `errors`, `names`, `settings`.
"""
