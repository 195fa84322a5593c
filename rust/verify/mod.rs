//! The verifier: extract the final answer from a completion and decide whether it is equivalent to
//! the reference answer. Pure Rust (no Python here); `py/verify.rs` wraps it for batches.
//!
//! Pipeline of `equivalent(reference, candidate)`:
//! 1. identical strings match; an answer longer than `MAX_ANSWER_LEN` bytes matches nothing else;
//! 2. `latex::normalize` removes cosmetics (delimiters, `\left`, spacing, `\dfrac`, degrees,
//!    percent and currency signs, units, `\text{}` wrappers); equal normal forms match;
//! 3. `tokenize::tokenize` + `parse::parse` build an answer tree (`\pm` expands into a two-item list);
//!    what does not parse is text;
//! 4. `compare::same` compares the trees (numbers exactly as rationals, expressions with variables
//!    at random points, equations, inequalities, intervals, tuples, sets, matrices, text).
//!
//! Bounded work by construction: input length, token count (`MAX_TOKENS`), parse depth
//! (`parse::MAX_DEPTH`), variables (`parse::MAX_VARS`), exponents (checked arithmetic, overflow to
//! unknown) and an operation budget (`BUDGET` node evaluations per comparison). No timeouts, no
//! signals; malformed input is simply not equivalent.

pub mod boxes;
pub mod commands;
pub mod compare;
pub mod eval;
pub mod extract;
pub mod latex;
pub mod parse;
pub mod rational;
pub mod tail;
pub mod tokenize;
pub mod units;
pub mod value;

use std::cell::OnceCell;
use std::str::FromStr;

use crate::error::CoreError;
use eval::Budget;
use parse::{Node, Vars};

/// Answers longer than this (bytes) are only ever equal to an identical string.
pub const MAX_ANSWER_LEN: usize = 4096;
/// Most tokens parsed per answer.
pub const MAX_TOKENS: usize = 2048;
/// Work units allowed per comparison: one per node evaluated (16 for a power, root, factorial,
/// binomial or logarithm) or structure compared. Real answers need a few thousand at most.
pub const BUDGET: u32 = 50_000;

/// How to find the final answer in a completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// The last `\boxed{}`/`\fbox{}`, then the GSM8K rules.
    Auto,
    /// Only the last `\boxed{}`/`\fbox{}` (MATH).
    Boxed,
    /// `#### N`, "the answer is N", then the last number.
    Gsm8k,
}

impl FromStr for Style {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Style, CoreError> {
        match s {
            "auto" => Ok(Style::Auto),
            "boxed" | "math" => Ok(Style::Boxed),
            "gsm8k" => Ok(Style::Gsm8k),
            _ => Err(CoreError::invalid(
                "style",
                format!("unknown style {s:?}; expected one of \"auto\", \"boxed\", \"gsm8k\""),
            )),
        }
    }
}

/// The final answer of `text` (see `extract.rs`); `fallback` allows the last-number rule.
pub fn extract(text: &str, style: Style, fallback: bool) -> Option<String> {
    extract::extract(text, style, fallback).map(|a| a.into_owned())
}

/// Expand the first `\pm` (or `\mp`) into a two-item list: `1 \pm 2` → `1 + 2, 1 - 2`.
fn expand_pm(s: &str) -> Option<String> {
    for (cmd, first, second) in [("\\pm", "+", "-"), ("\\mp", "-", "+")] {
        let mut from = 0;
        while let Some(off) = s[from..].find(cmd) {
            let p = from + off;
            let after = p + cmd.len();
            if s[after..].starts_with(|c: char| c.is_ascii_alphabetic()) {
                from = after;
                continue;
            }
            let (head, tail) = (&s[..p], &s[after..]);
            return Some(format!("{head}{first}{tail}, {head}{second}{tail}"));
        }
    }
    None
}

fn to_node(s: &str, vars: &mut Vars) -> Node {
    let expanded = expand_pm(s);
    let src = expanded.as_deref().unwrap_or(s);
    tokenize::tokenize(src, MAX_TOKENS)
        .and_then(|toks| parse::parse(toks, vars).ok())
        .unwrap_or_else(|| Node::Text(s.to_string()))
}

/// Whether the whole answer is one `\text{...}`-like group.
fn is_text(s: &str) -> bool {
    let s = s.trim().trim_matches('$').trim();
    ["\\text{", "\\textbf{", "\\mbox{", "\\textrm{", "\\mathrm{"]
        .iter()
        .any(|w| s.starts_with(w) && latex::match_brace(s.as_bytes(), w.len() - 1) == Some(s.len()))
}

/// The characters of `s` without white space, except that white space between two digits
/// stays (as one space): `2 3` is two numbers, never `23`.
fn squash(s: &str) -> impl Iterator<Item = char> + '_ {
    let mut prev = ' ';
    let mut gap = false;
    s.chars()
        .flat_map(move |c| {
            if c.is_whitespace() {
                gap = true;
                return [None, None];
            }
            let sep = (gap && prev.is_ascii_digit() && c.is_ascii_digit()).then_some(' ');
            gap = false;
            prev = c;
            [sep, Some(c)]
        })
        .flatten()
}

