"""``empg-train sampling.sampler=vllm`` end to end on the embedded model, with a real vLLM engine
(the vLLM tier, scripts/test-vllm-cpu.sh; skipped elsewhere, see conftest.py): a short run trains,
its final evaluation (by the engine, after two syncs) matches transformers on the saved weights,
and a run resumed from weights holding a NaN stops at the sync with an error naming the tensor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from empg import checkpoint as ckpt
from faultkit import run_train

pytestmark = [pytest.mark.vllm_engine, pytest.mark.slow]

# The default's 32 new tokens: at 16 most completions stop before their \boxed{} answer, every
# reward is 0 and no group has a signal to train on.
SHORT = ["sampling.sampler=vllm", "sampling.prompts_per_iteration=4", "sampling.group_size=4",
         "data.eval_limit=4", "eval.samples=0", "eval.pass_k=[1]",
         "log.report_to=[]", "log.progress=false"]


def records(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-iteration ``empg-train sampling.sampler=vllm`` run of the embedded default, shortened."""
    run = tmp_path_factory.mktemp("vllm-train") / "run"
    rc, out = run_train([*SHORT, "train.iterations=2", f"log.run_dir={run}"], timeout=600)
    assert rc == 0, out[-4000:]
    assert "Traceback" not in out, out[-4000:]  # the engine closes before the process group goes
    return run


def test_two_iterations_train_and_the_engine_holds_the_trained_weights(trained_run: Path, tmp_path: Path) -> None:
    from empg.config import load_config
    from empg.evaluation import main_eval

    rows = records(trained_run)
    train = [r for r in rows if r["kind"] == "train"]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["iteration"] for r in train] == [1, 2]
    assert sum(r["mstep/steps"] for r in train) >= 1, "no optimizer step: nothing was synced"
    assert all(r["time/sync"] > 0 for r in train)
    assert [r["iteration"] for r in evals] == [0, 2]
    latest = ckpt.latest_complete(trained_run / "checkpoints")
    assert latest is not None and latest.name == "iter-000002"
    # The run's last evaluation was sampled by the engine after two syncs; transformers' greedy
    # decoding of the saved weights must give the same answers and lengths.
    cfg = load_config(None, [o for o in SHORT if not o.startswith("sampling.sampler=")]
                      + ["sampling.sampler=transformers", f"log.run_dir={tmp_path / 'eval'}"])
    theirs = main_eval(cfg, checkpoint=str(latest))
    assert theirs["eval/problems"] == evals[-1]["eval/problems"]
    assert theirs["eval/greedy_acc"] == evals[-1]["eval/greedy_acc"]
    assert theirs["eval/greedy_length"] == evals[-1]["eval/greedy_length"]


def test_a_failed_sync_stops_the_run_with_the_tensor_named(trained_run: Path, tmp_path: Path) -> None:
    """Resuming from a checkpoint whose weights hold a NaN (a diverged or damaged save): the sync
    that hands them to the engine refuses them, and the run stops there with the error instead of
    sampling from them."""
    import torch
    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    weights = run / "checkpoints" / "iter-000002" / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["model.layers.3.mlp.down_proj.weight"][0, 0] = float("nan")
    save_file(tensors, str(weights), metadata={"format": "pt"})
    rc, out = run_train([*SHORT, "train.iterations=3", f"log.run_dir={run}", "--resume"], timeout=600)
    assert rc != 0
    assert "sync_weights: the trainer's weights do not fit the engine, none written" in out, out[-4000:]
    assert "model.layers.3.mlp.down_proj.weight: holds NaN or inf values" in out
    assert [r["iteration"] for r in records(run) if r["kind"] == "train"] == [1, 2]  # nothing after
