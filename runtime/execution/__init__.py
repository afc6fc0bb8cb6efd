"""The execution runtime: Dramatiq brokers, per-priority queues, worker pools, the task lifecycle.

`Runtime` (runtime.execution.runtime) is what `Services` holds; nothing here starts a
thread until `Runtime.start()` or a `WorkerPool` is started explicitly.
"""
