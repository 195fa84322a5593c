"""Bring your own task: rows of your own and a reward function with TRL's signature.

    python examples/custom_reward.py                                   # SmolLM2-135M-Instruct, CPU
    python examples/custom_reward.py --model tiny-llama --iterations 1  # the one-iteration CI check
"""

import argparse

import empg

WORDS = ["cat", "dog", "sun", "map", "pen", "cup", "hat", "box", "bus", "egg", "owl", "jam"]


def reversed_word(prompts, completions, word, **kwargs):
    """1.0 when the completion spells the row's ``word`` column backwards (every column reaches it)."""
    return [1.0 if w[::-1] in c.lower() else 0.0 for c, w in zip(completions, word)]


def rows(words):
    return [{"prompt": f"Spell the word '{w}' backwards.", "word": w} for w in words]


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--run-dir", default="runs/reverse")
    args = p.parse_args()
    cfg = empg.Config()  # the dataclasses a YAML file fills; the defaults are the embedded run's
    cfg.train.iterations, cfg.log.run_dir, cfg.sampling.max_new_tokens = args.iterations, args.run_dir, 16
    cfg.data.instruction = "Answer with the reversed word only."
    trainer = empg.Trainer(model=args.model, train_dataset=rows(WORDS[:9]), eval_dataset=rows(WORDS[9:]),
                           reward_funcs=[reversed_word], config=cfg)
    trainer.train()
    print(trainer.evaluate())
    trainer.save(f"{args.run_dir}/final")
