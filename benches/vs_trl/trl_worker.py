"""The TRL side of the head-to-head: TRL's real ``GRPOTrainer.train()``, one step per command.

The worker runs in its own process (so its peak RSS is its own) and builds a ``GRPOTrainer``
(trl 1.16, vLLM off, on the shared device and dtype: ``use_cpu=True``, fp32 by default) as TRL's
docs configure one for a small machine:
the global batch of ``P * K`` completions (``num_generations = K``) reached by gradient
accumulation over micro-batches of ``trl_micro_batch`` (so one generation and one optimizer step
per iteration, ``num_iterations = 1``), gradient checkpointing on (TRL's default) or off by the
row. Everything else at parity with empg: fused AdamW (``adamw_torch_fused``, TrainingArguments'
default; empg's is fused too) at the same lr, constant schedule, no warm-up,
``beta = 0``, the same temperature, top-p, length cap and prompts in order
(``shuffle_dataset=False``), and empg's verifier as the reward (``empg.rewards.trl_reward_func``:
both systems score alike). TRL's loss stays its default, ``loss_type="dapo"`` (the clipped
surrogate over every completion token of the step, divided by their number: empg's
``train.normalize=token``), ``scale_rewards="group"``, ``epsilon=0.2``. ``trainer.train()`` runs as a
user runs it; a callback blocks at the start of every optimizer step until the parent says "step".

The time split comes from timers around TRL's own methods (bound-method wrappers that return what
the original returns; nothing is changed):

* generation = ``_generate`` (prompt tokenisation, ``model.generate``, EOS masking, decoding,
  length metrics);
* reward = ``_calculate_rewards`` (the reward functions);
* forward = ``compute_loss`` (policy forward with grad + the GRPO loss) plus any
  ``_get_per_token_logps_and_entropies`` call inside ``_generate_and_score_completions`` (old/ref
  log-probs; none with these settings);
* advantages/packing = ``_prepare_inputs`` minus the three above: padding the completions into
  tensors, the group advantages, the reward metrics, shuffling and splitting into micro-batches;
* backward = ``training_step`` minus ``_prepare_inputs`` minus ``compute_loss`` (with gradient
  checkpointing: the recomputed forward too);
* optimizer = the optimizer's ``step``;
* other = the rest of the step's wall time (gradient clipping, scheduler, ``zero_grad``, logging,
  callbacks, fetching the next batch).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from vs_trl.task import Settings, load_policy, problems
from vs_trl.timing import Timers, TokenCounter, peak_memory, release_memory, rss_bytes

# What the report shows of the GRPOConfig each TRL worker built (its loss and batch settings).
CONFIG_KEYS = ("loss_type", "scale_rewards", "epsilon", "beta", "num_iterations", "importance_sampling_level",
               "mask_truncated_completions", "temperature", "per_device_train_batch_size",
               "gradient_accumulation_steps", "steps_per_generation", "gradient_checkpointing", "optim")


def make_trainer(settings: Settings, gradient_checkpointing: bool, output_dir: str, callbacks: list[Any]) -> Any:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from empg.rewards import trl_reward_func

    if settings.rollouts % settings.trl_micro_batch:
        raise ValueError(f"P x K = {settings.rollouts} is not a multiple of trl_micro_batch={settings.trl_micro_batch}")
    model, tok = load_policy(settings.model, settings.dtype)
    args = GRPOConfig(
        output_dir=output_dir,
        use_cpu=settings.device == "cpu",
        bf16=settings.dtype == "bfloat16",
        fp16=False,
        use_vllm=False,
        per_device_train_batch_size=settings.trl_micro_batch,
        gradient_accumulation_steps=settings.rollouts // settings.trl_micro_batch,
        num_generations=settings.group_size,
        num_iterations=1,
        max_completion_length=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=0,
        beta=0.0,
        gradient_checkpointing=gradient_checkpointing,
        learning_rate=settings.lr,
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        optim="adamw_torch_fused",
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=settings.max_grad_norm,
        max_steps=settings.total_iterations,
        shuffle_dataset=False,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=settings.seed,
        dataloader_num_workers=0,
    )
    dataset = datasets.Dataset.from_list(problems(settings))
    return GRPOTrainer(model=model, reward_funcs=[trl_reward_func(reference_column="answer")], args=args,
                       train_dataset=dataset, processing_class=tok, callbacks=callbacks)


class _Instrument:
    """Wraps the trainer's methods with timers and counts tokens; one record per step."""

    def __init__(self, trainer: Any, timers: Timers) -> None:
        self.t = timers
        self.generated = self.trained = 0
        self.counter = TokenCounter(trainer.model.base_model)
        self.rewards: list[float] = []
        gen, rew = trainer._generate, trainer._calculate_rewards
        logps, score = trainer._get_per_token_logps_and_entropies, trainer._generate_and_score_completions
        loss, prep = trainer.compute_loss, trainer._prepare_inputs

        def _generate(prompts: Any) -> Any:
            out = timers.timed("_generate", gen)(prompts)
            self.generated += sum(len(c) for c in out[1])
            return out

        def _calculate_rewards(*a: Any, **k: Any) -> Any:
            out = timers.timed("_calculate_rewards", rew)(*a, **k)
            self.rewards.extend(out.nansum(dim=1).tolist())
            return out

        def _generate_and_score(*a: Any, **k: Any) -> Any:
            before = timers.get("logps")
            out = timers.timed("_generate_and_score_completions", score)(*a, **k)
            timers.add("logps_in_scoring", timers.get("logps") - before)
            return out

        def compute_loss(model: Any, inputs: Any, *a: Any, **k: Any) -> Any:
            self.trained += int(inputs["completion_mask"].sum())
            self.counter.on = True
            try:
                return timers.timed("compute_loss", loss)(model, inputs, *a, **k)
            finally:
                self.counter.on = False

        trainer._generate = _generate
        trainer._calculate_rewards = _calculate_rewards
        trainer._generate_and_score_completions = _generate_and_score
        trainer._get_per_token_logps_and_entropies = timers.timed("logps", logps)
        trainer.compute_loss = compute_loss
        trainer._prepare_inputs = timers.timed("_prepare_inputs", prep)
        timers.wrap(trainer, "training_step")

    def record(self, wall: float) -> dict[str, Any]:
        t = self.t.get
        forward = t("compute_loss") + t("logps_in_scoring")
        split = {
            "generation": t("_generate"),
            "reward": t("_calculate_rewards"),
            "advantages_packing": t("_prepare_inputs") - t("_generate") - t("_calculate_rewards")
            - t("logps_in_scoring"),
            "forward": forward,
            "backward": t("training_step") - t("_prepare_inputs") - t("compute_loss"),
            "optimizer": t("optimizer.step"),
        }
        split["other"] = wall - t("training_step") - t("optimizer.step")
        rec = {"wall": wall, "split": split, "generated_tokens": self.generated, "trained_tokens": self.trained,
               "forward_tokens": self.counter.take(), "rollouts": len(self.rewards),
               "reward_mean": sum(self.rewards) / max(1, len(self.rewards)), "rss": rss_bytes()}
        self.t.reset()
        self.generated = self.trained = 0
        self.rewards = []
        return rec


