"""The CPU side of one iteration at GPU scale: empg's trainer code against TRL's, side by side.

    python benches/bench_cpu_side.py --out benches/results/cpu_side.md     # measure (~4 min)
    python benches/bench_cpu_side.py --table benches/results/cpu_side.json # the table from the records

On a GPU the sampler (vLLM) returns thousands of long completions in tens of seconds; everything the
trainer does between that output and the first M-step forward runs on the CPU while the GPU waits.
This replays sampler output — 1,024 / 4,096 / 16,384 completions of ~256 and ~1,024 tokens, and the
old 16,384 x ~20-token case — and times each system's REAL code on it (everything but the model):

* empg: :func:`empg.em.e_step` with a replay sampler that returns the rollouts as vLLM gives them
  (ids and text), i.e. the default reward (the verifier, ``empg.rewards.combined_reward``), ``empg.group_weights``, dropping zero-signal groups,
  :meth:`empg.samples.Samples.from_rollouts` (ids into flat int32 buffers), the rollout statistics
  with the behaviour counts; then the packed micro-batches of EVERY kept sequence (all optimizer
  steps of the M-step, not only the first: ``empg.mstep._microbatches``, tensors included) under a
  GPU-sized token budget, and the metrics row (``RunLogger.log``).
* TRL 1.16: a real ``GRPOTrainer`` (tiny model, never run) whose ``_generate_single_turn`` returns
  the same completion ids; then ``trainer._prepare_inputs`` — decoding, rewards, padding into
  tensors, group advantages, metrics, shuffling and splitting — and ``trainer.log``, with empg's
  verifier plugged in (``empg.rewards.trl_reward_func``) so that the verifier is not the difference.

Texts are real GSM8K / MATH worked solutions (``vs_trl.rollouts``: kept, wrong answer, or cut),
each preceded by other solutions' reasoning up to the target length (or cut to its last ~L tokens
when longer), so the final answer is where a model would put it. Repeats alternate the systems;
records (every repeat) go to ``<out>.json``, the table is generated from them. Targets (2 cores):
16,384 x ~1,024 tokens <= 500 ms and >= 10x TRL; 16,384 x ~20 tokens <= 200 ms.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from vs_trl import cpu_side  # noqa: E402
from _machine import machine_line, print_table, results_args, save  # noqa: E402

CASES = [(1024, 256), (4096, 256), (16384, 256), (1024, 1024), (4096, 1024), (16384, 1024), (16384, 20)]
K = 8
TOKEN_BUDGET = 16384  # tokens per micro-batch, a GPU-sized M-step budget


@dataclass
class _Answers:
    answers: list[str]
    group_size: int
    n: int

    @property
    def groups(self) -> list[int]:
        return [i // self.group_size for i in range(self.n)]


class Workload:
    """``n`` completions of about ``length`` tokens each, in groups of ``K`` (built outside timing),
    in the form both systems take: rollouts with text (empg) and completion ids (TRL)."""

    def __init__(self, n: int, length: int, tok: Any, seed: int = 0) -> None:
        from vs_trl.rollouts import make

        from empg.sampling import Rollout

        r = make(n, K, seed)
        self.n, self.length = n, length
        self.r = _Answers(r.answers, K, n)
        self.messages = [[{"role": "user", "content": q}] for q in r.questions]
        rendered = tok.apply_chat_template(self.messages, add_generation_prompt=True, tokenize=True,
                                           return_dict=True)
        prompts = [list(p) for p in rendered["input_ids"]]
        own = tok(r.texts, add_special_tokens=False)["input_ids"]
        sep = tok("\n\n", add_special_tokens=False)["input_ids"]
        eos = int(tok.eos_token_id)
        rng = random.Random(seed + length)
        self.completion_ids: list[list[int]] = []
        self.rollouts: list[Any] = []
        for i, (ids, text) in enumerate(zip(own, r.texts)):
            if len(ids) >= length:  # its last tokens: the end of the solution, with its answer
                ids = ids[len(ids) - length + 1:]
                text = tok.decode(ids, skip_special_tokens=True)
            else:  # other solutions' reasoning first, up to the length
                parts, extra = [], 0
                while extra + len(ids) < length - 1:
                    j = rng.randrange(n)
                    take = own[j][: length - 1 - len(ids) - extra]
                    parts.append((take, tok.decode(take) if len(take) < len(own[j]) else r.texts[j]))
                    extra += len(take) + len(sep)
                ids = [t for p, _ in parts for t in p + sep] + ids
                text = "".join(t + "\n\n" for _, t in parts) + text
            ids = ids + [eos]
            self.completion_ids.append(ids)
            g = i // K
            self.rollouts.append(Rollout(group=g, prompt_ids=prompts[g], completion_ids=ids, text=text,
                                         finish_reason="stop"))
        self.prompt_ids = prompts

    @property
    def tokens(self) -> int:
        return sum(len(c) for c in self.completion_ids)


class ReplaySampler:
    """An empg sampler handing back given rollouts (what vLLM's output becomes: ids and text, so
    nothing is decoded)."""

    def __init__(self, rollouts: list[Any]) -> None:
        self.rollouts = rollouts

    def generate(self, prompts: Any, params: Any) -> list[Any]:
        return self.rollouts


def run_empg(w: Workload, run_dir: str) -> dict[str, Any]:
    import torch

    from empg import em, metrics, mstep, rewards, samples
    from empg.sampling import SamplingParams
    from empg.scoring import make_rewards
    from empg.taskdata import Split
    from empg.trackers import RunLogger
    from vs_trl.timing import Timers

    timers = Timers()
    patched = [(rewards, "combined_reward"), (em, "group_weights"), (metrics, "behaviour_counts"),
               (samples.Samples, "from_rollouts")]
    originals = [getattr(obj, name) for obj, name in patched]
    for obj, name in patched:
        timers.wrap(obj, name)
    params = SamplingParams(n=K, max_new_tokens=w.length + 1)
    log = RunLogger(run_dir, report_to=[])
    try:
        # The trainer's own scorer (empg.em._train): the default reward (the verifier against the
        # answer column) over the split's batch view of the rollouts.
        n = len(w.prompt_ids)
        split = Split(prompts=[""] * n, prompt_ids=w.prompt_ids, conversational=[False] * n,
                      columns={"answer": list(w.r.answers)}, rows=[f"row {i}" for i in range(n)])
        reward = make_rewards([], None)
        rows = list(range(n))
        t0 = time.perf_counter()
        est = em.e_step(ReplaySampler(w.rollouts), w.prompt_ids, params,
                        lambda rollouts: reward(split.batch(rows, rollouts)), scheme="group_norm")
        t1 = time.perf_counter()
        micro = mstep._microbatches(est.samples, np.arange(len(est.samples)), TOKEN_BUDGET, torch.device("cpu"))
        t2 = time.perf_counter()
        log.log(1, {"kind": "train", **est.stats})
        t3 = time.perf_counter()
    finally:
        for (obj, name), fn in zip(patched, originals):
            setattr(obj, name, fn)
        log.close()
    assert sum(m.targets for m in micro) == int(est.samples.completion_lens.sum())
    g = timers.get
    parts = {"verify": g("combined_reward"), "weights": g("group_weights"), "flat ids": g("from_rollouts"),
             "behaviours": g("behaviour_counts"),
             "other e-step": (t1 - t0) - g("combined_reward") - g("group_weights") - g("from_rollouts")
             - g("behaviour_counts"),
             "micro-batches": t2 - t1, "logging": t3 - t2}
    return {"seconds": t3 - t0, "parts": parts, "rewards": np.asarray(est.rewards).tolist(),
            "kept": len(est.samples), "microbatches": len(micro)}


def run_trl(trl: Any, w: Workload) -> dict[str, Any]:
    with contextlib.redirect_stdout(io.StringIO()):  # trainer.log prints the metrics row
        p = trl.run(w)
    return {"seconds": p.seconds, "parts": p.parts, "rewards": np.asarray(p.rewards).tolist()}


def measure(cases: list[tuple[int, int]], repeats: int, trl_repeats: int, log: Any = print) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from vs_trl.task import model_dir

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    tok = AutoTokenizer.from_pretrained(model_dir("tiny"))
    records = []
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-cpu-side-") as tmp:
        trl = cpu_side.TRLSide(K, os.path.join(tmp, "trl"))
        warm = Workload(64, 64, tok)  # first calls (regex compilation, thread pools, imports): untimed
        run_empg(warm, os.path.join(tmp, "warm"))
        run_trl(trl, warm)
        for n, length in cases:
            w = Workload(n, length, tok)
            rec: dict[str, Any] = {"completions": n, "target_tokens": length, "tokens": w.tokens,
                                   "empg": [], "trl": []}
            for rep in range(max(repeats, trl_repeats)):
                if rep < repeats:
                    rec["empg"].append(run_empg(w, os.path.join(tmp, f"empg-{n}-{length}-{rep}")))
                if rep < trl_repeats:
                    rec["trl"].append(run_trl(trl, w))
            e, t = rec["empg"][-1], rec["trl"][-1]
            rec["reward_agreement"] = float(np.mean(np.array(e["rewards"]) == np.array(t["rewards"])))
            for r in rec["empg"] + rec["trl"]:
                del r["rewards"]
            records.append(rec)
            log(f"[cpu-side] {n:6d} x {w.tokens / n:6.0f} tokens: empg "
                + " ".join(f"{r['seconds'] * 1e3:.0f}" for r in rec["empg"]) + " ms; TRL "
                + " ".join(f"{r['seconds'] * 1e3:.0f}" for r in rec["trl"]) + " ms; empg parts "
                + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in rec["empg"][0]["parts"].items()))
            del w
    import empg

    return {"records": records, "machine": machine_line(), "threads": empg.parallelism(),
            "load_before": load_before, "load_after": list(os.getloadavg()), "token_budget": TOKEN_BUDGET,
            "group_size": K}


def _stat(runs: list[dict[str, Any]], key: str = "seconds") -> tuple[float, float, float]:
    xs = [r[key] for r in runs]
    return float(np.median(xs)), min(xs), max(xs)


def headline(rec: dict[str, Any]) -> str:
    """The two target cases in one sentence (what the README quotes)."""
    out = []
    for n, length in ((16384, 1024), (16384, 20)):
        r = next((r for r in rec["records"] if (r["completions"], r["target_tokens"]) == (n, length)), None)
        if r is not None:
            em, tr = _stat(r["empg"])[0], _stat(r["trl"])[0]
            out.append(f"{n:,} completions of ~{r['tokens'] / n:,.0f} tokens: empg {em * 1e3:,.0f} ms vs TRL "
                       f"{tr * 1e3:,.0f} ms ({tr / em:.1f}x)")
    return "; ".join(out) + "."


def table(rec: dict[str, Any]) -> str:
    lines = [headline(rec), "","| completions | tokens each | empg total | TRL total | TRL / empg | empg parts (median ms) |",
             "|---:|---:|---:|---:|---:|---|"]
    for r in rec["records"]:
        em, em_lo, em_hi = _stat(r["empg"])
        tr, tr_lo, tr_hi = _stat(r["trl"])
        parts = {k: float(np.median([x["parts"][k] for x in r["empg"]])) for k in r["empg"][0]["parts"]}
        lines.append(
            f"| {r['completions']:,} | {r['tokens'] / r['completions']:.0f} | {em * 1e3:.0f} ms "
            f"({em_lo * 1e3:.0f}–{em_hi * 1e3:.0f}, {len(r['empg'])} runs) | {tr * 1e3:,.0f} ms "
            f"({tr_lo * 1e3:,.0f}–{tr_hi * 1e3:,.0f}, {len(r['trl'])} runs) | {tr / em:.1f}x | "
            + ", ".join(f"{k} {v * 1e3:.0f}" for k, v in parts.items()) + " |")
    agree = min(r["reward_agreement"] for r in rec["records"])
    lines += ["", f"Median (min–max, runs). K = {rec['group_size']}; empg's micro-batch budget "
              f"{rec['token_budget']:,} tokens (buffers of every kept sequence built); TRL with empg's verifier "
              f"(rewards agree on {agree:.1%} of completions or more).", "",
              f"Machine: {rec['machine']}; empg threads: {rec['threads']}; load average before "
              f"{' '.join(f'{x:.2f}' for x in rec['load_before'])}, after "
              f"{' '.join(f'{x:.2f}' for x in rec['load_after'])} (the 2 cores are shared)."]
    return "\n".join(lines)


def main() -> None:
    ap = results_args(__doc__)
    ap.add_argument("--repeats", type=int, default=3, help="empg runs per case")
    ap.add_argument("--trl-repeats", type=int, default=2, help="TRL runs per case")
    ap.add_argument("--cases", default=None, help="comma list of NxL, e.g. 1024x256,16384x20 (default: all)")
    a = ap.parse_args()
    if a.table:
        return print_table(a.table, table)
    cases = CASES if not a.cases else [tuple(int(x) for x in c.split("x")) for c in a.cases.split(",")]
    rec = measure(cases, a.repeats, a.trl_repeats)  # type: ignore[arg-type]
    text = table(rec)
    print(text)
    if a.out:
        save(a.out, "bench_cpu_side", rec, text)


if __name__ == "__main__":
    main()
