"""The markdown table of ``benches/bench_sampling.py``'s JSON records: per workload and sampler,
the median completion tokens/s over the repeats, their min-max spread, the median wall seconds and
the speed against empg's shared sampler.

    python benches/sampling_table.py benches/results/sampling.json --out benches/results/sampling.md
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

BASELINE = "empg shared"


def rows(records: list[dict[str, Any]]) -> list[str]:
    out = ["| workload | sampler | prompts x K, new tokens | repeats | completion tok/s (median) | min-max | "
           "wall s (median) | vs empg shared |", "|---|---|---|---:|---:|---:|---:|---:|"]
    workloads = list(dict.fromkeys(r["workload"] for r in records))
    for w in workloads:
        mine = [r for r in records if r["workload"] == w]
        rates: dict[str, list[float]] = {}
        for r in mine:
            rates.setdefault(r["sampler"], []).append(r["completion_tokens"] / r["seconds"])
        base = statistics.median(rates[BASELINE]) if BASELINE in rates else None
        for sampler, rs in rates.items():
            first = next(r for r in mine if r["sampler"] == sampler)
            secs = statistics.median(r["seconds"] for r in mine if r["sampler"] == sampler)
            med = statistics.median(rs)
            ratio = f"{med / base:.2f}x" if base else "-"
            out.append(f"| {w} | {sampler} | {first['prompts']} x {first['k']}, {first['max_new_tokens']} | {len(rs)} | "
                       f"{med:.0f} | {min(rs):.0f}-{max(rs):.0f} | {secs:.2f} | {ratio} |")
    return out


def render(data: dict[str, Any]) -> str:
    m = data["meta"]
    return ("# bench_sampling: E-step throughput, vLLM CPU vs empg's shared sampler vs transformers generate\n\n"
            f"Machine: {m['machine']}; torch {m['torch']}, transformers {m['transformers']}, vLLM {m['vllm']} "
            f"(CPU build), {m['threads']} torch thread(s), temperature {m['temperature']}.\n"
            f"Load (shared machine): before `{m['load_before']}`; after `{m['load_after']}`.\n"
            f"vLLM engine start: {m['vllm_engine_start_s']:.1f} s (not in the table).\n"
            f"Command: `{m['command']}`; table: `python benches/sampling_table.py`.\n\n"
            + "\n".join(rows(data["records"])) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="?", default="benches/results/sampling.json")
    ap.add_argument("--out", default="benches/results/sampling.md")
    args = ap.parse_args()
    Path(args.out).write_text(render(json.loads(Path(args.json).read_text())))
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
