"""Shared data helpers of the verifier benchmark and its corpus scripts (no empg imports: the
corpus is built and labelled independently of empg's verifier)."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS_DIR = REPO / "tests" / "data" / "verify"


def data_dir() -> Path:
    return Path(os.environ.get("EMPG_DATA_DIR", REPO.parent / "shared" / "data"))


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} of a solution (independent of empg's extractor)."""
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    depth, j = 0, i + len("\\boxed")
    for k in range(j, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[j + 1 : k]
    return None


def gsm8k_final(answer: str) -> str:
    """GSM8K's final answer: what follows the last `####`."""
    return answer.rsplit("####", 1)[1].strip()


class Counts:
    """Confusion counts of one category: a prediction of equivalence against the label."""

    def __init__(self) -> None:
        self.tp = self.fp = self.tn = self.fn = 0

    def add(self, pred: bool, label: bool) -> None:
        if pred and label:
            self.tp += 1
        elif pred:
            self.fp += 1
        elif label:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else float("nan")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else float("nan")

    def as_dict(self) -> dict:
        return {"n": self.n, "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}


def by_category(rows: list[dict], preds: list[bool], key: str = "category") -> dict[str, Counts]:
    """Counts per value of `key` (and `"all"`)."""
    out: dict[str, Counts] = {"all": Counts()}
    for r, p in zip(rows, preds):
        out.setdefault(r[key], Counts()).add(bool(p), bool(r["label"]))
        out["all"].add(bool(p), bool(r["label"]))
    return out


def table(stats: dict[str, Counts]) -> str:
    """A markdown table of accuracy, precision, recall and false-positive rate per category."""
    lines = ["| category | rows | accuracy | precision | recall | FPR |", "|---|---:|---:|---:|---:|---:|"]
    for cat, c in sorted(stats.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        lines.append(f"| {cat} | {c.n} | {pct(c.accuracy)} | {pct(c.precision)} | {pct(c.recall)} | {pct(c.fpr)} |")
    return "\n".join(lines)


def pct(x: float) -> str:
    """A rate as a percentage, `-` when undefined (no rows of that kind)."""
    return "-" if x != x else f"{x:.2%}"
