//! Final-answer extraction from a model's completion, by style.
//!
//! * `boxed`: the content of the last `\boxed{...}`, `\boxed ...` or `\fbox{...}` (nested braces
//!   matched); none when there is none, or it is empty or unbalanced.
//! * `gsm8k`: the last `#### N`; else the last "the answer is N" / "Answer: N" / "**Answer:** N";
//!   else (with `fallback`) the last number in the text.
//! * `auto`: `boxed`, then the `gsm8k` rules.
//!
//! All scans are linear in the text length.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::boxes::boxes;

/// The last occurrence of `needle`: SIMD `memrchr` for its first byte, then a comparison
/// (`str::rfind` is several times slower on long texts).
fn rfind(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let mut end = h.len();
    while let Some(p) = memchr::memrchr(n[0], &h[..end]) {
        if h[p..].starts_with(n) {
            return Some(p);
        }
        end = p;
    }
    None
}

/// Longest answer returned by the phrase rules (a run-on sentence is not an answer).
const MAX_PHRASE: usize = 200;

/// End of the digit run at `i` with thousands separators (`1,234`, `12{,}345`).
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let comma = b[i] == b',' && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if b[i].is_ascii_digit() || comma {
            i += 1;
        } else if b[i..].starts_with(b"{,}") && b.get(i + 3).is_some_and(u8::is_ascii_digit) {
            i += 3;
        } else {
            break;
        }
    }
    i
}

/// End of ` b/c` at `i` (the fraction of a mixed number `4 4/9`), if that is what follows.
fn mixed_tail(b: &[u8], i: usize) -> Option<usize> {
    let s = b.get(i..)?;
    if s.first() != Some(&b' ') {
        return None;
    }
    let num = 1 + s[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if num == 1 || s.get(num) != Some(&b'/') {
        return None;
    }
    let den = s[num + 1..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    (den > 0).then_some(i + num + 1 + den)
}

/// The numeral at the start of `s` (`-1,234.5`, `$18`, `3/4`, `4 4/9`, `7%`), if any.
fn leading_number(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    if b.get(i) == Some(&b'$') {
        i += 1;
    }
    let digits_from = i;
    i = digits_end(b, i);
    let int_end = i;
    if i < b.len() && b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == digits_from {
        return None;
    }
    if i + 1 < b.len() && b[i] == b'/' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    } else if let Some(end) = (i == int_end).then(|| mixed_tail(b, i)).flatten() {
        i = end;
    }
    if b.get(i) == Some(&b'%') {
        i += 1;
    }
    Some(&s[..i])
}

/// Math delimited at the start of `s` (`$...$`, `\(...\)`, `\[...\]`): its content.
fn leading_math(s: &str) -> Option<&str> {
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(rest) = s.strip_prefix(open) {
            // An escaped `\$` (a dollar sign) does not close the math.
            let (b, c) = (rest.as_bytes(), close.as_bytes());
            let end =
                (0..b.len()).find(|&k| b[k..].starts_with(c) && (k == 0 || b[k - 1] != b'\\'))?;
            let inner = rest[..end].trim();
            return (!inner.is_empty()).then_some(inner);
        }
    }
    None
}

/// Words that introduce a final answer in other languages (followed by `:` or a copula).
const FOREIGN_MARKERS: [&str; 14] = [
    "Respuesta",
    "respuesta",
    "Réponse",
    "réponse",
    "Antwort",
    "Risposta",
    "risposta",
    "Resposta",
    "resposta",
    "Ответ",
    "ответ",
    "答案",
    "Jawaban",
    "Cevap",
];
const COPULAS: &[&str] = &[
    ":", "：", "es ", "est ", "ist ", "è ", "é ", "是", "为", "為",
];

/// Where the text after the last "answer is" / "answer:" phrase starts (any letter case); when
/// there is none, after the last marker of another language.
fn after_answer_phrase(text: &str) -> Option<usize> {
    after_english_phrase(text).or_else(|| after_foreign_marker(text))
}

/// All foreign markers in one automaton (one SIMD pass over the text instead of one search per
/// marker).
static FOREIGN: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives: Vec<String> = FOREIGN_MARKERS.iter().map(|m| regex::escape(m)).collect();
    Regex::new(&alternatives.join("|")).expect("literal alternatives")
});

