"""Prefix sharing vs the plain paths, side by side in one run, with the real embedded model.

    python benches/bench_prefix.py [--prompts 4] [--k 8] [--out benches/results/prefix.md]

Two workloads, K completions per prompt, SmolLM2-135M-Instruct (fp32, ``empg.models``):

* (a) GSM8K zero-shot: test questions, ``get_template("plain", fewshot=0, task="gsm8k")``;
* (b) the embedded default: ``make_arith_problems`` with the 2-shot arith template, as
  ``empg-train`` uses them by default.

E-step (same prompts, temperature 0.8, seeded): transformers' ``generate`` on K copies of each
prompt with its own ``stop_strings`` (the peer), empg's plain sampler (``share_prefix=false``:
``generate`` after one prefill per prompt) and the shared sampler (``empg.samplers.shared``).
M-step: the forward + backward of ONE optimizer step over all sampled sequences (EM-PG loss),
plain packed forward vs :mod:`empg.shared_forward`, plus the GRPO old-log-prob scoring (no grad).
"Tokens" counts what each path runs through the model (prefill with padding + decode steps; in
the M-step, packed tokens). Times are single runs on a shared machine: the load is printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_line  # noqa: E402

from empg.build import cpu_threads  # noqa: E402
from empg.mstep import MStepSettings, Samples, accumulate_gradients, score  # noqa: E402
from empg.prompts import get_template  # noqa: E402
from empg.samplers.hf import TransformersSampler  # noqa: E402
from empg.sampling import SamplingParams  # noqa: E402
from empg.shared_forward import shared_microbatches, shared_tokens  # noqa: E402
from empg.tasks import make_arith_problems  # noqa: E402


def timed(fn: Any, label: str = "") -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    if label:
        print(f"    {label}: {dt:.1f} s", flush=True)
    return dt, out


def workload(name: str, tok: Any, n: int, data_dir: Path, gsm8k_tokens: int
             ) -> tuple[list[list[int]], tuple[str, ...], int]:
    if name == "gsm8k":
        rows = [json.loads(x) for x in (data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()[:n]]
        template, questions, max_new = get_template("plain", fewshot=0, task="gsm8k"), [r["question"] for r in rows], gsm8k_tokens
    else:
        template = get_template("plain", fewshot=2, task="arith")
        questions, max_new = [p.question for p in make_arith_problems(n, seed=0)], 32
    ids = [tok(template.render(q), add_special_tokens=False)["input_ids"] for q in questions]
    return ids, template.stop, max_new


def e_step(model: Any, tok: Any, prompts: list[list[int]], stop: tuple[str, ...], k: int, max_new: int
           ) -> tuple[dict[str, tuple[float, int]], list[list[int]], list[list[int]]]:
    params = SamplingParams(n=k, temperature=0.8, max_new_tokens=max_new, stop=stop, seed=1)
    out: dict[str, tuple[float, int]] = {}
    # The peer: generate on K copies of each prompt, left-padded, with transformers' stop strings.
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts) * k, width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i * k:(i + 1) * k, width - len(p):] = torch.tensor(p)
        mask[i * k:(i + 1) * k, width - len(p):] = 1
    torch.manual_seed(1)
    with torch.no_grad():
        t, gen = timed(lambda: model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=True, temperature=0.8,
            top_p=1.0, top_k=0, stop_strings=list(stop), tokenizer=tok, pad_token_id=tok.pad_token_id), "generate")
    steps = gen.shape[1] - width
    out["transformers generate (K copies, stop_strings)"] = (t, ids.numel() + ids.shape[0] * max(steps - 1, 0))
    plain = TransformersSampler(model, tok, batch_size=len(prompts) * k, share_prefix=False)
    t, rolls = timed(lambda: plain.generate(prompts, params), "plain sampler")
    steps = max(len(r.completion_ids) for r in rolls)
    out["empg plain sampler (prefill per prompt + generate)"] = (
        t, len(prompts) * width + len(rolls) * max(steps - 1, 0))
    shared = TransformersSampler(model, tok, batch_size=len(prompts) * k, share_prefix=True)
    t, rolls = timed(lambda: shared.generate(prompts, params), "shared sampler")
    out["empg shared sampler"] = (t, shared.shared_stats.total)
    return out, [r.prompt_ids for r in rolls], [r.completion_ids for r in rolls]


def m_step(model: Any, prompts: list[list[int]], comps: list[list[int]]) -> dict[str, tuple[float, int]]:
    weights = np.where(np.arange(len(prompts)) % 2 == 0, 1.0, -1.0)
    samples = Samples.from_tokens(prompts, comps, weights)
    index = np.arange(len(samples))
    out: dict[str, tuple[float, int]] = {}
    for share in (False, True):
        settings = MStepSettings(algo="empg", mini_batch_size=len(index), token_budget=4096,
                                 bf16_autocast=False, share_prefix=share)
        model.zero_grad(set_to_none=True)
        t, _ = timed(lambda: accumulate_gradients(model, samples, index, settings), f"M-step share={share}")
        toks = (sum(shared_tokens(samples, mb) for mb in shared_microbatches(samples, index, 4096)) if share
                else int(samples.lengths.sum()))
        out[f"M-step fwd+bwd, {'shared' if share else 'plain packed'}"] = (t, toks)
    for share in (False, True):
        t, _ = timed(lambda: score(model, samples, token_budget=4096, autocast=False, share_prefix=share),
                     f"score share={share}")
        toks = (sum(shared_tokens(samples, mb) for mb in shared_microbatches(samples, index, 4096)) if share
                else int(samples.lengths.sum()))
        out[f"GRPO old log-probs (no grad), {'shared' if share else 'plain packed'}"] = (t, toks)
    model.zero_grad(set_to_none=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts-a", type=int, default=2, help="GSM8K prompts (K completions each)")
    ap.add_argument("--prompts-b", type=int, default=8,
                    help="embedded-default prompts (8 = its prompts_per_iteration)")
    ap.add_argument("--mstep-prompts", type=int, default=2,
                    help="M-step on the samples of the first N prompts (keeps the plain side short)")
    ap.add_argument("--gsm8k-tokens", type=int, default=48, help="max new tokens on GSM8K")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--out", help="also write the result table (markdown) here")
    args = ap.parse_args()
    from empg.models import load_model, load_tokenizer

    threads = cpu_threads(0)
    torch.set_num_threads(threads)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {machine_line()}\nload before: {load}\ntorch threads: {threads}", flush=True)
    tok = load_tokenizer("smollm2-135m-instruct")
    model = load_model("smollm2-135m-instruct").eval()
    lines = ["| workload | phase | path | tokens run | wall s | speed-up vs first row |", "|---|---|---|---:|---:|---:|"]
    for name, label, n_prompts in (("gsm8k", "(a) GSM8K zero-shot", args.prompts_a),
                                   ("arith", "(b) embedded default, 2-shot", args.prompts_b)):
        prompts, stop, max_new = workload(name, tok, n_prompts, Path(args.data), args.gsm8k_tokens)
        print(f"{label}: {len(prompts)} prompts x K={args.k}, prompt lengths {[len(p) for p in prompts]}, "
              f"max_new_tokens {max_new}", flush=True)
        e, ps, cs = e_step(model, tok, prompts, stop, args.k, max_new)
        model.train()
        keep = args.mstep_prompts * args.k
        m = m_step(model, ps[:keep], cs[:keep])
        model.eval()
        print(f"  completions: {sum(map(len, cs))} tokens, mean {np.mean([len(c) for c in cs]):.1f}, "
              f"max {max(map(len, cs))}; M-step on the first {min(keep, len(cs))} sequences", flush=True)
        for phase, res in (("E-step", e), ("M-step", dict(list(m.items())[:2])), ("score", dict(list(m.items())[2:]))):
            first = next(iter(res.values()))[0]
            for path, (t, toks) in res.items():
                row = f"| {label} | {phase} | {path} | {toks:,} | {t:.2f} | {first / t:.2f}x |"
                print(row, flush=True)
                lines.append(row)
    load_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load after: {load_after}")
    if args.out:
        Path(args.out).write_text(
            "# bench_prefix: shared prefixes computed once vs the plain paths\n\n"
            f"Machine: {machine_line()}; torch {torch.__version__}, {threads} torch thread(s).\n"
            f"Load (shared machine, other jobs running): before `{load}`; after `{load_after}`.\n"
            f"Command: `python benches/bench_prefix.py --prompts-a {args.prompts_a} --prompts-b {args.prompts_b} "
            f"--mstep-prompts {args.mstep_prompts} --k {args.k} --gsm8k-tokens {args.gsm8k_tokens} --out {args.out}`\n\n"
            + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
