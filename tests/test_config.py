"""Config: YAML + dotted overrides, and errors naming the key, raised before any model loads."""

from __future__ import annotations

import pytest

from empg.cli import train_main
from empg.config import Config, load_config
from empg.exceptions import ConfigError


def test_defaults_are_the_embedded_run():
    cfg = load_config()
    assert cfg.model.name == "smollm2-135m-instruct" and cfg.data.source == "arith"
    assert cfg.train.algo == "empg" and cfg.train.lr <= 1e-5  # 3e-5 collapsed (docs/algorithm.md)


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sampling:\n  temperature: 0.7\n  group_size: 4\ntrain:\n  algo: grpo\n")
    cfg = load_config(path, ["sampling.temperature=0.9", "data.levels=[0, 1]", "resume=true"])
    assert cfg.sampling.temperature == 0.9 and cfg.sampling.group_size == 4
    assert cfg.train.algo == "grpo" and cfg.data.levels == [0, 1] and cfg.checkpoint.resume is True


@pytest.mark.parametrize(
    "override, key, hint",
    [
        ("sampling.temperatur=0.7", "sampling.temperatur", "sampling.temperature"),
        ("train.lerning_rate=1", "train.lerning_rate", None),
        ("temperature=0.5", "temperature", "sampling.temperature"),
        ("sampling.group_size=-2", "sampling.group_size", None),
        ("sampling.temperature=hot", "sampling.temperature", None),
        ("train.token_budget=0", "train.token_budget", None),
        ("train.algo=ppo", "train.algo", None),
        ("train.scheme=softmax", "train.scheme", None),
        ("sampling.sampler=tgi", "sampling.sampler", None),
        ("model.name=/no/such/model/dir", "model.name", None),
        ("checkpoint.keep_last=0", "checkpoint.keep_last", None),
        ("eval.pass_k=[1,8]", "eval.pass_k", None),
        ("train.iterations=2.5", "train.iterations", None),
    ],
)
def test_bad_key_or_value_names_the_key(override, key, hint):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert repr(key) in str(e.value)
    if hint:
        assert f"did you mean {hint!r}" in str(e.value)


def test_invalid_combination_greedy_with_k_samples():
    with pytest.raises(ConfigError, match="sampling.temperature"):
        load_config(None, ["sampling.temperature=0", "sampling.group_size=8"])
    assert load_config(None, ["sampling.temperature=0", "sampling.group_size=1",
                              "train.scheme=raw"]).sampling.group_size == 1


def test_yaml_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sampling:\n  top_k: 5\n")
    with pytest.raises(ConfigError, match="sampling.top_k"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad.write_text("sampling: 3\n")
    with pytest.raises(ConfigError, match="'sampling'"):
        load_config(bad)


def test_cli_rejects_bad_config_before_loading_a_model(tmp_path, capsys, monkeypatch):
    import empg.models

    def boom(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(empg.models, "load_model", boom)
    rc = train_main([f"log.run_dir={tmp_path}", "sampling.group_size=0"])
    assert rc == 2
    assert "sampling.group_size" in capsys.readouterr().err
    assert not (tmp_path / "config.yaml").exists()


def test_resolved_config_round_trips():
    from empg.config import dump_yaml, from_dict
    import yaml

    cfg = load_config(None, ["train.algo=grpo", "sampling.stop=['###']"])
    again = from_dict(yaml.safe_load(dump_yaml(cfg)))
    assert again == cfg and isinstance(again, Config)


def test_a_renamed_key_says_what_replaced_it():
    with pytest.raises(ConfigError, match=r"'log.tensorboard' was replaced by log.report_to"):
        load_config(None, ["log.tensorboard=false"])
