"""Bad configuration: every invalid value fails before any model loads, naming the key.

:func:`empg.config.validate` is a function of the config alone (it reads no weights), so most
cases call it directly; the CLI cases check the whole path: exit code 2, the key in the message,
and no ``empg: loading model`` line (printed right before the weights load)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import faultkit as fk
from empg.cli import train_main
from empg.config import Config, load_config, validate
from empg.exceptions import ConfigError

SENTINEL = "empg: loading model"

INVALID = [  # (override, the key the error must name)
    ("sampling.group_size=-2", "sampling.group_size"),
    ("sampling.group_size=0", "sampling.group_size"),
    ("sampling.temperature=0", "sampling.temperature"),  # greedy with K = 8 samples
    ("sampling.temperature=-1", "sampling.temperature"),
    ("sampling.top_p=1.5", "sampling.top_p"),
    ("sampling.max_new_tokens=0", "sampling.max_new_tokens"),
    ("sampling.prompts_per_iteration=0", "sampling.prompts_per_iteration"),
    ("train.token_budget=16", "train.token_budget"),  # below max_new_tokens (32)
    ("train.lr=0", "train.lr"),
    ("train.lr=-1e-5", "train.lr"),
    ("train.epochs=0", "train.epochs"),
    ("train.mini_batch_size=0", "train.mini_batch_size"),
    ("train.max_bad_steps=0", "train.max_bad_steps"),
    ("train.max_grad_norm=-1", "train.max_grad_norm"),
    ("train.betas=[0.9, 1.5]", "train.betas"),
    ("train.clip_eps=1", "train.clip_eps"),
    ("train.kl_beta=-0.1", "train.kl_beta"),
    ("train.warmup_steps=-1", "train.warmup_steps"),
    ("train.iterations=-1", "train.iterations"),
    ("eval.every_limit=-1", "eval.every_limit"),
    ("data.truncation=right", "data.truncation"),
    ("data.max_prompt_length=-1", "data.max_prompt_length"),
    ("reward.weights=[1, 2]", "reward.weights"),  # two weights, one function (the verifier)
    ("log.report_to=[mlflow]", "log.report_to"),
    ("train.algo=ppo", "train.algo"),
    ("model.name=/no/such/model/dir", "model.name"),
    ("model.dtype=int8", "model.dtype"),
    ("model.device=tpu", "model.device"),
    ("data.source=/no/such/file.jsonl", "data.source"),
    ("data.skip_bad_rows=maybe", "data.skip_bad_rows"),
    ("checkpoint.keep_last=0", "checkpoint.keep_last"),
    ("log.run_dir=", "log.run_dir"),
    ("sampling.temprature=0.7", "sampling.temprature"),  # unknown key
    ("train.max_bad_step=2", "train.max_bad_step"),  # unknown key
]


@pytest.mark.parametrize("override, key", INVALID)
def test_invalid_value_names_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert repr(key) in str(e.value) or f"{key}:" in str(e.value) or f"{key}=" in str(e.value), e.value


def test_validate_is_a_pure_check_of_the_config():
    cfg = Config()
    before = copy.deepcopy(cfg)
    validate(cfg)
    assert cfg == before
    cfg.sampling.group_size = -2  # set directly, as a program building a Config would
    with pytest.raises(ConfigError, match="'sampling.group_size'"):
        validate(cfg)


CLI_CASES = ["sampling.group_size=-2", "sampling.temperature=0", "model.name=/no/such/model/dir",
             "sampling.temprature=0.7"]


@pytest.mark.parametrize("override, key", [c for c in INVALID if c[0] in CLI_CASES])
def test_cli_fails_before_the_model_loads(tmp_path, capsys, override, key):
    run = tmp_path / "run"
    assert train_main([f"log.run_dir={run}", override]) == 2
    out, err = capsys.readouterr()
    assert "error (ConfigError)" in err and key in err, err
    assert SENTINEL not in out
    assert not run.exists()  # nothing written either


def test_yaml_unknown_key_names_file_section_and_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  lr: 1e-5\n  max_bad: 3\n")
    assert train_main([str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "'train.max_bad'" in err and "did you mean 'train.max_bad_steps'" in err, err


def test_token_budget_below_the_prompt_length(tmp_path, capsys):
    """Known only once the prompts are tokenized: still before the weights load."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(fk.config_text(Path("tiny-llama"), fk.write_sums(tmp_path / "s.jsonl"),
                                  tmp_path / "run", train__token_budget=12))
    assert train_main([str(cfg)]) == 2
    out, err = capsys.readouterr()
    assert "error (ConfigError): config key 'train.token_budget': 12 is below the longest prompt (" in err
    assert "+ sampling.max_new_tokens (3)" in err, err
    assert SENTINEL not in out
