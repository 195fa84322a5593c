"""One-shot check of empg's GPU path on a single H100/H200 (no network needed).

Builds, for each model family (``--families``: Qwen2's own class, the paper's family, and a Llama,
both at Qwen2-0.5B dimensions), a model from a config (random weights), then for each sampler available
(``transformers`` always; ``vllm`` where ``import vllm`` works and CUDA is there) runs EM iterations:
E-step (K samples per prompt, a toy verifiable reward), M-step (the trainer's
:func:`empg.mstep.m_step` with :mod:`benches/attention.py` log-probs, bf16 autocast over fp32 master
weights, fused AdamW), weight sync, and checks that rewards, losses and gradients are finite and that the sampler's log-prob of a
probe sequence moves as the trainer's does after each sync. Prints tokens/s of sampling and of the
M-step, and the M-step's model FLOPs utilisation (6 * params * tokens / time) against a bf16 matmul
peak measured here. Exits non-zero when any check fails.

    python benches/gpu_check.py                # GPU: 3 iterations, 0.5B-class Qwen2 and Llama
    python benches/gpu_check.py --cpu --tiny   # CPU: the same code path, tiny models, 1 iteration

A run that would not finish within ``TIME_LIMIT_S`` at the pace of the runs before it is skipped
and reported (the paper's family goes first).
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_check_parts as parts  # noqa: E402

from attention import token_logprobs  # noqa: E402
from empg.sampling import SamplingParams  # noqa: E402

TIME_LIMIT_S = 480.0


def rate(x: float) -> str:
    """A tokens/s figure: thousands separators when large, 3 significant digits when small."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


