"""Plots of a load run (throughput, waits and end-to-end times by offered load) and of the
twin's predictions against the measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(results: dict[str, Any], out: Path) -> list[Path]:
    """throughput.png (achieved vs offered) and latency.png (p50/p95/p99 per priority)."""
    plt = _pyplot()
    levels = sorted(results["levels"], key=lambda lv: lv["offered_rate"])
    offered = [lv["offered_rate"] for lv in levels]
    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(offered, [lv["figures"]["throughput"] for lv in levels], "o-", label="achieved")
    ax.plot(offered, offered, ":", color="grey", label="offered")
    ax.set_xlabel("offered load (tasks/s)")
    ax.set_ylabel("throughput (tasks/s)")
    ax.legend()
    fig.tight_layout()
    written.append(out / "throughput.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    priorities = sorted({p for lv in levels for p in lv["figures"].get("by_priority", {})})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("wait", "e2e"), strict=True):
        for priority in priorities:
            for q, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
                ys = [
                    lv["figures"]["by_priority"].get(priority, {}).get(metric, {}).get(q, 0.0)
                    for lv in levels
                ]
                ax.plot(offered, ys, style, label=f"{priority} {q}")
        ax.set_xlabel("offered load (tasks/s)")
        ax.set_ylabel(f"{metric} (s)")
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_title("queue wait" if metric == "wait" else "end-to-end")
    if priorities:
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    written.append(out / "latency.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def plot_fidelity(rows: list[dict[str, Any]], path: Path) -> Path:
    """Predicted against measured, one point per (level, figure); the diagonal is a perfect twin."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, kind in zip(axes, ("throughput", "latency"), strict=True):
        overall = [r for r in rows if len(r["figure"].split()) <= 2]  # per-priority rows: in the JSON
        chosen = [r for r in overall if (r["figure"] == "throughput") == (kind == "throughput")]
        for figure in sorted({r["figure"] for r in chosen}):
            points = [r for r in chosen if r["figure"] == figure]
            ax.plot([r["measured"] for r in points], [r["predicted"] for r in points], "o", label=figure)
        values = [v for r in chosen for v in (r["measured"], r["predicted"]) if v > 0]
        if values:
            lo, hi = min(values), max(values)
            ax.plot([lo, hi], [lo, hi], ":", color="grey")
            if kind == "latency":
                ax.set_xscale("log")
                ax.set_yscale("log")
        ax.set_xlabel("measured" + (" (tasks/s)" if kind == "throughput" else " (s)"))
        ax.set_ylabel("predicted by the twin")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_recovery(kill: dict[str, Any], predicted: dict[str, Any], path: Path) -> Path:
    """Completions per second around the kill, measured and as the twin predicts (mean of its
    runs), with the kill, the heartbeat timeout and each side's recovery marked."""
    from loadtest.bed.kill import SERIES_WINDOW

    plt = _pyplot()
    start = SERIES_WINDOW[0]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.step([start + i for i in range(len(kill["series"]))], kill["series"], where="post", label="measured")
    ax.step(
        [start + i for i in range(len(predicted["series"]))],
        predicted["series"],
        where="post",
        label="twin (mean of its runs)",
    )
    ax.axvline(0, color="red", linestyle=":", label="worker killed")
    ax.axvline(kill["heartbeat_timeout"], color="grey", linestyle=":", label="heartbeat timeout")
    for value, style, label in (
        (kill["figures"].get("recovery"), "--", "recovered (measured)"),
        (predicted["mean"].get("recovery"), "-.", "recovered (twin)"),
    ):
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, label=label)
    ax.set_xlabel("seconds from the kill")
    ax.set_ylabel("completions per second")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
