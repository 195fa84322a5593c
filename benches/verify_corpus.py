"""Build and label the verifier's corpus, independently of empg:

    python benches/verify_corpus.py      # writes tests/data/verify/{corpus,near_miss}.jsonl

Rows of `corpus.jsonl`: `{"id", "source", "category", "completion", "reference", "label",
"label_by", "reason"}` (compact). Sources and how each row is labelled:

* `math500-official`: each MATH500 solution against its own `answer` field (1) and against
  another problem's answer (0), by construction; the other answer is taken only when neither
  grader below finds it equal to the problem's own answer.
* `gsm8k-official`: GSM8K test solutions (the `answer` text) against their own `#### N` (1) and
  another problem's different number (0), by construction.
* `handwritten`: `benches/verify_handwritten.py`, labelled by hand.
* `smollm2-sampled`: completions of the embedded SmolLM2-135M-Instruct
  (`tests/data/verify/sampled_raw.jsonl`, from `benches/verify_sample.py`) against the problem's
  reference, labelled by the agreement of two independent graders: math-verify called exactly as
  TRL's `accuracy_reward` calls it (the reference given as `$reference$`), and a reimplementation of the Hendrycks MATH `is_equiv`
  (`benches/hendrycks_equiv.py`). Every disagreement is settled by a person reading the row; the
  decision and its reason are in `tests/data/verify/settled.json` and copied into the row. The
  script stops, listing them, when a disagreement has no decision.

`near_miss.jsonl`: `{"id", "category", "reference", "candidate", "completion"}`, wrong answers by
construction (label 0): mixed numbers against their products, sign flips, off-by-one, swapped
interval ends, wrong units, a correct number inside a wrong expression, truncated answers.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hendrycks_equiv import grade as hendrycks_grade  # noqa: E402
from hendrycks_equiv import is_equiv, strip_string  # noqa: E402
from verify_corpus_data import CORPUS_DIR, data_dir, gsm8k_final, read_jsonl, write_jsonl  # noqa: E402
from verify_graders import trl_math_verify  # noqa: E402
from verify_handwritten import ANSWERS, WHOLE, WRAPPERS  # noqa: E402

SETTLED = CORPUS_DIR / "settled.json"


def row_id(completion: str, reference: str) -> str:
    return hashlib.sha1(f"{completion}\x00{reference}".encode()).hexdigest()[:12]


def row(source: str, category: str, completion: str, reference: str, label: bool, by: str,
        reason: str = "") -> dict:
    r = {"id": row_id(completion, reference), "source": source, "category": category,
         "completion": completion, "reference": reference, "label": int(label), "label_by": by}
    if reason:
        r["reason"] = reason
    return r


def same_answer(a: str, b: str) -> bool:
    """Whether either independent grader finds two answers equal (used to avoid accidental
    equal pairings)."""
    return is_equiv(a, b) or trl_math_verify(f"$\\boxed{{{b}}}$", a, dollars=True)


def official_math(rng: random.Random) -> list[dict]:
    rows = read_jsonl(data_dir() / "math" / "test500.jsonl")
    out = []
    for i, r in enumerate(rows):
        out.append(row("math500-official", "official-own", r["solution"], r["answer"], True, "construction"))
        for _ in range(20):
            other = rows[rng.randrange(len(rows))]["answer"]
            if other != r["answer"] and not same_answer(r["answer"], other):
                out.append(row("math500-official", "official-other", r["solution"], other, False,
                               "construction"))
                break
    return out


def official_gsm8k(rng: random.Random, n: int = 300) -> list[dict]:
    rows = rng.sample(read_jsonl(data_dir() / "gsm8k" / "test.jsonl"), n)
    finals = [gsm8k_final(r["answer"]) for r in rows]
    out = []
    for r, final in zip(rows, finals):
        out.append(row("gsm8k-official", "official-own", r["answer"], final, True, "construction"))
        while True:
            other = rng.choice(finals)
            if float(other.replace(",", "")) != float(final.replace(",", "")):
                out.append(row("gsm8k-official", "official-other", r["answer"], other, False, "construction"))
                break
    return out


def handwritten() -> list[dict]:
    out = []
    for category, ref, good, bad in ANSWERS:
        for answers, label in ((good, True), (bad, False)):
            for a in answers:
                for w in WRAPPERS:
                    out.append(row("handwritten", category, w.format(a=a), ref, label, "hand"))
    out += [row("handwritten", c, comp, ref, label, "hand") for c, comp, ref, label in WHOLE]
    return out


def sampled() -> list[dict]:
    path = CORPUS_DIR / "sampled_raw.jsonl"
    settled = json.loads(SETTLED.read_text(encoding="utf-8")) if SETTLED.exists() else {}
    out, open_cases = [], []
    for r in read_jsonl(path):
        comp, ref = r["completion"], r["reference"]
        mv, hd = trl_math_verify(comp, ref, dollars=True), hendrycks_grade(comp, ref)
        cat = f"sampled-{r['source']}-{r['style']}"
        rid = row_id(comp, ref)
        if mv == hd:
            out.append(row("smollm2-sampled", cat, comp, ref, mv, "agreement"))
        elif rid in settled:
            s = settled[rid]
            out.append(row("smollm2-sampled", cat, comp, ref, bool(s["label"]), "settled", s["reason"]))
        else:
            open_cases.append({"id": rid, "math_verify": mv, "hendrycks": hd, "reference": ref,
                               "completion_tail": comp[-300:]})
    if open_cases:
        Path("/tmp/verify_open_cases.json").write_text(json.dumps(open_cases, indent=1, ensure_ascii=False))
        sys.exit(f"{len(open_cases)} disagreements without a decision in {SETTLED}: "
                 "see /tmp/verify_open_cases.json")
    return out


def near_misses(rng: random.Random) -> list[dict]:
    math = [r["answer"] for r in read_jsonl(data_dir() / "math" / "test500.jsonl")]
    gsm = [gsm8k_final(r["answer"]).replace(",", "") for r in read_jsonl(data_dir() / "gsm8k" / "test.jsonl")]
    cases: list[tuple[str, str, str]] = []
    for _ in range(40):  # mixed numbers against their products, and products against mixed numbers
        a, c = rng.randrange(2, 10), rng.randrange(3, 13)
        b = rng.randrange(1, c)
        prod, mixed = Fraction(a * b, c), Fraction(a * c + b, c)
        if prod != mixed:
            cases.append(("mixed-vs-product", f"\\frac{{{prod.numerator}}}{{{prod.denominator}}}", f"{a} {b}/{c}"))
            cases.append(("mixed-vs-product", f"\\frac{{{mixed.numerator}}}{{{mixed.denominator}}}", f"{a} \\cdot \\frac{{{b}}}{{{c}}}"))
    ints = [x for x in math if re.fullmatch(r"-?\d+", x)] + rng.sample(gsm, 60)
    for x in rng.sample(ints, 60):
        n = int(x)
        cases.append(("off-by-one", x, str(n + rng.choice([-1, 1]))))
        if n != 0:
            cases.append(("sign-flip", x, str(-n)))
        if n not in (0, 1):
            wrong = rng.choice([f"x + {n}", f"{n}x", f"\\sqrt{{{n}}}" if n > 1 else f"{n}^2", f"{n}^2",
                                f"x + 1 = {n}", f"2x = {n}"])
            cases.append(("number-in-wrong-expression", x, wrong))
        if abs(n) >= 10:
            cases.append(("truncated", x, x[:-1]))
    for x in math:
        if re.fullmatch(r"-?\\[dt]?frac\{\d+\}\{\d+\}|-?\d+\.\d+|\d*\\sqrt\{\d+\}", x) and "0" != x:
            cases.append(("sign-flip", x, x[1:] if x.startswith("-") else "-" + x))
        m = re.fullmatch(r"\\[dt]?frac\{(\d+)\}\{(\d+)\}", x)
        if m:
            cases.append(("truncated", x, f"\\frac{{{m.group(1)}}}{{"))
        iv = re.fullmatch(r"([(\[])([^,]+),([^,]+)([)\]])", x.replace("\\left", "").replace("\\right", ""))
        if iv and iv.group(2).strip() != iv.group(3).strip():
            o, lo, hi, c = iv.groups()
            cases.append(("swapped-interval", x, f"{o}{hi},{lo}{c}"))
            if o != c.replace(")", "(").replace("]", "["):
                cases.append(("swapped-interval", x, f"{'[' if o == '(' else '('}{lo},{hi}{']' if c == ')' else ')'}"))
            cases.append(("truncated", x, f"{o}{lo},"))
    units = [("cm", "m"), ("inches", "feet"), ("hours", "minutes"), ("cm^2", "cm"), ("meters", "kilometers"),
             ("dollars", "cents"), ("square feet", "feet"), ("grams", "kilograms")]
    for n in rng.sample(range(2, 500), 24):
        u, v = units[n % len(units)]
        ru = f"\\text{{ {u[:-2]}}}^2" if u.endswith("^2") else f"\\text{{ {u}}}"
        cases.append(("wrong-units", f"{n}{ru}", f"{n}\\text{{ {v}}}."))
    out, seen = [], set()
    for cat, ref, cand in cases:
        # (Hendrycks' normaliser drops units, so wrong units are told apart by construction only.)
        if (ref, cand) in seen or (cat != "wrong-units" and strip_string(ref) == strip_string(cand)):
            continue
        seen.add((ref, cand))
        comp = (f"So the answer is $\\boxed{{{cand}" if cat == "truncated"
                else f"Putting it together, the answer is $\\boxed{{{cand}}}$.")
        out.append({"id": row_id(comp, ref), "category": cat, "reference": ref, "candidate": cand,
                    "completion": comp})
    return out


def main() -> None:
    rng = random.Random(0)
    built = official_math(rng) + official_gsm8k(rng) + handwritten() + sampled()
    # A repeated (completion, reference) pair (e.g. two empty samples of one prompt) is kept once.
    seen: set[str] = set()
    rows = [r for r in built if not (r["id"] in seen or seen.add(r["id"]))]
    write_jsonl(CORPUS_DIR / "corpus.jsonl", rows)
    near = near_misses(random.Random(1))
    write_jsonl(CORPUS_DIR / "near_miss.jsonl", near)
    by: dict[str, int] = {}
    for r in rows:
        by[r["source"]] = by.get(r["source"], 0) + 1
    print(f"{len(rows)} corpus rows {by}; {len(near)} near misses")


if __name__ == "__main__":
    main()
