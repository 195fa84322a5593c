"""Does a checkpoint still write the sum out before its answer? Greedy completions of the default
run's 256 held-out problems by the initial model and by each checkpoint given: accuracy, how many
completions contain "=" (the worked equation the 2-shot examples show) and the accuracy of each
kind, and the first five completions.

    python scripts/greedy_format.py CHECKPOINT [CHECKPOINT ...]
"""

from __future__ import annotations

import sys

import torch

from empg import verify_batch
from empg.config import load_config
from empg.data import load_problems
from empg.models import load_model, load_tokenizer
from empg.prompts import get_template
from empg.samplers.hf import TransformersSampler
from empg.sampling import SamplingParams


def main(checkpoints: list[str]) -> None:
    torch.set_num_threads(1)
    cfg = load_config(None, [])  # the default run's model, held-out problems and prompt
    d = cfg.data
    tok = load_tokenizer(cfg.model.name)
    tpl = get_template(d.template, fewshot=d.fewshot, task=d.source)
    probs, _ = load_problems(d.source, split=d.eval_split, limit=d.eval_limit, shuffle_seed=d.shuffle_seed)
    ids = [tok(tpl.render(p.question, tok), add_special_tokens=False)["input_ids"] for p in probs]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=cfg.sampling.max_new_tokens, stop=tpl.stop)
    for name in [cfg.model.name, *checkpoints]:
        rolls = TransformersSampler(load_model(name).eval(), tok).generate(ids, params)
        right = verify_batch([r.text for r in rolls], [p.answer for p in probs], style="boxed")
        worked = [("=" in r.text) for r in rolls]
        eq = sum(worked)
        right_eq = sum(x for x, w in zip(right, worked) if w)
        right_bare = sum(x for x, w in zip(right, worked) if not w)
        print(f"== {name}: greedy {right.mean():.3f}, completions writing the sum out ('='): {eq}/{len(rolls)}; "
              f"accuracy with '=' {right_eq}/{eq}, without {right_bare}/{len(rolls) - eq}")
        for p, r in list(zip(probs, rolls))[:5]:
            print(f"   {p.question!r} -> {r.text!r} (ref {p.answer})")


if __name__ == "__main__":
    main(sys.argv[1:])
