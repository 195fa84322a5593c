"""empg's verifier against math-verify (called as TRL's accuracy reward calls it) and a regex
baseline, side by side on the same labelled pairs:

    python benches/bench_verify.py            # writes benches/results/verify_records.json
    python benches/verify_report.py           # writes benches/results/verify.md from the records

1. The labelled corpus `tests/data/verify/corpus.jsonl` (real SmolLM2 completions, the official
   MATH500 and GSM8K solutions, hand-written outputs; labelled without empg, see
   `benches/verify_corpus.py`): accuracy, precision, recall and false-positive rate per category
   and per source, for empg (`verify_batch(..., style="auto")`), math-verify through TRL 1.16's
   `accuracy_reward` (the reference as given, and as `$reference$`), and the regex baseline
   (`benches/verify_graders.py`).
2. The near-miss set `tests/data/verify/near_miss.jsonl` (all wrong): false positives of each.
3. Throughput on the corpus on one thread, every grader timed alike through the call a user
   makes: one warm-up call first (untimed: it imports math-verify and TRL), then the best of 3
   passes over the same pairs (empg with EMPG_PARALLELISM=0, which runs the batch on the calling
   thread); empg also on all cores. The time per item of hostile inputs (empg, one thread).
4. The old synthetic corpus (labels by rewrite/perturb rules written alongside the verifier, kept
   for comparison and labelled synthetic): empg on all pairs, the peers on a random subset.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import empg  # noqa: E402
from _machine import machine_line  # noqa: E402
from verify_corpus_data import CORPUS_DIR, by_category, data_dir, gsm8k_final, last_boxed, read_jsonl  # noqa: E402
from verify_graders import regex_baseline, trl_math_verify  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RECORDS = REPO / "benches" / "results" / "verify_records.json"


def key(s: str) -> str:
    """A normalised string for choosing answers that really differ."""
    s = re.sub(r"\\(left|right|!|,|;|d?frac|t?frac|text|mbox)|\s|\$|\^\\circ|\^\{\\circ\}|[{}]", "", s)
    return re.sub(r"^[a-z]=", "", s)


def rewrite(ans: str, rng: random.Random) -> str:
    """An equivalent rewrite of a MATH answer (or the answer itself when no rule applies)."""
    m = re.fullmatch(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}", ans)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        b2 = b
        for p in (2, 5):
            while b2 % p == 0:
                b2 //= p
        if b2 == 1 and b and rng.random() < 0.5:
            return repr(a / b)
        return rng.choice([f"\\dfrac{{{a}}}{{{b}}}", f"{a}/{b}", f"\\frac{{{-a}}}{{{-b}}}"])
    if re.fullmatch(r"-?\d+", ans):
        n = int(ans)
        choice = rng.randrange(4)
        if choice == 0 and abs(n) >= 1000:
            return f"{n:,}"
        if choice == 1:
            return f"x = {n}"
        if choice == 2:
            return f"{n}\\text{{ units}}"
        return f"{n}.0"
    if re.fullmatch(r"-?\d+\^\\circ", ans):
        return ans.replace("^\\circ", "")
    if "," in ans and not re.search(r"[()\[\]\\{}]", ans) and not re.fullmatch(r"\d{1,3}(,\d{3})+", ans):
        parts = [p.strip() for p in ans.split(",")]
        return ", ".join(reversed(parts))
    if ans.startswith("(") and ans.endswith(")"):
        return "\\left" + ans[:-1] + "\\right)"
    rules = [
        (r"\\sqrt\{(\d)\}", r"\\sqrt\1"),  # \sqrt{2} -> \sqrt2
        (r"\^\{(\d)\}", r"^\1"),  # x^{2} -> x^2
        (r"(?<![\d ])\\frac\{([^{}]+)\}\{([^{}]+)\}", r"(\1)/(\2)"),  # \frac{a}{b} -> (a)/(b), not 2\frac14
        (r"\\frac", r"\\dfrac"),
        (r"\\pi", r"\\pi "),
        (r"(\d)([a-z])", r"\1 \\cdot \2"),  # 2x -> 2 \cdot x
    ]
    rng.shuffle(rules)
    for pat, rep in rules:
        out = re.sub(pat, rep, ans, count=1)
        if out != ans:
            return out
    return ans


def perturb(ans: str, others: list[str], rng: random.Random) -> str:
    """A wrong answer: a digit changed, a sign flipped, a fraction inverted, an interval's bracket
    changed, or another problem's (different) answer."""
    r = rng.random()
    m = re.fullmatch(r"\\[dt]?frac\{(\d+)\}\{(\d+)\}", ans)
    if m and m.group(1) != m.group(2) and r < 0.3:
        return f"\\frac{{{m.group(2)}}}{{{m.group(1)}}}"
    if re.fullmatch(r"[(\[].*,.*[)\]]", ans) and r < 0.3:
        return ("[" if ans[0] == "(" else "(") + ans[1:]
    if re.fullmatch(r"\d+(\.\d+)?|\\frac\{\d+\}\{\d+\}|\d*\\sqrt\{\d+\}", ans) and r < 0.45 and key(ans) not in ("0",):
        return "-" + ans
    digits = [i for i, c in enumerate(ans) if c.isdigit()]
    if digits and r < 0.8:
        i = rng.choice(digits)
        d = str((int(ans[i]) + rng.randrange(1, 9)) % 10)
        out = ans[:i] + d + ans[i + 1 :]
        if key(out) != key(ans) and not (d == "0" and (i == 0 or not ans[i - 1].isdigit())):
            return out
    while True:
        o = rng.choice(others)
        if key(o) != key(ans):
            return o


