"""Cold start of a model from disk: Grey's placement move disk -> DRAM (and -> GPU) against
the floor of bytes ÷ the node's disk read bandwidth, measured in the same run.

One placement node (in this process) holds a generated checkpoint (default 1 GiB) on its
disk. Each run, for the same file and the same cache state (its pages dropped from the
page cache with posix_fadvise(DONTNEED) before each read: a cold read):

- floor: one plain `readinto` pass of the file into a preallocated buffer (16 MiB reads),
  i.e. the disk's read bandwidth here; floor time = bytes ÷ that bandwidth;
- Grey: `operations.transfer(disk -> dram)` as a gswarm move task runs it (reservation,
  in-place reads into the DRAM buffer, commit, location row), timed end to end;
- the same to `gpu0` (emulated on a machine without a GPU: host memory; said so; no target).

The order alternates between runs (floor first, then Grey first), so neither side is
always the first to read the file after its pages were dropped.

ratio = floor time ÷ Grey time (1.0: as fast as the disk allows). Target ≥ 0.70 on the
worst run. The machine is shared (2 cores): other work moves the figures. Plot:
out/bench/coldstart.png.

    python -m bench.coldstart [--size-gib 1] [--runs 5] [--dir .grey/bench-coldstart]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np

from bench.repeat import Spread, runs_from_env
from runtime.execution.placement import operations
from runtime.execution.placement.boot import start_placement
from runtime.execution.placement.devices import Key
from runtime.execution.placement.names import Place
from runtime.execution.placement.node import PlacementNode, read_bandwidth
from runtime.execution.placement.settings import PlacementSettings
from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.placement import ModelRecord, PlacementRepository

TARGET = 0.70
GIB = 1024**3


def write_checkpoint(path: Path, size: int) -> None:
    """A safetensors-shaped file of `size` bytes of random uint8 (one tensor)."""
    header = b'{"weight":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (size, size)
    header += b" " * (-len(header) % 8)
    rng = np.random.default_rng(11)
    block = 64 * 1024 * 1024
    with open(path, "wb") as out:
        out.write(len(header).to_bytes(8, "little") + header)
        left = size - 8 - len(header)
        while left > 0:
            n = min(block, left)
            out.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            left -= n
        os.fsync(out.fileno())


def drop_cache(path: Path) -> None:
    with open(path, "rb") as source:
        os.posix_fadvise(source.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def timed_move(node: PlacementNode, path: Path, device: str) -> float:
    drop_cache(path)
    started = time.perf_counter()
    operations.transfer(node, "bench", "model", "ckpt", Place(node.node_id, "disk"), device, keep_source=True)
    seconds = time.perf_counter() - started
    operations.remove(node, "bench", "model", "ckpt", device)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=runs_from_env(5))
    parser.add_argument("--dir", type=Path, default=Path(".grey/bench-coldstart"))
    args = parser.parse_args()
    size = int(args.size_gib * GIB)
    work = args.dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = work / "ckpt.safetensors"
    print(f"writing a {size / GIB:.2f} GiB checkpoint ...", flush=True)
    write_checkpoint(source, size)
    settings = PlacementSettings(
        root=work / "placement",
        dram_bytes=size + GIB // 4,
        gpu_bytes=size + GIB // 4,
        file_roots=(work,),
        probe_bytes=0,
    )
    with Store.open(f"sqlite:///{work / 'grey.db'}") as store:
        node = start_placement(store.engine, "bench-node", settings)
        try:
            now = utc_now()
            repo = PlacementRepository.of(store.engine)
            repo.register_model(
                ModelRecord("bench", "ckpt", "llm", None, None, {}, "registered", None, None, now, now)
            )
            operations.download(node, "bench", "ckpt", source.as_uri(), "disk", verify_checksum=False)
            source.unlink()  # only the node's copy remains
            on_disk = node.disk().path(Key("bench", "model", "ckpt"))
            gpu_emulated = node.device("gpu0").emulated
            floors, drams, gpus = [], [], []
            for run in range(args.runs):
                grey_first = run % 2 == 1  # alternate the order: neither side always reads first
                if grey_first:
                    drams.append(timed_move(node, on_disk, "dram"))
                    gpus.append(timed_move(node, on_disk, "gpu0"))
                drop_cache(on_disk)
                bandwidth = read_bandwidth(on_disk, cold=True)
                floors.append(size / bandwidth)
                if not grey_first:
                    drams.append(timed_move(node, on_disk, "dram"))
                    gpus.append(timed_move(node, on_disk, "gpu0"))
                print(
                    f"run {run + 1}: floor {floors[-1]:.3f} s ({bandwidth / 1e6:.0f} MB/s cold read), "
                    f"disk->dram {drams[-1]:.3f} s, disk->gpu0{' (emulated)' if gpu_emulated else ''} "
                    f"{gpus[-1]:.3f} s",
                    flush=True,
                )
        finally:
            node.stop()
    dram_ratio = Spread.of([f / g for f, g in zip(floors, drams, strict=True)])
    gpu_ratio = Spread.of([f / g for f, g in zip(floors, gpus, strict=True)])
    state = "cold page cache (fadvise DONTNEED)"
    print(f"\n{size / GIB:.2f} GiB checkpoint, {args.runs} runs, {state}, shared 2-core box")
    print(f"floor (bytes ÷ cold disk read bandwidth): {Spread.of(floors).format('{:.3f}', ' s')}")
    print(f"disk->dram ratio floor/Grey (min / median / max): {dram_ratio.format()}  target >= {TARGET}")
    label = "emulated GPU (host memory), no target" if gpu_emulated else "GPU"
    print(f"disk->gpu0 ratio, {label}: {gpu_ratio.format()}")
    verdict = "MET" if dram_ratio.minimum >= TARGET else "NOT MET"
    print(f"target {TARGET} on the worst run: {verdict}")
    plot(floors, drams, gpus, gpu_emulated, Path("out/bench/coldstart.png"))
    print("plot: out/bench/coldstart.png")
    shutil.rmtree(work, ignore_errors=True)


def plot(floors: list[float], drams: list[float], gpus: list[float], emulated: bool, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, (times, ratios) = plt.subplots(1, 2, figsize=(11, 4))
    runs = np.arange(1, len(floors) + 1)
    width = 0.27
    times.bar(runs - width, floors, width, label="floor (cold disk read)")
    times.bar(runs, drams, width, label="Grey disk->dram")
    times.bar(runs + width, gpus, width, label="Grey disk->gpu0" + (" (emulated)" if emulated else ""))
    times.set_xlabel("run")
    times.set_ylabel("seconds")
    times.set_title("cold start time")
    times.legend(fontsize=8)
    ratios.plot(runs, [f / d for f, d in zip(floors, drams, strict=True)], "o-", label="disk->dram")
    ratios.plot(runs, [f / g for f, g in zip(floors, gpus, strict=True)], "s--", label="disk->gpu0")
    ratios.axhline(TARGET, color="red", linestyle=":", label=f"target {TARGET}")
    highest = max(f / t for f, t in zip(floors + floors, drams + gpus, strict=True))
    ratios.set_ylim(0, max(1.2, highest + 0.1))
    ratios.set_xticks(runs)
    times.set_xticks(runs)
    ratios.set_xlabel("run")
    ratios.set_ylabel("floor time / Grey time")
    ratios.set_title("ratio to the floor")
    ratios.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
