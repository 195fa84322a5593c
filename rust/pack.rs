//! Trajectory packing: sequences (prompt + completion) into micro-batches under a token budget,
//! and the flat, padding-free buffers of one micro-batch for the M-step.
//!
//! Assignment is best-fit decreasing: sequences in decreasing length, each into the open
//! micro-batch with the least room that still fits it, else into a new one. Best-fit decreasing
//! uses at most 11/9·OPT + 1 micro-batches. Open micro-batches are indexed by their remaining room
//! in a two-level bitset with an intrusive list per room value, so finding the best fit is a few
//! word operations (budgets up to 2^22 tokens; larger budgets use an ordered set).

use std::collections::BTreeSet;

/// Budgets up to this size use the bitset index (its memory is ~budget/2 bytes).
const BITSET_MAX_BUDGET: u64 = 1 << 22;

/// Open micro-batches by remaining room: "which bin has the least room >= len".
trait RoomIndex {
    fn insert(&mut self, room: u64, bin: u32);
    /// Remove and return the (room, bin) with the least room >= `len`.
    fn take_best_fit(&mut self, len: u64) -> Option<(u64, u32)>;
}

impl RoomIndex for BTreeSet<(u64, u32)> {
    fn insert(&mut self, room: u64, bin: u32) {
        BTreeSet::insert(self, (room, bin));
    }
    fn take_best_fit(&mut self, len: u64) -> Option<(u64, u32)> {
        let hit = self.range((len, 0)..).next().copied()?;
        self.remove(&hit);
        Some(hit)
    }
}

/// Bit r of `words` is set when some bin has room r; bit w of `summary` when word w is non-zero.
/// Bins with the same room form a LIFO list through `head`/`next`.
struct BitsetRooms {
    words: Vec<u64>,
    summary: Vec<u64>,
    head: Vec<u32>, // per room value: bin + 1, or 0 for none
    next: Vec<u32>, // per bin: the next bin + 1 with the same room, or 0
}

impl BitsetRooms {
    fn new(budget: u64) -> Self {
        let rooms = budget as usize + 1;
        let words = rooms.div_ceil(64);
        BitsetRooms {
            words: vec![0; words],
            summary: vec![0; words.div_ceil(64)],
            head: vec![0; rooms],
            next: Vec::new(),
        }
    }

    fn next_set_bit(&self, from: usize) -> Option<usize> {
        let w = from / 64;
        if w >= self.words.len() {
            return None;
        }
        let bits = self.words[w] & (!0u64 << (from % 64));
        if bits != 0 {
            return Some(w * 64 + bits.trailing_zeros() as usize);
        }
        // Find the next non-zero word through the summary.
        let from_w = w + 1;
        let mut s = from_w / 64;
        if s >= self.summary.len() {
            return None;
        }
        let mut sbits = self.summary[s]
            & if from_w % 64 == 0 {
                !0
            } else {
                !0u64 << (from_w % 64)
            };
        loop {
            if sbits != 0 {
                let word = s * 64 + sbits.trailing_zeros() as usize;
                return Some(word * 64 + self.words[word].trailing_zeros() as usize);
            }
            s += 1;
            if s >= self.summary.len() {
                return None;
            }
            sbits = self.summary[s];
        }
    }
}

impl RoomIndex for BitsetRooms {
    fn insert(&mut self, room: u64, bin: u32) {
        let r = room as usize;
        if self.next.len() <= bin as usize {
            self.next.resize(bin as usize + 1, 0);
        }
        self.next[bin as usize] = self.head[r];
        self.head[r] = bin + 1;
        self.words[r / 64] |= 1 << (r % 64);
        self.summary[r / 4096] |= 1 << ((r / 64) % 64);
    }

    fn take_best_fit(&mut self, len: u64) -> Option<(u64, u32)> {
        let r = self.next_set_bit(len as usize)?;
        let bin = self.head[r] - 1;
        self.head[r] = self.next[bin as usize];
        if self.head[r] == 0 {
            self.words[r / 64] &= !(1 << (r % 64));
            if self.words[r / 64] == 0 {
                self.summary[r / 4096] &= !(1 << ((r / 64) % 64));
            }
        }
        Some((r as u64, bin))
    }
}

use crate::error::{CoreError, CoreResult};

/// Assign every sequence to exactly one micro-batch whose total length stays within `budget`.
/// A sequence longer than `budget` is an error naming it, or (with `allow_oversize`) a micro-batch
/// of its own. Micro-batches come in creation order; indices within one are ascending.
pub fn pack(lengths: &[u64], budget: u64, allow_oversize: bool) -> CoreResult<Vec<Vec<u32>>> {
    if budget == 0 {
        return Err(CoreError::invalid("token_budget", "must be at least 1"));
    }
    if lengths.len() >= u32::MAX as usize {
        return Err(CoreError::invalid("lengths", "2^32 sequences or more"));
    }
    if let Some(i) = lengths.iter().position(|&l| l == 0) {
        return Err(CoreError::invalid(
            "lengths",
            format!("sequence {i} has 0 tokens; every sequence needs at least one"),
        ));
    }
    // Decreasing length; ties keep input order, so the result is deterministic.
    let mut order: Vec<u32> = (0..lengths.len() as u32).collect();
    order.sort_unstable_by_key(|&i| (std::cmp::Reverse(lengths[i as usize]), i));
    if budget <= BITSET_MAX_BUDGET {
        best_fit(
            lengths,
            &order,
            budget,
            allow_oversize,
            BitsetRooms::new(budget),
        )
    } else {
        best_fit(lengths, &order, budget, allow_oversize, BTreeSet::new())
    }
}