def main(conn: Any, settings_dict: dict[str, Any], gradient_checkpointing: bool) -> None:
    """Worker entry point (multiprocessing, spawn): build, report ready, then one step per "step"."""
    import torch
    from transformers import TrainerCallback

    settings = Settings(**settings_dict)
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    timers = Timers()
    gate: dict[str, Any] = {"start": None, "cpu": 0.0, "inst": None, "optimizer_timed": False}

    def finish_step() -> None:
        if gate["start"] is not None:
            rec = {**gate["inst"].record(time.perf_counter() - gate["start"]), "cpu_s": time.process_time() - gate["cpu"]}
            gate["start"] = None
            release_memory()
            conn.send(("done", rec))

    class Gate(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            finish_step()
            if not gate["optimizer_timed"]:  # the optimizer exists once train() has started
                timers.wrap(trainer.optimizer, "step", "optimizer.step")
                gate["optimizer_timed"] = True
            cmd = conn.recv()
            if cmd != "step":
                raise RuntimeError(f"TRL worker: expected 'step', got {cmd!r}")
            timers.reset()
            gate["start"], gate["cpu"] = time.perf_counter(), time.process_time()

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            finish_step()

    with tempfile.TemporaryDirectory(prefix="bench-trl-") as out:
        t0 = time.perf_counter()
        trainer = make_trainer(settings, gradient_checkpointing, out, [Gate()])
        gate["inst"] = _Instrument(trainer, timers)
        config = {k: getattr(trainer.args, k) for k in CONFIG_KEYS}
        conn.send(("ready", {"setup_s": time.perf_counter() - t0, "rss_after_load": rss_bytes(), "config": config}))
        trainer.train()
    conn.recv()
    conn.send(("final", peak_memory()))
