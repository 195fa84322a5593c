"""Numerical faults: a NaN/inf loss or gradient skips the optimizer step (logged), and
``train.max_bad_steps`` of them in a row stop the run with TrainingError, the last good
checkpoint kept.

Injections are real: a learning rate of 1e30 (one AdamW step moves every weight by ~1e30, the
next forward overflows to NaN), and a parameter of a tiny model set to NaN.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import faultkit as fk
from empg import checkpoint as ckpt
from empg.cli import train_main
from empg.exceptions import TrainingError
from empg.faults import BadStepGuard
from empg.models import load_model
from empg.mstep import MStepSettings, Samples, m_step, make_optimizer, make_scheduler


def _digest(path: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.iterdir()))).hexdigest()


@pytest.fixture
def good_run(tmp_path, capsys):
    """One good iteration of the tiny policy: (config, run dir, its checkpoint, the digest)."""
    model = fk.make_digit_model(tmp_path / "model")
    cfg = tmp_path / "c.yaml"
    run = tmp_path / "run"
    cfg.write_text(fk.config_text(model, fk.write_sums(tmp_path / "sums.jsonl"), run, train__lr=0.003))
    assert train_main([str(cfg), "train.iterations=1"]) == 0
    good = run / "checkpoints" / "iter-000001"
    capsys.readouterr()
    return cfg, run, good, _digest(good)


def _assert_kept(run: Path, good: Path, digest: str) -> None:
    """Nothing written after the fault; the good checkpoint is byte-for-byte what it was."""
    assert ckpt.latest_complete(run / "checkpoints") == good
    assert _digest(good) == digest
    assert all(torch.isfinite(t).all() for t in fk.final_weights(good).values())


def test_overflowing_lr_stops_the_run_in_the_mstep(good_run, capsys):
    cfg, run, good, digest = good_run
    # Resume with an absurd learning rate; one sequence per optimizer step gives several steps.
    rc = train_main([str(cfg), "--resume", "train.lr=1e30", "train.steps_per_epoch=0",
                     "train.mini_batch_size=1", "train.max_bad_steps=2"])
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert "train.lr changed on resume: 0.003 -> 1e+30" in out
    warnings = [line for line in err.splitlines() if "optimizer step skipped" in line]
    assert len(warnings) == 2 and "1 in a row" in warnings[0] and "2 in a row" in warnings[1], err
    assert "non-finite loss=" in warnings[0] and "or grad_norm=" in warnings[0]  # either one is nan
    assert "error (TrainingError): iteration 2: 2 optimizer steps in a row had a non-finite loss" in err
    assert f"the last good checkpoint is {good}" in err
    _assert_kept(run, good, digest)


def test_weights_diverged_between_iterations_stop_the_next_sampling(good_run, capsys):
    cfg, run, good, digest = good_run
    # Two steps per M-step: the first blows the weights up, the second is skipped (1 < 3 in a
    # row), and the next E-step meets NaN probabilities. Checkpoints are due every iteration.
    rc = train_main([str(cfg), "--resume", "train.lr=1e30", "train.steps_per_epoch=2"])
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert "optimizer step skipped (1 in a row" in err
    # Its last step was bad, so iteration 2 is not saved as a "good" checkpoint.
    assert "no checkpoint at iteration 2: its last optimizer step had a non-finite loss" in err
    assert "error (TrainingError): iteration 3: sampling failed (" in err, err
    assert f"the weights have diverged (try a lower train.lr); the last good checkpoint is {good}" in err
    _assert_kept(run, good, digest)


def _samples(n: int, seed: int) -> Samples:
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(5, 500, size=6).tolist() for _ in range(n)]
    completions = [rng.integers(5, 500, size=4).tolist() for _ in range(n)]
    return Samples.from_tokens(prompts, completions, np.array([1.0, -1.0] * (n // 2), dtype=np.float32))


def test_nan_parameter_skips_steps_counted_in_a_row_across_msteps():
    model = load_model("tiny-llama-32x1", seed=0)
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999))
    sched = make_scheduler(opt, warmup_steps=0, schedule="constant", total_steps=10)
    settings = MStepSettings(mini_batch_size=2, token_budget=64)
    guard = BadStepGuard(max_bad=3)
    samples = _samples(4, seed=1)  # 2 optimizer steps per M-step

    good = m_step(model, opt, sched, samples, settings, np.random.default_rng(0), guard=guard)
    assert good["steps"] == 2 and good["skipped_steps"] == 0 and guard.in_row == 0

    with torch.no_grad():
        model.model.norm.weight[3] = float("nan")  # the fault
    frozen = {k: v.detach().clone() for k, v in model.named_parameters()}
    out = m_step(model, opt, sched, samples, settings, np.random.default_rng(1), guard=guard)
    assert out["steps"] == 0 and out["skipped_steps"] == 2 and guard.in_row == 2
    assert math.isnan(out["loss"])
    for k, v in model.named_parameters():  # no optimizer step was taken
        torch.testing.assert_close(v, frozen[k], rtol=0, atol=0, equal_nan=True)
    # The count goes on across M-steps: the next bad step is the third in a row.
    with pytest.raises(TrainingError, match="3 optimizer steps in a row"):
        m_step(model, opt, sched, samples, settings, np.random.default_rng(2), guard=guard)


def test_a_good_step_resets_the_count():
    guard = BadStepGuard(max_bad=2)
    assert not guard.step_ok(float("inf"), 1.0)
    assert guard.step_ok(0.5, 1.0) and guard.in_row == 0
    assert not guard.step_ok(0.5, float("nan"))
    with pytest.raises(TrainingError, match="2 optimizer steps in a row"):
        guard.step_ok(float("nan"), float("nan"))
    assert guard.total == 3
