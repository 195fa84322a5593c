"""Plain pure-Python reference implementations of the Rust core's batch paths.

They define what the core must compute (tests check parity on generated inputs) and they are the
"straightforward pure-Python implementation" the benchmarks compare against. Deliberately simple:
dicts, lists and loops, no numpy.
"""

from __future__ import annotations

import math
import re


def group_weights(rewards, group_ids, scheme="group_norm", eps=1e-6, solved_threshold=1.0, drop_zero_signal=True):
    """Return (weights, groups) where groups maps id -> dict(mean, std, size, solved, zero_signal)."""
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group_ids):
        members.setdefault(g, []).append(i)
    weights = [0.0] * len(rewards)
    groups = {}
    for g, idx in members.items():
        rs = [rewards[i] for i in idx]
        n = len(rs)
        mean = sum(rs) / n
        std = math.sqrt(sum((r - mean) ** 2 for r in rs) / n)
        zero = max(rs) == min(rs)
        groups[g] = dict(
            mean=mean, std=std, size=n, solved=sum(r >= solved_threshold for r in rs) / n, zero_signal=zero
        )
        for i, r in zip(idx, rs):
            if zero and drop_zero_signal:
                w = 0.0
            elif scheme == "group_norm":
                w = (r - mean) / (std + eps)
            elif scheme == "mean_baseline":
                w = r - mean
            elif scheme == "raw":
                w = r
            elif scheme == "rloo":
                w = 0.0 if n < 2 else r - (sum(rs) - r) / (n - 1)
            else:
                raise ValueError(scheme)
            weights[i] = w
    return weights, groups


def pack_first_fit_decreasing(lengths, budget):
    """First-fit decreasing: each sequence, longest first, into the first micro-batch it fits."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        if n > budget:
            raise ValueError(f"sequence {i} longer than budget")
        for b in range(len(bins)):
            if room[b] >= n:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(budget - n)
    return [sorted(b) for b in bins]


def build_microbatch(seqs, prompt_lens, weights, index):
    """seqs: list of token lists. Returns dict of plain lists, the layout of empg.build_microbatch."""
    out = dict(input_ids=[], position_ids=[], loss_mask=[], token_weights=[], cu_seqlens=[0])
    for i in index:
        toks = seqs[i]
        p = min(max(prompt_lens[i], 1), len(toks))
        for t, tok in enumerate(toks):
            out["input_ids"].append(tok)
            out["position_ids"].append(t)
            out["loss_mask"].append(t >= p)
            out["token_weights"].append(weights[i] if t >= p else 0.0)
        out["cu_seqlens"].append(len(out["input_ids"]))
    return out


BEHAVIOURS = {
    "decomposition": re.compile(
        r"\b(first(ly)?|second(ly)?|then|next|finally|step \d+|break (it|this) down|sub-?problems?)\b",
        re.IGNORECASE),
    "verification": re.compile(
        r"\b(check(ing)?|verify(ing)?|double[- ]check|confirm(s|ed)?|let me make sure|plug(ging)? (it )?back)\b",
        re.IGNORECASE),
    "backtracking": re.compile(
        r"\b(wait|actually|let me (re\w+)|i made a mistake|that'?s (wrong|incorrect)|instead)\b",
        re.IGNORECASE),
}


def behaviour_counts(texts):
    """How many texts match each behaviour pattern, with Python's ``re`` (what empg used before
    the Rust core counted them)."""
    return {name: sum(1 for t in texts if pat.search(t)) for name, pat in BEHAVIOURS.items()}
