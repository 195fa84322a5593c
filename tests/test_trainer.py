"""empg.Trainer end to end: reward functions with TRL's convention (TRL's own, custom ones, several
with weights), datasets with custom columns, conversational rows with a system prompt, a
custom reward that measurably drives learning on the embedded model, and the CLI and the Trainer
giving identical metrics for the same config and seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import empg
from empg.config import Config, load_config
from empg.exceptions import RewardError

pytestmark = pytest.mark.slow

TINY = [
    "model.name=tiny-llama", "data.limit=4", "data.eval_limit=2", "data.fewshot=0",
    "sampling.prompts_per_iteration=2", "sampling.group_size=4", "sampling.max_new_tokens=6",
    "sampling.temperature=1.0", "train.iterations=1", "train.mini_batch_size=8", "train.warmup_steps=0",
    "eval.samples=2", "log.progress=false", "log.report_to=[]", "model.threads=1",
]


def tiny_config(run: Path, *extra: str) -> Config:
    return load_config(None, [*TINY, f"log.run_dir={run}", *extra])


def records(run: Path, kind: str) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == kind]


ROWS = [{"question": f"What is {a} + {b}?", "answer": str(a + b), "difficulty": a % 3, "tag": f"t{a}"}
        for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]


def test_issue_snippet_runs_with_real_rows(tmp_path):
    """The README's snippet, with the tiny model and one iteration (the embedded model: below)."""
    cfg = tiny_config(tmp_path / "run")

    def reward(prompts, completions, answer, **kwargs):  # TRL's reward-function signature
        return [1.0 if a in c else 0.0 for c, a in zip(completions, answer)]

    trainer = empg.Trainer(model="tiny-llama", train_dataset=ROWS[:3], eval_dataset=ROWS[3:],
                           reward_funcs=[reward], config=cfg)
    out = trainer.train()
    assert out["eval/problems"] == 1
    assert trainer.evaluate()["eval/problems"] == 1
    saved = trainer.save(tmp_path / "out")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(saved)
    for a, b in zip(model.parameters(), trainer.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert AutoTokenizer.from_pretrained(saved).get_vocab() == trainer.tokenizer.get_vocab()
    assert [r["iteration"] for r in records(tmp_path / "run", "train")] == [1]


def test_extra_columns_reach_the_reward(tmp_path):
    seen: list[dict[str, Any]] = []

    def spy(prompts, completions, completion_ids, **kwargs):
        seen.append({"prompts": prompts, "completions": completions, "ids": completion_ids, **kwargs})
        return [float(len(ids) % 2) for ids in completion_ids]

    trainer = empg.Trainer(model="tiny-llama", train_dataset=ROWS, eval_dataset=ROWS[:1],
                           reward_funcs=spy, config=tiny_config(tmp_path / "run"))
    trainer.train()
    n = 2 * 4  # prompts x K (the evaluations before and after score 1 and 1 x 2 completions)
    batch = next(b for b in seen if len(b["ids"]) == n)
    assert all(len(batch[k]) == n for k in ("prompts", "completions", "ids", "answer", "difficulty", "tag"))
    by_question = {r["question"]: r for r in ROWS}
    for prompt, answer, difficulty, tag, text, ids in zip(batch["prompts"], batch["answer"], batch["difficulty"],
                                                         batch["tag"], batch["completions"], batch["ids"]):
        row = next(r for q, r in by_question.items() if q in prompt)  # the row this completion came from
        assert (answer, difficulty, tag) == (row["answer"], row["difficulty"], row["tag"])
        assert trainer.tokenizer.decode(ids, skip_special_tokens=True).strip() in text or not ids
    assert "question" not in batch  # the prompt column is passed as `prompts`, as TRL does


def test_trl_reward_unchanged_on_conversational_rows_with_a_system_prompt(tmp_path):
    from trl.rewards import think_format_reward

    rows = [{"prompt": [{"role": "user", "content": f"Count to {n}."}], "n": n} for n in range(1, 5)]
    cfg = tiny_config(tmp_path / "run", "data.system_prompt=Think inside <think></think> first.")
    trainer = empg.Trainer(model="tiny-llama", train_dataset=rows, eval_dataset=rows[:2],
                           reward_funcs=[think_format_reward], config=cfg)
    text = trainer.tokenizer.decode(trainer.setup.train.prompt_ids[0])
    assert text.startswith("<|im_start|>system\nThink inside <think></think> first.<|im_end|>")
    assert text.endswith("<|im_start|>user\nCount to 1.<|im_end|>\n<|im_start|>assistant\n")
    trainer.train()
    assert records(tmp_path / "run", "train")[0]["reward/unscored"] == 0
    # TRL's function sees what TRL would pass for conversational rows: a list of one message.
    from empg.sampling import Rollout

    rolls = [Rollout(0, [1], [2], "<think>1</think> 1", "stop"), Rollout(0, [1], [2], "1", "stop")]
    assert list(trainer.setup.rewards(trainer.setup.train.batch([0], rolls)).total) == [1.0, 0.0]


def test_trl_reward_by_import_path_and_weights_from_yaml(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("reward:\n  funcs: [verifier, 'trl.rewards:think_format_reward', format]\n"
                      "  weights: [1.0, 0.5, 0.25]\n")
    cfg = load_config(config, [*TINY, f"log.run_dir={tmp_path / 'run'}", "data.template=chat"])
    trainer = empg.Trainer(config=cfg)
    assert trainer.setup.rewards.names == ["verifier", "think_format_reward", "format"]
    from empg.sampling import Rollout

    answer = trainer.setup.train.columns["answer"][0]
    texts = [f"<think>ok</think> \\boxed{{{answer}}}", f"\\boxed{{{answer}}}", "<think>x</think> no"]
    rolls = [Rollout(0, [1], [2], t, "stop") for t in texts]
    scores = trainer.setup.rewards(trainer.setup.train.batch([0], rolls))
    # documented: the weighted sum of the functions' rewards
    assert list(scores.total) == [1.0 + 0.5 + 0.25, 1.0, 0.5 + 0.25]
    trainer.train()
    row = records(tmp_path / "run", "train")[0]
    assert {"reward/verifier", "reward/think_format_reward", "reward/format"} <= set(row)


@pytest.mark.parametrize("bad, message", [
    (lambda completions, **kw: [1 / (len(c) - len(c)) for c in completions], r"'bad' raised ZeroDivisionError.*first failing: train_dataset row \d, completion 0"),
    (lambda completions, **kw: [1.0], r"'bad' returned 1 values for 8 completions"),
    (lambda completions, **kw: [float("nan")] * len(completions), r"'bad' returned nan for train_dataset row \d"),
])
def test_a_bad_reward_names_the_function_and_the_row(tmp_path, bad, message):
    bad.__name__ = "bad"
    trainer = empg.Trainer(model="tiny-llama", train_dataset=ROWS, reward_funcs=[bad],
                           config=tiny_config(tmp_path / "run"))
    with pytest.raises(RewardError, match=message):
        trainer.train()


def test_custom_column_names_from_a_file_and_from_config(tmp_path):
    file = tmp_path / "my.jsonl"
    file.write_text("".join(json.dumps({"query": r["question"], "target": r["answer"]}) + "\n" for r in ROWS))
    cfg = tiny_config(tmp_path / "a", "data.question_field=query", "data.answer_field=target")
    trainer = empg.Trainer(train_dataset=str(file), eval_dataset=str(file), config=cfg)  # the verifier
    assert trainer.setup.train.columns["target"] == [r["answer"] for r in ROWS]
    trainer.train()
    assert records(tmp_path / "a", "eval")[-1]["eval/problems"] == 4
    cfg = tiny_config(tmp_path / "b", f"data.source={file}", "data.question_field=query",
                      "data.answer_field=target", "data.eval_limit=0")
    trainer = empg.Trainer(config=cfg)
    assert sorted(trainer.setup.train.columns["answer"]) == sorted(r["answer"] for r in ROWS)  # shuffled
    trainer.train()
    assert records(tmp_path / "b", "train")


def test_intermediate_evaluations_use_the_first_every_limit_problems(tmp_path):
    cfg = tiny_config(tmp_path, "train.iterations=3", "eval.every=1", "eval.every_limit=1", "eval.samples=0",
                      "eval.pass_k=[]")
    empg.Trainer(train_dataset=ROWS, eval_dataset=ROWS, config=cfg).train()
    got = [(r["iteration"], r["eval/problems"]) for r in records(tmp_path, "eval")]
    assert got == [(0, 1), (1, 1), (2, 1), (3, 4)]  # at the end: all of them


def test_the_verifier_needs_an_answer_column(tmp_path):
    rows = [{"question": "What is 1 + 1?", "solution": "2"}]
    with pytest.raises(empg.DataError, match=r"train_dataset row 1: no 'answer' column, needed by the verifier"):
        empg.Trainer(model="tiny-llama", train_dataset=rows, config=tiny_config(tmp_path / "run"))


def test_cli_and_trainer_give_identical_metrics(tmp_path):
    from empg.cli import train_main

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if not k.startswith(("time/", "tokens_per_s", "eval/seconds"))}
                for r in rows]

    args = [*TINY, "train.iterations=2", "train.lr=1e-3"]
    assert train_main([*args, f"log.run_dir={tmp_path / 'cli'}"]) == 0
    empg.Trainer(config=load_config(None, [*args, f"log.run_dir={tmp_path / 'api'}"])).train()
    cli = strip(records(tmp_path / "cli", "train") + records(tmp_path / "cli", "eval"))
    api = strip(records(tmp_path / "api", "train") + records(tmp_path / "api", "eval"))
    assert cli == api and len(cli) == 4
    # The same problems handed over as rows (every column kept) train identically.
    from empg.data import load_problems
    from empg.taskdata import problem_rows

    train, _ = load_problems("arith", split="train", limit=4, shuffle_seed=0)
    test, _ = load_problems("arith", split="test", limit=2, shuffle_seed=0)
    empg.Trainer(train_dataset=problem_rows(train), eval_dataset=problem_rows(test),
                 config=load_config(None, [*args, f"log.run_dir={tmp_path / 'rows'}"])).train()
    rows = strip(records(tmp_path / "rows", "train") + records(tmp_path / "rows", "eval"))
    assert rows == cli


