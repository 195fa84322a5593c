"""torchrun on the CPU: 2 gloo processes, the FSDP2-sharded M-step, checkpoints across rank counts,
and the real ``empg-train`` under ``torchrun``.

The exactness claim of :mod:`empg.distributed`: two ranks training on their own sequences give the
same loss and the same updated weights (to float tolerance) as one process training on the union.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import distkit as dk
import faultkit as fk
from empg import checkpoint as ckpt
from empg import distributed

pytestmark = pytest.mark.slow

JOBS = {
    "empg": {},
    "empg-tied-sequence-norm": {"model": {"tie_word_embeddings": True}, "normalize": "sequence"},
    "grpo-kl": {"algo": "grpo", "kl_beta": 0.1},
    "empg-gradient-checkpointing": {"gradient_checkpointing": True},
}


def _assert_close_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Equal to float tolerance. Adam divides by sqrt(v): a weight whose gradients are ~0 moves by
    amplified rounding noise (the ranks sum in another order), so ``atol`` is 0.1% of one step at
    lr 1e-2; the optimizer moments, linear in the gradients, are compared tightly."""
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=lambda m: f"{k}: {m}")


def _assert_close_optimizer(a: dict, b: dict) -> None:
    assert a["state"].keys() == b["state"].keys() and a["state"]
    for name in a["state"]:
        for k, v in a["state"][name].items():
            torch.testing.assert_close(v, b["state"][name][k], rtol=1e-4, atol=1e-7,
                                       msg=lambda m: f"{name}.{k}: {m}")


def _assert_same_mstep(a: dict, b: dict) -> None:
    assert a["steps"] == b["steps"] > 0 and a["tokens"] == b["tokens"]
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), k


@pytest.mark.parametrize("name", list(JOBS))
def test_two_ranks_match_one_process_on_the_union(tmp_path, name):
    job = JOBS[name]
    parts = dk.make_rank_data([5, 3])  # unequal counts and lengths: unequal micro-batch counts
    ranks = dk.run_ranks(job, parts, tmp_path)
    one = dk.run_job(job, dk.union(parts))
    for r in ranks:  # every rank reports the run's numbers, not its own
        _assert_same_mstep(one["mstep"], r["mstep"])
    _assert_close_weights(one["weights"], ranks[0]["weights"])
    _assert_close_optimizer(one["optimizer"], ranks[0]["optimizer"])
    assert ranks[1]["weights"] == {}  # gathered to rank 0 only


def test_bf16_all_gathers_stay_close_to_fp32(tmp_path):
    """The GPU setting (``bf16_params``: FSDP gathers and computes in bf16, reduces in fp32, keeps
    fp32 master weights) on gloo: the same steps, and loss and gradient norm within bf16 error."""
    parts = dk.make_rank_data([5, 3])
    ranks = dk.run_ranks({"bf16_params": True}, parts, tmp_path)
    one = dk.run_job({}, dk.union(parts))
    got, want = ranks[0]["mstep"], one["mstep"]
    assert got["steps"] == want["steps"] and got["tokens"] == want["tokens"]
    assert got["loss"] == pytest.approx(want["loss"], rel=0.05)
    assert got["grad_norm"] == pytest.approx(want["grad_norm"], rel=0.05)
    assert all(v.dtype == torch.float32 for v in ranks[0]["weights"].values())  # fp32 masters


def test_a_rank_without_signal_still_steps(tmp_path):
    """Rank 1 dropped every group (no sequences): it runs the same optimizer steps as rank 0, with
    zero-weight micro-batches, instead of leaving rank 0 waiting in FSDP's collectives."""
    parts = dk.make_rank_data([6, 0])
    ranks = dk.run_ranks({}, parts, tmp_path)
    one = dk.run_job({}, dk.union(parts))
    assert ranks[1]["samples"] == 0
    assert ranks[0]["mstep"]["steps"] == ranks[1]["mstep"]["steps"] == one["mstep"]["steps"] == 4
    _assert_close_weights(one["weights"], ranks[0]["weights"])


def test_no_signal_anywhere_takes_no_step(tmp_path):
    ranks = dk.run_ranks({}, dk.make_rank_data([0, 0]), tmp_path)
    assert [r["mstep"]["steps"] for r in ranks] == [0.0, 0.0]


