"""Probe the embedded task with the embedded model: how often does SmolLM2-135M-Instruct answer
the arithmetic problems right, per difficulty, template and decoding mode, before any training?

The answer is the content of the last ``\\boxed{}`` of the completion (cut at the template's stop
strings), judged against the reference with empg's verifier. A good training default gives real
signal from the start: 30-60% correct when sampled at T = 0.8, so that most groups of K samples hold
both right and wrong answers.

    python benches/probe_embedded_task.py                      # the table in docs/embedded_task.md
    python benches/probe_embedded_task.py --n 64 --difficulties 0 1 --templates plain

Generation is ``transformers`` ``generate`` on the CPU (1 thread by default), with the template's
shared prefix computed once per batch; held-out ("test") problems of the seed given.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from empg import extract_answers, verify_batch
from empg.embedded import load_embedded_model, load_embedded_tokenizer
from empg.prompts import PromptTemplate, get_template
from empg.tasks import make_arith_problems


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """``text`` up to the first stop string (the sampler does the same)."""
    ends = [i for i in (text.find(s) for s in stops) if i >= 0]
    return text[: min(ends)] if ends else text


class StopOnText(StoppingCriteria):
    """Per-sequence stop once the completion holds a stop string. (``generate(stop_strings=)``
    does the same but builds a vocabulary-wide table on every call, which dominates a
    short CPU generation.)"""

    def __init__(self, tok: Any, prompt_len: int, stops: tuple[str, ...]) -> None:
        self.tok, self.prompt_len, self.stops = tok, prompt_len, stops

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        texts = self.tok.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        done = [any(s in t for s in self.stops) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def prefix_batch(tok: Any, template: PromptTemplate, questions: list[str]) -> tuple[list[int], Any]:
    """The shared prefix's ids and the batch laid out as ``[prefix][pads][question part]``:
    the prefix is run once and its KV cache repeated for every row (pads in the middle are
    masked out; positions follow the mask), so only the short question parts are prefilled."""
    prompts = [template.render(q, tok) for q in questions]
    prefix = template.shared_prefix_ids(tok, tuple(questions))
    p = len(prefix)
    suffixes = [tok(x, add_special_tokens=False)["input_ids"][p:] for x in prompts]
    width = p + max(len(x) for x in suffixes)
    ids = torch.full((len(prompts), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    ids[:, :p] = torch.tensor(prefix)
    mask[:, :p] = 1
    for row, suffix in enumerate(suffixes):
        ids[row, width - len(suffix) :] = torch.tensor(suffix)
        mask[row, width - len(suffix) :] = 1
    return prefix, {"input_ids": ids, "attention_mask": mask}


def run_batch(
    model: Any,
    tok: Any,
    template: PromptTemplate,
    questions: list[str],
    *,
    sample: bool,
    max_new_tokens: int,
    seed: int,
) -> list[str]:
    """Completions (cut at the stop strings) of ``questions`` in one batch, prefix cached."""
    prefix, enc = prefix_batch(tok, template, questions)
    width = enc["input_ids"].shape[1]
    stops = template.stop
    kwargs: dict[str, Any] = dict(
        max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id
    )
    if stops:
        kwargs["stopping_criteria"] = StoppingCriteriaList([StopOnText(tok, width, stops)])
    if sample:
        torch.manual_seed(seed)
        kwargs.update(do_sample=True, temperature=0.8, top_k=0, top_p=1.0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
    with torch.no_grad():
        cache = model(input_ids=torch.tensor([prefix]), use_cache=True).past_key_values
        cache.batch_repeat_interleave(len(questions))
        out = model.generate(**enc, past_key_values=cache, **kwargs)
    texts = tok.batch_decode(out[:, width:], skip_special_tokens=True)
    return [cut_at_stop(t, stops) for t in texts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="problems per cell (one batch)")
    ap.add_argument("--difficulties", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--templates", nargs="+", default=["plain", "chat"])
    ap.add_argument("--fewshot", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    # One thread: with other jobs on a 2-core machine, two torch threads spin against each other
    # (a decode step measured 8.3 s with 2 threads vs 0.47 s with 1 at load ~7).
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--show", type=int, default=0, help="print this many completions per cell")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    tok = load_embedded_tokenizer()
    tok.padding_side = "left"
    model = load_embedded_model().eval()
    print(f"model loaded in {time.perf_counter() - t0:.1f} s")

    rows = []
    for name in args.templates:
        template = get_template(name, fewshot=args.fewshot, task="arith")
        for d in args.difficulties:
            problems = make_arith_problems(args.n, seed=args.seed, difficulty=d, split="test")
            cell = [name, str(d)]
            for sample in (False, True):
                t = time.perf_counter()
                texts = run_batch(
                    model,
                    tok,
                    template,
                    [p.question for p in problems],
                    sample=sample,
                    max_new_tokens=args.max_new_tokens,
                    seed=args.seed,
                )
                right = verify_batch(texts, [p.answer for p in problems], style="boxed")
                boxed = sum(g is not None for g in extract_answers(texts, style="boxed"))
                acc = 100.0 * float(right.sum()) / len(problems)
                cell += [f"{acc:.0f}%", f"{100.0 * boxed / len(problems):.0f}%"]
                mode = "T=0.8" if sample else "greedy"
                print(
                    f"{name:5s} d{d} {mode:6s} acc {acc:5.1f}%  boxed {boxed}/{len(problems)}  "
                    f"{time.perf_counter() - t:.1f} s",
                    flush=True,
                )
                for p, text in list(zip(problems, texts))[: args.show]:
                    print(f"    {p.question!r} -> {text!r} (ref {p.answer})")
            rows.append(cell)

    print(
        f"\n{args.n} held-out problems per cell, seed {args.seed}, {args.fewshot}-shot, "
        f"max {args.max_new_tokens} new tokens, total {time.perf_counter() - t0:.0f} s\n"
    )
    print("| template | difficulty | greedy acc | greedy boxed | T=0.8 acc | T=0.8 boxed |")
    print("|---|---:|---:|---:|---:|---:|")
    for cell in rows:
        print("| " + " | ".join(cell) + " |")


if __name__ == "__main__":
    main()
