"""benches/results/verify.md (and verify_summary.md, the numbers README.md quotes) from the raw
records of benches/bench_verify.py:

    python benches/verify_report.py [--records benches/results/verify_records.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from verify_corpus_data import REPO, Counts, pct, table  # noqa: E402

RESULTS = REPO / "benches" / "results"


def counts(d: dict) -> Counts:
    c = Counts()
    c.tp, c.fp, c.tn, c.fn = d["tp"], d["fp"], d["tn"], d["fn"]
    return c


def side_by_side(graders: dict[str, dict], key: str) -> list[str]:
    """Accuracy / FPR of every grader per value of `key` (`graders[name]["stats"][key][value]`)."""
    graders = {n: v["stats"] for n, v in graders.items()}
    names = list(graders)
    cats = sorted(graders[names[0]][key], key=lambda k: (k == "all", k))
    head = "| " + key + " | rows | " + " | ".join(f"{n} acc / FPR" for n in names) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(names)]
    for cat in cats:
        cells = []
        for n in names:
            c = counts(graders[n][key][cat])
            cells.append(f"{pct(c.accuracy)} / {pct(c.fpr)}")
        n0 = counts(graders[names[0]][key][cat]).n
        lines.append(f"| {cat} | {n0} | " + " | ".join(cells) + " |")
    return lines


def empg_detail(stats: dict) -> list[str]:
    return table({k: counts(v) for k, v in stats.items()}).split("\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", default=str(RESULTS / "verify_records.json"))
    ap.add_argument("--out", default=str(RESULTS / "verify.md"))
    ap.add_argument("--summary", default=str(RESULTS / "verify_summary.md"))
    args = ap.parse_args()
    rec = json.loads(Path(args.records).read_text(encoding="utf-8"))
    g = rec["graders"]
    n = rec["corpus_rows"]
    e = g["empg"]
    mv_name = "math-verify (TRL accuracy_reward)"
    speed = {name: n / v["seconds_1_thread"] for name, v in g.items()}
    peer_timing = " (best of 3)" if "timing" in rec else " (one pass)"
    lines = [
        "# Verifier: empg vs math-verify 0.9 (as TRL 1.16 calls it) vs a regex baseline",
        "",
        f"Machine: {rec['machine']} (nproc {rec['nproc']}); {load(rec)} "
        "(the machine is shared, so throughput varies between runs).",
        "",
        "Commands: `python benches/bench_verify.py` (raw records: `benches/results/verify_records.json`), "
        "then `python benches/verify_report.py` (this file).",
        "",
        f"## The labelled corpus ({n} pairs, `tests/data/verify/corpus.jsonl`)",
        "",
        "Real SmolLM2-135M-Instruct completions, the official MATH500 and GSM8K solutions, and hand-written "
        "outputs; labelled without empg (by construction, by hand, or by the agreement of math-verify and a "
        "Hendrycks `is_equiv` reimplementation with every disagreement settled by reading it; "
        "see docs/verifier.md). Accuracy / false-positive rate:",
        "",
        *side_by_side(g, "source"),
        "",
        *side_by_side(g, "category"),
        "",
        "empg in detail (precision, recall, false-positive rate per category):",
        "",
        *empg_detail(e["stats"]["category"]),
        "",
        f"## Near misses ({rec['near_miss_rows']} wrong answers, `tests/data/verify/near_miss.jsonl`)",
        "",
        "| grader | false positives |",
        "|---|---:|",
        *[f"| {name} | {len(v['near_miss_fp'])} |" for name, v in g.items()],
        "",
        "## Throughput on the corpus",
        "",
        "| grader | pairs/s |",
        "|---|---:|",
        f"| empg, 1 thread (EMPG_PARALLELISM=0, best of 3) | {speed['empg']:,.0f} |",
        f"| empg, {e['threads']} threads | {n / e['seconds_all_threads']:,.0f} |",
        *[f"| {name}, 1 thread{peer_timing} | {speed[name]:,.1f} |" for name in g if name != "empg"],
        "",
        f"Timing: {rec.get('timing', 'empg best of 3 after a warm-up; the peers one pass, the first call included')}.",
        "",
        f"Speed ratio on one thread against {mv_name}: **{speed['empg'] / speed[mv_name]:,.0f}x** "
        "(target >= 1,000x).",
        "",
        "Time per item on hostile inputs (empg, one thread; median and slowest of 7 runs; target < 10 ms):",
        "",
        "| input | median ms per item | slowest ms per item |",
        "|---|---:|---:|",
        *[f"| {h['input']} | {h['median']:.3f} | {h['max']:.3f} |" for h in rec["hostile_ms"]],
        "",
        "## The old synthetic corpus (labels by rules written alongside the verifier)",
        "",
        f"{rec['synthetic']['pairs']} pairs built by rewriting and perturbing MATH and GSM8K answers "
        "(`build_pairs` in bench_verify.py). Its labels come from rules written with the verifier, so it "
        f"measures little; kept for comparison. empg on all pairs, every grader on a random subset of "
        f"{rec['synthetic']['peer_subset']}:",
        "",
        "| grader | subset accuracy |",
        "|---|---:|",
        f"| empg (all {rec['synthetic']['pairs']} pairs) | {counts(rec['synthetic']['empg_all']['all']).accuracy:.2%} |",
        *[f"| {name} | {counts(v['all']).accuracy:.2%} |" for name, v in rec["synthetic"]["subset"].items()],
    ]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(Path(args.out).read_text(encoding="utf-8"))
    Path(args.summary).write_text(summary(rec, speed, mv_name), encoding="utf-8")
    print(Path(args.summary).read_text(encoding="utf-8"))


def load(rec: dict) -> str:
    end = f"{rec['load_average']:.1f}"
    if "load_average_start" in rec:
        return f"load average {rec['load_average_start']:.1f} at the start of the run, {end} at the end"
    return f"load average at the end of the run: {end}"


def summary(rec: dict, speed: dict[str, float], mv_name: str) -> str:
    """The headline numbers that README.md quotes (scripts/readme_tables.py copies this file's body)."""
    g = rec["graders"]
    acc = {name: counts(v["stats"]["source"]["all"]).accuracy for name, v in g.items()}
    slowest = max(rec["hostile_ms"], key=lambda h: h["max"])
    names = list(g)
    lines = [
        "# Verifier: the headline numbers",
        "",
        "`python benches/verify_report.py` writes this file from `benches/results/verify_records.json` "
        "(with `verify.md`).",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
        f"| accuracy on the labelled corpus ({rec['corpus_rows']:,} pairs) | "
        + " | ".join(pct(acc[name]) for name in names) + " |",
        f"| false positives on the near misses ({rec['near_miss_rows']} wrong answers) | "
        + " | ".join(str(len(g[name]["near_miss_fp"])) for name in names) + " |",
        "| pairs/s on one thread | " + " | ".join(f"{speed[name]:,.0f}" for name in names) + " |",
        "",
        f"empg on one thread is **{speed['empg'] / speed[mv_name]:,.0f}x** {mv_name} (target >= 1,000x); "
        f"the slowest hostile input takes {slowest['max']:.2f} ms per item ({slowest['input']}; target < 10 ms). "
        f"Machine: {rec['machine']}; {load(rec)}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
