"""``empg.Trainer``: the object a TRL user expects, and the one path ``empg-train`` takes too.

::

    import empg
    cfg = empg.Config()                      # the same dataclasses the YAML fills
    cfg.train.iterations = 20
    def reward(prompts, completions, answer, **kwargs):   # TRL's reward-function signature
        return [1.0 if a in c else 0.0 for c, a in zip(completions, answer)]
    trainer = empg.Trainer(model="smollm2-135m-instruct", train_dataset=rows, eval_dataset=held_out,
                           reward_funcs=[reward], config=cfg)
    trainer.train(); print(trainer.evaluate()); trainer.save("out/")

``model``: a name or path (as ``model.name``) or a ``PreTrainedModel`` (then ``processing_class`` or
the model's ``name_or_path`` gives the tokenizer). ``train_dataset``/``eval_dataset``: a
``datasets.Dataset``, a list of dicts or a jsonl/json/parquet path (see :mod:`empg.taskdata`); none
= ``config.data``. ``reward_funcs``: callables with TRL's convention, built-in names or import paths
(see :mod:`empg.scoring`); none = ``config.reward`` (by default the verifier against ``answer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from empg import distributed, faults
from empg.build import Inputs, Setup, build
from empg.config import Config, dump_yaml, validate
from empg.exceptions import DataError
from empg.scoring import RewardFunc
from empg.signals import GracefulStop


class Trainer:
    """Builds the run from ``config`` and the given objects, before anything trains."""

    def __init__(self, model: Any = None, *, train_dataset: Any = None, eval_dataset: Any = None,
                 reward_funcs: Sequence[RewardFunc | str] | RewardFunc | None = None,
                 reward_weights: Sequence[float] | None = None, config: Config | None = None,
                 processing_class: Any = None) -> None:
        cfg = config if config is not None else Config()
        if isinstance(model, (str, Path)):
            cfg.model.name = str(model)
        if callable(reward_funcs) or isinstance(reward_funcs, str):
            reward_funcs = [reward_funcs]
        if eval_dataset is not None and train_dataset is None:
            raise DataError("eval_dataset needs a train_dataset (or neither: config.data decides)")
        validate(cfg)
        self.config = cfg
        if distributed.from_env().is_main:  # writable, before any model loads
            run_dir = faults.check_run_dir(cfg.log.run_dir)
            (run_dir / "config.yaml").write_text(dump_yaml(cfg))
            print(f"empg: config (saved to {run_dir / 'config.yaml'}):\n{dump_yaml(cfg)}", flush=True)
        given = None if isinstance(model, (str, Path)) else model
        self.setup: Setup = build(cfg, Inputs(model=given, tokenizer=processing_class,
                                              train_dataset=train_dataset, eval_dataset=eval_dataset,
                                              reward_funcs=reward_funcs, reward_weights=reward_weights))

    @property
    def model(self) -> Any:
        return self.setup.model

    @property
    def tokenizer(self) -> Any:
        return self.setup.tokenizer

    def train(self) -> dict[str, Any]:
        """Run ``config.train.iterations`` EM iterations (resuming if ``checkpoint.resume``);
        returns the last held-out metrics. SIGINT/SIGTERM stop it at a safe point with a checkpoint."""
        from empg import em

        with GracefulStop() as stop:
            return em.train(self.setup, stop)

    def evaluate(self) -> dict[str, Any]:
        """Held-out metrics of the current model (``eval/greedy_acc``, ``eval/pass@k``, ...)."""
        from empg.evaluation import run_eval

        return run_eval(self.setup)

    def save(self, output_dir: str | Path) -> Path:
        """The current model and tokenizer as a ``from_pretrained`` directory (a collective under
        torchrun: every rank calls it, rank 0 writes)."""
        s, out = self.setup, Path(output_dir)
        weights = distributed.full_state_dict(s.model, rank0_only=True) if s.dist.enabled else None
        if s.dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            s.model.save_pretrained(out, safe_serialization=True, **({"state_dict": weights} if weights else {}))
            s.tokenizer.save_pretrained(out)
        return out


__all__ = ["Trainer"]