/// After the copula of the last occurrence of each foreign marker, when one follows it there;
/// the latest of those. (No marker overlaps itself or another, so the automaton's
/// non-overlapping matches are all the occurrences.)
fn after_foreign_marker(text: &str) -> Option<usize> {
    let mut last = [None; FOREIGN_MARKERS.len()];
    for m in FOREIGN.find_iter(text) {
        if let Some(k) = FOREIGN_MARKERS.iter().position(|f| *f == m.as_str()) {
            last[k] = Some(m.end());
        }
    }
    last.iter()
        .filter_map(|&end| {
            let rest = text[end?..].trim_start_matches([' ', '*', '\u{a0}']);
            let c = COPULAS.iter().find(|c| rest.starts_with(**c))?;
            Some(text.len() - rest.len() + c.len())
        })
        .max()
}

fn after_english_phrase(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut end = b.len();
    // Scan back over every `n`/`N` (SIMD), checking for "answer" in any case: linear overall,
    // without copying the text.
    while let Some(p) = memchr::memrchr2(b'n', b'N', &b[..end]) {
        end = p;
        let word = p > 0 && b[p - 1].eq_ignore_ascii_case(&b'a');
        if !word
            || !b[p..]
                .get(..5)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"nswer"))
        {
            continue;
        }
        let rest = text[p + 5..].trim_start_matches([' ', '*']);
        if rest.starts_with(':') {
            return Some(text.len() - rest.len() + 1);
        }
        let word_is = rest.get(..2).is_some_and(|w| w.eq_ignore_ascii_case("is"))
            && !rest[2..].starts_with(|c: char| c.is_alphanumeric() || c == '\'');
        if word_is {
            return Some(text.len() - rest.len() + 2);
        }
    }
    None
}

/// What a phrase rule found: a formula or number (`Math`), or only words (`Words`).
enum Stated<'t> {
    Math(Cow<'t, str>),
    Words(&'t str),
}

/// The answer stated after the last answer phrase: leading math or a number, else the last
/// math or number of its sentence (`Final Answer: The smallest $k$ is 12.` → `12`), else the
/// sentence's words.
fn phrase(text: &str) -> Option<Stated<'_>> {
    let at = after_answer_phrase(text)?;
    let rest = text[at..].trim_start_matches([' ', ':', '*', '\t']);
    if let Some(m) = leading_math(rest) {
        return Some(Stated::Math(Cow::Borrowed(m)));
    }
    if let Some(n) = leading_number(rest) {
        return Some(Stated::Math(Cow::Borrowed(n)));
    }
    let end = sentence_end(rest).min(MAX_PHRASE);
    let end = (0..=end)
        .rev()
        .find(|&k| rest.is_char_boundary(k))
        .unwrap_or(0);
    let sentence = &rest[..end];
    if let Some(t) = super::tail::last_statement(sentence) {
        return Some(Stated::Math(t));
    }
    let out = sentence.trim().trim_end_matches('*').trim();
    (!out.is_empty()).then_some(Stated::Words(out))
}

/// The end of the first sentence: a newline, or a `.` that is not a decimal point.
fn sentence_end(s: &str) -> usize {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(off) = memchr::memchr2(b'\n', b'.', &b[from..]) {
        let p = from + off;
        if b[p] == b'\n' || !b.get(p + 1).is_some_and(u8::is_ascii_digit) {
            return p;
        }
        from = p + 1;
    }
    s.len()
}

/// The content of the last `#### N` line.
fn hashes(text: &str) -> Option<&str> {
    let p = rfind(text, "####")?;
    let rest = &text[p + 4..];
    let line = rest.split('\n').next().unwrap_or("").trim();
    let line = line.trim_end_matches('.').trim();
    (!line.is_empty()).then_some(line)
}

