//! Counts of reasoning behaviours in sampled rationales: how many texts match each of three phrase
//! patterns (decomposition, verification, backtracking). A cheap signal to watch during training,
//! not a classifier; `docs/behaviours.md` lists the patterns and what they mean.
//!
//! The patterns are case-insensitive, with Unicode word boundaries, and are the ones `empg` has
//! always used (the Python `re` versions in `tests/reference.py` give the same counts on the GSM8K
//! and MATH solutions: `tests/test_metrics_behaviours.py`). Each text is scanned once per pattern,
//! stopping at the first match; texts are spread over empg's thread pool.

use std::sync::OnceLock;

use rayon::prelude::*;
use regex::Regex;

/// Behaviour names and their patterns (Rust `regex` syntax), in reporting order.
pub const BEHAVIOURS: [(&str, &str); 3] = [
    (
        "decomposition",
        r"(?i)\b(first(ly)?|second(ly)?|then|next|finally|step \d+|break (it|this) down|sub-?problems?)\b",
    ),
    (
        "verification",
        r"(?i)\b(check(ing)?|verify(ing)?|double[- ]check|confirm(s|ed)?|let me make sure|plug(ging)? (it )?back)\b",
    ),
    (
        "backtracking",
        r"(?i)\b(wait|actually|let me (re\w+)|i made a mistake|that'?s (wrong|incorrect)|instead)\b",
    ),
];

fn compiled() -> &'static [Regex; 3] {
    static RE: OnceLock<[Regex; 3]> = OnceLock::new();
    RE.get_or_init(|| BEHAVIOURS.map(|(_, p)| Regex::new(p).expect("behaviour pattern")))
}

/// Which behaviours `text` shows, in the order of [`BEHAVIOURS`].
pub fn flags(text: &str) -> [bool; 3] {
    let re = compiled();
    [
        re[0].is_match(text),
        re[1].is_match(text),
        re[2].is_match(text),
    ]
}

/// How many of `texts` match each behaviour, in the order of [`BEHAVIOURS`] (in parallel).
pub fn counts<S: AsRef<str> + Sync>(texts: &[S]) -> [usize; 3] {
    compiled();
    crate::parallel::install(|| {
        texts
            .par_iter()
            .with_min_len(64)
            .map(|t| flags(t.as_ref()).map(usize::from))
            .reduce(|| [0; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pattern_on_phrases_it_names() {
        assert_eq!(flags("First, add 3. Then divide."), [true, false, false]);
        assert_eq!(
            flags("Let me double-check: 4 + 4 = 8."),
            [false, true, false]
        );
        assert_eq!(
            flags("Wait, that's wrong. Let me recompute."),
            [false, false, true]
        );
        assert_eq!(flags("PLUGGING IT BACK gives 7"), [false, true, false]);
        assert_eq!(flags("Step 12: the sub-problem"), [true, false, false]);
    }

    #[test]
    fn words_only_at_word_boundaries() {
        // "thence", "checkered", "unverified", "awaiting", "re" alone: no whole-word match.
        assert_eq!(
            flags("thence the checkered awaiting"),
            [false, false, false]
        );
        assert_eq!(flags("let me re"), [false, false, false]);
        assert_eq!(flags("steps 2"), [false, false, false]);
        // Unicode letters are word characters: "éthen" has no boundary before "then".
        assert_eq!(flags("éthen"), [false, false, false]);
        assert_eq!(flags("x→then"), [true, false, false]);
    }

    #[test]
    fn counts_add_up_over_texts() {
        let texts = ["first", "check", "wait", "first check wait", "nothing here"];
        assert_eq!(counts(&texts), [2, 2, 2]);
        assert_eq!(counts::<&str>(&[]), [0, 0, 0]);
    }
}
