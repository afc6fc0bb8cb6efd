"""Cold start of a model from disk: Grey's placement move disk -> DRAM (and -> GPU where there
is one) against the floor of bytes ÷ the node's disk read bandwidth, measured as neighbours.

One placement node (in this process) holds a generated checkpoint (default 2 GiB) on its
disk. This VM's cold disk read speed swings 2-3× from one read to the next, so a floor taken
once (or in another minute) says little about one load. Instead the bench measures rounds
of neighbouring reads of the same file:

- before every read the file's pages are evicted (fsync, then posix_fadvise(DONTNEED)), and
  the share of its pages still in the page cache is checked with mincore(2) (must be 0);
  a hot read (no eviction) is timed once for contrast, so "cold" is checked by timing too;
- floor: the fastest reader of this disk we know, outside Grey: mmap(MAP_POPULATE) of the
  file (the kernel reads it into the page cache in large batches, no copy to a user
  buffer); floor time = bytes ÷ the disk's read bandwidth of that read;
- Grey: `operations.transfer(disk -> dram)` as a gswarm move task runs it (reservation, the
  file mapped and locked into DRAM, commit, location row), timed end to end, then removed;
- read(): for contrast, a plain sequential `readinto` pass into a fresh anonymous buffer
  (16 MiB reads: the copy loop Grey used before; what the floor was before);
- the three reads of a round run back to back, their order rotating from round to round
  (none is always the first reader); ratio = floor time ÷ Grey time of the same round
  (1.0: as fast as the disk was at that moment).

Per-round figures, then min / median / max over the rounds; target ≥ 0.70 (the worst round
is printed next to it). GPU: on a machine without a GPU the GPU leg is not measured (said
so; nothing is emulated). With a real GPU each round also times disk -> gpu0 against
bytes ÷ min(disk bandwidth of the round, host-to-device bandwidth measured once). The box
is shared: the load average is printed. Plot: out/bench/coldstart.png.

    python -m bench.coldstart [--size-gib 2] [--rounds 9] [--dir .grey/bench-coldstart]
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.repeat import Spread, runs_from_env
from runtime.execution.placement import operations
from runtime.execution.placement.boot import start_placement
from runtime.execution.placement.devices import Key, real_gpu_count
from runtime.execution.placement.names import Place
from runtime.execution.placement.node import PlacementNode, read_bandwidth
from runtime.execution.placement.settings import PlacementSettings
from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.placement import ModelRecord, PlacementRepository

TARGET = 0.70
GIB = 1024**3
OUT = Path("out/bench/coldstart.png")


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


def cached_share(path: Path) -> float:
    """Share of the file's pages in the page cache now (mincore(2) over a mapping of it)."""
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    vector = np.zeros(pages, dtype=np.uint8)
    with open(path, "rb") as file, mmap.mmap(file.fileno(), size, access=mmap.ACCESS_COPY) as mapping:
        anchor = ctypes.c_char.from_buffer(mapping)  # the mapping's address; released below
        status = libc.mincore(ctypes.addressof(anchor), size, vector.ctypes.data)
        del anchor
    if status != 0:
        raise OSError(ctypes.get_errno(), "mincore failed")
    return float((vector & 1).sum()) / pages


def evict(path: Path) -> float:
    """Drops the file's pages from the page cache; returns the share still cached (0.0)."""
    with open(path, "rb") as file:
        os.fsync(file.fileno())
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return cached_share(path)


def timed_load(node: PlacementNode, device: str) -> float:
    started = time.perf_counter()
    operations.transfer(node, "bench", "model", "ckpt", Place(node.node_id, "disk"), device, keep_source=True)
    seconds = time.perf_counter() - started
    operations.remove(node, "bench", "model", "ckpt", device)
    return seconds


def host_to_device_bandwidth(size: int) -> float:
    """Bytes/s of a pinned host buffer copied to gpu0 (PyTorch), best of three."""
    import torch

    host = torch.empty(size, dtype=torch.uint8, pin_memory=True)
    device = torch.empty(size, dtype=torch.uint8, device="cuda:0")
    best = float("inf")
    for _ in range(3):
        torch.cuda.synchronize()
        started = time.perf_counter()
        device.copy_(host)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return size / best


