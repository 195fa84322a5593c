"""``empg-plot RUN_DIR [RUN_DIR ...]``: PNG curves of one or several runs (e.g. empg vs grpo).

Writes ``accuracy.png`` (training reward and held-out greedy / sampled accuracy), ``length.png``
(mean response length) and ``time.png`` (time per iteration by phase) into ``--out`` (default: the
first run directory). Uses matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from empg.metrics import read_metrics

TIME_KEYS = ("time/sampling", "time/verifying", "time/weights", "time/mstep", "time/sync")


def _series(rows: list[dict[str, Any]], kind: str, key: str) -> tuple[list[int], list[float]]:
    pts = sorted((r["iteration"], r[key]) for r in rows
                 if r.get("kind") == kind and isinstance(r.get(key), (int, float)))
    return [p[0] for p in pts], [p[1] for p in pts]


def _label(run: Path) -> str:
    cfg = run / "config.yaml"
    algo = ""
    if cfg.is_file():
        import yaml

        algo = str((yaml.safe_load(cfg.read_text()) or {}).get("train", {}).get("algo", ""))
    return f"{run.name} ({algo})" if algo else run.name


def _save(plt: Any, fig: Any, axes: list[Any], path: Path) -> Path:
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_runs(runs: Sequence[str | Path], out: str | Path | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dirs = [Path(r) for r in runs]
    data = [(d, _label(d), read_metrics(d)) for d in dirs]
    out_dir = Path(out) if out else dirs[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for d, label, rows in data:
        axes[0].plot(*_series(rows, "train", "reward/mean"), label=label)
        for key, style in (("eval/greedy_acc", "-o"), ("eval/sampled_acc", "--s")):
            x, y = _series(rows, "eval", key)
            if x:
                axes[1].plot(x, y, style, label=f"{label} {key.split('/')[1]}")
    axes[0].set(title="training reward (mean over samples)", xlabel="iteration", ylabel="reward")
    axes[1].set(title="held-out accuracy", xlabel="iteration", ylabel="accuracy", ylim=(0, 1))
    written.append(_save(plt, fig, list(axes), out_dir / "accuracy.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for d, label, rows in data:
        ax.plot(*_series(rows, "train", "length/mean"), label=f"{label} sampled")
        x, y = _series(rows, "eval", "eval/greedy_length")
        if x:
            ax.plot(x, y, "o--", label=f"{label} greedy (eval)")
    ax.set(title="response length (tokens)", xlabel="iteration", ylabel="tokens")
    written.append(_save(plt, fig, [ax], out_dir / "length.png"))

    fig, axes = plt.subplots(1, len(data), figsize=(6 * len(data), 4), squeeze=False)
    for ax, (d, label, rows) in zip(axes[0], data):
        bottom = None
        for key in TIME_KEYS:
            x, y = _series(rows, "train", key)
            if not x:
                continue
            ax.bar(x, y, bottom=bottom, label=key.split("/")[1])
            bottom = y if bottom is None else [a + b for a, b in zip(bottom, y)]
        ax.set(title=f"time per iteration: {label}", xlabel="iteration", ylabel="seconds")
    written.append(_save(plt, fig, list(axes[0]), out_dir / "time.png"))
    return written
