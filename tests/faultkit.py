"""Shared pieces of the fault-injection tests (tests/test_faults_*.py): a tiny policy that the
trainer can really learn from in seconds, its data, its config, and a runner for the real
``empg-train`` entry point in a subprocess.

The tiny policy is a real ``LlamaForCausalLM`` built from a config (hidden 16, one layer, the
SmolLM2 tokenizer read from the embedded GGUF, no download) whose weights are set rather than
random, so that it answers like a weak student: after ``Answer:`` it writes one digit, uniformly
at random, then ends (EOS). On single-digit sums that is right 10% of the time, so with K = 4 most
iterations have groups with mixed rewards and the M-step takes real optimizer steps (a random tiny
model would never be right, every group would be dropped and no weight would ever change). The
layer's output projections start at zero so the residual stream is the token embedding; training
moves every weight from there.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
HIDDEN = 16


def make_digit_model(path: Path) -> Path:
    """Write the tiny policy (see the module docstring) with its tokenizer to ``path``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from empg.models import embedded_tokenizer_dir

    tok = AutoTokenizer.from_pretrained(embedded_tokenizer_dir())
    colon = tok.convert_tokens_to_ids(":")
    digits = [tok.convert_tokens_to_ids(str(d)) for d in range(10)]
    eos = tok.eos_token_id
    config = LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=256, bos_token_id=tok.bos_token_id, eos_token_id=eos,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    scale = HIDDEN ** 0.5  # RMSNorm maps a one-hot-ish embedding to length sqrt(hidden)
    with torch.no_grad():
        for layer in model.model.layers:  # the layer adds nothing at first: a bigram model
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        head = model.lm_head.weight
        emb.normal_(0, 0.02)
        head.normal_(0, 0.02)
        emb[colon, 0] = 1.0  # after ":" -> a digit
        head[digits, 0] = 12.0 / scale
        for d in digits:  # after a digit -> EOS
            emb[d, 1] = 1.0
        head[eos, 1] = 12.0 / scale
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def write_sums(path: Path) -> Path:
    """Single-digit sums as a local jsonl (question/answer per row)."""
    rows = [f'{{"question": "What is {a} + {b}?", "answer": "{a + b}"}}'
            for a in range(10) for b in range(10) if a + b < 10]
    random.Random(0).shuffle(rows)
    path.write_text("\n".join(rows) + "\n")
    return path


def config_text(model_dir: Path, data: Path, run_dir: Path, **overrides: Any) -> str:
    """A YAML config for a 3-iteration run of the tiny policy (a few seconds of compute)."""
    sections: dict[str, dict[str, Any]] = {
        "model": {"name": str(model_dir), "device": "cpu", "threads": 1},
        "data": {"source": str(data), "fewshot": 0, "eval_limit": 8},
        "sampling": {"prompts_per_iteration": 8, "group_size": 4, "temperature": 1.0,
                     "max_new_tokens": 3},
        "train": {"iterations": 3, "mini_batch_size": 4, "lr": 0.01, "warmup_steps": 0, "seed": 0},
        "eval": {"samples": 0, "pass_k": [1]},
        "log": {"run_dir": str(run_dir), "report_to": [], "progress": False},
        "checkpoint": {"every": 1, "keep_last": 2},
    }
    for key, value in overrides.items():
        section, name = key.split("__")
        sections.setdefault(section, {})[name] = value
    import yaml

    return str(yaml.safe_dump(sections, sort_keys=False))


def train_command() -> list[str]:
    """The installed ``empg-train`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "empg-train"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from empg.cli import train_main; sys.exit(train_main())"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for a rendezvous or a server)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun_command(ranks: int) -> list[str]:
    """``torchrun`` (this interpreter's) starting ``ranks`` processes on a free local port."""
    if ranks <= 0:
        return []
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
            "--master-port", str(free_port()), "--no-python"]


class Run:
    """``empg-train`` in a subprocess, its output collected line by line (stdout+stderr)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, *, ranks: int = 0) -> None:
        """``ranks > 0``: under ``torchrun --nproc-per-node ranks`` (gloo on the CPU)."""
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "EMPG_NUM_THREADS": "1",
                    "OMP_NUM_THREADS": "1", **(env or {})}
        self.proc = subprocess.Popen(torchrun_command(ranks) + train_command() + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=full_env, cwd=REPO)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        """Block until a line containing ``text`` appears (AssertionError with the output if the
        process ends or the timeout passes first)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.lines):
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"process ended before {text!r}:\n" + "\n".join(self.lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {text!r} within {timeout}s:\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 0.5))

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """A real SIGKILL: no handler, no cleanup, no flush in the child."""
        self.proc.send_signal(signal.SIGKILL)

    def finish(self, timeout: float = 300) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(10)
        return rc


def run_train(args: list[str], env: dict[str, str] | None = None, timeout: float = 300, *,
              ranks: int = 0) -> tuple[int, str]:
    r = Run(args, env, ranks=ranks)
    rc = r.finish(timeout)
    return rc, r.output


def final_weights(ckpt_dir: Path) -> dict[str, torch.Tensor]:
    """The model tensors of a checkpoint directory."""
    from safetensors.torch import load_file

    return load_file(str(ckpt_dir / "model.safetensors"))


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
