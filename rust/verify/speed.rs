//! A timing harness for the verifier's hot path on the labelled corpus (not run by default),
//! and the check that the batch path decides the corpus as pair-by-pair verification does:
//!
//!     cargo test --release --lib verify::speed -- --ignored --nocapture
//!
//! It prints the time per pair of each stage (extraction, equivalence, their parts), single
//! threaded, so that a change to the hot path can be measured without Python.

use std::time::Instant;

use super::*;

/// The string value of `"key": "..."` in one JSON line (escapes decoded; enough for the corpus).
fn json_str(line: &str, key: &str) -> Option<String> {
    let at = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = line[at..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let mut code = u32::from_str_radix(&hex, 16).ok()?;
                    if (0xD800..0xDC00).contains(&code) {
                        let low: String = chars.by_ref().skip(2).take(4).collect();
                        let low = u32::from_str_radix(&low, 16).ok()?;
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    }
                    out.push(char::from_u32(code)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// The corpus pairs (completion, reference).
pub(super) fn corpus() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/verify/corpus.jsonl"
    );
    std::fs::read_to_string(path)
        .expect("the corpus")
        .lines()
        .map(|l| {
            (
                json_str(l, "completion").expect("completion"),
                json_str(l, "reference").expect("reference"),
            )
        })
        .collect()
}

/// Best time per item (ns) of `f` over all items, of `reps` passes.
fn per_item<'a, T>(items: &'a [T], reps: usize, mut f: impl FnMut(&'a T) -> bool) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut hits = 0;
    for _ in 0..reps {
        let t = Instant::now();
        hits = items.iter().filter(|x| f(x)).count();
        best = best.min(t.elapsed().as_nanos() as f64 / items.len() as f64);
    }
    (best, hits)
}

#[test]
#[ignore = "a timing harness; run with --ignored --nocapture"]
fn speed() {
    let pairs = corpus();
    let answers: Vec<(Option<String>, &str)> = pairs
        .iter()
        .map(|(c, r)| (extract(c, Style::Auto, true), r.as_str()))
        .collect();
    let some: Vec<(&str, &str)> = answers
        .iter()
        .filter_map(|(a, r)| a.as_deref().map(|a| (a, *r)))
        .collect();
    let reps = 30;
    let report = |name: &str, (ns, hits): (f64, usize)| {
        println!("{name:<28} {ns:>8.0} ns/pair ({hits} true)")
    };
    report(
        "verify (all)",
        per_item(&pairs, reps, |(c, r)| verify(c, r, Style::Auto)),
    );
    let mut batch = Verifier::default();
    report(
        "Verifier (batch, all)",
        per_item(&pairs, reps, |(c, r)| batch.verify(c, r, Style::Auto)),
    );
    // The pairs that cost most (best of `reps` for each), and the share of the total they take.
    let mut costs: Vec<(f64, &str, &str)> = some
        .iter()
        .map(|(a, r)| {
            let ns = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(equivalent(r, a));
                    t.elapsed().as_nanos() as f64
                })
                .fold(f64::MAX, f64::min);
            (ns, *a, *r)
        })
        .collect();
    costs.sort_by(|x, y| y.0.total_cmp(&x.0));
    let total: f64 = costs.iter().map(|c| c.0).sum();
    let top: f64 = costs.iter().take(costs.len() / 10).map(|c| c.0).sum();
    println!(
        "the costliest tenth of the pairs takes {:.0}% of equivalent's time; the costliest:",
        100.0 * top / total
    );
    for (ns, a, r) in costs.iter().take(12) {
        println!(
            "  {ns:>7.0} ns  {:?} vs {:?}",
            &a[..a.len().min(60)],
            &r[..r.len().min(60)]
        );
    }
    report(
        "extract",
        per_item(&pairs, reps, |(c, _)| {
            extract::extract(c, Style::Auto, true).is_some()
        }),
    );
    report(
        "equivalent",
        per_item(&some, reps, |(a, r)| equivalent(r, a)),
    );
    report(
        "units::differ",
        per_item(&some, reps, |(a, r)| units::differ(r.trim(), a.trim())),
    );
    report(
        "normalize x2",
        per_item(&some, reps, |(a, r)| {
            latex::normalize(r.trim()).len() + latex::normalize(a.trim()).len() > 0
        }),
    );
}

/// The batch path (a prepared reference reused while consecutive pairs share it) decides every
/// corpus pair as `verify` does alone.
#[test]
fn batch_verifier_agrees_with_verify_pair_by_pair() {
    let pairs = corpus();
    for style in [Style::Auto, Style::Boxed, Style::Gsm8k] {
        let mut batch = Verifier::default();
        for (c, r) in &pairs {
            assert_eq!(
                batch.verify(c, r, style),
                verify(c, r, style),
                "{c:?} / {r:?}"
            );
            // And with the pair's own reference parsed fresh (no earlier candidate).
            assert_eq!(Reference::new(r).matches(c), equivalent(r, c));
        }
    }
}
