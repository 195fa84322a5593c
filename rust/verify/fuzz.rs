//! Property tests: the verifier never panics and does bounded work on arbitrary and LaTeX-shaped
//! strings, and decides arithmetic written in random LaTeX exactly.
//!
//! The per-item time check (50 ms, generous for debug builds and a busy machine) is a hang
//! detector, not a benchmark: `benches/bench_verify.py` measures the real per-item times.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::rational::Q;
use super::{equivalent, extract, full_pipeline, Style};

const LIMIT: Duration = Duration::from_millis(50);

const PIECES: &[&str] = &[
    "\\frac",
    "\\dfrac",
    "{",
    "}",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\\{",
    "\\}",
    "\\sqrt",
    "^",
    "_",
    "1",
    "2",
    "3",
    "10",
    "0",
    "x",
    "y",
    "e",
    "i",
    "\\pi",
    "+",
    "-",
    "\\cdot",
    "\\times",
    "/",
    ",",
    "=",
    "\\le",
    "<",
    "!",
    "|",
    "\\infty",
    "\\left(",
    "\\right)",
    "\\boxed{",
    "\\text{",
    "cm",
    "\\%",
    "\\$",
    "^\\circ",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "&",
    "\\\\",
    "\\cup",
    "\\pm",
    ".",
    " ",
    "\\binom",
    "\\log",
    "\\sin",
    "\\lfloor",
    "\\rfloor",
    "_2",
    "{,}",
    "#### ",
    "The answer is ",
    "\\fbox{",
    "\\sqrt[",
    "1e9",
    "99999999999999999999",
];

fn latex_shaped() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|v| v.concat())
}

/// Run every entry point on (a, b); the fastest of three runs must be under `LIMIT` (the best of
/// three so that a thread descheduled on a busy machine is not mistaken for unbounded work).
fn check_bounded(a: &str, b: &str) {
    let run = || {
        let t = Instant::now();
        let _ = equivalent(a, b);
        let _ = equivalent(b, a);
        for style in [Style::Auto, Style::Boxed, Style::Gsm8k] {
            let _ = extract(a, style, true);
        }
        t.elapsed()
    };
    let mut best = run();
    for _ in 0..2 {
        if best < LIMIT {
            return;
        }
        best = best.min(run());
    }
    assert!(best < LIMIT, "took {best:?} on {a:?} vs {b:?}");
}

/// A random arithmetic expression in LaTeX with its exact value.
fn arith() -> impl Strategy<Value = (String, Q)> {
    let leaf = (-20i64..20).prop_map(|n| {
        let s = if n < 0 {
            format!("({n})")
        } else {
            n.to_string()
        };
        (s, Q::int(n))
    });
    leaf.prop_recursive(4, 24, 2, |inner| {
        (inner.clone(), inner, 0..5u8).prop_filter_map("defined", |((a, x), (b, y), op)| {
            Some(match op {
                0 => (format!("{a} + {b}"), x.add(y)?),
                1 => (format!("{a} - \\left({b}\\right)"), x.sub(y)?),
                2 => (
                    format!("\\left({a}\\right) \\cdot \\left({b}\\right)"),
                    x.mul(y)?,
                ),
                3 => (format!("\\frac{{{a}}}{{{b}}}"), x.div(y)?),
                _ => (format!("\\left({a}\\right)^{{2}}"), x.mul(x)?),
            })
        })
    })
}

fn render(q: Q) -> String {
    if q.is_int() {
        q.numer().to_string()
    } else {
        format!("\\frac{{{}}}{{{}}}", q.numer(), q.denom())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(a in ".{0,200}", b in ".{0,200}") {
        check_bounded(&a, &b);
    }

    #[test]
    fn latex_shaped_strings_never_panic(a in latex_shaped(), b in latex_shaped()) {
        check_bounded(&a, &b);
        check_bounded(&a, "1");
    }

    #[test]
    fn arithmetic_is_decided_exactly((expr, value) in arith()) {
        prop_assert!(equivalent(&render(value), &expr), "{} should equal {}", expr, render(value));
        let off = value.add(Q::new(1, 7).unwrap()).unwrap();
        prop_assert!(!equivalent(&render(off), &expr), "{} should not equal {}", expr, render(off));
    }
}

#[test]
fn hostile_inputs_are_bounded() {
    let big = "9".repeat(1 << 20);
    let nested = format!("{}x{}", "{".repeat(100_000), "}".repeat(100_000));
    let fracs = "\\frac{1}{".repeat(10_000);
    let tower = "10^{".repeat(500) + &"}".repeat(500);
    let wide = (0..1000)
        .map(|i| format!("x_{{{i}}}"))
        .collect::<Vec<_>>()
        .join("+");
    let answers = "answer answer: x ".repeat(60_000);
    let big_fracs = (0..60)
        .map(|i| {
            format!(
                "\\frac{{{}}}{{{}}}x^{{{}}}",
                1_000_000_007u64 + i,
                998_244_353u64 + 2 * i,
                i % 7
            )
        })
        .collect::<Vec<_>>();
    let fracs_set = format!("\\{{{}\\}}", big_fracs.join(","));
    let fracs_rev = format!(
        "\\{{{}\\}}",
        big_fracs
            .iter()
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    );
    let set = format!(
        "\\{{{}\\}}",
        (0..60)
            .map(|i| format!("x^{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    check_bounded(&fracs_set, &fracs_rev);
    for s in [big.as_str(), &nested, &fracs, &tower, &wide, &set, &answers] {
        check_bounded(s, s.get(..s.len() - 1).unwrap_or(""));
        check_bounded(s, "1");
    }
}

/// A numeral of the shapes that plain-decimal fast path sees, and near misses of it.
fn numeral_shaped() -> impl Strategy<Value = String> {
    "-?(0|00|[0-9]{1,3}|[1-9][0-9]{0,40})?(\\.[0-9]{0,8}0{0,3})?[.%]?"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// The fast path for two plain decimals decides exactly as the full pipeline.
    #[test]
    fn plain_decimals_decide_as_the_full_pipeline(a in numeral_shaped(), b in numeral_shaped()) {
        let (a, b) = (a.trim(), b.trim());
        if !a.is_empty() && !b.is_empty() && a != b {
            prop_assert_eq!(equivalent(a, b), full_pipeline(a, b), "{} vs {}", a, b);
        }
    }
}

#[test]
fn plain_decimals_with_equal_values_decide_as_the_full_pipeline() {
    let same_value = [
        ("5", "5.0"),
        ("5", "05"),
        ("-0", "0"),
        ("0.50", ".5"),
        ("0.5", "0.50000"),
        ("-2.5", "-2.50"),
        ("100", "100.000"),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567890.0",
        ),
        (
            "123456789012345678901234567890123456789012",
            "123456789012345678901234567890123456789013",
        ),
        ("0.1428571", "0.142857"),
    ];
    for (a, b) in same_value {
        assert_eq!(equivalent(a, b), full_pipeline(a, b), "{a} vs {b}");
        assert_eq!(equivalent(b, a), full_pipeline(b, a), "{b} vs {a}");
    }
}