fn best_fit(
    lengths: &[u64],
    order: &[u32],
    budget: u64,
    allow_oversize: bool,
    mut rooms: impl RoomIndex,
) -> CoreResult<Vec<Vec<u32>>> {
    let mut bins: Vec<Vec<u32>> = Vec::new();
    for &i in order {
        let len = lengths[i as usize];
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
        let (left, b) = match rooms.take_best_fit(len) {
            Some((r, b)) => {
                bins[b as usize].push(i);
                (r - len, b)
            }
            None => {
                bins.push(vec![i]);
                (budget - len, (bins.len() - 1) as u32)
            }
        };
        if left > 0 {
            rooms.insert(left, b);
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
                return Err(CoreError::invalid(
                    "offsets",
                    format!("decrease at sequence {i}"),
                ));
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

/// Sequences whose prompt ids are stored once per group (the K completions of a question share
/// them): sequence `i` is `prompts[prompt_offsets[g]..prompt_offsets[g+1]]` with `g = group[i]`,
/// then `completions[completion_offsets[i]..completion_offsets[i+1]]`. Ids are int32, as samplers
/// give them.
#[derive(Clone, Copy, Debug)]
pub struct Grouped<'a> {
    pub prompts: &'a [i32],
    pub prompt_offsets: &'a [i64],
    pub completions: &'a [i32],
    pub completion_offsets: &'a [i64],
    pub group: &'a [i64],
    pub weights: &'a [f32],
}

fn check_offsets(what: &'static str, offsets: &[i64], tokens: usize, n: usize) -> CoreResult<()> {
    if offsets.len() != n + 1 {
        return Err(CoreError::LengthMismatch {
            what,
            expected: n + 1,
            got: offsets.len(),
        });
    }
    if offsets[0] != 0 || offsets[n] != tokens as i64 {
        return Err(CoreError::invalid(
            what,
            format!(
                "must start at 0 and end at the number of tokens ({tokens}), got {}..{}",
                offsets[0], offsets[n]
            ),
        ));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(CoreError::invalid(what, format!("decrease at entry {i}")));
    }
    Ok(())
}

impl<'a> Grouped<'a> {
    /// Check the layout once: offsets rise over their buffers, every sequence names a group with
    /// a prompt of at least one token, weights are finite.
    pub fn validate(&self) -> CoreResult<()> {
        let n = self.group.len();
        let groups = self.prompt_offsets.len().saturating_sub(1);
        check_offsets(
            "prompt_offsets",
            self.prompt_offsets,
            self.prompts.len(),
            groups,
        )?;
        check_offsets(
            "completion_offsets",
            self.completion_offsets,
            self.completions.len(),
            n,
        )?;
        if self.weights.len() != n {
            return Err(CoreError::LengthMismatch {
                what: "weights",
                expected: n,
                got: self.weights.len(),
            });
        }
        for (i, &g) in self.group.iter().enumerate() {
            if g < 0 || g as usize >= groups {
                return Err(CoreError::invalid(
                    "group",
                    format!("sequence {i} names group {g}, but there are {groups} prompts"),
                ));
            }
            if self.prompt_offsets[g as usize + 1] == self.prompt_offsets[g as usize] {
                return Err(CoreError::invalid(
                    "prompt_offsets",
                    format!("the prompt of group {g} (sequence {i}) has no tokens"),
                ));
            }
        }
        if let Some(i) = self.weights.iter().position(|w| !w.is_finite()) {
            return Err(CoreError::invalid(
                "weights",
                format!("weight of sequence {i} is {}", self.weights[i]),
            ));
        }
        Ok(())
    }
}

/// What a micro-batch needs of each sequence, whatever the storage.
pub trait SequenceSource: Sync {
    /// Number of sequences.
    fn count(&self) -> usize;
    /// (prompt tokens, all tokens) of sequence `i`.
    fn lens(&self, i: usize) -> (usize, usize);
    fn weight(&self, i: usize) -> f32;
    /// Append the ids of sequence `i` (prompt, then completion) to `out`.
    fn extend_ids(&self, i: usize, out: &mut Vec<i64>);
}

impl SequenceSource for Sequences<'_> {
    fn count(&self) -> usize {
        self.len()
    }
    fn lens(&self, i: usize) -> (usize, usize) {
        let len = (self.offsets[i + 1] - self.offsets[i]) as usize;
        (self.prompt_lens[i] as usize, len)
    }
    fn weight(&self, i: usize) -> f32 {
        self.weights[i]
    }
    fn extend_ids(&self, i: usize, out: &mut Vec<i64>) {
        out.extend_from_slice(&self.tokens[self.offsets[i] as usize..self.offsets[i + 1] as usize]);
    }
}

impl Grouped<'_> {
    fn prompt(&self, i: usize) -> &[i32] {
        let g = self.group[i] as usize;
        &self.prompts[self.prompt_offsets[g] as usize..self.prompt_offsets[g + 1] as usize]
    }
    fn completion(&self, i: usize) -> &[i32] {
        &self.completions
            [self.completion_offsets[i] as usize..self.completion_offsets[i + 1] as usize]
    }
}

