//! Trajectory packing: sequences (prompt + completion) into micro-batches under a token budget,
//! and the flat, padding-free buffers of one micro-batch for the M-step.
//!
//! Assignment is best-fit decreasing: sequences in decreasing length, each into the open
//! micro-batch with the least room that still fits it (a balanced tree of remaining room keeps this
//! O(n log n)), else into a new one. Best-fit decreasing uses at most 11/9·OPT + 1 micro-batches.

use std::collections::BTreeMap;

use crate::error::{CoreError, CoreResult};

/// Assign every sequence to exactly one micro-batch whose total length stays within `budget`.
/// A sequence longer than `budget` is an error naming it, or (with `allow_oversize`) a micro-batch
/// of its own. Micro-batches come in creation order; indices within one are ascending.
pub fn pack(lengths: &[u64], budget: u64, allow_oversize: bool) -> CoreResult<Vec<Vec<u32>>> {
    if budget == 0 {
        return Err(CoreError::invalid("token_budget", "must be at least 1"));
    }
    if lengths.len() > u32::MAX as usize {
        return Err(CoreError::invalid("lengths", "more than 2^32 sequences"));
    }
    let mut order: Vec<u32> = (0..lengths.len() as u32).collect();
    // Stable sort: equal lengths keep their input order, so the result is deterministic.
    order.sort_by(|&a, &b| lengths[b as usize].cmp(&lengths[a as usize]));

    let mut bins: Vec<Vec<u32>> = Vec::new();
    // remaining room -> bins with exactly that room (LIFO within a room size).
    let mut room: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for &i in &order {
        let len = lengths[i as usize];
        if len == 0 {
            return Err(CoreError::invalid(
                "lengths",
                format!("sequence {i} has 0 tokens; every sequence needs at least one"),
            ));
        }
        if len > budget {
            if !allow_oversize {
                return Err(CoreError::SequenceTooLong {
                    index: i as usize,
                    length: len,
                    budget,
                });
            }
            bins.push(vec![i]);
            continue;
        }
        let fit = room.range(len..).next().map(|(&r, _)| r);
        match fit {
            Some(r) => {
                let slot = room.get_mut(&r).expect("room key present");
                let b = slot.pop().expect("non-empty room slot");
                if slot.is_empty() {
                    room.remove(&r);
                }
                bins[b].push(i);
                let left = r - len;
                if left > 0 {
                    room.entry(left).or_default().push(b);
                }
            }
            None => {
                bins.push(vec![i]);
                let left = budget - len;
                if left > 0 {
                    room.entry(left).or_default().push(bins.len() - 1);
                }
            }
        }
    }
    for b in &mut bins {
        b.sort_unstable();
    }
    Ok(bins)
}

/// Sequences as one flat token buffer: sequence `i` is `tokens[offsets[i]..offsets[i+1]]`, of
/// which the first `prompt_lens[i]` tokens are the prompt and the rest the completion.
#[derive(Clone, Copy, Debug)]
pub struct Sequences<'a> {
    pub tokens: &'a [i64],
    pub offsets: &'a [i64],
    pub prompt_lens: &'a [i64],
    pub weights: &'a [f32],
}

impl<'a> Sequences<'a> {
    pub fn len(&self) -> usize {
        self.prompt_lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompt_lens.is_empty()
    }

    /// Check the layout once: offsets rise from 0 to the end of `tokens`, prompts fit.
    pub fn validate(&self) -> CoreResult<()> {
        let n = self.prompt_lens.len();
        if self.offsets.len() != n + 1 {
            return Err(CoreError::LengthMismatch {
                what: "offsets",
                expected: n + 1,
                got: self.offsets.len(),
            });
        }
        if self.weights.len() != n {
            return Err(CoreError::LengthMismatch {
                what: "weights",
                expected: n,
                got: self.weights.len(),
            });
        }
        if self.offsets[0] != 0 || self.offsets[n] != self.tokens.len() as i64 {
            return Err(CoreError::invalid(
                "offsets",
                format!(
                    "must start at 0 and end at the number of tokens ({}), got {}..{}",
                    self.tokens.len(),
                    self.offsets[0],
                    self.offsets[n]
                ),
            ));
        }
        for i in 0..n {
            let len = self.offsets[i + 1] - self.offsets[i];
            if len < 0 {
                return Err(CoreError::invalid("offsets", format!("decrease at sequence {i}")));
            }
            let p = self.prompt_lens[i];
            if p < 0 || p > len {
                return Err(CoreError::invalid(
                    "prompt_lens",
                    format!("sequence {i} has a prompt of {p} tokens but only {len} tokens"),
                ));
            }
            if !self.weights[i].is_finite() {
                return Err(CoreError::invalid(
                    "weights",
                    format!("weight of sequence {i} is {}", self.weights[i]),
                ));
            }
        }
        Ok(())
    }
}