def test_checkpoint_of_two_ranks_resumes_in_one_process_and_back(tmp_path):
    """Save after an M-step on 2 ranks, continue in 1 process; save after an M-step in 1 process,
    continue on 2 ranks: both end where one process doing both M-steps on the union ends."""
    first, second = dk.make_rank_data([4, 3], seed=1), dk.make_rank_data([3, 5], seed=2)
    straight = tmp_path / "straight"
    dk.run_job({"save": str(straight)}, dk.union(first))
    reference = dk.run_job({"resume": str(straight / "iter-000001")}, dk.union(second))

    two = tmp_path / "two-ranks"
    dk.run_ranks({"save": str(two)}, first, tmp_path / "a")
    assert (two / "iter-000001" / ckpt.MARKER).is_file()
    then_one = dk.run_job({"resume": str(two / "iter-000001")}, dk.union(second))
    _assert_close_weights(reference["weights"], then_one["weights"])
    _assert_close_optimizer(reference["optimizer"], then_one["optimizer"])

    then_two = dk.run_ranks({"resume": str(straight / "iter-000001")}, second, tmp_path / "b")
    _assert_close_weights(reference["weights"], then_two[0]["weights"])
    _assert_close_optimizer(reference["optimizer"], then_two[0]["optimizer"])


def test_shard_bounds_cover_every_item_once():
    for n in range(0, 12):
        for parts in range(1, 5):
            spans = [distributed.shard_bounds(n, parts, i) for i in range(parts)]
            assert [x for lo, hi in spans for x in range(lo, hi)] == list(range(n))
            assert max(hi - lo for lo, hi in spans) - min(hi - lo for lo, hi in spans) <= 1


def test_metrics_of_merged_shards_equal_the_whole():
    """What rank 0 logs from the gathered shards is what one process computes from all rollouts."""
    import numpy as np

    from empg.evaluation import EvalRaw, eval_metrics
    from empg.metrics import RolloutSummary

    rng = np.random.default_rng(0)
    rewards, lengths = rng.integers(0, 2, 24).astype(float), rng.integers(1, 30, 24)
    truncated, solved = lengths > 25, rewards.reshape(6, 4).mean(axis=1)
    texts = [rng.choice(["first, then", "wait, actually", "let me check", "42"]) for _ in range(24)]

    def summary(lo: int, hi: int) -> RolloutSummary:  # groups lo..hi-1, 4 rollouts each
        r = slice(4 * lo, 4 * hi)
        return RolloutSummary.of(rewards[r], lengths[r], truncated[r], solved[lo:hi],
                                 solved[lo:hi] % 1 == 0, texts[r], {"sampling": float(hi - lo)})

    whole, parts = summary(0, 6).stats(), RolloutSummary.merge([summary(0, 4), summary(4, 6)]).stats()
    assert parts.pop("time/sampling") == 4.0  # the slowest rank sets the pace
    whole.pop("time/sampling")
    assert parts == pytest.approx(whole) and whole["behaviour/backtracking"] > 0

    sampled = rng.integers(0, 2, (10, 3)).astype(float)
    raw = EvalRaw(sampled[:, 0], lengths[:10].astype(float), sampled, sampled * 7, 1.0)
    halves = [EvalRaw(raw.greedy_correct[s], raw.greedy_lengths[s], sampled[s], sampled[s] * 7, 0.5)
              for s in (slice(0, 3), slice(3, 10))]
    merged = eval_metrics(EvalRaw.merge(halves), pass_k=(1, 2, 3))
    assert merged.pop("eval/seconds") == 0.5
    full = eval_metrics(raw, pass_k=(1, 2, 3))
    full.pop("eval/seconds")
    assert merged == pytest.approx(full) and full["eval/problems"] == 10


@pytest.mark.parametrize("world, override, key", [
    ("4", "sampling.prompts_per_iteration=2", "sampling.prompts_per_iteration"),
    ("4", "sampling.tensor_parallel_size=3", "sampling.tensor_parallel_size"),  # does not divide 4
    ("1", "sampling.tensor_parallel_size=2", "sampling.tensor_parallel_size"),  # not vllm
    ("x", "train.iterations=1", "WORLD_SIZE"),
])
def test_torchrun_settings_are_checked_before_any_model_loads(monkeypatch, world, override, key):
    from empg.config import load_config
    from empg.exceptions import ConfigError

    monkeypatch.setenv("WORLD_SIZE", world)
    extra = ["sampling.sampler=vllm"] if "=3" in override else []
    with pytest.raises(ConfigError, match=key):
        load_config(None, [override, *extra])