/// The final answer of `text` in `style` (`fallback` turns on the last-statement rule).
/// (Borrowed from `text` where possible: no copy of a long answer.)
///
/// In `auto`, a `#### N` line or an answer phrase stating a formula or number *after* the last
/// box wins over it (the final statement is the answer); otherwise the box. (Only the text after
/// the box is searched for it.)
pub fn extract(text: &str, style: super::Style, fallback: bool) -> Option<Cow<'_, str>> {
    use super::Style;
    let boxed = match style {
        Style::Boxed | Style::Auto => boxes(text),
        Style::Gsm8k => None,
    };
    if style == Style::Boxed {
        return boxed.map(|(_, b)| b);
    }
    let after = &text[boxed.as_ref().map_or(0, |(end, _)| *end)..];
    let stated = hashes(after)
        .map(|h| Stated::Math(Cow::Borrowed(h)))
        .or_else(|| phrase(after));
    match (boxed, stated) {
        (Some(_), Some(Stated::Math(m))) => return Some(m),
        (Some((_, b)), _) => return Some(b),
        (None, Some(Stated::Math(m))) => return Some(m),
        (None, Some(Stated::Words(w))) => return Some(Cow::Borrowed(w)),
        (None, None) => {}
    }
    if fallback {
        return super::tail::last_statement(text);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Style;
    use super::*;
    use crate::verify::boxes::*;

    #[test]
    fn boxed_takes_the_last_with_nested_braces() {
        assert_eq!(
            boxed("a \\boxed{1} b \\boxed{\\frac{1}{2}}."),
            Some("\\frac{1}{2}")
        );
        assert_eq!(boxed("\\fbox{7} then \\boxed 42 $"), Some("42"));
        assert_eq!(boxed("so \\boxed{x} and \\fbox{y}"), Some("y"));
        assert_eq!(boxed("no box"), None);
        assert_eq!(boxed("\\boxed{}"), None);
        assert_eq!(boxed("\\boxed{\\frac{1}{2}"), None);
    }

    #[test]
    fn gsm8k_rules_in_order() {
        let t = "3 + 4 = 7\n#### 7\nextra 9";
        assert_eq!(extract(t, Style::Gsm8k, true).as_deref(), Some("7"));
        let t = "We get 5 apples. The answer is $1,200. Done 3";
        assert_eq!(extract(t, Style::Gsm8k, true).as_deref(), Some("$1,200"));
        assert_eq!(
            extract("**Answer:** 12 cats", Style::Gsm8k, true).as_deref(),
            Some("12")
        );
        assert_eq!(
            extract("The answer is $\\frac{1}{2}$.", Style::Gsm8k, true).as_deref(),
            Some("\\frac{1}{2}")
        );
        assert_eq!(
            extract("it costs 1,234.5 and then -7 more.", Style::Gsm8k, true).as_deref(),
            Some("-7")
        );
        assert_eq!(
            extract("it costs 1,234.5 dollars", Style::Gsm8k, true).as_deref(),
            Some("1234.5")
        );
        assert_eq!(extract("it costs 12", Style::Gsm8k, false), None);
        assert_eq!(extract("no digits", Style::Gsm8k, true), None);
        assert_eq!(
            extract("The ANSWER IS 4. Answers: 5 is not", Style::Gsm8k, false).as_deref(),
            Some("4")
        );
        assert_eq!(
            extract("answer isn't 3, it is 4", Style::Gsm8k, true).as_deref(),
            Some("4")
        );
        assert_eq!(extract(&"9".repeat(10_000), Style::Gsm8k, true), None);
    }

    #[test]
    fn auto_prefers_boxed() {
        assert_eq!(
            extract("#### 5 \\boxed{6}", Style::Auto, true).as_deref(),
            Some("6")
        );
        assert_eq!(extract("#### 5", Style::Auto, true).as_deref(), Some("5"));
        assert_eq!(extract("#### 5", Style::Boxed, true), None);
    }
}

#[cfg(test)]
mod rewrite_tests {
    use super::*;
    use crate::verify::boxes::*;
    use proptest::prelude::*;

    /// The search of the markers one by one (the rule as first written).
    fn one_by_one(text: &str) -> Option<usize> {
        FOREIGN_MARKERS
            .iter()
            .filter_map(|m| {
                let p = memchr::memmem::rfind(text.as_bytes(), m.as_bytes())?;
                let rest = text[p + m.len()..].trim_start_matches([' ', '*', '\u{a0}']);
                let c = COPULAS.iter().find(|c| rest.starts_with(**c))?;
                Some(text.len() - rest.len() + c.len())
            })
            .max()
    }

    fn piece() -> impl Strategy<Value = String> {
        let mut words: Vec<String> = FOREIGN_MARKERS.iter().map(|m| m.to_string()).collect();
        words.extend(COPULAS.iter().map(|c| c.to_string()));
        words
            .extend(["Res", "puesta", "otv", "7", " ", "*", "\u{a0}", "答", "x"].map(String::from));
        prop::sample::select(words)
    }