/// The flat buffers of one micro-batch. Token `j` is predicted from the logits at `j - 1`;
/// `loss_mask[j]` is true for completion tokens (never for the first token of a sequence).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MicroBatch {
    pub input_ids: Vec<i64>,
    /// Restart at 0 for every sequence.
    pub position_ids: Vec<i64>,
    pub loss_mask: Vec<bool>,
    /// The sequence's weight on its completion tokens, 0 elsewhere.
    pub token_weights: Vec<f32>,
    /// Cumulative sequence lengths, `[0, l0, l0+l1, ...]`, for variable-length attention.
    pub cu_seqlens: Vec<i32>,
}

/// Build the micro-batch holding sequences `index` (in that order). `seqs` must be validated.
pub fn build_microbatch(seqs: &Sequences<'_>, index: &[u32]) -> CoreResult<MicroBatch> {
    let n = seqs.len();
    let mut total = 0usize;
    for &i in index {
        if i as usize >= n {
            return Err(CoreError::invalid(
                "index",
                format!("sequence {i} is out of range for {n} sequences"),
            ));
        }
        total += (seqs.offsets[i as usize + 1] - seqs.offsets[i as usize]) as usize;
    }
    if total > i32::MAX as usize {
        return Err(CoreError::invalid("index", "micro-batch over 2^31 tokens"));
    }
    let mut mb = MicroBatch {
        input_ids: Vec::with_capacity(total),
        position_ids: Vec::with_capacity(total),
        loss_mask: Vec::with_capacity(total),
        token_weights: Vec::with_capacity(total),
        cu_seqlens: Vec::with_capacity(index.len() + 1),
    };
    mb.cu_seqlens.push(0);
    for &i in index {
        let i = i as usize;
        let (start, end) = (seqs.offsets[i] as usize, seqs.offsets[i + 1] as usize);
        let len = end - start;
        // The first token has no logits before it in its own sequence, so it is never a target.
        let prompt = (seqs.prompt_lens[i] as usize).max(1).min(len);
        let w = seqs.weights[i];
        mb.input_ids.extend_from_slice(&seqs.tokens[start..end]);
        mb.position_ids.extend(0..len as i64);
        mb.loss_mask.extend((0..len).map(|t| t >= prompt));
        mb.token_weights
            .extend((0..len).map(|t| if t >= prompt { w } else { 0.0 }));
        mb.cu_seqlens.push(mb.input_ids.len() as i32);
    }
    Ok(mb)
}

#[cfg(test)]
mod tests {
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
        let mb = build_microbatch(&seqs, &[1, 0]).unwrap();
        assert_eq!(mb.input_ids, vec![4, 5, 6, 1, 2, 3]);
        assert_eq!(mb.position_ids, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(mb.loss_mask, vec![false, true, true, false, false, true]);
        assert_eq!(mb.token_weights, vec![0.0, -1.0, -1.0, 0.0, 0.0, 0.5]);
        assert_eq!(mb.cu_seqlens, vec![0, 3, 6]);
    }

    #[test]
    fn bad_layouts_are_named() {
        let seqs = Sequences {
            tokens: &[1, 2, 3],
            offsets: &[0, 3],
            prompt_lens: &[4],
            weights: &[1.0],
        };
        assert!(seqs.validate().unwrap_err().to_string().contains("prompt_lens"));
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
            let mb = build_microbatch(&s, &index).unwrap();
            let masked = mb.loss_mask.iter().filter(|&&m| m).count();
            prop_assert_eq!(masked, seqs.iter().map(|s| s.1).sum::<usize>());
            prop_assert_eq!(mb.input_ids.len(), tokens.len());
            prop_assert_eq!(*mb.cu_seqlens.last().unwrap() as usize, tokens.len());
            for (m, w) in mb.loss_mask.iter().zip(&mb.token_weights) {
                if !m { prop_assert_eq!(*w, 0.0); }
            }
        }
    }
}
