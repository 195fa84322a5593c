//! Unit and property tests of `pack.rs` (its `mod tests`, kept in a file of their own).

use super::*;
use proptest::prelude::*;

#[test]
fn best_fit_fills_bins() {
    let bins = pack(&[6, 4, 5, 5, 3, 7], 10, false).unwrap();
    // 7+3, 6+4, 5+5: perfect packing.
    assert_eq!(bins.len(), 3);
    for b in &bins {
        let s: u64 = b.iter().map(|&i| [6, 4, 5, 5, 3, 7][i as usize]).sum();
        assert_eq!(s, 10);
    }
}

#[test]
fn oversize_is_an_error_or_alone() {
    let e = pack(&[3, 12, 2], 10, false).unwrap_err();
    assert_eq!(
        e,
        CoreError::SequenceTooLong {
            index: 1,
            length: 12,
            budget: 10
        }
    );
    let bins = pack(&[3, 12, 2], 10, true).unwrap();
    assert!(bins.contains(&vec![1]));
    assert_eq!(bins.len(), 2);
}

#[test]
fn microbatch_buffers() {
    // seq 0: prompt [1,2], completion [3]; seq 1: prompt [4], completion [5,6]
    let tokens = [1, 2, 3, 4, 5, 6];
    let seqs = Sequences {
        tokens: &tokens,
        offsets: &[0, 3, 6],
        prompt_lens: &[2, 1],
        weights: &[0.5, -1.0],
    };
    seqs.validate().unwrap();
    let mb = build_microbatch(&seqs, &[1, 0], WeightLayout::PerToken).unwrap();
    assert_eq!(mb.input_ids, vec![4, 5, 6, 1, 2, 3]);
    assert_eq!(mb.position_ids, vec![0, 1, 2, 0, 1, 2]);
    assert_eq!(mb.loss_mask, vec![false, true, true, false, false, true]);
    assert_eq!(mb.token_weights, vec![0.0, -1.0, -1.0, 0.0, 0.0, 0.5]);
    assert_eq!(mb.cu_seqlens, vec![0, 3, 6]);
}

#[test]
fn grouped_sequences_share_their_prompt() {
    // group 0: prompt [1, 2]; group 1: prompt [7]. Sequences: (g0, [3]), (g1, [8, 9]), (g0, [4, 5]).
    let seqs = Grouped {
        prompts: &[1, 2, 7],
        prompt_offsets: &[0, 2, 3],
        completions: &[3, 8, 9, 4, 5],
        completion_offsets: &[0, 1, 3, 5],
        group: &[0, 1, 0],
        weights: &[0.5, -1.0, 2.0],
    };
    seqs.validate().unwrap();
    let mbs =
        build_microbatches(&seqs, &[vec![2, 1], vec![0]], WeightLayout::PerToken).unwrap();
    assert_eq!(mbs[0].input_ids, vec![1, 2, 4, 5, 7, 8, 9]);
    assert_eq!(mbs[0].position_ids, vec![0, 1, 2, 3, 0, 1, 2]);
    assert_eq!(
        mbs[0].loss_mask,
        vec![false, false, true, true, false, true, true]
    );
    assert_eq!(
        mbs[0].token_weights,
        vec![0.0, 0.0, 2.0, 2.0, 0.0, -1.0, -1.0]
    );
    assert_eq!(mbs[0].cu_seqlens, vec![0, 4, 7]);
    assert_eq!(mbs[1].input_ids, vec![1, 2, 3]);
    // The same sequences stored flat give the same buffers.
    let tokens = [1, 2, 3, 7, 8, 9, 1, 2, 4, 5];
    let flat = Sequences {
        tokens: &tokens,
        offsets: &[0, 3, 6, 10],
        prompt_lens: &[2, 1, 2],
        weights: &[0.5, -1.0, 2.0],
    };
    assert_eq!(
        build_microbatch(&flat, &[2, 1], WeightLayout::PerToken).unwrap(),
        mbs[0]
    );
    let targets = build_microbatch(&seqs, &[2, 1], WeightLayout::PerTarget).unwrap();
    assert_eq!(targets.token_weights, vec![2.0, 2.0, -1.0, -1.0]);
    let bad = Grouped {
        group: &[0, 2, 0],
        ..seqs
    };
    assert!(bad.validate().unwrap_err().to_string().contains("group 2"));
    let bad = Grouped {
        prompt_offsets: &[0, 2, 2],
        prompts: &[1, 2],
        ..seqs
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("no tokens"));
}