def build_pairs(d: Path, rng: random.Random) -> list[tuple[str, str, int, str]]:
    pairs: list[tuple[str, str, int, str]] = []
    math_rows = read_jsonl(d / "math" / "test.jsonl")
    answers = [last_boxed(r["solution"]) for r in math_rows]
    others = [a for a in answers if a]
    for i, (row, ans) in enumerate(zip(math_rows, answers)):
        if not ans:
            continue
        if i % 2 == 0:
            pairs.append((row["solution"], ans, 1, "math"))
        else:
            pairs.append((f"We simplify step by step.\nSo the final answer is $\\boxed{{{rewrite(ans, rng)}}}$.", ans, 1, "math"))
        wrong = perturb(ans, others, rng)
        pairs.append((f"Let me compute this.\nThe answer is $\\boxed{{{wrong}}}$.", ans, 0, "math"))
    for i, row in enumerate(read_jsonl(d / "gsm8k" / "test.jsonl")):
        final = gsm8k_final(row["answer"])
        n = int(final.replace(",", ""))
        fmt = [
            row["answer"],
            f"She pays 3 times.\nThe answer is ${n:,}.00.",
            f"In total {n} dollars.\n\\boxed{{{n:,}}}",
            f"**Answer:** {n} apples",
        ][i % 4]
        pairs.append((fmt, final, 1, "gsm8k"))
        wrong = n + rng.choice([-10, -1, 1, 2, 100])
        pairs.append((f"We add 12 and 5.\n#### {wrong}", final, 0, "gsm8k"))
    return pairs


def hostile_inputs() -> dict[str, str]:
    """Inputs built to make a verifier hang or crash."""
    return {
        "1 MB of digits": "9" * (1 << 20),
        "1 MB of prose with boxes": ("word \\boxed{1} " * 70_000)[: 1 << 20],
        "10^{10^{10}}": "10^{10^{10}}",
        "power tower x500": "10^{" * 500 + "}" * 500,
        "nesting 100k": "(" * 100_000 + "1" + ")" * 100_000,
        "unbalanced braces": "\\frac{" * 10_000,
        "1000! and 10^{1000}": "1000! + 10^{1000}",
        "60-item polynomial set": "\\{" + ",".join(f"x^{{{i}}}+y" for i in range(60)) + "\\}",
        "60-item set, reversed": "\\{" + ",".join(f"x^{{{i}}}+y" for i in reversed(range(60))) + "\\}",
        "long sum of variables": "+".join(f"x_{{{i}}}" for i in range(400)),
        "60 big fractions, reversed": "\\{"
        + ",".join(f"\\frac{{{10**9 + 7 + i}}}{{{998244353 + 2 * i}}}x^{{{i % 7}}}" for i in reversed(range(60)))
        + "\\}",
    }


