"""empg's Rust verifier vs math-verify 0.9.0 on the same labelled (response, reference) pairs.

    python benches/bench_verify.py [--out benches/results/verify.md] [--mv-limit N]

Pairs are built from the shared data, labelled by construction:

* MATH (test.jsonl, 5,000 problems; the reference is the official solution's last boxed answer):
  per problem one correct response (alternately the official solution, or a short rationale
  ending in an equivalent rewrite of the answer: `\\dfrac`, `a/b`, decimals of simple fractions,
  signs moved, thousands commas, `x = ...`, units, reordered solution lists, degree signs,
  `\\left( \\right)`, `\\sqrt2`, `x^2`, `(a)/(b)`, `2 \\cdot x`) and one wrong one (a digit
  changed, a sign flipped, a fraction inverted, an interval's bracket changed, or another
  problem's answer whose normalised string differs).
* GSM8K (test.jsonl, 1,319 problems; reference the `#### N` number): per problem the official
  solution or a reformatted correct answer (`$1,234.00`, `\\boxed{}`, "The answer is N dollars"),
  and a wrong number.

Both verifiers see every pair (math-verify: `verify(parse("$" + reference + "$"), parse(response))`;
empg: `verify_batch(responses, references, style="auto")`). Prints throughput on one thread (empg
with EMPG_PARALLELISM=0) and on all cores (empg), the speed ratio (target >= 300x), each one's
accuracy against the labels, their agreement, and a sample of disagreements with who is right.
With `--mv-limit N`, math-verify runs on a random subset of N pairs only, and every comparison
(speed, accuracy, agreement) is made on that same subset.
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

REPO = Path(__file__).resolve().parent.parent


NOTE = (
    "Labels are by construction (a wrong answer is checked to differ from the reference by a normalised "
    "string), and both verifiers see the same pairs. The machine is shared with other jobs (see the load "
    "average below), so throughput varies by about ±30% between runs."
)


def data_dir() -> Path:
    return Path(os.environ.get("EMPG_DATA_DIR", REPO.parent / "shared" / "data"))


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def last_boxed(text: str) -> str | None:
    """The last \\boxed{...} of a solution (independent of empg's extractor)."""
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    depth, j = 0, i + len("\\boxed")
    for k in range(j, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[j + 1 : k]
    return None


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
        final = row["answer"].rsplit("####", 1)[1].strip()
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


def run_math_verify(pairs):
    from math_verify import parse, verify

    out = []
    for resp, ref, _, _ in pairs:
        try:
            out.append(bool(verify(parse(f"${ref}$"), parse(resp))))
        except Exception:  # noqa: BLE001 - a crash is a non-match for the peer too
            out.append(False)
    return out


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="also write the result table (markdown) here")
    ap.add_argument("--mv-limit", type=int, default=0, help="run math-verify on a random subset of N pairs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d = data_dir()
    if not (d / "math" / "test.jsonl").exists():
        sys.exit(f"shared data not found at {d} (set EMPG_DATA_DIR)")
    rng = random.Random(args.seed)
    pairs = build_pairs(d, rng)
    if args.mv_limit:
        pairs = rng.sample(pairs, min(args.mv_limit, len(pairs)))
    responses = [p[0] for p in pairs]
    refs = [p[1] for p in pairs]
    labels = [p[2] for p in pairs]
    n = len(pairs)
    print(f"{n} pairs ({sum(labels)} correct, {n - sum(labels)} wrong)")

    os.environ["EMPG_PARALLELISM"] = "0"
    empg.verify_batch(responses[:200], refs[:200])  # warm-up
    t1, ours = min((timed(lambda: empg.verify_batch(responses, refs, style="auto")) for _ in range(3)), key=lambda r: r[0])
    worst = item_ms()
    del os.environ["EMPG_PARALLELISM"]
    tn, ours_par = min((timed(lambda: empg.verify_batch(responses, refs, style="auto")) for _ in range(3)), key=lambda r: r[0])
    assert (ours == ours_par).all(), "parallel and sequential results differ"
    ours = [bool(x) for x in ours]
    print(f"empg 1 thread: {n / t1:,.0f} pairs/s; {empg.parallelism()} threads: {n / tn:,.0f} pairs/s")

    tm, theirs = timed(lambda: run_math_verify(pairs))
    print(f"math-verify 1 thread: {n / tm:,.1f} pairs/s")

    acc = lambda pred: sum(p == bool(lab) for p, lab in zip(pred, labels)) / n  # noqa: E731
    rows = []
    for src in ("math", "gsm8k"):
        idx = [i for i, p in enumerate(pairs) if p[3] == src]
        if idx:
            a_ours = sum(ours[i] == bool(labels[i]) for i in idx) / len(idx)
            a_mv = sum(theirs[i] == bool(labels[i]) for i in idx) / len(idx)
            rows.append((src, len(idx), a_ours, a_mv))
    agree = sum(a == b for a, b in zip(ours, theirs)) / n
    dis = [i for i in range(n) if ours[i] != theirs[i]]
    ours_right = sum(ours[i] == bool(labels[i]) for i in dis)
    ratio = (n / t1) / (n / tm)

    lines = [
        "# Verifier: empg vs math-verify 0.9.0",
        "",
        f"Machine: {machine_line()} (nproc {os.cpu_count()})",
        "",
        f"Command: `python benches/bench_verify.py{' --mv-limit ' + str(args.mv_limit) if args.mv_limit else ''} --out benches/results/verify.md`",
        "",
        f"{n} labelled (response, reference) pairs from MATH test and GSM8K test ({sum(labels)} correct, "
        f"{n - sum(labels)} wrong; see the script's docstring). Both verifiers ran on every one of them.",
        "",
        "| | pairs/s | accuracy vs labels |",
        "|---|---:|---:|",
        f"| empg, 1 thread (EMPG_PARALLELISM=0) | {n / t1:,.0f} | {acc(ours):.2%} |",
        f"| empg, {empg.parallelism()} threads | {n / tn:,.0f} | (same answers) |",
        f"| math-verify 0.9.0, 1 thread | {n / tm:,.1f} | {acc(theirs):.2%} |",
        "",
        f"Speed ratio on one thread: **{ratio:,.0f}x** (target >= 300x). "
        f"All cores: {(n / tn) / (n / tm):,.0f}x.",
        "",
        "| source | pairs | empg accuracy | math-verify accuracy |",
        "|---|---:|---:|---:|",
        *[f"| {s} | {k} | {a:.2%} | {b:.2%} |" for s, k, a, b in rows],
        "",
        f"Agreement: {agree:.2%} ({len(dis)} disagreements; empg right on {ours_right}, math-verify right on "
        f"{len(dis) - ours_right}).",
        "",
        NOTE,
        "",
        "Sample of disagreements (reference | extracted by empg | label | empg | math-verify):",
        "",
    ]
    tail = [
        "",
        "Time per item on hostile inputs (empg, one thread; median and slowest of 7 runs; target < 10 ms; "
        f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):",
        "",
        "| input | median ms per item | slowest ms per item |",
        "|---|---:|---:|",
        *[f"| {name} | {med:.3f} | {mx:.3f} |" for name, med, mx in worst],
    ]
    sample = random.Random(1).sample(dis, min(15, len(dis)))
    extracted = empg.extract_answers([responses[i] for i in sample])
    for i, e in zip(sample, extracted):
        who = "empg" if ours[i] == bool(labels[i]) else "math-verify"
        lines.append(f"- `{refs[i][:60]}` | `{(e or '')[:60]}` | {labels[i]} | {int(ours[i])} | {int(theirs[i])} -> {who} right")
    text = "\n".join(lines + tail) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