#[test]
fn bad_layouts_are_named() {
    let seqs = Sequences {
        tokens: &[1, 2, 3],
        offsets: &[0, 3],
        prompt_lens: &[4],
        weights: &[1.0],
    };
    assert!(seqs
        .validate()
        .unwrap_err()
        .to_string()
        .contains("prompt_lens"));
    let seqs = Sequences {
        tokens: &[1, 2, 3],
        offsets: &[0, 2],
        prompt_lens: &[1],
        weights: &[1.0],
    };
    assert!(seqs.validate().unwrap_err().to_string().contains("offsets"));
}

proptest! {
    #[test]
    fn bitset_and_ordered_set_agree(
        lengths in prop::collection::vec(1u64..5000, 0..300),
        budget in 5000u64..20000,
    ) {
        let mut order: Vec<u32> = (0..lengths.len() as u32).collect();
        order.sort_unstable_by_key(|&i| (std::cmp::Reverse(lengths[i as usize]), i));
        let a = best_fit(&lengths, &order, budget, false, BitsetRooms::new(budget)).unwrap();
        let b = best_fit(&lengths, &order, budget, false, BTreeSet::new()).unwrap();
        // Same rooms chosen at every step, so the same number of bins and the same fill.
        prop_assert_eq!(a.len(), b.len());
        let fill = |bins: &Vec<Vec<u32>>| {
            let mut f: Vec<u64> = bins.iter().map(|x| x.iter().map(|&i| lengths[i as usize]).sum()).collect();
            f.sort_unstable();
            f
        };
        prop_assert_eq!(fill(&a), fill(&b));
    }

    #[test]
    fn every_sequence_once_and_no_bin_over_budget(
        lengths in prop::collection::vec(1u64..300, 0..200),
        budget in 1u64..600,
    ) {
        let bins = pack(&lengths, budget, true).unwrap();
        let mut seen = vec![0u32; lengths.len()];
        for b in &bins {
            prop_assert!(!b.is_empty());
            let total: u64 = b.iter().map(|&i| lengths[i as usize]).sum();
            prop_assert!(total <= budget || b.len() == 1);
            for &i in b { seen[i as usize] += 1; }
        }
        prop_assert!(seen.iter().all(|&c| c == 1));
        // Never more micro-batches than twice the lower bound (any-fit guarantee).
        let fitting: u64 = lengths.iter().filter(|&&l| l <= budget).sum();
        let oversize = lengths.iter().filter(|&&l| l > budget).count() as u64;
        let lower = fitting.div_ceil(budget);
        prop_assert!((bins.len() as u64) <= 2 * lower + 1 + oversize);
    }

    #[test]
    fn microbatch_masks_only_completions(
        seqs in prop::collection::vec((1usize..20, 0usize..20, -3.0f32..3.0), 1..20),
    ) {
        let mut tokens = vec![];
        let mut offsets = vec![0i64];
        let mut prompt_lens = vec![];
        let mut weights = vec![];
        for (k, &(p, c, w)) in seqs.iter().enumerate() {
            tokens.extend((0..p + c).map(|t| (k * 1000 + t) as i64));
            offsets.push(tokens.len() as i64);
            prompt_lens.push(p as i64);
            weights.push(w);
        }
        let s = Sequences { tokens: &tokens, offsets: &offsets, prompt_lens: &prompt_lens, weights: &weights };
        s.validate().unwrap();
        let index: Vec<u32> = (0..seqs.len() as u32).rev().collect();
        let mb = build_microbatch(&s, &index, WeightLayout::PerToken).unwrap();
        let masked = mb.loss_mask.iter().filter(|&&m| m).count();
        prop_assert_eq!(masked, seqs.iter().map(|s| s.1).sum::<usize>());
        prop_assert_eq!(mb.input_ids.len(), tokens.len());
        prop_assert_eq!(*mb.cu_seqlens.last().unwrap() as usize, tokens.len());
        for (m, w) in mb.loss_mask.iter().zip(&mb.token_weights) {
            if !m { prop_assert_eq!(*w, 0.0); }
        }
    }
}
