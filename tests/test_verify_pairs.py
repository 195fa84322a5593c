"""Every pair of the hand-written table `verify_pairs.PAIRS`, in both orders."""

from __future__ import annotations

from collections import Counter

import pytest

import empg
from verify_pairs import PAIRS


def test_table_covers_every_family_both_ways():
    assert len(PAIRS) >= 150
    signs = Counter((fam, eq) for fam, _, _, eq in PAIRS)
    families = {fam for fam, _, _, _ in PAIRS} - {"malformed"}
    missing = [f for f in sorted(families) if not (signs[(f, True)] and signs[(f, False)])]
    assert missing == []


@pytest.mark.parametrize(("family", "reference", "candidate", "expected"), PAIRS, ids=lambda v: str(v)[:30])
def test_pair(family, reference, candidate, expected):
    assert empg.is_equivalent(reference, candidate) is expected
    assert empg.is_equivalent(candidate, reference) is expected