/// The value of a plain decimal numeral (`-?\d+(\.\d+)?`, nothing else), the most common
/// answer: the full pipeline would read it as exactly this rational (no cosmetics, units or
/// structure apply), so two of them are compared at once. `None` for anything else, or a value
/// beyond the exact rationals (the full pipeline decides those).
fn plain_decimal(s: &str) -> Option<rational::Q> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (ip, fp) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(ip) || (digits.len() > ip.len() && !all_digits(fp)) {
        return None;
    }
    let q = rational::Q::from_decimal(ip, fp, 0)?;
    if digits.len() < s.len() {
        q.neg()
    } else {
        Some(q)
    }
}

/// Whether `candidate` states the same answer as `reference` (see the module doc and
/// `compare.rs` for the rules).
pub fn equivalent(reference: &str, candidate: &str) -> bool {
    Reference::new(reference).matches(candidate)
}

/// A reference answer prepared for comparing with many candidates (a group of completions of
/// one prompt): what the comparison computes from the reference alone (its normal form, its
/// tree) is computed once, when first needed, and reused.
pub struct Reference<'r> {
    /// The reference, trimmed.
    r: &'r str,
    /// Its value when it is a plain decimal of bounded length.
    plain: Option<rational::Q>,
    normal: OnceCell<String>,
    /// Its tree and the variables named while parsing it (the candidate's parse continues them).
    tree: OnceCell<(Node, Vars)>,
}

impl<'r> Reference<'r> {
    pub fn new(reference: &'r str) -> Reference<'r> {
        let r = reference.trim();
        Reference {
            r,
            plain: (r.len() <= MAX_ANSWER_LEN)
                .then(|| plain_decimal(r))
                .flatten(),
            normal: OnceCell::new(),
            tree: OnceCell::new(),
        }
    }

    /// The reference as given (untrimmed strings that trim alike are the same reference).
    pub fn is(&self, reference: &str) -> bool {
        self.r == reference.trim()
    }

    /// Whether `candidate` states the same answer as the reference.
    pub fn matches(&self, candidate: &str) -> bool {
        let (r, c) = (self.r, candidate.trim());
        if r.is_empty() || c.is_empty() {
            return false;
        }
        if r == c {
            return true;
        }
        if r.len() > MAX_ANSWER_LEN || c.len() > MAX_ANSWER_LEN {
            return false;
        }
        if let (Some(x), Some(y)) = (self.plain, plain_decimal(c)) {
            return x == y;
        }
        self.full_pipeline(c)
    }

    /// Steps 2-4 of the module doc on a trimmed, non-empty, different candidate of bounded
    /// length.
    fn full_pipeline(&self, c: &str) -> bool {
        let r = self.r;
        if units::differ(r, c) {
            return false; // `5 cm` is not `5 m`
        }
        let nr = self.normal.get_or_init(|| latex::normalize(r));
        let nc = latex::normalize(c);
        if nr.is_empty() || nc.is_empty() {
            return false;
        }
        if squash(nr).eq(squash(&nc)) {
            return true;
        }
        let (a, vars) = self.tree.get_or_init(|| {
            let mut vars = Vars::default();
            (to_node(nr, &mut vars), vars)
        });
        let b = to_node(&nc, &mut vars.clone());
        let budget = &mut Budget(BUDGET);
        if compare::same(a, &b, budget) {
            return true;
        }
        // A text answer (`\text{(A)}`, `\text{B, E, G}`) also matches the same letters and
        // digits in any case: `a`, `b,e,g`.
        if (is_text(r) || is_text(c)) && compare::text_key(nr) == compare::text_key(&nc) {
            return true;
        }
        // A percentage also matches its fraction: 50% ≡ 50 (above) and 50% ≡ 0.5.
        let hundredth = |n: &Node| {
            Node::Div(
                Box::new(n.clone()),
                Box::new(Node::Num(rational::Q::int(100))),
            )
        };
        (r.contains('%') && compare::same(&hundredth(a), &b, budget))
            || (c.contains('%') && compare::same(a, &hundredth(&b), budget))
    }
}

/// The full pipeline without the plain-decimal fast path (for the tests of that path).
#[cfg(test)]
fn full_pipeline(r: &str, c: &str) -> bool {
    Reference::new(r).full_pipeline(c.trim())
}

/// Whether the answer extracted from `response` (in `style`, with the last-number fallback) is
/// equivalent to `reference`.
pub fn verify(response: &str, reference: &str, style: Style) -> bool {
    Verifier::default().verify(response, reference, style)
}

/// Verifies a sequence of pairs, reusing the prepared reference while consecutive pairs share
/// it (as the completions of one prompt do). Results are those of `verify`, pair by pair.
#[derive(Default)]
pub struct Verifier<'r> {
    last: Option<Reference<'r>>,
}

impl<'r> Verifier<'r> {
    /// `verify(response, reference, style)`.
    pub fn verify(&mut self, response: &str, reference: &'r str, style: Style) -> bool {
        let Some(ans) = extract::extract(response, style, true) else {
            return false;
        };
        match &self.last {
            Some(prepared) if prepared.is(reference) => prepared.matches(&ans),
            _ => self.last.insert(Reference::new(reference)).matches(&ans),
        }
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod speed;
#[cfg(test)]
mod tests;
