"""Dataset rows to prompts (empg.taskdata, empg.prompts): BOS exactly when the tokenizer expects one,
on a Llama-style tokenizer and on SmolLM2's; max_prompt_length's two policies; instruction and
few-shot examples from files; a system prompt in plain and chat prompts."""

from __future__ import annotations

import json

import pytest

from empg.exceptions import DataError
from empg.prompts import adds_bos, encode, get_template, load_fewshot
from empg.taskdata import build_split, read_dataset


@pytest.fixture(scope="module")
def llama_tokenizer():
    """A Llama-style tokenizer (transformers' LlamaTokenizer: add_bos_token=True, a chat template
    that writes {{ bos_token }} itself), built from a small vocabulary: no download."""
    from transformers import LlamaTokenizer

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate("▁abcdefghijklmnopqrstuvwxyz?:QA[]0123456789+")}}
    tok = LlamaTokenizer(vocab=vocab, merges=[], add_bos_token=True)
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n"
                         "{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}")
    return tok


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    pytest.importorskip("gguf")
    from empg.models import load_tokenizer

    return load_tokenizer("tiny-llama")  # SmolLM2's tokenizer, read from the embedded GGUF


def test_bos_on_a_llama_style_tokenizer(llama_tokenizer):
    tok = llama_tokenizer
    assert adds_bos(tok)
    plain = get_template("plain", task="arith", instruction="")
    [ids] = encode(tok, [plain.render("what is 1+2?")], templated=False)
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert ids[1:] == tok(plain.render("what is 1+2?"), add_special_tokens=False)["input_ids"]
    chat = get_template("chat", task="arith", instruction="")
    split = build_split([{"question": "what is 1+2?"}], where="t", template=chat, tokenizer=tok)
    assert split.prompt_ids[0][0] == tok.bos_token_id and split.prompt_ids[0].count(tok.bos_token_id) == 1
    split = build_split([{"question": "what is 1+2?"}], where="t", template=plain, tokenizer=tok)
    assert split.prompt_ids[0] == ids


def test_no_bos_on_smollm2(smollm2_tokenizer):
    tok = smollm2_tokenizer
    assert tok.bos_token_id is not None and not adds_bos(tok)  # add_bos_token is off for SmolLM2
    for name in ("plain", "chat"):
        split = build_split([{"question": "What is 1 + 2?"}], where="t",
                            template=get_template(name, task="arith"), tokenizer=tok)
        text = get_template(name, task="arith").render("What is 1 + 2?", tok)
        assert split.prompt_ids[0] == tok(text, add_special_tokens=False)["input_ids"]
        assert split.prompt_ids[0][0] != tok.bos_token_id or text.startswith(tok.bos_token)


def test_max_prompt_length_errors_or_truncates_from_the_left(smollm2_tokenizer):
    tok = smollm2_tokenizer
    tpl = get_template("plain", task="arith")
    rows = [{"question": "What is 1 + 2?"}, {"question": "What is 1 + 2? " * 20, "id": "long"}]
    full = build_split(rows, where="train_dataset", template=tpl, tokenizer=tok)
    limit = len(full.prompt_ids[0]) + 1
    with pytest.raises(DataError, match=rf"train_dataset row 2 \(id long\): the prompt has "
                                        rf"{len(full.prompt_ids[1])} tokens, more than data.max_prompt_length={limit}"):
        build_split(rows, where="train_dataset", template=tpl, tokenizer=tok, max_prompt_length=limit)
    cut = build_split(rows, where="train_dataset", template=tpl, tokenizer=tok, max_prompt_length=limit,
                      truncation="left")
    assert cut.prompt_ids[0] == full.prompt_ids[0]
    assert cut.prompt_ids[1] == full.prompt_ids[1][-limit:]


def test_system_prompt_instruction_and_fewshot_from_files(tmp_path, smollm2_tokenizer):
    from empg.build import _template
    from empg.config import Config

    shots = tmp_path / "shots.jsonl"
    shots.write_text(json.dumps({"question": "What is 2 + 2?", "answer": "2 + 2 = 4. \\boxed{4}"}) + "\n"
                     + json.dumps({"question": "What is 3 + 3?", "answer": "\\boxed{6}"}) + "\n")
    (tmp_path / "instr.txt").write_text("Answer in a box.\n")
    cfg = Config()
    cfg.data.fewshot, cfg.data.fewshot_file = 1, str(shots)
    cfg.data.instruction_file = str(tmp_path / "instr.txt")
    cfg.data.system_prompt = "You are careful."
    tpl = _template(cfg, builtin_rows=False)
    assert tpl.render("What is 5 + 5?") == ("You are careful.\n\nAnswer in a box.\n\nQuestion: What is 2 + 2?\n"
                                            "Answer: 2 + 2 = 4. \\boxed{4}\n\nQuestion: What is 5 + 5?\nAnswer:")
    cfg.data.template = "chat"
    text = _template(cfg, builtin_rows=False).render("What is 5 + 5?", smollm2_tokenizer)
    assert text.startswith("<|im_start|>system\nYou are careful.<|im_end|>\n<|im_start|>user\nAnswer in a box.")
    assert load_fewshot(shots)[1] == ("What is 3 + 3?", "\\boxed{6}")
    shots.write_text('{"question": "x"}\n')
    with pytest.raises(DataError, match=r"shots.jsonl, row 1: expected text fields 'question' and 'answer'"):
        load_fewshot(shots)


def test_rows_from_files_and_lists_name_the_bad_row(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"question": "a", "answer": "1"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"d.jsonl, row 2: expected a JSON object"):
        read_dataset(str(f), "train_dataset")
    with pytest.raises(DataError, match=r"eval_dataset row 2: expected a mapping"):
        read_dataset([{"question": "a"}, "b"], "eval_dataset")
    tpl = get_template("plain", task="arith")
    with pytest.raises(DataError, match=r"train_dataset row 1: no prompt in column 'query'"):
        build_split([{"question": "a"}], where="train_dataset", template=tpl, tokenizer=None, question_field="query")


def test_a_datasets_dataset_and_a_hub_name(monkeypatch):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([{"question": "a", "answer": "1", "n": 3}])
    assert read_dataset(ds, "train_dataset") == [{"question": "a", "answer": "1", "n": 3}]
    from empg.config import load_config
    from empg.data import load_problems

    assert load_config(None, ["data.source=nobody/no-such-dataset"]).data.source == "nobody/no-such-dataset"
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"loading 'nobody/no-such-dataset' from the Hugging Face hub failed"):
        load_problems("nobody/no-such-dataset", split="train", question_field="q")
