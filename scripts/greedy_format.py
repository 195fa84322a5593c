"""Does a checkpoint still write the sum out before its answer? Greedy completions of the default
run's 256 held-out problems by the initial model and by each checkpoint given: accuracy, how many
completions contain "=" (the worked equation the 2-shot examples show) and the accuracy of each
kind, and the first five completions.

    python scripts/greedy_format.py CHECKPOINT [CHECKPOINT ...]
"""
import sys, torch
from empg.models import load_model, load_tokenizer
from empg.prompts import get_template
from empg.samplers.hf import TransformersSampler
from empg.sampling import SamplingParams
from empg.tasks import make_arith_problems
from empg import verify_batch
torch.set_num_threads(1)
tok = load_tokenizer("smollm2-135m-instruct")
tpl = get_template("plain", fewshot=2, task="arith")
probs = make_arith_problems(256, seed=0, difficulty=0, split="test")
ids = [tok(tpl.render(p.question, tok), add_special_tokens=False)["input_ids"] for p in probs]
for name in ["smollm2-135m-instruct", *sys.argv[1:]]:
    model = load_model(name).eval()
    rolls = TransformersSampler(model, tok).generate(ids, SamplingParams(n=1, temperature=0.0, max_new_tokens=32, stop=tpl.stop))
    right = verify_batch([r.text for r in rolls], [p.answer for p in probs], style="boxed")
    eq = sum("=" in r.text for r in rolls)
    print(f"== {name}: greedy {right.mean():.3f}, completions writing the sum out ('='): {eq}/{len(rolls)}; "
          f"accuracy with '=' {sum(r for r, x in zip(right, rolls) if '=' in x.text)}/{eq}, without {sum(r for r, x in zip(right, rolls) if '=' not in x.text)}/{len(rolls)-eq}")
    for p, r in list(zip(probs, rolls))[:5]:
        print(f"   {p.question!r} -> {r.text!r} (ref {p.answer})")
