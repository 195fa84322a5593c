"""log.report_to: metrics.jsonl always, TensorBoard and wandb (offline) as trackers; the progress
bar's fields for an M-step that took no step."""

from __future__ import annotations

import json

import pytest

from empg.exceptions import ConfigError
from empg.trackers import RunLogger


def test_jsonl_always_and_tensorboard_when_asked(tmp_path):
    log = RunLogger(tmp_path / "a", report_to=[])
    log.log(1, {"reward/mean": 0.5, "loss": float("nan"), "kind": "train"})
    log.close()
    assert json.loads((tmp_path / "a" / "metrics.jsonl").read_text()) == \
        {"iteration": 1, "reward/mean": 0.5, "loss": None, "kind": "train"}
    assert not (tmp_path / "a" / "tb").exists()
    log = RunLogger(tmp_path / "b", report_to=["tensorboard"])
    log.log(1, {"reward/mean": 0.5})
    log.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "b" / "tb"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("reward/mean")] == [(1, 0.5)]
    with pytest.raises(ConfigError, match="log.report_to.*'mlflow' is not one of"):
        RunLogger(tmp_path / "c", report_to=["mlflow"])


def test_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    log = RunLogger(tmp_path / "run", report_to=["wandb"], config={"log": {"wandb_project": "empg-test"}})
    for it in (1, 2):
        log.log(it, {"reward/mean": 0.25 * it, "kind": "train"})
    log.close()
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1  # the offline run, ready for `wandb sync`
    data = runs[0].read_bytes()  # protobuf records: the history rows hold the key and its JSON value
    assert data.count(b"reward/mean") >= 2 and b"0.25" in data and b"0.5" in data
    assert b"empg-test" in data  # the project from log.wandb_project
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 2


def test_progress_bar_says_why_the_mstep_was_skipped():
    from empg.runtime import progress_fields

    row = {"reward/mean": 1.0, "length/mean": 5.0, "groups/dropped": 4.0, "groups/kept": 0.0}
    fields = progress_fields(row, {"loss": float("nan"), "steps": 0.0, "skipped_steps": 0.0})
    assert "loss" not in fields and fields["mstep"] == "skipped: all groups dropped (equal rewards)"
    fields = progress_fields({**row, "groups/kept": 2.0}, {"loss": float("nan"), "steps": 0.0, "skipped_steps": 2.0})
    assert fields["mstep"] == "skipped: 2 non-finite steps"
    fields = progress_fields({**row, "groups/kept": 2.0}, {"loss": 0.25, "steps": 2.0})
    assert fields["loss"] == "0.250" and "mstep" not in fields
