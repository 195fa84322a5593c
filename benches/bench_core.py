"""Every Rust entry point against the best numpy version a user would write and a straightforward
pure-Python one, on the same inputs, in one run.

    python benches/bench_core.py [--out benches/results/core.md]      # measure, write JSON + table
    python benches/bench_core.py --table benches/results/core.json     # the table from the records

* weights: 64k completions in groups of 16 (binary rewards), scheme group_norm;
* packing: 4k sequences of 50-2,000 tokens into micro-batches of at most 16k tokens (numpy has no
  bin packing: the peer is first-fit decreasing in Python);
* buffers: the flat input/position/mask/weight buffers of every one of those micro-batches;
* behaviours: the decomposition / verification / backtracking counts over real GSM8K and MATH
  solutions (``re`` is the peer: the patterns are regular expressions).

Each path runs ``repeat`` times; the records (min, median, max) go to ``<out>.json`` and the table
(best of the repeats, ratios of the bests) is generated from them. Targets: Rust >= 50x pure
Python (>= 1x ``re``) and >= 1x numpy on every row; packing padding < 3%.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import empg  # noqa: E402
import reference as ref  # noqa: E402
from _machine import machine_line, print_table, results_args, save  # noqa: E402


def timed(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return {"min": min(times), "median": float(np.median(times)), "max": max(times), "repeat": repeat}, out


def numpy_group_norm(rewards: np.ndarray, k: int, eps: float = 1e-6) -> np.ndarray:
    """The three-line numpy version: consecutive groups of ``k``."""
    x = rewards.reshape(-1, k)
    m, s = x.mean(1, keepdims=True), x.std(1, keepdims=True)
    return np.where(s > 0, (x - m) / (s + eps), 0).astype(np.float32).ravel()


def numpy_microbatch(tokens, offsets, prompt_lens, weights, idx) -> dict[str, np.ndarray]:
    """One micro-batch's buffers with vectorised numpy (no Python loop over sequences)."""
    starts = offsets[idx]
    lens = offsets[idx + 1] - starts
    cu = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lens, out=cu[1:])
    pos = np.arange(cu[-1]) - np.repeat(cu[:-1], lens)
    mask = pos >= np.repeat(np.maximum(prompt_lens[idx], 1), lens)
    return {"input_ids": tokens[np.repeat(starts, lens) + pos], "position_ids": pos, "loss_mask": mask,
            "token_weights": np.where(mask, np.repeat(weights[idx], lens), np.float32(0)),
            "cu_seqlens": cu.astype(np.int32)}


