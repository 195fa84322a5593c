"""The CPU-side work of one iteration as the rollouts per iteration grow, each system its own way.

Both systems get the same rollouts (:mod:`vs_trl.rollouts`, real solutions, perturbed) and run
their REAL code from the point where the model has produced token ids; only the model call is
replaced by a replay of those ids:

* empg: :func:`empg.em.e_step` with a replay sampler (its ``generate`` hands back the ids and runs
  the transformers sampler's own post-processing, :func:`empg.samplers.hf.cut_completion`, which
  decodes), i.e. ``empg.verify_batch`` + ``empg.group_weights`` + dropping zero-signal groups +
  flattening + the run statistics; then the M-step's packed micro-batches for all kept sequences
  (``empg.mstep._microbatches``: ``empg.pack_microbatches`` + ``Samples.microbatches`` + tensors)
  and one metrics row (``empg.trackers.RunLogger.log``).
* TRL: a real ``GRPOTrainer`` (tiny model, never run) whose ``_generate_single_turn`` (the
  ``model.generate`` call) returns the ids; then ``trainer._prepare_inputs`` — TRL's own path
  before the loss: prompt tokenisation (chat template), decoding, length metrics,
  ``_calculate_rewards`` (math-verify's ``accuracy_reward``, or empg's verifier through
  ``empg.rewards.trl_reward_func``), padding into tensors, group advantages, reward metrics,
  completion logs, shuffling and splitting — and ``trainer.log`` (metric aggregation).

Each piece is timed by wrappers that return what the wrapped function returns.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vs_trl.rollouts import Rollouts, make
from vs_trl.task import model_dir
from vs_trl.timing import Timers

SYSTEMS = ("empg", "trl/empg-verifier", "trl/math-verify")


@dataclass
class Point:
    system: str
    rollouts: int
    seconds: float  # CPU-side total of one iteration
    parts: dict[str, float] = field(default_factory=dict)
    rewards: np.ndarray | None = None


class ReplaySampler:
    """An empg :class:`~empg.sampling.Sampler` that hands back given completion ids (no model),
    post-processed by the transformers sampler's own :func:`cut_completion` (decode, EOS cut)."""

    def __init__(self, tokenizer: Any, completion_ids: list[list[int]], group_size: int) -> None:
        self.tokenizer = tokenizer
        self.ids = completion_ids
        self.k = group_size
        self.eos = {int(tokenizer.eos_token_id)}

    def generate(self, prompts: Any, params: Any) -> list[Any]:
        from empg.sampling import Rollout
        from empg.samplers.hf import cut_completion

        out = []
        for i, ids in enumerate(self.ids):
            g = i // self.k
            cut, text, finish = cut_completion(self.tokenizer, ids, params.stop, self.eos)
            out.append(Rollout(group=g, prompt_ids=list(prompts[g]), completion_ids=cut, text=text,
                               finish_reason=finish))
        return out

    def sync_weights(self, model: object) -> None:
        return None

    def sleep(self) -> None:
        return None

    def wake_up(self) -> None:
        return None


class Workload:
    """The rollouts of one size, tokenised once (outside any timing)."""

    def __init__(self, n: int, group_size: int, tokenizer: Any, seed: int = 0) -> None:
        self.r: Rollouts = make(n, group_size, seed)
        self.tokenizer = tokenizer
        self.messages = [[{"role": "user", "content": q}] for q in self.r.questions]
        rendered = tokenizer.apply_chat_template(self.messages, add_generation_prompt=True, tokenize=True,
                                                 return_dict=True)
        self.prompt_ids = [list(p) for p in rendered["input_ids"]]
        eos = int(tokenizer.eos_token_id)
        self.completion_ids = [list(ids) + [eos] for ids in
                               tokenizer(self.r.texts, add_special_tokens=False)["input_ids"]]
        self.n = n

    @property
    def references(self) -> list[str]:
        return [self.r.answers[g] for g in self.r.groups]