def item_ms() -> list[tuple[str, float, float]]:
    """Per-item time of each hostile input verified alone on one thread (3 items per run: the
    response, the response boxed, and one equivalence check), median and slowest of 7 runs."""
    out = []
    inputs = hostile_inputs()
    for name, text in inputs.items():
        if "reversed" in name:  # the same set in the other order: every item is compared
            ref = "\\{" + ",".join(reversed(text[2:-2].split(","))) + "\\}"
        else:
            ref = text[:-1] if len(text) < 5000 else "1"
        responses, refs = [text, f"\\boxed{{{text}}}"], [ref, text]
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            empg.verify_batch(responses, refs, style="auto")
            empg.is_equivalent(text, ref)
            runs.append((time.perf_counter() - t) / 3 * 1e3)
        runs.sort()
        out.append((name, runs[len(runs) // 2], runs[-1]))
    return out


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


PEERS = {
    "math-verify (TRL accuracy_reward)": lambda c, r: trl_math_verify(c, r),
    "math-verify (TRL accuracy_reward, reference as $ref$)": lambda c, r: trl_math_verify(c, r, dollars=True),
    "regex baseline": regex_baseline,
}


def run_peer(fn, completions, refs, passes: int = 1) -> tuple[float, list[bool]]:
    """The best time of `passes` passes, after one untimed warm-up call (imports, compiled
    patterns), and the verdicts."""
    fn(completions[0], refs[0])
    return min((timed(lambda: [bool(fn(c, r)) for c, r in zip(completions, refs)]) for _ in range(passes)),
               key=lambda r: r[0])


def empg_best_of_3(completions, refs) -> tuple[float, list[bool]]:
    empg.verify_batch(completions[:200], refs[:200])  # warm-up
    t, out = min((timed(lambda: empg.verify_batch(completions, refs, style="auto")) for _ in range(3)),
                 key=lambda r: r[0])
    return t, [bool(x) for x in out]


def stats_record(rows, preds) -> dict:
    return {key: {k: c.as_dict() for k, c in by_category(rows, preds, key=key).items()}
            for key in ("category", "source")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(RECORDS))
    ap.add_argument("--synthetic-peer-limit", type=int, default=1000,
                    help="pairs of the synthetic corpus given to the peers (empg sees all)")
    args = ap.parse_args()
    d = data_dir()
    if not (d / "math" / "test.jsonl").exists():
        sys.exit(f"shared data not found at {d} (set EMPG_DATA_DIR)")
    rows = read_jsonl(CORPUS_DIR / "corpus.jsonl")
    near = read_jsonl(CORPUS_DIR / "near_miss.jsonl")
    comps, refs = [r["completion"] for r in rows], [r["reference"] for r in rows]
    rec: dict = {"machine": machine_line(), "nproc": os.cpu_count(), "corpus_rows": len(rows),
                 "timing": "one untimed warm-up call, then the best of 3 passes, for every grader",
                 "load_average_start": os.getloadavg()[0],
                 "near_miss_rows": len(near), "graders": {}}

    os.environ["EMPG_PARALLELISM"] = "0"
    t1, ours = empg_best_of_3(comps, refs)
    worst = item_ms()
    near_ours = [bool(x) for x in empg.verify_batch([r["completion"] for r in near], [r["reference"] for r in near])]
    del os.environ["EMPG_PARALLELISM"]
    tn, ours_par = empg_best_of_3(comps, refs)
    assert ours == ours_par, "parallel and sequential results differ"
    rec["graders"]["empg"] = {"seconds_1_thread": t1, "seconds_all_threads": tn, "threads": empg.parallelism(),
                              "stats": stats_record(rows, ours),
                              "near_miss_fp": [r["id"] for r, p in zip(near, near_ours) if p]}
    print(f"empg: {len(rows) / t1:,.0f} pairs/s on 1 thread", flush=True)
    for name, fn in PEERS.items():
        t, preds = run_peer(fn, comps, refs, passes=3)
        _, near_preds = run_peer(fn, [r["completion"] for r in near], [r["reference"] for r in near])
        rec["graders"][name] = {"seconds_1_thread": t, "stats": stats_record(rows, preds),
                                "near_miss_fp": [r["id"] for r, p in zip(near, near_preds) if p]}
        print(f"{name}: {len(rows) / t:,.1f} pairs/s", flush=True)
    rec["hostile_ms"] = [{"input": n, "median": m, "max": x} for n, m, x in worst]

    pairs = build_pairs(d, random.Random(0))
    syn = [{"completion": p[0], "reference": p[1], "label": p[2], "source": p[3], "category": p[3]} for p in pairs]
    _, syn_ours = empg_best_of_3([r["completion"] for r in syn], [r["reference"] for r in syn])
    sub = random.Random(1).sample(range(len(syn)), min(args.synthetic_peer_limit, len(syn)))
    rec["synthetic"] = {"pairs": len(syn), "peer_subset": len(sub),
                        "empg_all": stats_record(syn, syn_ours)["source"],
                        "subset": {"empg": stats_record([syn[i] for i in sub], [syn_ours[i] for i in sub])["source"]}}
    for name, fn in PEERS.items():
        _, preds = run_peer(fn, [syn[i]["completion"] for i in sub], [syn[i]["reference"] for i in sub])
        rec["synthetic"]["subset"][name] = stats_record([syn[i] for i in sub], preds)["source"]
    rec["load_average"] = os.getloadavg()[0]
    Path(args.out).write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} (load average {rec['load_average']:.1f})")


if __name__ == "__main__":
    main()
