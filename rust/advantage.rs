//! M-step weights from rewards and their groups (the K samples of one question).
//!
//! For the EM objective `L = -Σ w_i Σ_t log π(z_i,t | ...)`, each completion's weight `w_i` comes
//! from the rewards of its group, by one of four schemes:
//!
//! | scheme          | w_i                                   |
//! |-----------------|---------------------------------------|
//! | `group_norm`    | (r_i − mean) / (std + eps)  (default) |
//! | `mean_baseline` | r_i − mean                            |
//! | `raw`           | r_i  (rejection-sampling fine-tuning)  |
//! | `rloo`          | r_i − mean of the other rewards       |
//!
//! `std` is the population standard deviation of the group. A group whose rewards all agree carries
//! no signal: it is flagged in `zero_signal` and (by default) all its weights are 0.
//! Sums are taken in f64; weights come out as f32.

use std::collections::HashMap;
use std::str::FromStr;

use crate::error::{CoreError, CoreResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    GroupNorm,
    MeanBaseline,
    Raw,
    Rloo,
}

impl Scheme {
    pub const NAMES: [&'static str; 4] = ["group_norm", "mean_baseline", "raw", "rloo"];
}

impl FromStr for Scheme {
    type Err = CoreError;
    fn from_str(s: &str) -> CoreResult<Self> {
        match s {
            "group_norm" => Ok(Scheme::GroupNorm),
            "mean_baseline" => Ok(Scheme::MeanBaseline),
            "raw" => Ok(Scheme::Raw),
            "rloo" => Ok(Scheme::Rloo),
            other => Err(CoreError::invalid(
                "scheme",
                format!("{other:?} is not one of {}", Scheme::NAMES.join(", ")),
            )),
        }
    }
}

/// How completions are grouped: consecutive runs of a fixed size, or an id per completion
/// (groups of uneven size, in any order).
#[derive(Clone, Copy, Debug)]
pub enum Grouping<'a> {
    Size(usize),
    Ids(&'a [i64]),
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub scheme: Scheme,
    pub eps: f64,
    /// A completion counts as solved when its reward is at least this.
    pub solved_threshold: f32,
    /// Give every completion of a zero-signal group the weight 0.
    pub drop_zero_signal: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scheme: Scheme::GroupNorm,
            eps: 1e-6,
            solved_threshold: 1.0,
            drop_zero_signal: true,
        }
    }
}

/// Per-group statistics, groups in order of first appearance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupStats {
    pub ids: Vec<i64>,
    pub size: Vec<u32>,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Fraction of the group's completions whose reward reaches the solved threshold.
    pub solved: Vec<f32>,
    pub zero_signal: Vec<bool>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupWeights {
    pub weights: Vec<f32>,
    /// For each completion, the index of its group in `stats`.
    pub group_index: Vec<u32>,
    pub stats: GroupStats,
}

/// A maximal run of consecutive completions of one group: `rewards[start..end]` is in group `group`.
#[derive(Clone, Copy, Debug)]
struct Run {
    start: usize,
    end: usize,
    group: u32,
}

/// Split completions into runs of one group each and number the groups densely in order of first
/// appearance. Ids usually come in runs (the K samples of a prompt side by side), so the hash map
/// is consulted once per run, and every later pass works on contiguous slices.
fn runs_of(n: usize, grouping: Grouping<'_>) -> CoreResult<(Vec<Run>, Vec<i64>)> {
    match grouping {
        Grouping::Size(k) => {
            if k == 0 {
                return Err(CoreError::invalid("group_size", "must be at least 1"));
            }
            if n % k != 0 {
                return Err(CoreError::invalid(
                    "group_size",
                    format!("{n} rewards do not split into groups of {k}"),
                ));
            }
            let runs = (0..n / k)
                .map(|g| Run {
                    start: g * k,
                    end: (g + 1) * k,
                    group: g as u32,
                })
                .collect();
            Ok((runs, (0..(n / k) as i64).collect()))
        }
        Grouping::Ids(ids) => {
            if ids.len() != n {
                return Err(CoreError::LengthMismatch {
                    what: "group_ids",
                    expected: n,
                    got: ids.len(),
                });
            }
            let mut seen: HashMap<i64, u32> = HashMap::new();
            let mut order = Vec::new();
            let mut runs: Vec<Run> = Vec::new();
            let mut start = 0;
            while start < n {
                let id = ids[start];
                let end = start + ids[start..].iter().take_while(|&&x| x == id).count();
                let group = *seen.entry(id).or_insert_with(|| {
                    order.push(id);
                    (order.len() - 1) as u32
                });
                runs.push(Run { start, end, group });
                start = end;
            }
            Ok((runs, order))
        }
    }
}

