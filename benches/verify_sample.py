"""Sample real completions for the verifier's labelled corpus (tests/data/verify/).

    OMP_NUM_THREADS=1 python benches/verify_sample.py [--out tests/data/verify/sampled_raw.jsonl]

The embedded SmolLM2-135M-Instruct (``empg.embedded.load_embedded_model``) answers GSM8K and MATH
test problems from /work/shared/data under four prompt styles (boxed, plain, chat, "Final Answer:")
through empg's own prefix-sharing sampler (``TransformersSampler``), on one thread, with a short
``max_new_tokens`` (96): 6 problems of each dataset x 3 samples x 4 styles = 144 completions, which
took 1,072 s of CPU on one core of the shared 2-core machine (the committed
``tests/data/verify/sampled_raw.jsonl`` comes from the defaults). Each output row is
``{"source", "problem", "style", "reference", "completion"}`` (the reference is the problem's final
answer: GSM8K's ``#### N``, MATH's last ``\\boxed{}``). The rows are labelled later, independently
of empg, by ``benches/verify_corpus.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from verify_corpus_data import data_dir, gsm8k_final, last_boxed, read_jsonl  # noqa: E402

INSTR = {
    "boxed": "Solve the problem step by step. Put your final answer within \\boxed{{}}.\n\n"
             "Problem: {q}\n\nSolution:",
    "plain": "Question: {q}\nAnswer: Let's think step by step.",
    "chat": None,  # the question alone as the user message of the chat template
    "final": None,  # chat, asking for a closing "Final Answer:" line
}
FINAL_HINT = "\n\nSolve it, then end with a line of the form \"Final Answer: <answer>\"."


def prompt_text(tokenizer, style: str, q: str) -> str:
    if INSTR[style] is not None:
        return INSTR[style].format(q=q)
    content = q + (FINAL_HINT if style == "final" else "")
    return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)


def problems(n_each: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    d = data_dir()
    gsm = rng.sample(read_jsonl(d / "gsm8k" / "test.jsonl"), n_each)
    math = [r for r in read_jsonl(d / "math" / "test.jsonl") if last_boxed(r["solution"])]
    math = rng.sample([r for r in math if r.get("level") in ("Level 1", "Level 2", "Level 3")] or math, n_each)
    out = [{"source": "gsm8k", "problem": r["question"], "reference": gsm8k_final(r["answer"])} for r in gsm]
    out += [{"source": "math", "problem": r["problem"], "reference": last_boxed(r["solution"])} for r in math]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "verify" / "sampled_raw.jsonl"))
    ap.add_argument("--per-source", type=int, default=6, help="problems per dataset")
    ap.add_argument("--k", type=int, default=3, help="completions per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--batch", type=int, default=96, help="sequences per generate call")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from empg.embedded import load_embedded_model, load_embedded_tokenizer
    from empg.samplers.hf import TransformersSampler
    from empg.sampling import SamplingParams

    torch.set_num_threads(1)
    tok = load_embedded_tokenizer()
    model = load_embedded_model()
    sampler = TransformersSampler(model, tok, batch_size=args.batch, share_prefix=True)
    params = SamplingParams(n=args.k, temperature=0.7, top_p=0.95, max_new_tokens=args.max_new_tokens,
                            seed=args.seed)
    probs = problems(args.per_source, args.seed)
    t0 = time.time()
    rows: list[dict] = []
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("", encoding="utf-8")
    for style in INSTR:
        done = len(rows)
        prompts = [tok(prompt_text(tok, style, p["problem"]), add_special_tokens=False)["input_ids"] for p in probs]
        for r in sampler.generate(prompts, params):
            p = probs[r.group]
            rows.append({"source": p["source"], "problem": p["problem"][:200], "style": style,
                         "reference": p["reference"], "completion": r.text})
        with open(args.out, "a", encoding="utf-8") as f:  # each style as it is done
            for row in rows[done:]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{style}: {len(rows)} rows, {time.time() - t0:.0f} s wall, "
              f"{time.process_time():.0f} s CPU", flush=True)
    print(f"wrote {len(rows)} rows to {args.out} in {time.time() - t0:.0f} s "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
