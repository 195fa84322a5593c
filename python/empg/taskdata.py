"""A split of a task as the loop uses it: rendered prompts, their token ids, and the dataset columns
the reward functions receive.

Rows come from ``config.data`` (GSM8K, MATH, the arithmetic task, a file or a hub dataset, through
:func:`empg.data.load_problems`: columns ``question``, ``answer``, ``id``, ``level``, ``subject``,
``source``) or from the caller (:class:`empg.Trainer`'s ``train_dataset``/``eval_dataset``: a
``datasets.Dataset``, a list of dicts, or a jsonl/json/parquet path; every column kept). The prompt
is the ``data.question_field`` column (default: the first of ``prompt``, ``question``, ``problem``):
text goes through the prompt template (instruction, few-shot examples, system prompt), a list of
``{"role", "content"}`` messages through the tokenizer's chat template. As in TRL, a row is
*conversational* when its prompt is messages — given, or made by ``data.template=chat`` — and then
the reward functions get its prompt as those messages and each completion as
``[{"role": "assistant", "content": text}]``; otherwise both are text. Prompts longer than
``data.max_prompt_length`` tokens are an error naming the row, or lose their first tokens
(``data.truncation=left``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from empg.exceptions import DataError
from empg.problem import Problem
from empg.prompts import PromptTemplate, encode, render_messages
from empg.sampling import Rollout
from empg.scoring import Batch

PROMPT_COLUMNS = ("prompt", "question", "problem")


@dataclass
class Split:
    """One split, row by row (see the module docstring)."""

    prompts: list[Any]  # what the reward functions get as ``prompts``: the text, or the messages
    prompt_ids: list[list[int]]
    conversational: list[bool]
    columns: dict[str, list[Any]]  # every other column
    rows: list[str]  # a label per row for error messages

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def batch(self, rows: Sequence[int], rollouts: Sequence[Rollout]) -> Batch:
        """The reward functions' view of ``rollouts`` sampled from the prompts of ``rows`` (a
        rollout's ``group`` indexes ``rows``)."""
        idx = [rows[r.group] for r in rollouts]
        return Batch(
            prompts=[self.prompts[i] for i in idx],
            completions=[[{"role": "assistant", "content": r.text}] if self.conversational[i] else r.text
                         for r, i in zip(rollouts, idx)],
            completion_ids=[r.completion_ids for r in rollouts],  # the sampler's own lists, not copied
            columns={k: [v[i] for i in idx] for k, v in self.columns.items()},
            rows=[self.rows[i] for i in idx])

    def require(self, column: str, why: str) -> None:
        """A :class:`DataError` naming the first row without ``column``."""
        values = self.columns.get(column)
        for i in range(len(self)):
            if values is None or values[i] is None:
                raise DataError(f"{self.rows[i]}: no {column!r} column, needed by {why}")


def problem_rows(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    return [{"question": p.question, "answer": p.answer, "id": p.id, "level": p.level,
             "subject": p.subject, "source": p.source} for p in problems]


def read_dataset(data: Any, where: str) -> list[dict[str, Any]]:
    """Rows of a ``datasets.Dataset``, a sequence of mappings, or a jsonl/json/parquet path."""
    if isinstance(data, (str, Path)):
        from empg.datafiles import read_rows

        rows = read_rows(Path(data).expanduser())
        out = []
        for no, row in rows.items:
            if not isinstance(row, Mapping):
                reason = getattr(row, "reason", f"expected a JSON object, got {type(row).__name__}")
                raise DataError(f"{rows.where}, row {no}: {reason}")
            out.append(dict(row))
        return out
    out = []
    for i, row in enumerate(data):
        if not isinstance(row, Mapping):
            raise DataError(f"{where} row {i + 1}: expected a mapping of columns, got {type(row).__name__}")
        out.append(dict(row))
    if not out:
        raise DataError(f"{where}: no rows")
    return out


def build_split(rows: Sequence[Mapping[str, Any]], *, where: str, template: PromptTemplate, tokenizer: Any,
                question_field: str = "", max_prompt_length: int = 0, truncation: str = "error") -> Split:
    """Render and tokenize every row's prompt; keep the other columns."""
    labels = [f"{where} row {i + 1}" + (f" (id {r['id']})" if r.get("id") is not None else "")
              for i, r in enumerate(rows)]
    field = question_field or next((c for c in PROMPT_COLUMNS if rows and c in rows[0]), PROMPT_COLUMNS[0])
    texts: list[str] = []
    prompts: list[Any] = []
    chat: list[bool] = []
    for row, label in zip(rows, labels):
        q = row.get(field)
        if isinstance(q, str) and q.strip():
            text = template.render(q.strip(), tokenizer)
            prompts.append(template.messages(q.strip()) if template.name == "chat" else text)
            chat.append(template.name == "chat")
        elif isinstance(q, (list, tuple)) and q:
            text = render_messages(q, tokenizer, system=template.system, where=label)
            prompts.append(list(q))
            chat.append(True)
        else:
            cols = sorted(row)
            raise DataError(f"{label}: no prompt in column {field!r} (text or a list of messages; "
                            f"columns: {cols}; set data.question_field)")
        texts.append(text)
    templated = chat  # a chat template's output: it decides about BOS
    ids: list[list[int]] = [[] for _ in texts]
    for flag in (False, True):
        pick = [i for i, t in enumerate(templated) if t == flag]
        for i, x in zip(pick, encode(tokenizer, [texts[i] for i in pick], templated=flag) if pick else []):
            ids[i] = x
    if max_prompt_length:
        for i, x in enumerate(ids):
            if len(x) > max_prompt_length:
                if truncation != "left":
                    raise DataError(f"{labels[i]}: the prompt has {len(x)} tokens, more than "
                                    f"data.max_prompt_length={max_prompt_length} (data.truncation=left "
                                    "keeps its last tokens instead)")
                ids[i] = x[-max_prompt_length:]
    names = list(dict.fromkeys(k for r in rows for k in r if k != field))
    columns = {k: [r.get(k) for r in rows] for k in names}
    return Split(prompts=prompts, prompt_ids=ids, conversational=chat, columns=columns, rows=labels)


__all__ = ["PROMPT_COLUMNS", "Split", "build_split", "problem_rows", "read_dataset"]