/// Running sums of one group.
#[derive(Clone, Copy)]
struct Acc {
    count: u32,
    solved: u32,
    sum: f64,
    sq: f64,
    lo: f32,
    hi: f32,
}

pub fn group_weights(
    rewards: &[f32],
    grouping: Grouping<'_>,
    opts: &Options,
) -> CoreResult<GroupWeights> {
    if let Some((index, &value)) = rewards.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(CoreError::NonFiniteReward { index, value });
    }
    if !(opts.eps >= 0.0 && opts.eps.is_finite()) {
        return Err(CoreError::invalid(
            "eps",
            format!("{} is not a finite number >= 0", opts.eps),
        ));
    }
    let (runs, ids) = runs_of(rewards.len(), grouping)?;
    let empty = Acc {
        count: 0,
        solved: 0,
        sum: 0.0,
        sq: 0.0,
        lo: f32::INFINITY,
        hi: f32::NEG_INFINITY,
    };
    let mut acc = vec![empty; ids.len()];
    for run in &runs {
        let xs = &rewards[run.start..run.end];
        let a = &mut acc[run.group as usize];
        a.count += xs.len() as u32;
        a.sum += xs.iter().map(|&r| r as f64).sum::<f64>();
        a.solved += xs.iter().filter(|&&r| r >= opts.solved_threshold).count() as u32;
        a.lo = xs.iter().copied().fold(a.lo, f32::min);
        a.hi = xs.iter().copied().fold(a.hi, f32::max);
    }
    let mean: Vec<f64> = acc.iter().map(|a| a.sum / a.count as f64).collect();
    // Second pass for the variance (no cancellation, whatever the reward scale).
    for run in &runs {
        let m = mean[run.group as usize];
        let sq: f64 = rewards[run.start..run.end]
            .iter()
            .map(|&r| (r as f64 - m).powi(2))
            .sum();
        acc[run.group as usize].sq += sq;
    }
    let std: Vec<f64> = acc.iter().map(|a| (a.sq / a.count as f64).sqrt()).collect();
    let zero_signal: Vec<bool> = acc.iter().map(|a| a.lo == a.hi).collect();

    let mut weights = vec![0f32; rewards.len()];
    let mut group_index = vec![0u32; rewards.len()];
    for run in &runs {
        let g = run.group as usize;
        group_index[run.start..run.end].fill(run.group);
        if zero_signal[g] && opts.drop_zero_signal {
            continue;
        }
        let (m, sd, n, total) = (mean[g], std[g], acc[g].count as f64, acc[g].sum);
        let out = &mut weights[run.start..run.end];
        let xs = &rewards[run.start..run.end];
        for (w, &r) in out.iter_mut().zip(xs) {
            let r = r as f64;
            *w = match opts.scheme {
                Scheme::GroupNorm => (r - m) / (sd + opts.eps),
                Scheme::MeanBaseline => r - m,
                Scheme::Raw => r,
                Scheme::Rloo if n < 2.0 => 0.0,
                Scheme::Rloo => r - (total - r) / (n - 1.0),
            } as f32;
        }
    }

    Ok(GroupWeights {
        weights,
        group_index,
        stats: GroupStats {
            ids,
            size: acc.iter().map(|a| a.count).collect(),
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: std.iter().map(|&s| s as f32).collect(),
            solved: acc
                .iter()
                .map(|a| a.solved as f32 / a.count as f32)
                .collect(),
            zero_signal,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(scheme: Scheme) -> Options {
        Options {
            scheme,
            ..Options::default()
        }
    }

    #[test]
    fn group_norm_of_a_binary_group() {
        let out = group_weights(
            &[1.0, 0.0, 0.0, 0.0],
            Grouping::Size(4),
            &opts(Scheme::GroupNorm),
        )
        .unwrap();
        // mean 0.25, population std sqrt(0.1875)
        let std = 0.1875f64.sqrt();
        assert!((out.weights[0] as f64 - 0.75 / (std + 1e-6)).abs() < 1e-5);
        assert!((out.weights[1] as f64 + 0.25 / (std + 1e-6)).abs() < 1e-5);
        assert_eq!(out.stats.solved, vec![0.25]);
        assert_eq!(out.stats.zero_signal, vec![false]);
    }

    #[test]
    fn rloo_uses_the_mean_of_the_others() {
        let out = group_weights(&[1.0, 0.0, 1.0], Grouping::Size(3), &opts(Scheme::Rloo)).unwrap();
        assert_eq!(out.weights, vec![0.5, -1.0, 0.5]);
    }

    #[test]
    fn ids_in_any_order_and_uneven_sizes() {
        let ids = [7i64, 3, 7, 3, 3];
        let out = group_weights(
            &[1.0, 0.0, 0.0, 1.0, 1.0],
            Grouping::Ids(&ids),
            &opts(Scheme::MeanBaseline),
        )
        .unwrap();
        assert_eq!(out.stats.ids, vec![7, 3]);
        assert_eq!(out.stats.size, vec![2, 3]);
        assert_eq!(out.group_index, vec![0, 1, 0, 1, 1]);
        assert!((out.weights[1] + 2.0 / 3.0).abs() < 1e-6);
        assert!((out.weights[0] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn zero_signal_groups_get_zero_weight_unless_kept() {
        let r = [1.0, 1.0, 0.0, 1.0];
        let out = group_weights(&r, Grouping::Size(2), &opts(Scheme::Raw)).unwrap();
        assert_eq!(out.stats.zero_signal, vec![true, false]);
        assert_eq!(out.weights, vec![0.0, 0.0, 0.0, 1.0]);
        let keep = Options {
            drop_zero_signal: false,
            ..opts(Scheme::Raw)
        };
        let out = group_weights(&r, Grouping::Size(2), &keep).unwrap();
        assert_eq!(out.weights, vec![1.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let e =
            group_weights(&[0.0, f32::NAN], Grouping::Size(2), &Options::default()).unwrap_err();
        assert!(matches!(e, CoreError::NonFiniteReward { index: 1, .. }));
        let e = group_weights(&[0.0; 5], Grouping::Size(2), &Options::default()).unwrap_err();
        assert!(e.to_string().contains("group_size"));
        let e = group_weights(&[0.0; 2], Grouping::Ids(&[1]), &Options::default()).unwrap_err();
        assert!(matches!(
            e,
            CoreError::LengthMismatch {
                what: "group_ids",
                ..
            }
        ));
        assert!("ppo"
            .parse::<Scheme>()
            .unwrap_err()
            .to_string()
            .contains("group_norm"));
    }

    fn grouped_rewards() -> impl Strategy<Value = (Vec<f32>, Vec<i64>)> {
        prop::collection::vec(
            (0i64..6, prop_oneof![Just(0.0f32), Just(1.0), -2.0f32..2.0]),
            1..80,
        )
        .prop_map(|v| v.into_iter().map(|(g, r)| (r, g)).unzip())
    }

    proptest! {
        #[test]
        fn centred_schemes_sum_to_zero_in_each_group((rewards, ids) in grouped_rewards()) {
            for scheme in [Scheme::GroupNorm, Scheme::MeanBaseline, Scheme::Rloo] {
                let out = group_weights(&rewards, Grouping::Ids(&ids), &opts(scheme)).unwrap();
                let mut sums = vec![0f64; out.stats.ids.len()];
                let mut scale = vec![0f64; out.stats.ids.len()];
                for (w, &gi) in out.weights.iter().zip(&out.group_index) {
                    sums[gi as usize] += *w as f64;
                    scale[gi as usize] += (*w as f64).abs();
                }
                for (s, a) in sums.iter().zip(&scale) {
                    prop_assert!(s.abs() <= 1e-4 * (1.0 + a), "{:?}: sum {} over |w| {}", scheme, s, a);
                }
            }
        }

        #[test]
        fn zero_variance_groups_have_zero_weights((rewards, ids) in grouped_rewards()) {
            for scheme in [Scheme::GroupNorm, Scheme::MeanBaseline, Scheme::Raw, Scheme::Rloo] {
                let out = group_weights(&rewards, Grouping::Ids(&ids), &opts(scheme)).unwrap();
                for (w, &gi) in out.weights.iter().zip(&out.group_index) {
                    if out.stats.zero_signal[gi as usize] {
                        prop_assert_eq!(*w, 0.0);
                    }
                    prop_assert!(w.is_finite());
                }
                let total: u32 = out.stats.size.iter().sum();
                prop_assert_eq!(total as usize, rewards.len());
            }
        }
    }
}