    fn box_piece() -> impl Strategy<Value = String> {
        let words = [
            "\\boxed{2}",
            "\\boxed{",
            "\\fbox{x}",
            "\\boxed 5",
            "\\boxed",
            "}",
            "{",
            " ",
            "\n",
            "$",
            ",",
            ".",
            "and",
            "or",
            " and ",
            "\\quad",
            "x =",
            "=",
            "a_{1}",
            "7",
            "\\text{ or }",
            "\\}",
        ];
        prop::sample::select(words.map(String::from).to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn the_box_precheck_changes_no_answer(
            pieces in prop::collection::vec(box_piece(), 0..10)
        ) {
            let text = pieces.concat();
            prop_assert_eq!(boxes_checked(&text, true), boxes_checked(&text, false), "{:?}", text);
        }

        #[test]
        fn one_pass_finds_what_the_searches_one_by_one_find(
            pieces in prop::collection::vec(piece(), 0..12)
        ) {
            let text = pieces.concat();
            prop_assert_eq!(after_foreign_marker(&text), one_by_one(&text), "{:?}", text);
        }
    }
}

#[cfg(test)]
mod statement_tests {
    use super::super::Style;
    use super::*;

    fn auto(t: &str) -> Option<String> {
        extract(t, Style::Auto, true).map(|c| c.into_owned())
    }

    #[test]
    fn a_marker_followed_by_a_sentence() {
        assert_eq!(
            auto("Final Answer: The smallest $k$ is 12.").as_deref(),
            Some("12")
        );
        assert_eq!(auto("Final Answer: Monday.").as_deref(), Some("Monday"));
        assert_eq!(auto("The answer is 4 4/9.").as_deref(), Some("4 4/9"));
        assert_eq!(auto("The answer is 12{,}345.").as_deref(), Some("12{,}345"));
        assert_eq!(auto("La respuesta es 7.").as_deref(), Some("7"));
        assert_eq!(auto("Réponse : $\\frac12$").as_deref(), Some("\\frac12"));
        assert_eq!(auto("答案：42").as_deref(), Some("42"));
        assert_eq!(auto("Ответ: 3").as_deref(), Some("3"));
    }

    #[test]
    fn the_final_statement_wins_over_an_earlier_box() {
        let t = "First \\boxed{2015} is a step. The final answer is $2,016$.";
        assert_eq!(auto(t).as_deref(), Some("2,016"));
        let t = "The final answer is $\\boxed{5}$.";
        assert_eq!(auto(t).as_deref(), Some("5"));
        // Words after a box do not replace it.
        let t = "\\boxed{5}. I hope the answer is correct";
        assert_eq!(auto(t).as_deref(), Some("5"));
        assert_eq!(
            extract("\\boxed{3} #### 4", Style::Boxed, true).as_deref(),
            Some("3")
        );
    }

    #[test]
    fn several_closing_boxes_are_one_list() {
        assert_eq!(
            auto("So $x=\\boxed{2}$ and $x=\\boxed{5}$.").as_deref(),
            Some("2, 5")
        );
        assert_eq!(
            auto("\\boxed{1}, \\boxed{2}, \\boxed{3}").as_deref(),
            Some("1, 2, 3")
        );
        // A box earlier in the text is not part of the final answer.
        assert_eq!(
            auto("\\boxed{1} then we get more: \\boxed{2}").as_deref(),
            Some("2")
        );
    }

    #[test]
    fn prose_without_markers() {
        assert_eq!(
            auto("Therefore $y \\le 3$ is the solution.").as_deref(),
            Some("y \\le 3")
        );
        assert_eq!(auto("so it is 5/7.").as_deref(), Some("5/7"));
        assert_eq!(auto("the code XK9B").as_deref(), None);
    }
}

#[cfg(test)]
mod dollar_tests {
    use super::super::Style;
    use super::*;

    #[test]
    fn an_escaped_dollar_is_not_a_delimiter() {
        let t = "Final Answer: $\\$18.00$";
        assert_eq!(extract(t, Style::Auto, true).as_deref(), Some("\\$18.00"));
        assert_eq!(
            extract("Answer: $é$", Style::Auto, true).as_deref(),
            Some("é")
        );
    }
}