def test_a_custom_reward_raises_the_probability_of_its_token(tmp_path):
    """A reward for completions that start with a chosen token (the model's second most likely
    first token on the training prompts) makes that token more likely, measured before and after."""
    pytest.importorskip("gguf")
    torch.set_num_threads(1)
    chosen: list[int] = []

    def starts_with_chosen(completion_ids, **kwargs):
        return [1.0 if ids[:1] == chosen else 0.0 for ids in completion_ids]

    cfg = load_config(None, [
        "data.limit=16", "data.eval_limit=1", "data.fewshot=0", "sampling.prompts_per_iteration=4",
        "sampling.group_size=8", "sampling.max_new_tokens=2", "sampling.temperature=1.0",
        "train.iterations=2", "train.lr=2e-5", "train.warmup_steps=0", "train.steps_per_epoch=1",
        "eval.before=false", "eval.greedy=false", "eval.samples=0", "eval.pass_k=[1]",
        "log.progress=false", "log.report_to=[]", "model.threads=1", f"log.run_dir={tmp_path / 'run'}"])
    trainer = empg.Trainer(model="smollm2-135m-instruct", reward_funcs=[starts_with_chosen], config=cfg)

    def first_token_probs() -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([torch.softmax(trainer.model(torch.tensor([ids])).logits[0, -1], -1)
                                for ids in trainer.setup.train.prompt_ids]).mean(0)

    before = first_token_probs()
    chosen.append(int(torch.topk(before, 2).indices[1]))
    trainer.train()
    after = first_token_probs()
    p0, p1 = float(before[chosen[0]]), float(after[chosen[0]])
    print(f"P(first token = {trainer.tokenizer.decode(chosen)!r}): {p0:.3f} -> {p1:.3f}")
    assert p1 > p0 + 0.1, (p0, p1)


def test_a_model_object_and_its_tokenizer(tmp_path):
    from empg.models import load_model, load_tokenizer

    model, tok = load_model("tiny-llama", seed=3), load_tokenizer("tiny-llama")
    trainer = empg.Trainer(model=model, processing_class=tok, train_dataset=ROWS, eval_dataset=ROWS[:1],
                           config=tiny_config(tmp_path / "run"))
    assert trainer.model is model and trainer.tokenizer is tok
    assert trainer.evaluate()["eval/problems"] == 1
