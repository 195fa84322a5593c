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
    pub size: Vec<i64>,
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
    pub group_index: Vec<i64>,
    pub stats: GroupStats,
}

/// A maximal run of consecutive completions of one group: `rewards[start..end]` is in group `group`.
#[derive(Clone, Copy, Debug)]
struct Run {
    start: usize,
    end: usize,
    group: usize,
}

/// Split completions into runs of one group each and number the groups densely in order of first
/// appearance. Ids usually come in runs (the K samples of a prompt side by side) and rise (prompt
/// order), so a run whose id is above every id seen so far is a new group without any lookup; only
/// an id at or below the largest one seen consults a hash map (built on first need).
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
                    group: g,
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
            let mut seen: Option<HashMap<i64, usize>> = None;
            let mut order: Vec<i64> = Vec::new();
            let mut runs: Vec<Run> = Vec::new();
            let mut start = 0;
            while start < n {
                let id = ids[start];
                let end = start + ids[start..].iter().take_while(|&&x| x == id).count();
                let fresh = order.last().map_or(true, |&m| id > m) && seen.is_none();
                let group = if fresh {
                    order.push(id);
                    order.len() - 1
                } else {
                    let map = seen.get_or_insert_with(|| {
                        order.iter().enumerate().map(|(g, &x)| (x, g)).collect()
                    });
                    *map.entry(id).or_insert_with(|| {
                        order.push(id);
                        order.len() - 1
                    })
                };
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
    /// The group's first reward, and whether every reward so far equals it.
    first: f32,
    uniform: bool,
}

impl Acc {
    const EMPTY: Acc = Acc {
        count: 0,
        solved: 0,
        sum: 0.0,
        sq: 0.0,
        first: 0.0,
        uniform: true,
    };

    fn add(&mut self, xs: &[f32], solved_threshold: f32) {
        if self.count == 0 {
            self.first = xs[0];
        }
        let first = self.first;
        self.count += xs.len() as u32;
        for &r in xs {
            self.sum += r as f64;
            self.solved += (r >= solved_threshold) as u32;
            self.uniform &= r == first;
        }
    }

    fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    fn std(&self) -> f64 {
        (self.sq / self.count as f64).sqrt()
    }
}

/// Squared deviations from `m` (the second pass: no cancellation, whatever the reward scale).
fn sq_dev(xs: &[f32], m: f64) -> f64 {
    xs.iter().map(|&r| (r as f64 - m) * (r as f64 - m)).sum()
}

/// The weights of one run of group `a`: every scheme is an affine map r -> s*r + b per group
/// (rloo: r - (total - r)/(n - 1)).
fn weigh(out: &mut [f32], xs: &[f32], a: &Acc, opts: &Options) {
    if a.uniform && opts.drop_zero_signal {
        return;
    }
    let (m, n, total) = (a.mean(), a.count as f64, a.sum);
    let (s, b) = match opts.scheme {
        Scheme::GroupNorm => {
            let s = 1.0 / (a.std() + opts.eps);
            (s, -m * s)
        }
        Scheme::MeanBaseline => (1.0, -m),
        Scheme::Raw => (1.0, 0.0),
        Scheme::Rloo if n < 2.0 => (0.0, 0.0),
        Scheme::Rloo => (1.0 + 1.0 / (n - 1.0), -total / (n - 1.0)),
    };
    for (w, &r) in out.iter_mut().zip(xs) {
        *w = (s * r as f64 + b) as f32;
    }
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
    let mut acc = vec![Acc::EMPTY; ids.len()];
    let mut weights = vec![0f32; rewards.len()];
    let mut group_index = vec![0i64; rewards.len()];
    if runs.len() == ids.len() {
        // Every group is one run (the usual layout): all passes over a run while it is in cache.
        for run in &runs {
            let (xs, a) = (&rewards[run.start..run.end], &mut acc[run.group]);
            a.add(xs, opts.solved_threshold);
            a.sq = sq_dev(xs, a.mean());
            weigh(&mut weights[run.start..run.end], xs, a, opts);
            group_index[run.start..run.end].fill(run.group as i64);
        }
    } else {
        for run in &runs {
            acc[run.group].add(&rewards[run.start..run.end], opts.solved_threshold);
        }
        for run in &runs {
            let a = &mut acc[run.group];
            a.sq += sq_dev(&rewards[run.start..run.end], a.mean());
        }
        for run in &runs {
            let (xs, a) = (&rewards[run.start..run.end], &acc[run.group]);
            weigh(&mut weights[run.start..run.end], xs, a, opts);
            group_index[run.start..run.end].fill(run.group as i64);
        }
    }

    Ok(GroupWeights {
        weights,
        group_index,
        stats: GroupStats {
            ids,
            size: acc.iter().map(|a| a.count as i64).collect(),
            mean: acc.iter().map(|a| a.mean() as f32).collect(),
            std: acc.iter().map(|a| a.std() as f32).collect(),
            solved: acc
                .iter()
                .map(|a| a.solved as f32 / a.count as f32)
                .collect(),
            zero_signal: acc.iter().map(|a| a.uniform).collect(),
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
                let total: i64 = out.stats.size.iter().sum();
                prop_assert_eq!(total as usize, rewards.len());
            }
        }
    }
}