class Checks:
    """Named pass/fail results, printed in the summary."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, bool, str]] = []

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.rows.append((name, bool(ok), detail))
        if not ok:
            print(f"  CHECK FAILED: {name} {detail}", flush=True)
        return bool(ok)

    @property
    def failed(self) -> int:
        return sum(not ok for _, ok, _ in self.rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (proves the code path)")
    ap.add_argument("--tiny", action="store_true", help="tiny model and batch, 1 iteration")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--prompts", type=int, default=None)
    ap.add_argument("--k", type=int, default=8, help="completions per prompt")
    ap.add_argument("--prompt-len", type=int, default=None)
    ap.add_argument("--max-new", type=int, default=None)
    ap.add_argument("--token-budget", type=int, default=None)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--samplers", default="transformers,vllm")
    ap.add_argument("--families", default=",".join(parts.FAMILIES), help="model families, in order")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forward", choices=parts.FORWARDS, default="attention",
                    help="M-step log-probs: benches/attention.py (path by cost) or the trainer's packed forward")
    args = ap.parse_args(argv)
    small = args.tiny
    args.iterations = args.iterations or (1 if small else 3)
    args.prompts = args.prompts or (4 if small else 32)
    args.prompt_len = args.prompt_len or (12 if small else 64)
    args.max_new = args.max_new or (16 if small else 256)
    args.token_budget = args.token_budget or (256 if small else 8192)
    args.k = 4 if small and args.k == 8 else args.k
    return args


def probe_gap(sampler: Any, model: torch.nn.Module, probe: list[int], start: int) -> tuple[float, float]:
    """Mean log-prob per token of ``probe[start:]`` under the sampler and under the trainer."""
    s = float(np.mean(sampler.prompt_logprobs([probe])[0][start:]))
    t = float(np.mean(parts.score_sequence(model, probe)[start:]))
    return s, t


def make_sampler(name: str, model: torch.nn.Module, device: torch.device, args: argparse.Namespace, tmp: str) -> Any:
    if name == "transformers":
        return parts.HFSampler(model, device)
    from empg.samplers.vllm import VLLMSampler

    model.save_pretrained(tmp)
    return VLLMSampler(
        tmp,
        skip_tokenizer_init=True,
        gpu_memory_utilization=args.gpu_memory_utilization,
        max_model_len=args.prompt_len + args.max_new + 16,
        seed=args.seed,
    )


def run_sampler(name: str, family: str, device: torch.device, args: argparse.Namespace, checks: Checks,
                peak: float) -> dict[str, float]:
    """EM iterations with one sampler on a model of ``family``; returns its speed figures."""
    model = parts.build_model(args.tiny, device, args.seed, family)
    n_params = parts.num_params(model)
    optimizer, scheduler = parts.make_optimizer(model, args.lr)
    rng = np.random.default_rng(args.seed)
    vocab = model.config.vocab_size
    prompts = [rng.integers(3, vocab, size=args.prompt_len).tolist() for _ in range(args.prompts)]
    params = SamplingParams(n=args.k, temperature=1.0, top_p=1.0, max_new_tokens=args.max_new, seed=args.seed)
    figures: dict[str, list[float]] = {"sample_tok_s": [], "mstep_tok_s": [], "mfu": []}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sampler = make_sampler(name, model, device, args, tmp)
        print(f"[{family}/{name}] sampler ready in {time.perf_counter() - t0:.1f}s", flush=True)
        for it in range(1, args.iterations + 1):
            tag = f"{family}/{name} iter {it}"
            sampler.wake_up()
            parts.sync(device)
            t0 = time.perf_counter()
            rollouts = sampler.generate(prompts, params)
            parts.sync(device)
            t_sample = time.perf_counter() - t0
            gen_tokens = sum(len(r.completion_ids) for r in rollouts)
            rewards = np.array([parts.reward(r.completion_ids) for r in rollouts], dtype=np.float32)
            checks.add(f"{tag}: rollouts grouped", [r.group for r in rollouts] == [g for g in range(len(prompts)) for _ in range(args.k)])
            checks.add(f"{tag}: rewards finite in [0,1]", bool(np.all(np.isfinite(rewards)) and rewards.min() >= 0 and rewards.max() <= 1))
            # The probe: the best-weighted rollout of this E-step; the M-step should raise its log-prob.
            best = int(np.argmax(rewards))
            probe = rollouts[best].prompt_ids + rollouts[best].completion_ids
            start = len(rollouts[best].prompt_ids)
            sampler.sleep()
            t_before = float(np.mean(parts.score_sequence(model, probe)[start:]))
            res = parts.m_step(
                model, optimizer, scheduler, rollouts, rewards, args.k,
                steps=2, token_budget=args.token_budget, forward=args.forward,
            )
            checks.add(f"{tag}: loss finite", math.isfinite(res.loss), f"{res.loss}")
            checks.add(f"{tag}: grad norm finite and > 0", math.isfinite(res.grad_norm) and res.grad_norm > 0, f"{res.grad_norm}")
            checks.add(f"{tag}: 2 optimizer steps, none skipped", res.steps == 2 and res.skipped == 0, f"steps={res.steps} skipped={res.skipped}")
            params_finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
            checks.add(f"{tag}: parameters finite", params_finite)
            sampler.wake_up()
            s_before, _ = probe_gap(sampler, model, probe, start)
            sampler.sync_weights(model)
            s_after, t_after = probe_gap(sampler, model, probe, start)
            noise = abs(s_before - t_before)  # sampler (old weights) vs trainer before the M-step
            d_t, d_s = t_after - t_before, s_after - s_before
            tol = 3 * noise + 0.2 * abs(d_t) + 0.01
            checks.add(f"{tag}: trainer moved the probe", abs(d_t) > 3 * noise + 0.01, f"d_trainer={d_t:+.4f} noise={noise:.4f}")
            checks.add(
                f"{tag}: sampler follows the sync",
                abs(d_s - d_t) <= tol and np.sign(d_s) == np.sign(d_t),
                f"d_sampler={d_s:+.4f} d_trainer={d_t:+.4f} tol={tol:.4f}",
            )
            mstep_tok_s = res.tokens / res.seconds
            mfu = 6.0 * n_params * res.tokens / res.seconds / (peak * 1e12)
            print(
                f"[{tag}] reward {rewards.mean():.3f}  loss {res.loss:+.4f}  grad {res.grad_norm:.3f}  "
                f"probe trainer {t_before:.3f}->{t_after:.3f} sampler {s_before:.3f}->{s_after:.3f}  "
                f"sample {rate(gen_tokens / t_sample)} tok/s  M-step {rate(mstep_tok_s)} tok/s  MFU {100 * mfu:.1f}%",
                flush=True,
            )
            if it > 1 or args.iterations == 1:  # the first iteration of several is warm-up
                figures["sample_tok_s"].append(gen_tokens / t_sample)
                figures["mstep_tok_s"].append(mstep_tok_s)
                figures["mfu"].append(mfu)
        attention_paths(model, rollouts, device, checks, f"{family}/{name}")
        del sampler
    del model, optimizer, scheduler
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {k: float(np.mean(v)) for k, v in figures.items()} | {"params": float(n_params)}


def attention_paths(model: torch.nn.Module, rollouts: list[Any], device: torch.device, checks: Checks, name: str) -> None:
    """On a micro-batch of real rollouts, benches/attention.py's packed and padded paths and the trainer's
    packed forward give the same completion log-probs; prints each one's forward+backward tokens/s."""
    from empg import build_microbatch, flatten_sequences, mstep
    from attention import masked_token_logprobs

    seqs = [r.prompt_ids + r.completion_ids for r in rollouts[:16]]
    flat = flatten_sequences(seqs)
    n = len(seqs)
    prompt_lens = np.array([len(r.prompt_ids) for r in rollouts[:16]], dtype=np.int64)
    mb = build_microbatch(flat.tokens, flat.offsets, prompt_lens, np.ones(n, np.float32), np.arange(n))
    ids, pos, mask = (torch.as_tensor(mb[k]).to(device) for k in ("input_ids", "position_ids", "loss_mask"))
    forwards = {
        "packed_sdpa": lambda: masked_token_logprobs(model, ids, pos, mask, path="packed_sdpa"),
        "padded_buckets": lambda: masked_token_logprobs(model, ids, pos, mask, path="padded_buckets"),
        "trainer_forward": lambda: mstep.token_logprobs(model, ids, pos, mask),
    }
    outs, speeds = {}, {}
    for path, fn in forwards.items():
        with torch.no_grad(), parts.autocast(device):
            outs[path] = fn().float()
        with parts.autocast(device):
            fn().sum().backward()  # warm-up: first backward pays one-off costs
        parts.sync(device)
        t0 = time.perf_counter()
        for _ in range(3):
            with parts.autocast(device):
                fn().sum().backward()
        parts.sync(device)
        speeds[path] = 3 * flat.tokens.size / (time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    tol = 0.15 if device.type == "cuda" else 1e-4
    for path in ("padded_buckets", "trainer_forward"):
        gap = float((outs["packed_sdpa"] - outs[path]).abs().max())
        checks.add(f"{name}: {path} agrees with packed_sdpa", gap <= tol, f"max|diff|={gap:.2e} tol={tol}")
    print(f"[{name}] completion log-probs, fwd+bwd tok/s: " + ", ".join(f"{p} {rate(v)}" for p, v in speeds.items()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA device: run with --cpu --tiny to exercise the code path on a CPU", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.cpu else "cuda")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    try:
        import vllm

        vllm_version = vllm.__version__
    except ImportError:
        vllm_version = None
    peak, peak_kind = parts.matmul_peak_tflops(device)
    print(f"matmul peak ({peak_kind}): {peak:,.3g} TFLOP/s", flush=True)
    checks = Checks()
    results: dict[tuple[str, str], dict[str, float]] = {}
    skipped: dict[str, str] = {}
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in parts.FAMILIES]
    if unknown:
        print(f"--families: {unknown} not among {sorted(parts.FAMILIES)}", file=sys.stderr)
        return 2
    names = [s.strip() for s in args.samplers.split(",") if s.strip()]
    if "vllm" in names and device.type != "cuda":
        skipped["vllm"] = "needs CUDA"
    elif "vllm" in names and vllm_version is None:
        skipped["vllm"] = "vllm not importable here"
    runs = [(f, n) for f in families for n in names if n not in skipped]
    for done, (family, name) in enumerate(runs):
        spent = time.perf_counter() - started
        if done and spent / done > TIME_LIMIT_S - spent:  # one more at this pace would overrun
            skipped[f"{name} ({family})"] = f"time: {spent:.0f}s spent, {TIME_LIMIT_S - spent:.0f}s left"
            continue
        try:
            results[family, name] = run_sampler(name, family, device, args, checks, peak)
        except Exception as err:  # a crash is a failed check, reported with the rest
            checks.add(f"{family}/{name}: ran to the end", False, f"{type(err).__name__}: {err}")
            import traceback

            traceback.print_exc()
    elapsed = time.perf_counter() - started
    checks.add("finished within the time limit", elapsed <= TIME_LIMIT_S, f"{elapsed:.0f}s <= {TIME_LIMIT_S:.0f}s")
    print("\n" + "=" * 78)
    print("empg GPU check — summary")
    print(f"device            {gpu} ({device.type}); python {platform.python_version()}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, vllm {vllm_version or 'absent'}")
    print(f"model             {', '.join(families)} at {'tiny' if args.tiny else 'Qwen2-0.5B'} dimensions, random weights; "
          f"{args.prompts} prompts x K={args.k}, prompt {args.prompt_len} + up to {args.max_new} new tokens, "
          f"{args.iterations} iteration(s)")
    print(f"matmul peak       {peak:,.3g} TFLOP/s ({peak_kind}, measured)")
    for (family, name), fig in results.items():
        print(f"sampler={name:<12} family={family:<6} params {fig['params'] / 1e6:,.1f}M  "
              f"sampling {rate(fig['sample_tok_s'])} tok/s  "
              f"M-step {rate(fig['mstep_tok_s'])} tok/s  MFU {100 * fig['mfu']:.1f}%")
    for name, why in skipped.items():
        print(f"sampler={name:<12} skipped: {why}")
    print(f"checks            {len(checks.rows) - checks.failed} passed, {checks.failed} failed")
    for row, ok, detail in checks.rows:
        if not ok:
            print(f"  FAILED  {row}  {detail}")
    print(f"elapsed           {elapsed:.0f}s")
    print(f"RESULT            {'PASS' if checks.failed == 0 else 'FAIL'}")
    print("=" * 78)
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
