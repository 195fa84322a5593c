"""End to end through the real CLI: a tiny Llama on the embedded arithmetic task.

The tiny model first gets a few supervised steps on the answers of its two training problems (so
its samples are sometimes right: groups with mixed rewards, hence real M-step updates), is saved
like any local model, and then trained by ``empg-train`` for 2 iterations, resumed for a third.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from empg import checkpoint as ckpt
from empg.cli import eval_main, plot_main, train_main

pytestmark = pytest.mark.slow

COMMON = [
    "data.source=arith", "data.limit=2", "data.eval_limit=4", "data.fewshot=0",
    "sampling.prompts_per_iteration=2", "sampling.group_size=8", "sampling.max_new_tokens=8",
    "sampling.temperature=1.0", "train.mini_batch_size=8", "train.lr=1e-3", "train.warmup_steps=0",
    "eval.samples=2", "log.progress=false", "model.threads=1",
]


@pytest.fixture(scope="module")
def warm_tiny_model(tmp_path_factory) -> Path:
    """A tiny Llama that has seen the answers of its two training problems a few times."""
    from empg.data import load_problems
    from empg.models import load_model, load_tokenizer
    from empg.mstep import MStepSettings, Samples, m_step, make_optimizer, make_scheduler
    from empg.prompts import get_template

    torch.set_num_threads(1)
    tok = load_tokenizer("tiny-llama")
    model = load_model("tiny-llama", seed=0)
    problems, _ = load_problems("arith", split="train", limit=2, shuffle_seed=0)
    tpl = get_template("plain", fewshot=0, task="arith")
    prompts = [tok(tpl.render(p.question), add_special_tokens=False)["input_ids"] for p in problems]
    answers = [tok(f" \\boxed{{{p.answer}}}\n\n", add_special_tokens=False)["input_ids"] for p in problems]
    samples = Samples.from_tokens(prompts, answers, np.ones(len(problems), dtype=np.float32))
    opt = make_optimizer(model, lr=1e-2, weight_decay=0.0, betas=(0.9, 0.999))
    sched = make_scheduler(opt, warmup_steps=0, schedule="constant", total_steps=1)
    for epoch in range(25):
        m_step(model, opt, sched, samples, MStepSettings(mini_batch_size=2), np.random.default_rng(epoch))
    out = tmp_path_factory.mktemp("models") / "warm-tiny"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("algo, extra", [("empg", []), ("grpo", ["train.kl_beta=0.05"])])
def test_train_two_iterations_then_resume(tmp_path, warm_tiny_model, algo, extra):
    from transformers import AutoModelForCausalLM

    run = tmp_path / f"run-{algo}"
    args = [f"model.name={warm_tiny_model}", f"log.run_dir={run}", f"algo={algo}", *COMMON, *extra]
    assert train_main([*args, "train.iterations=2"]) == 0

    recs = _records(run)
    train_rows = [r for r in recs if r["kind"] == "train"]
    evals = [r for r in recs if r["kind"] == "eval"]
    assert [r["iteration"] for r in train_rows] == [1, 2]
    assert [r["iteration"] for r in evals] == [0, 2]  # before training, and at the end
    assert sum(r["mstep/steps"] for r in train_rows) >= 1, "no update: the warm model gave no signal"
    if algo == "grpo":
        assert all("mstep/clip_frac" in r and "mstep/kl" in r for r in train_rows if r["mstep/steps"])
    for key in ("reward/mean", "groups/dropped", "length/mean", "length/truncated_share",
                "time/sampling", "time/verifying", "time/weights", "time/mstep", "time/sync",
                "lr", "tokens_per_s", "behaviour/verification"):
        assert key in train_rows[0], key
    assert (run / "config.yaml").is_file()
    assert list((run / "tb").glob("events.out.tfevents.*")), "no TensorBoard events"

    latest = ckpt.latest_complete(run / "checkpoints")
    assert latest is not None and latest.name == "iter-000002"
    model = AutoModelForCausalLM.from_pretrained(latest)  # loadable by plain transformers
    assert model.config.num_hidden_layers == 2
    saved = ckpt.load_state(latest)
    assert saved["iteration"] == 2 and saved["data_pos"] == 4

    # Resume: iteration 3 follows, starting from the saved optimizer state.
    from empg.build import build
    from empg.config import load_config

    cfg = load_config(None, [*args, "train.iterations=3", "resume=true"])
    s = build(cfg)
    assert s.iteration == 2 and s.data_pos == 4
    loaded = s.optimizer.state_dict()["state"]
    assert loaded, "optimizer state is empty"
    names = [n for n, _ in s.model.named_parameters()]
    assert set(saved["optimizer"]["state"]) == {names[k] for k in loaded}  # keyed by name on disk
    for k, st in loaded.items():
        for name, t in st.items():
            torch.testing.assert_close(t, saved["optimizer"]["state"][names[k]][name], rtol=0, atol=0)
    for p_saved, p_now in zip(model.parameters(), s.model.parameters()):
        torch.testing.assert_close(p_saved, p_now, rtol=0, atol=0)
    del s
    assert train_main([*args, "train.iterations=3", "--resume"]) == 0
    recs = _records(run)
    assert [r["iteration"] for r in recs if r["kind"] == "train"] == [1, 2, 3]
    latest = ckpt.latest_complete(run / "checkpoints")
    assert latest is not None and latest.name == "iter-000003"

    assert eval_main([*args, "--checkpoint", str(latest)]) == 0  # empg-eval on a checkpoint
    assert plot_main([str(run), "--out", str(tmp_path / "plots")]) == 0
    for name in ("accuracy.png", "length.png", "time.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000
