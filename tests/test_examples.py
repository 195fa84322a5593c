"""examples/ run for one iteration on the tiny model: the custom-reward task (Python, through
empg.Trainer) and the GSM8K chat YAML (through empg-train, GSM8K from the shared data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def rows(run: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


def test_custom_reward_example(tmp_path):
    run = tmp_path / "reverse"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "python")}
    out = subprocess.run([sys.executable, str(EXAMPLES / "custom_reward.py"), "--model", "tiny-llama",
                          "--iterations", "1", "--run-dir", str(run)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert [r["iteration"] for r in rows(run, "train")] == [1]
    assert rows(run, "eval")[-1]["eval/problems"] == 3
    assert (run / "final" / "model.safetensors").is_file()
    sys.path.insert(0, str(EXAMPLES))
    from custom_reward import reversed_word

    assert reversed_word(None, ["It is tac.", "cat"], ["cat", "cat"]) == [1.0, 0.0]


def test_gsm8k_chat_yaml(tmp_path, shared_data, monkeypatch):
    from empg.cli import train_main
    from empg.config import load_config

    cfg = load_config(EXAMPLES / "gsm8k_chat.yaml")
    assert cfg.data.template == "chat" and cfg.data.system_prompt and cfg.reward.weights == [1.0, 0.1]
    monkeypatch.setenv("EMPG_DATA_DIR", str(shared_data))
    run = tmp_path / "gsm8k"
    assert train_main([str(EXAMPLES / "gsm8k_chat.yaml"), "model.name=tiny-llama", f"log.run_dir={run}",
                       "train.iterations=1", "data.limit=2", "data.eval_limit=2", "sampling.prompts_per_iteration=2",
                       "sampling.group_size=2", "sampling.max_new_tokens=4", "eval.samples=0", "eval.pass_k=[1]",
                       "log.progress=false", "log.report_to=[]", "model.threads=1"]) == 0
    train = rows(run, "train")
    assert [r["iteration"] for r in train] == [1] and "reward/verifier" in train[0] and "reward/format" in train[0]
    assert rows(run, "eval")[-1]["eval/problems"] == 2