# -- the real CLI under torchrun ------------------------------------------------------------------


def _torchrun(ranks: int, args: list[str]) -> str:
    """``empg-train args`` under torchrun with ``ranks`` gloo processes (0: no torchrun)."""
    rc, out = fk.run_train(args, ranks=ranks)
    assert rc == 0, out
    return out


def _eval(ranks: int, args: list[str]) -> dict[str, float]:
    """``empg-eval args`` (under torchrun with ``ranks`` processes); its printed metrics."""
    script = Path(sys.executable).parent / "empg-eval"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EMPG_NUM_THREADS": "1"}
    proc = subprocess.run(fk.torchrun_command(ranks) + [str(script), *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=fk.REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines() if line.startswith("eval/")]
    assert len(rows) == len({k for k, _ in rows}), proc.stdout  # printed once, by rank 0
    return {k: float(v) for k, v in rows}


def _train_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "train"]


def test_empg_train_under_torchrun_then_resume_in_one_process_and_back(tmp_path):
    from transformers import AutoModelForCausalLM

    model = fk.make_digit_model(tmp_path / "model")
    data = fk.write_sums(tmp_path / "sums.jsonl")
    run_dir = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(fk.config_text(model, data, run_dir, train__iterations=2, train__lr=0.003))
    out = _torchrun(2, [str(cfg)])
    rows = _train_rows(run_dir)
    assert [r["iteration"] for r in rows] == [1, 2], out  # logged once (rank 0), not per rank
    assert out.count("empg: loading model") == 1  # prints come from rank 0 only
    assert sum(r["mstep/steps"] for r in rows) >= 1, "the tiny policy gave no signal"
    # 8 prompts x 4 samples over both ranks: the logged groups are the whole iteration's.
    assert all(r["groups/kept"] + r["groups/dropped"] == 8 for r in rows)
    latest = ckpt.latest_complete(run_dir / "checkpoints")
    assert latest is not None and latest.name == "iter-000002"
    loaded = AutoModelForCausalLM.from_pretrained(latest)  # a plain transformers checkpoint
    assert json.loads((latest / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert sum(p.numel() for p in loaded.parameters()) > 0

    # empg-eval on 2 ranks (each evaluates half the problems) reports what one process reports.
    evals = [_eval(ranks, [str(cfg), "eval.samples=2", "eval.pass_k=[1,2]", f"--checkpoint={latest}"])
             for ranks in (0, 2)]
    assert evals[0]["eval/problems"] == 8 and "eval/greedy_acc" in evals[0]
    for k in ("eval/greedy_acc", "eval/greedy_length"):  # sampled metrics use per-rank seeds
        assert evals[1][k] == evals[0][k], (k, evals)

    _torchrun(0, [str(cfg), "train.iterations=3", "--resume"])  # 2 ranks -> 1 process
    _torchrun(2, [str(cfg), "train.iterations=4", "--resume"])  # 1 process -> 2 ranks
    assert [r["iteration"] for r in _train_rows(run_dir)] == [1, 2, 3, 4]
    assert ckpt.latest_complete(run_dir / "checkpoints").name == "iter-000004"


def test_a_signal_to_one_rank_stops_both_at_the_same_point(tmp_path):
    """SIGTERM reaches one rank only, inside the M-step of iteration 2: both ranks finish that
    M-step, agree to stop, write the checkpoint of iteration 2 together and exit cleanly."""
    model = fk.make_digit_model(tmp_path / "model")
    data = fk.write_sums(tmp_path / "sums.jsonl")
    run_dir = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(fk.config_text(model, data, run_dir, train__lr=0.003, checkpoint__every=0))
    r = fk.Run([str(cfg)], ranks=2, env={"EMPG_TEST_PAUSE_AT": "mstep-after-step:iter-000002:1",
                                         "EMPG_TEST_PAUSE_SECONDS": "5"})
    r.wait_for("empg-test: paused at mstep-after-step:iter-000002:1")
    pid = int(re.search(r"paused at mstep-after-step:iter-000002:1 \(pid (\d+)\)", r.output).group(1))
    os.kill(pid, signal.SIGTERM)
    assert r.finish() == 0, r.output
    assert "after the M-step of iteration 2; checkpoint at iteration 2" in r.output, r.output
    assert ckpt.latest_complete(run_dir / "checkpoints").name == "iter-000002"
    assert [r["iteration"] for r in _train_rows(run_dir)] == [1, 2]
