"""TRL's CPU-side work of one iteration, for ``benches/bench_cpu_side.py``: a real
``GRPOTrainer`` (tiny model, never run) whose ``_generate_single_turn`` (the ``model.generate``
call) returns given completion ids; then ``trainer._prepare_inputs`` — TRL's own path before the
loss: prompt tokenisation (chat template), decoding, length metrics, ``_calculate_rewards``
(empg's verifier through ``empg.rewards.trl_reward_func``), padding into tensors, group
advantages, reward metrics, completion logs, shuffling and splitting — and ``trainer.log``
(metric aggregation). Each piece is timed by wrappers that return what the wrapped function returns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vs_trl.task import model_dir
from vs_trl.timing import Timers


@dataclass
class Point:
    system: str
    rollouts: int
    seconds: float  # CPU-side total of one iteration
    parts: dict[str, float] = field(default_factory=dict)
    rewards: np.ndarray | None = None


class TRLSide:
    """A real GRPOTrainer used for its CPU-side path only (its model never runs)."""

    def __init__(self, group_size: int, out_dir: str) -> None:
        import datasets
        from trl import GRPOConfig, GRPOTrainer

        from empg.rewards import trl_reward_func

        path = model_dir("tiny")
        args = GRPOConfig(output_dir=out_dir, use_cpu=True, bf16=False, use_vllm=False,
                          per_device_train_batch_size=group_size, num_generations=group_size,
                          max_completion_length=4096, report_to="none", save_strategy="no",
                          disable_tqdm=True, logging_steps=1, beta=0.0)
        dummy = datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": "x"}], "answer": "0"}])
        self.trainer = GRPOTrainer(model=str(path), reward_funcs=[trl_reward_func(reference_column="answer")],
                                   args=args, train_dataset=dummy)
        self.trainer.model.train()
        self.timers = Timers()
        for m in ("_generate", "_calculate_rewards", "_generate_and_score_completions", "log"):
            self.timers.wrap(self.trainer, m)
        self.replay: list[list[int]] = []
        self.trainer._generate_single_turn = self._replay
        self.rewards: list[float] = []

    def _replay(self, prompt_ids: Any, images: Any, multimodal_fields: Any, num_generations: int,
                has_tool_images: bool = False) -> tuple[list[list[int]], None]:
        return self.replay, None

    def run(self, w: Any) -> Point:
        self.timers.reset()
        self.replay = w.completion_ids
        k = w.r.group_size
        inputs = [{"prompt": w.messages[g], "answer": w.r.answers[g]} for g in w.r.groups]
        orig = self.trainer._calculate_rewards

        def capture(*a: Any, **kw: Any) -> Any:
            out = orig(*a, **kw)
            self.rewards = out[:, 0].tolist()
            return out

        self.trainer._calculate_rewards = capture
        try:
            t0 = time.perf_counter()
            batch = self.trainer._prepare_inputs(inputs)
            t1 = time.perf_counter()
            self.trainer.log({"loss": 0.0})
            t2 = time.perf_counter()
        finally:
            self.trainer._calculate_rewards = orig
        assert batch["advantages"].shape[0] == w.n and w.n % k == 0
        g = self.timers.get
        parts = {"tokenize+decode": g("_generate"), "verify": g("_calculate_rewards"),
                 "advantages+padding": g("_generate_and_score_completions") - g("_generate") - g("_calculate_rewards"),
                 "shuffle+split": (t1 - t0) - g("_generate_and_score_completions"), "logging": t2 - t1}
        rewards = np.nan_to_num(np.asarray(self.rewards, dtype=np.float64), nan=0.0)
        return Point("trl", w.n, t2 - t0, parts, rewards)