impl SequenceSource for Grouped<'_> {
    fn count(&self) -> usize {
        self.group.len()
    }
    fn lens(&self, i: usize) -> (usize, usize) {
        let p = self.prompt(i).len();
        (p, p + self.completion(i).len())
    }
    fn weight(&self, i: usize) -> f32 {
        self.weights[i]
    }
    fn extend_ids(&self, i: usize, out: &mut Vec<i64>) {
        out.extend(self.prompt(i).iter().map(|&t| t as i64));
        out.extend(self.completion(i).iter().map(|&t| t as i64));
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

/// Check that `index` names valid sequences; returns the micro-batch's token count.
fn index_tokens(seqs: &impl SequenceSource, index: &[u32]) -> CoreResult<usize> {
    let n = seqs.count();
    let mut total = 0usize;
    for &i in index {
        if i as usize >= n {
            return Err(CoreError::invalid(
                "index",
                format!("sequence {i} is out of range for {n} sequences"),
            ));
        }
        total += seqs.lens(i as usize).1;
    }
    if total > i32::MAX as usize {
        return Err(CoreError::invalid("index", "micro-batch over 2^31 tokens"));
    }
    Ok(total)
}

/// The input ids of the micro-batch holding sequences `index`: their tokens, concatenated.
pub fn gather_input_ids(seqs: &impl SequenceSource, index: &[u32]) -> CoreResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(index_tokens(seqs, index)?);
    for &i in index {
        seqs.extend_ids(i as usize, &mut ids);
    }
    Ok(ids)
}

/// Where a micro-batch carries the sequence weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightLayout {
    /// One per token, 0 on prompt tokens (`token_weights` lines up with `input_ids`).
    PerToken,
    /// One per target (completion) token only, in order: what the loss multiplies.
    PerTarget,
}

/// Everything of the micro-batch but its input ids (left empty): positions, loss mask, weights and
/// cumulative lengths.
pub fn layout(
    seqs: &impl SequenceSource,
    index: &[u32],
    weights: WeightLayout,
) -> CoreResult<MicroBatch> {
    let total = index_tokens(seqs, index)?;
    let mut mb = MicroBatch {
        input_ids: Vec::new(),
        position_ids: Vec::with_capacity(total),
        loss_mask: Vec::with_capacity(total),
        token_weights: Vec::with_capacity(total),
        cu_seqlens: Vec::with_capacity(index.len() + 1),
    };
    mb.cu_seqlens.push(0);
    for &i in index {
        let (p, len) = seqs.lens(i as usize);
        // The first token has no logits before it in its own sequence, so it is never a target.
        let prompt = p.max(1).min(len);
        mb.position_ids.extend(0..len as i64);
        mb.loss_mask.resize(mb.loss_mask.len() + prompt, false);
        mb.loss_mask
            .resize(mb.loss_mask.len() + (len - prompt), true);
        if weights == WeightLayout::PerToken {
            mb.token_weights
                .resize(mb.token_weights.len() + prompt, 0.0);
        }
        mb.token_weights.resize(
            mb.token_weights.len() + (len - prompt),
            seqs.weight(i as usize),
        );
        mb.cu_seqlens.push(mb.position_ids.len() as i32);
    }
    Ok(mb)
}

/// Build the micro-batch holding sequences `index` (in that order). `seqs` must be validated.
pub fn build_microbatch(
    seqs: &impl SequenceSource,
    index: &[u32],
    weights: WeightLayout,
) -> CoreResult<MicroBatch> {
    let input_ids = gather_input_ids(seqs, index)?;
    Ok(MicroBatch {
        input_ids,
        ..layout(seqs, index, weights)?
    })
}

/// Every micro-batch of `bins` (one optimizer step's), built in parallel on empg's pool.
pub fn build_microbatches(
    seqs: &impl SequenceSource,
    bins: &[Vec<u32>],
    weights: WeightLayout,
) -> CoreResult<Vec<MicroBatch>> {
    use rayon::prelude::*;
    crate::parallel::install(|| {
        bins.par_iter()
            .map(|b| build_microbatch(seqs, b, weights))
            .collect()
    })
}

#[cfg(test)]
#[path = "pack_tests.rs"]
mod tests;
