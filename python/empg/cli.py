"""Command-line entry points: ``empg-train``, ``empg-eval``, ``empg-plot``.

``empg-train [config.yaml] [key=value ...]`` — with no arguments, the embedded default run
(SmolLM2-135M-Instruct on the offline arithmetic task, ~10 minutes on 2 CPU cores). Overrides use
dotted keys (``sampling.temperature=0.7``); ``algo=``, ``resume=``, ``run_dir=``, ``model=`` and
``sampler=`` are short forms; ``--resume`` equals ``resume=true``. The configuration is validated
(unknown keys, bad values, invalid combinations raise a ConfigError naming the key) before any
model loads. On several GPUs or nodes, ``torchrun ... --no-python empg-train ...`` runs one rank per
process (see ``docs/distributed.md``).
"""

from __future__ import annotations

import argparse
import sys

from empg.exceptions import EmpgError

_EPILOG = "examples:\n  empg-train\n  empg-train config.yaml train.algo=grpo sampling.temperature=0.7\n" \
          "  empg-train log.run_dir=runs/a --resume\n" \
          "  torchrun --standalone --nproc-per-node 8 --no-python empg-train config.yaml"


def _split(args: list[str]) -> tuple[str | None, list[str]]:
    path = None
    overrides = []
    for a in args:
        if "=" not in a and path is None and (a.endswith((".yaml", ".yml")) or not a.startswith("-")):
            path = a
        else:
            overrides.append(a)
    return path, overrides


def _config(ns: argparse.Namespace) -> object:
    from empg.config import load_config

    path, overrides = _split(ns.args)
    if getattr(ns, "resume", False):
        overrides.append("checkpoint.resume=true")
    return load_config(path, overrides)


def train_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="empg-train", description="Train a language model to reason with EM Policy Gradient.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("args", nargs="*", help="an optional config.yaml, then key=value overrides")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    ns = parser.parse_intermixed_args(argv)  # --resume may come between the overrides
    try:
        cfg = _config(ns)
        from empg.trainer import Trainer

        try:
            Trainer(config=cfg).train()  # type: ignore[arg-type]
        finally:
            from empg.distributed import shutdown

            shutdown()  # leave torchrun's process group cleanly (no-op in one process)
    except EmpgError as e:
        print(f"empg-train: error ({type(e).__name__}): {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full or unreadable while logging: name the file, no traceback
        print(f"empg-train: error (OSError): {e}", file=sys.stderr)
        return 2
    return 0


def eval_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="empg-eval", description="Greedy pass@1, sampled pass@k and length on the held-out split.")
    parser.add_argument("args", nargs="*", help="an optional config.yaml, then key=value overrides")
    parser.add_argument("--checkpoint", help="a checkpoint or model directory (default: model.name)")
    ns = parser.parse_args(argv)
    try:
        cfg = _config(ns)
        from empg.evaluation import main_eval

        out = main_eval(cfg, ns.checkpoint)
    except EmpgError as e:
        print(f"empg-eval: error: {e}", file=sys.stderr)
        return 2
    from empg.distributed import current, shutdown

    main = current().is_main  # under torchrun every rank evaluated a share; rank 0 reports
    shutdown()
    for k, v in out.items() if main else ():
        print(f"{k}\t{v:.4f}" if isinstance(v, float) else f"{k}\t{v}")
    return 0


def plot_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="empg-plot", description="PNG curves of one or more runs.")
    parser.add_argument("runs", nargs="+", help="run directories (holding metrics.jsonl)")
    parser.add_argument("--out", help="output directory (default: the first run directory)")
    ns = parser.parse_args(argv)
    from pathlib import Path

    missing = [r for r in ns.runs if not (Path(r) / "metrics.jsonl").is_file()]
    if missing:
        print(f"empg-plot: error: no metrics.jsonl in {', '.join(missing)}", file=sys.stderr)
        return 2
    from empg.plot import plot_runs

    for p in plot_runs(ns.runs, ns.out):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(train_main())