def real_texts() -> list[str] | None:
    """GSM8K and MATH training solutions (the shared data folder), or None where it is absent."""
    root = Path(os.environ.get("EMPG_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    texts = []
    for path, field in ((root / "gsm8k" / "train.jsonl", "answer"), (root / "math" / "train.jsonl", "solution")):
        if path.exists():
            texts += [json.loads(line)[field] for line in path.read_text().splitlines() if line.strip()]
    return texts or None


def measure() -> dict:
    rng = np.random.default_rng(0)
    rows = []

    # --- weights
    n, k = 65536, 16
    rewards = rng.integers(0, 2, size=n).astype(np.float32)
    ids = np.repeat(np.arange(n // k), k)
    r_list, id_list = rewards.tolist(), ids.tolist()
    t_py, (w_py, _) = timed(lambda: ref.group_weights(r_list, id_list), 3)
    t_np, w_np = timed(lambda: numpy_group_norm(rewards, k), 50)
    t_rs, out = timed(lambda: empg.group_weights(rewards, group_size=k), 50)
    t_rs_ids, _ = timed(lambda: empg.group_weights(rewards, group_ids=ids), 50)
    np.testing.assert_allclose(out.weights, w_py, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.weights, w_np, rtol=1e-5, atol=1e-5)
    rows.append({"path": "group weights (64k completions, K=16)", "python": t_py, "numpy": t_np, "rust": t_rs})
    rows.append({"path": "group weights, by group ids", "python": t_py, "numpy": t_np, "rust": t_rs_ids})

    # --- packing
    m, budget = 4096, 16384
    lengths = rng.integers(50, 2001, size=m)
    l_list = lengths.tolist()
    t_pack_py, bins_py = timed(lambda: ref.pack_first_fit_decreasing(l_list, budget), 3)
    t_pack_rs, bins = timed(lambda: empg.pack_microbatches(lengths, budget), 20)
    used = int(lengths.sum())
    rows.append({"path": "packing (4k seqs of 50-2000 tokens, 16k budget)", "python": t_pack_py, "numpy": None,
                 "rust": t_pack_rs})

    # --- buffers of every micro-batch
    prompt_lens = rng.integers(20, 50, size=m)
    seq_weights = rng.standard_normal(m).astype(np.float32)
    seqs = [rng.integers(0, 50000, size=int(L)).tolist() for L in lengths]
    flat = empg.flatten_sequences(seqs)
    pl_list, sw_list = prompt_lens.tolist(), seq_weights.tolist()
    t_buf_py, _ = timed(lambda: [ref.build_microbatch(seqs, pl_list, sw_list, b.tolist()) for b in bins], 1)
    # Back to back, as the M-step builds them step after step (freed buffers are reused).
    t_buf_np, mbs_np = timed(lambda: [numpy_microbatch(flat.tokens, flat.offsets, prompt_lens, seq_weights, b)
                                      for b in bins], 10)
    t_buf_rs, mbs = timed(
        lambda: empg.build_microbatches(flat.tokens, flat.offsets, prompt_lens, seq_weights, bins), 10)
    for a, b in zip(mbs, mbs_np):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    rows.append({"path": f"micro-batch buffers ({used / 1e6:.1f}M tokens)", "python": t_buf_py,
                 "numpy": t_buf_np, "rust": t_buf_rs})

    # --- behaviour counts
    texts = real_texts()
    if texts is not None:
        from empg import metrics

        t_be_py, want = timed(lambda: ref.behaviour_counts(texts), 3)
        t_be_rs, got = timed(lambda: metrics.behaviour_counts(texts), 10)
        assert got == want, (got, want)
        rows.append({"path": f"behaviour counts ({len(texts) / 1e3:.1f}k GSM8K+MATH solutions)",
                     "python": t_be_py, "numpy": None, "rust": t_be_rs, "peer": "re"})

    return {"rows": rows, "packing": {"bins": len(bins), "bins_python_ffd": len(bins_py),
                                      "lower_bound": -(-used // budget),
                                      "empty": 1 - used / (len(bins) * budget),
                                      "empty_python_ffd": 1 - used / (len(bins_py) * budget)},
            "machine": machine_line(), "threads": empg.parallelism(), "load": list(os.getloadavg())}


def table(rec: dict) -> str:
    def ms(t):
        return "—" if t is None else f"{t['min'] * 1e3:.2f} ms ({t['median'] * 1e3:.2f}, {t['max'] * 1e3:.2f})"

    def ratio(a, b):
        return "—" if a is None else f"{a['min'] / b['min']:.1f}x"

    lines = ["| path | pure Python | numpy | empg (Rust) | vs Python | vs numpy |", "|---|---:|---:|---:|---:|---:|"]
    for r in rec["rows"]:
        py = ms(r["python"]) + (" (`re`)" if r.get("peer") == "re" else "")
        lines.append(f"| {r['path']} | {py} | {ms(r['numpy'])} | {ms(r['rust'])} | "
                     f"{ratio(r['python'], r['rust'])} | {ratio(r['numpy'], r['rust'])} |")
    p = rec["packing"]
    lines += ["", "Best of the repeats (median, max in brackets; the machine is shared). Packing: "
              f"{p['bins']} micro-batches (lower bound {p['lower_bound']}; first-fit-decreasing in Python: "
              f"{p['bins_python_ffd']}), budget left empty {p['empty']:.2%} (Python FFD {p['empty_python_ffd']:.2%}); "
              "with varlen attention no token is padding.", "",
              f"Machine: {rec['machine']}; empg threads: {rec['threads']}; "
              f"load average {' '.join(f'{x:.2f}' for x in rec['load'])}."]
    return "\n".join(lines)


def main() -> None:
    ap = results_args(__doc__)
    args = ap.parse_args()
    if args.table:
        return print_table(args.table, table)
    rec = measure()
    text = table(rec)
    print(text)
    ok = all(r["python"]["min"] / r["rust"]["min"] >= (1 if r.get("peer") == "re" else 50)
             and (r["numpy"] is None or r["numpy"]["min"] >= r["rust"]["min"]) for r in rec["rows"])
    ok = ok and rec["packing"]["empty"] < 0.03
    print("\nTargets (>= 50x Python, >= 1x numpy, padding < 3%):", "met" if ok else "NOT met")
    if args.out:
        save(args.out, "bench_core", rec, text)


if __name__ == "__main__":
    main()
