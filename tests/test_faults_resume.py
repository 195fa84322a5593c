"""Kill and resume, SIGINT/SIGTERM: the real ``empg-train`` in a subprocess, the real signals.

Each test runs the tiny digit policy of :mod:`faultkit` for 3 iterations with a checkpoint after
every iteration, interrupts it, resumes it, and compares the final weights with those of one
uninterrupted run (same config, same seeds): a resume that lost any state (RNG, data position,
optimizer, scheduler, the bad-step count) would end elsewhere.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import torch

import faultkit as fk
from empg import checkpoint as ckpt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("resume")
    model = fk.make_digit_model(root / "model")
    data = fk.write_sums(root / "sums.jsonl")
    return {"root": root, "model": model, "data": data}


def _config(kit: dict[str, Path], name: str) -> tuple[Path, Path]:
    run_dir = kit["root"] / name
    cfg = kit["root"] / f"{name}.yaml"
    cfg.write_text(fk.config_text(kit["model"], kit["data"], run_dir, train__lr=0.003))
    return cfg, run_dir


@pytest.fixture(scope="module")
def baseline(kit: dict[str, Path]) -> Path:
    """One uninterrupted run; its checkpoints directory (iter-2 and iter-3 kept)."""
    cfg, run_dir = _config(kit, "baseline")
    rc, out = fk.run_train([str(cfg)])
    assert rc == 0, out
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = sum(m.get("mstep/steps", 0) for m in metrics if m["kind"] == "train")
    assert steps >= 3, f"the tiny policy should give the M-step work to do:\n{out}"
    return run_dir / "checkpoints"


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = fk.final_weights(a), fk.final_weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6, msg=f"{k} differs")


def _trained_iterations(run_dir: Path) -> set[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return set()
    return {json.loads(x)["iteration"] for x in path.read_text().splitlines()
            if x.strip() and json.loads(x)["kind"] == "train"}


def test_sigkill_in_sampling_in_checkpoint_write_and_in_mstep_then_resume(
        kit: dict[str, Path], baseline: Path) -> None:
    cfg, run_dir = _config(kit, "killed")
    ckpts = run_dir / "checkpoints"

    # 1. SIGKILL while sampling iteration 2.
    # The tiny model samples in milliseconds: the test hook pauses the E-step right after sampling.
    r = fk.Run([str(cfg)], env={"EMPG_TEST_PAUSE_AT": "estep-after-sampling:iter-000002"})
    r.wait_for("empg-test: paused at estep-after-sampling:iter-000002")
    r.kill()
    assert r.finish() == -signal.SIGKILL
    assert "iteration 2: M-step" not in r.output
    assert [p.name for p in ckpt.complete_checkpoints(ckpts)] == ["iter-000001"]

    # 2. Resume; SIGKILL half-way through writing checkpoint 2 (all files but COMPLETE written).
    r = fk.Run([str(cfg), "--resume"],
               env={"EMPG_TEST_PAUSE_AT": "checkpoint-before-marker:iter-000002"})
    r.wait_for("empg-test: paused at checkpoint-before-marker:iter-000002")
    r.kill()
    assert r.finish() == -signal.SIGKILL
    assert "resumed from" in r.output and "iter-000001 at iteration 1" in r.output, r.output
    (half,) = ckpts.glob(".tmp-iter-000002-*")
    assert (half / "model.safetensors").is_file() and (half / ckpt.STATE_FILE).is_file()
    assert not (ckpts / "iter-000002").exists()
    assert ckpt.latest_complete(ckpts) == ckpts / "iter-000001"  # the half-written one is not taken

    # 3. Resume (from 1 again); SIGKILL inside the M-step of iteration 3.
    # The tiny model's M-step takes milliseconds, so a random delay would often land after it: the
    # test hook pauses the run after the first optimizer step of iteration 3, and the kill lands there.
    r = fk.Run([str(cfg), "--resume"], env={"EMPG_TEST_PAUSE_AT": "mstep-after-step:iter-000003:1"})
    r.wait_for("empg-test: paused at mstep-after-step:iter-000003:1")
    r.kill()
    assert r.finish() == -signal.SIGKILL
    assert "iter-000001 at iteration 1" in r.output, r.output
    assert 3 not in _trained_iterations(run_dir), "the kill came after the M-step; retry"
    assert [p.name for p in ckpt.complete_checkpoints(ckpts)] == ["iter-000001", "iter-000002"]
    assert not list(ckpts.glob(".tmp-*")), "the next save removes a killed save's leftovers"

    # 4. Resume to the end: the same weights as the run that was never interrupted.
    rc, out = fk.run_train([str(cfg), "--resume"])
    assert rc == 0, out
    assert "iter-000002 at iteration 2" in out
    _assert_same_weights(ckpts / "iter-000003", baseline / "iter-000003")
    _assert_same_weights(ckpts / "iter-000002", baseline / "iter-000002")


def test_sigterm_during_sampling_stops_cleanly_and_resumes_exactly(
        kit: dict[str, Path], baseline: Path) -> None:
    cfg, run_dir = _config(kit, "sigterm")
    ckpts = run_dir / "checkpoints"
    r = fk.Run([str(cfg)])
    r.wait_for("empg: iteration 2: E-step")
    r.signal(signal.SIGTERM)
    assert r.finish() == 0, r.output
    out = r.output
    assert "SIGTERM received" in out
    # The E-step's samples are dropped; the state is the one after iteration 1.
    assert f"stopped by SIGTERM after the E-step of iteration 2; checkpoint at iteration 1: " \
           f"{ckpts / 'iter-000001'}" in out, out
    assert "iteration 2: M-step" not in out
    assert ckpt.latest_complete(ckpts) == ckpts / "iter-000001"
    rc, out = fk.run_train([str(cfg), "--resume"])
    assert rc == 0, out
    _assert_same_weights(ckpts / "iter-000003", baseline / "iter-000003")


def test_sigint_during_mstep_checkpoints_that_iteration(kit: dict[str, Path], baseline: Path) -> None:
    cfg, run_dir = _config(kit, "sigint")
    ckpts = run_dir / "checkpoints"
    # no regular save before the end of the run; the test hook holds the M-step of iteration 2 after
    # its first optimizer step for 5 s, so the signal surely lands inside it
    r = fk.Run([str(cfg), "checkpoint.every=0"],
               env={"EMPG_TEST_PAUSE_AT": "mstep-after-step:iter-000002:1", "EMPG_TEST_PAUSE_SECONDS": "5"})
    r.wait_for("empg-test: paused at mstep-after-step:iter-000002:1")
    r.signal(signal.SIGINT)
    assert r.finish() == 0, r.output
    path = ckpts / "iter-000002"
    assert f"stopped by SIGINT after the M-step of iteration 2; checkpoint at iteration 2: {path}" \
        in r.output, r.output
    assert "iteration 3: E-step" not in r.output
    assert [p.name for p in ckpt.complete_checkpoints(ckpts)] == ["iter-000002"]
    assert ckpt.load_state(path)["iteration"] == 2
    _assert_same_weights(path, baseline / "iter-000002")