def run_empg(w: Workload, run_dir: str, token_budget: int | None = None) -> Point:
    """empg's CPU-side path at the M-step micro-batch budget ``token_budget`` (default: empg's)."""
    import torch

    from empg import em, mstep
    from empg.config import Config
    from empg.scoring import verify_rollouts
    from empg.trackers import RunLogger
    from empg.sampling import SamplingParams

    sampler = ReplaySampler(w.tokenizer, w.completion_ids, w.r.group_size)
    params = SamplingParams(n=w.r.group_size, max_new_tokens=4096, stop=())
    log = RunLogger(run_dir, report_to=[])
    t0 = time.perf_counter()
    est = em.e_step(sampler, w.prompt_ids, params, verify_rollouts(w.r.answers, "auto"), scheme="group_norm")
    t1 = time.perf_counter()
    budget = token_budget or Config().train.token_budget
    micro = mstep._microbatches(est.samples, np.arange(len(est.samples)), budget, torch.device("cpu"))
    t2 = time.perf_counter()
    log.log(1, {"kind": "train", **est.stats})
    t3 = time.perf_counter()
    log.close()
    assert sum(m.targets for m in micro) == int(est.samples.completion_lens.sum())
    parts = {"decode": est.stats["time/sampling"], "verify": est.stats["time/verifying"],
             "weights": est.stats["time/weights"],
             "stats": (t1 - t0) - est.stats["time/sampling"] - est.stats["time/verifying"] - est.stats["time/weights"],
             "packing": t2 - t1, "logging": t3 - t2}
    return Point("empg", w.n, t3 - t0, parts, np.asarray(est.rewards))


class TRLSide:
    """A real GRPOTrainer used for its CPU-side path only (its model never runs)."""

    def __init__(self, reward: str, group_size: int, out_dir: str) -> None:
        import datasets
        from trl import GRPOConfig, GRPOTrainer

        from vs_trl.trl_worker import REWARDS

        path = model_dir("tiny")
        args = GRPOConfig(output_dir=out_dir, use_cpu=True, bf16=False, use_vllm=False,
                          per_device_train_batch_size=group_size, num_generations=group_size,
                          max_completion_length=4096, report_to="none", save_strategy="no",
                          disable_tqdm=True, logging_steps=1, beta=0.0)
        dummy = datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": "x"}], "answer": "0",
                                             "solution": "$0$"}])
        self.trainer = GRPOTrainer(model=str(path), reward_funcs=[REWARDS[reward]()], args=args,
                                   train_dataset=dummy)
        self.trainer.model.train()
        self.name = f"trl/{reward}"
        self.timers = Timers()
        for m in ("_generate", "_calculate_rewards", "_generate_and_score_completions", "log"):
            self.timers.wrap(self.trainer, m)
        self.replay: list[list[int]] = []
        self.trainer._generate_single_turn = self._replay
        self.rewards: list[float] = []

    def _replay(self, prompt_ids: Any, images: Any, multimodal_fields: Any, num_generations: int,
                has_tool_images: bool = False) -> tuple[list[list[int]], None]:
        return self.replay, None

    def run(self, w: Workload) -> Point:
        self.timers.reset()
        self.replay = w.completion_ids
        k = w.r.group_size
        inputs = [{"prompt": w.messages[g], "answer": w.r.answers[g], "solution": f"${w.r.answers[g]}$"}
                  for g in w.r.groups]
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
        return Point(self.name, w.n, t2 - t0, parts, rewards)


def sweep(sizes: list[int], group_size: int = 8, systems: tuple[str, ...] = SYSTEMS,
          log: Any = print, seed: int = 0, math_verify_max: int | None = None) -> list[Point]:
    """Every system at every size (sizes in order, systems alternated within a size);
    ``trl/math-verify`` only up to ``math_verify_max`` rollouts when given (it is the slow one)."""
    from transformers import AutoTokenizer

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    tok = AutoTokenizer.from_pretrained(model_dir("tiny"))
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="bench-cpu-side-") as tmp:
        trl = {s: TRLSide(s.split("/", 1)[1], group_size, os.path.join(tmp, s.replace("/", "-")))
               for s in systems if s.startswith("trl/")}
        for n in sizes:
            w = Workload(n, group_size, tok, seed)
            for s in systems:
                if s == "trl/math-verify" and math_verify_max and n > math_verify_max:
                    log(f"[cpu-side] {s:18s} {n:6d} rollouts: skipped (--math-verify-max {math_verify_max})")
                    continue
                p = run_empg(w, os.path.join(tmp, f"empg-{n}")) if s == "empg" else trl[s].run(w)
                points.append(p)
                log(f"[cpu-side] {s:18s} {n:6d} rollouts: {p.seconds * 1e3:9.1f} ms  "
                    + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in p.parts.items()))
    return points


def plot(points: list[Point], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in dict.fromkeys(p.system for p in points):
        pts = sorted((p.rollouts, p.seconds) for p in points if p.system == s)
        ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=s)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("rollouts per iteration")
    ax.set_ylabel("CPU-side seconds per iteration")
    ax.set_title("CPU-side work per iteration (verify, weights/advantages, packing, logging)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