def populate_read(path: Path) -> float:
    """Seconds to read the file into the page cache through mmap(MAP_POPULATE) (the floor)."""
    size = path.stat().st_size
    started = time.perf_counter()
    with open(path, "rb") as file:
        mapping = mmap.mmap(
            file.fileno(), size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ
        )
    seconds = time.perf_counter() - started
    mapping.close()
    return seconds


FLOOR, GREY, READ = "floor", "Grey", "read()"


@dataclass(frozen=True, slots=True)
class Round:
    order: tuple[str, ...]
    floor: float  # seconds: bytes ÷ that read's bandwidth (mmap populate)
    dram: float  # seconds: Grey's disk -> dram
    plain: float  # seconds: read() into a fresh buffer (contrast)
    gpu: float | None  # seconds: Grey's disk -> gpu0 (a real GPU only)
    gpu_floor: float | None
    cached: float  # the largest share of the file cached just before one of the round's reads

    @property
    def ratio(self) -> float:
        return self.floor / self.dram

    @property
    def gpu_ratio(self) -> float | None:
        return None if self.gpu is None or self.gpu_floor is None else self.gpu_floor / self.gpu


def measure_round(node: PlacementNode, path: Path, size: int, index: int, h2d: float | None) -> Round:
    sides = [FLOOR, GREY, READ]
    order = tuple(sides[index % 3 :] + sides[: index % 3])
    seconds: dict[str, float] = {}
    gpu: float | None = None
    cached = []
    for side in order:
        cached.append(evict(path))
        if side == FLOOR:
            seconds[side] = populate_read(path)
        elif side == READ:
            seconds[side] = size / read_bandwidth(path, cold=False)  # just evicted: a cold read
        else:
            seconds[side] = timed_load(node, "dram")
            if h2d is not None:
                cached.append(evict(path))
                gpu = timed_load(node, "gpu0")
    gpu_floor = max(seconds[FLOOR], size / h2d) if h2d is not None else None
    return Round(order, seconds[FLOOR], seconds[GREY], seconds[READ], gpu, gpu_floor, max(cached))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=runs_from_env(9))
    parser.add_argument("--dir", type=Path, default=Path(".grey/bench-coldstart"))
    args = parser.parse_args()
    size = int(args.size_gib * GIB)
    work = args.dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = work / "ckpt.safetensors"
    print(f"writing a {size / GIB:.2f} GiB checkpoint ...", flush=True)
    write_checkpoint(source, size)
    gpus = real_gpu_count()
    settings = PlacementSettings(
        root=work / "placement",
        dram_bytes=size + GIB // 4,
        gpu_bytes=size + GIB // 4,
        file_roots=(work,),
        probe_bytes=0,
    )
    rounds: list[Round] = []
    with Store.open(f"sqlite:///{work / 'grey.db'}") as store:
        node = start_placement(store.engine, "bench-node", settings)
        try:
            now = utc_now()
            PlacementRepository.of(store.engine).register_model(
                ModelRecord("bench", "ckpt", "llm", None, None, {}, "registered", None, None, now, now)
            )
            operations.download(node, "bench", "ckpt", source.as_uri(), "disk", verify_checksum=False)
            source.unlink()  # only the node's copy remains
            on_disk = node.disk().path(Key("bench", "model", "ckpt"))
            h2d = host_to_device_bandwidth(min(size, GIB // 4)) if gpus else None
            populate_read(on_disk)  # warms the page cache: the next reads are hot
            hot = {FLOOR: populate_read(on_disk), READ: size / read_bandwidth(on_disk, cold=False)}
            hot_share = cached_share(on_disk)
            hot[GREY] = timed_load(node, "dram")
            print(
                f"hot (file {hot_share:.0%} cached, not evicted): floor read {hot[FLOOR]:.3f} s, "
                f"read() {hot[READ]:.3f} s ({size / hot[READ] / 1e6:,.0f} MB/s), "
                f"Grey disk->dram {hot[GREY]:.3f} s",
                flush=True,
            )
            print(f"load average before the rounds: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
            for index in range(args.rounds):
                one = measure_round(node, on_disk, size, index, h2d)
                rounds.append(one)
                gpu_text = (
                    "" if one.gpu is None else f", disk->gpu0 {one.gpu:.3f} s (ratio {one.gpu_ratio:.2f})"
                )
                print(
                    f"round {index + 1} ({' > '.join(one.order)}): floor {one.floor:.3f} s "
                    f"({size / one.floor / 1e6:,.0f} MB/s), Grey disk->dram {one.dram:.3f} s "
                    f"({size / one.dram / 1e6:,.0f} MB/s), read() {one.plain:.3f} s "
                    f"({size / one.plain / 1e6:,.0f} MB/s); ratio floor/Grey {one.ratio:.2f}{gpu_text}; "
                    f"cached before each read ≤ {one.cached:.1%}",
                    flush=True,
                )
            load_after = os.getloadavg()[0]
        finally:
            node.stop()
    report(rounds, size, hot, h2d, gpus, load_after)
    plot(rounds, OUT)
    print(f"plot: {OUT}")
    shutil.rmtree(work, ignore_errors=True)


def report(
    rounds: list[Round], size: int, hot: dict[str, float], h2d: float | None, gpus: int, load_after: float
) -> None:
    def mbps(values: list[float]) -> str:
        return Spread.of([size / value / 1e6 for value in values]).format("{:,.0f}", " MB/s")

    ratios = Spread.of([one.ratio for one in rounds])
    worst = min(rounds, key=lambda one: one.ratio)
    print(
        f"\n{size / GIB:.2f} GiB checkpoint, {len(rounds)} rounds (order rotating), every read cold: "
        f"at most {max(one.cached for one in rounds):.1%} of the file cached before a read (mincore); "
        f"hot for contrast: floor read {size / hot[FLOOR] / 1e6:,.0f} MB/s, "
        f"read() {size / hot[READ] / 1e6:,.0f} MB/s"
    )
    print("min / median / max over the rounds:")
    print(f"  floor (mmap populate, cold): {mbps([one.floor for one in rounds])}")
    print(f"  Grey disk->dram (end to end): {mbps([one.dram for one in rounds])}")
    print(f"  read() into a fresh buffer:   {mbps([one.plain for one in rounds])}")
    print(f"  ratio floor/Grey per round: {ratios.format()}  target >= {TARGET}")
    print(f"  ratio read()/Grey per round: {Spread.of([one.plain / one.dram for one in rounds]).format()}")
    print(
        f"worst round: floor {worst.floor:.3f} s vs Grey {worst.dram:.3f} s ({' > '.join(worst.order)}); "
        f"rounds below target: {sum(one.ratio < TARGET for one in rounds)} of {len(rounds)}"
    )
    if gpus and h2d is not None:
        gpu_ratios = Spread.of([one.gpu_ratio for one in rounds if one.gpu_ratio is not None])
        print(
            f"disk->gpu0 ratio (floor: bytes ÷ min(disk, host-to-device {h2d / 1e9:.1f} GB/s)): "
            f"{gpu_ratios.format()}  target >= {TARGET}"
        )
    else:
        print("disk->GPU: not measured (no GPU on this machine; nothing emulated)")
    print(f"load average after the rounds: {load_after:.2f} (1 min)")


def plot(rounds: list[Round], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, (times, ratios) = plt.subplots(1, 2, figsize=(12, 4.2))
    index = np.arange(1, len(rounds) + 1)
    width = 0.27
    times.bar(index - width, [one.floor for one in rounds], width, label="floor (mmap populate)")
    times.bar(index, [one.dram for one in rounds], width, label="Grey disk->dram")
    times.bar(index + width, [one.plain for one in rounds], width, label="read() (contrast)")
    times.set_xlabel("round (order of the three reads rotates)")
    times.set_ylabel("seconds, cold")
    times.set_title("cold start time per round")
    times.legend(fontsize=8)
    values = [one.ratio for one in rounds]
    ratios.plot(index, values, "o-", label="floor / Grey disk->dram")
    contrast = [one.plain / one.dram for one in rounds]
    ratios.plot(index, contrast, "^:", label="read() / Grey (contrast)")
    gpu = [one.gpu_ratio for one in rounds]
    if all(value is not None for value in gpu):
        ratios.plot(index, gpu, "s--", label="disk->gpu0")
    ratios.axhline(TARGET, color="red", linestyle=":", label=f"target {TARGET}")
    ratios.axhline(1.0, color="grey", linewidth=0.8)
    ratios.set_ylim(0, max(1.4, *values, *contrast) + 0.1)
    for axes in (times, ratios):
        axes.set_xticks(index)
    ratios.set_xlabel("round")
    ratios.set_ylabel("time ratio (same round)")
    ratios.set_title("ratio to the floor (GPU leg: not measured without a GPU)")
    ratios.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
