"""gRPC load for `make bench-gateway`: grpcio (C core) futures keep N calls in flight.

Usage: python -m bench.grpc_load PORT KEY SECONDS CONCURRENCY → prints calls/s.
"""

from __future__ import annotations

import sys
import threading
import time

import grpc

sys.path.insert(0, "generated/grey/pb")
from grey_pb2 import SubmitTaskRequest
from grey_pb2_grpc import GreyServiceStub


def main() -> None:
    port, key, seconds, concurrency = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = GreyServiceStub(channel)
    metadata = [("authorization", f"Bearer {key}")]
    request = SubmitTaskRequest(type="stateless", payload=b'{"function": "echo", "data": {"n": 1}}')
    stub.SubmitTask(request, metadata=metadata)  # warm the connection
    done = errors = 0
    lock = threading.Lock()
    slots = threading.Semaphore(concurrency)
    deadline = time.monotonic() + seconds

    def finished(future: grpc.Future) -> None:
        nonlocal done, errors
        with lock:
            if future.exception() is None:
                done += 1
            else:
                errors += 1
        slots.release()

    started = time.monotonic()
    while time.monotonic() < deadline:
        slots.acquire()
        stub.SubmitTask.future(request, metadata=metadata).add_done_callback(finished)
    for _ in range(concurrency):
        slots.acquire()
    elapsed = time.monotonic() - started
    print(f"{done / elapsed:.1f} {errors}")


if __name__ == "__main__":
    main()
