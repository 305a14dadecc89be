"""What a benchmark run reports: the Markdown table and the plot of time against boxes."""

from __future__ import annotations

from pathlib import Path


def _cell(row: dict, key: str, fmt: str = "{:.0f}") -> str:
    return fmt.format(row[key]) if key in row else "-"


def _speedup(row: dict, reference: dict, key: str) -> str:
    """reference time over row time, e.g. "3.2x" (how much faster row is)."""
    return f"{reference[key] / row[key]:.1f}x" if key in row and key in reference else "-"


def markdown_table(results: dict) -> str:
    """The README table: one row per workload and runner, with speed-ups over the PyTorch peer
    (torchvision, or torch for resize).

    "peak / floor": XLA's peak buffer bytes of the jitted forward+backward over the
    bytes that must exist anyway (output + features + feature gradient).
    """
    lines = [
        "| workload | runner | forward ms | fwd+bwd ms | fwd speed-up | fwd+bwd speed-up | compile s | peak / floor "
        "| fwd+bwd incl. boxes ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in results["workloads"].items():
        reference = next((peer for peer in ("torchvision", "torch") if peer in rows), None)
        for runner, r in rows.items():
            ref = {} if runner == reference or reference is None else rows[reference]
            lines.append(
                f"| {name} | {runner} | {_cell(r, 'forward_ms')} | {_cell(r, 'forward_backward_ms')} | "
                f"{_speedup(r, ref, 'forward_ms')} | {_speedup(r, ref, 'forward_backward_ms')} | "
                f"{_cell(r, 'compile_s', '{:.1f}')} | {_cell(r, 'backward_peak_over_floor', '{:.2f}')} | "
                f"{_cell(r, 'forward_backward_boxes_ms')} |"
            )
    return "\n".join(lines)


def scaling_table(curves: dict) -> str:
    """Markdown table of a K sweep: per runner and K, the times, the time per box and its ratio
    to that runner's best time per box, and (ours) the backward's peak over its floor."""
    lines = [
        "| runner | K | forward ms | fwd us/box | / best | fwd+bwd ms | fwd+bwd us/box | / best | peak / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runner, points in curves.items():
        points = {int(k): p for k, p in points.items()}  # JSON keys are strings
        per_box = {
            key: {k: 1e3 * p[key] / k for k, p in points.items()} for key in ("forward_ms", "forward_backward_ms")
        }
        best = {key: min(v.values()) for key, v in per_box.items()}
        for k in sorted(points):
            cells = []
            for key in ("forward_ms", "forward_backward_ms"):
                cells += [f"{points[k][key]:.1f}", f"{per_box[key][k]:.1f}", f"{per_box[key][k] / best[key]:.2f}"]
            peak = points[k].get("backward_peak_over_floor")
            lines.append(f"| {runner} | {k} | " + " | ".join(cells) + f" | {'-' if peak is None else f'{peak:.2f}'} |")
    return "\n".join(lines)


def plot_scaling(curves: dict, path: Path) -> None:
    """Time per box against K (log-log), one line per runner and pass, as a PNG: flat lines are linear in K."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError('the scaling plot needs matplotlib: pip install "jax-roialign[viz]"') from err
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for runner, points in curves.items():
        points = {int(k): p for k, p in points.items()}  # JSON keys are strings
        ks = sorted(points)
        for key, style in (("forward_ms", "-o"), ("forward_backward_ms", "--s")):
            label = f"{runner} {'forward' if key == 'forward_ms' else 'fwd+bwd'}"
            ax.plot(ks, [1e3 * points[k][key] / k for k in ks], style, label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="boxes K",
        ylabel="median time per box (us)",
        title="fpn-p3-sr2: time per box against boxes",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
