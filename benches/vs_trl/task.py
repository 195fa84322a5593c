"""What both systems of the head-to-head share: the settings, the model on disk, the prompts.

Both systems load the SAME weights from the same directory (the embedded SmolLM2-135M-Instruct,
dequantized once from its GGUF to safetensors by :func:`empg.models.embedded_model_dir`, or a tiny
random Llama saved once from a config; on a GPU, ``qwen0.5b``: Qwen2.5-0.5B's shape with random
weights and SmolLM2's tokenizer and vocabulary, :func:`qwen05b_config`) and see the SAME prompts in
the same order. Two workloads:

* ``arith``: empg's embedded task (``load_problems("arith")``: difficulty 0, "What is a + b?",
  unless ``levels`` says otherwise) in empg's ``chat`` template with two worked examples: a long
  shared prefix, short completions, about half of them right (groups carry signal);
* ``gsm8k``: GSM8K train questions zero-shot in the same template (no worked example), long
  completions (the data from ``empg.data.default_data_path``; the workload is skipped without it).

TRL gets each prompt as the conversation and renders it with the same chat template, so both
systems' prompt token ids are identical (:func:`prompt_ids` checks the text against empg's own
rendering).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODELS = ("smollm2", "tiny", "qwen0.5b")
FEWSHOT = {"arith": 2, "gsm8k": 0}


@dataclass(frozen=True)
class Settings:
    """One workload of the head-to-head; every field applies to both systems alike."""

    workload: str = "arith"  # arith | gsm8k
    model: str = "smollm2"  # smollm2 | tiny
    prompts_per_iteration: int = 2
    group_size: int = 4  # K completions per prompt
    max_new_tokens: int = 48  # completion length cap (stop at EOS only, no stop strings)
    temperature: float = 0.8  # set on both (TRL's default is 1.0)
    top_p: float = 1.0  # no top-k in either system
    lr: float = 1e-5  # AdamW, weight decay 0, betas (0.9, 0.999), constant schedule, no warm-up
    max_grad_norm: float = 1.0
    iterations: int = 5  # timed iterations per system
    warmup: int = 1  # untimed iterations per system first (allocator, caches, lazy imports)
    seed: int = 0
    threads: int = 1  # torch threads in each worker
    trl_micro_batch: int = 2  # TRL's per_device_train_batch_size (accumulated to all P x K)
    levels: tuple[int, ...] = (0,)  # arith: the embedded task's difficulties (mixed evenly when several)
    device: str = "cpu"  # cpu | cuda (both systems alike)
    dtype: str = "float32"  # of the weights, both systems: float32 | bfloat16 (training and sampling)

    @property
    def rollouts(self) -> int:
        return self.prompts_per_iteration * self.group_size

    @property
    def total_iterations(self) -> int:
        return self.warmup + self.iterations

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def template(workload: str) -> Any:
    from empg.prompts import get_template

    return get_template("chat", fewshot=FEWSHOT[workload], task=workload)


def missing_data(workload: str) -> str | None:
    """Why ``workload`` cannot run here (its data file is absent), or None."""
    from empg.data import default_data_path

    if workload == "gsm8k" and not default_data_path("gsm8k", "train").exists():
        return (f"GSM8K not found at {default_data_path('gsm8k', 'train')} "
                "(set EMPG_DATA_DIR to the folder holding gsm8k/train.jsonl)")
    return None


def problems(settings: Settings) -> list[dict[str, Any]]:
    """``prompts_per_iteration * total_iterations`` rows, in the order both systems see them:
    iteration ``i`` uses rows ``[i * P, (i + 1) * P)``. Each row: ``prompt`` (the chat
    conversation of empg's template), ``question`` and ``answer`` (the bare reference, the column
    empg's verifier reads on both sides)."""
    from empg.data import load_problems

    n = settings.prompts_per_iteration * settings.total_iterations
    if settings.workload == "arith":
        probs, _ = load_problems("arith", split="train", levels=settings.levels, limit=n, shuffle_seed=settings.seed)
    else:
        probs, _ = load_problems("gsm8k", split="train", limit=n)
    return rows_of(probs, settings.workload)


def rows_of(probs: list[Any], workload: str) -> list[dict[str, Any]]:
    """The rows both systems read: ``prompt`` (the chat conversation of empg's template),
    ``question`` and ``answer``."""
    tpl = template(workload)
    return [{"prompt": tpl.messages(p.question), "question": p.question, "answer": p.answer} for p in probs]


def model_dir(name: str) -> Path:
    """The directory both systems load the policy from (converted/saved once, then cached)."""
    from empg import models

    if name == "smollm2":
        return Path(models.embedded_model_dir())
    if name == "tiny":
        target = models.cache_dir() / "bench-tiny-llama-64x2"

        def fill(tmp: Path) -> None:
            models.load_model("tiny-llama-64x2", seed=0).save_pretrained(tmp, safe_serialization=True)
            models.load_tokenizer("tiny-llama-64x2").save_pretrained(tmp)

        return Path(models._atomic_dir(target, fill))
    if name == "qwen0.5b":
        target = models.cache_dir() / "bench-qwen2.5-0.5b-shape-random"

        def fill_qwen(tmp: Path) -> None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            torch.manual_seed(0)
            tok = AutoTokenizer.from_pretrained(tokenizer_dir())
            AutoModelForCausalLM.from_config(qwen05b_config(len(tok))).save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)

        return Path(models._atomic_dir(target, fill_qwen))
    raise ValueError(f"model {name!r} is not one of {MODELS}")


def tokenizer_dir() -> Path:
    """SmolLM2's tokenizer (with its chat template): ``$EMPG_BENCH_TOKENIZER`` (a folder carried to
    a machine without the embedded model), else the embedded model's folder."""
    import os

    from empg import models

    given = os.environ.get("EMPG_BENCH_TOKENIZER")
    return Path(given) if given else Path(models.embedded_model_dir())


def qwen05b_config(vocab_size: int) -> Any:
    """Qwen2.5-0.5B's architecture (hidden 896, 24 layers, 14 heads with 2 key/value heads, MLP
    4864, rope theta 1e6, tied embeddings) with ``vocab_size`` tokens (the tokenizer's, so every
    sampled id decodes)."""
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab_size, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                       bos_token_id=1, eos_token_id=2, pad_token_id=2)


def load_policy(name: str, dtype: str = "float32") -> tuple[Any, Any]:
    """(model in ``dtype`` on the CPU, tokenizer) from :func:`model_dir`, as TRL is handed them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_dir(name)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), attn_implementation="sdpa")
    return model, tok


def prompt_ids(tokenizer: Any, rows: list[dict[str, Any]], workload: str) -> list[list[int]]:
    """The prompt token ids exactly as TRL's GRPOTrainer builds them for conversational prompts
    (``apply_chat_template(add_generation_prompt=True, tokenize=True)``); checked to be the text
    empg's template renders for the question."""
    tpl = template(workload)
    for r in rows[:2]:
        text = tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
        if text != tpl.render(r["question"], tokenizer):
            raise AssertionError("TRL's rendering of the conversation differs from empg's template")
    out = tokenizer.apply_chat_template([r["prompt"] for r in rows], add_generation_prompt=True,
                                        tokenize=True, return_dict=True)
    return [list(ids) for ids in out["input_ids"]]
