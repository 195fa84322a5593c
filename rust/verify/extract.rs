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

use super::latex::match_brace;

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

/// The content of the last `\boxed`/`\fbox`.
pub fn boxed(text: &str) -> Option<&str> {
    let pos = [rfind(text, "\\boxed"), rfind(text, "\\fbox")]
        .into_iter()
        .flatten()
        .max()?;
    let cmd = if text[pos..].starts_with("\\boxed") {
        6
    } else {
        5
    };
    let rest = &text[pos + cmd..];
    let b = rest.as_bytes();
    let out = if rest.starts_with('{') {
        let end = match_brace(b, 0)?;
        &rest[1..end - 1]
    } else if rest.starts_with(' ') {
        // `\boxed 5`: up to the end of the token.
        let t = rest.trim_start();
        let end = t
            .find(|c: char| c.is_whitespace() || c == '$')
            .unwrap_or(t.len());
        &t[..end]
    } else {
        return None;
    };
    let out = out.trim();
    (!out.is_empty()).then_some(out)
}

/// The numeral at the start of `s` (`-1,234.5`, `$18`, `3/4`, `7%`), if any.
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
    while i < b.len()
        && (b[i].is_ascii_digit() || (b[i] == b',' && i + 1 < b.len() && b[i + 1].is_ascii_digit()))
    {
        i += 1;
    }
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
            let end = rest.find(close)?;
            let inner = rest[..end].trim();
            return (!inner.is_empty()).then_some(inner);
        }
    }
    None
}

/// Where the text after the last "answer is" / "answer:" phrase starts (any letter case).
fn after_answer_phrase(text: &str) -> Option<usize> {
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

/// The answer stated after the last "the answer is" / "answer:" phrase.
fn phrase(text: &str) -> Option<&str> {
    let rest = text[after_answer_phrase(text)?..].trim_start_matches([' ', ':', '*', '\t']);
    if let Some(m) = leading_math(rest) {
        return Some(m);
    }
    if let Some(n) = leading_number(rest) {
        return Some(n);
    }
    let end = rest.find(['\n', '.']).unwrap_or(rest.len()).min(MAX_PHRASE);
    let end = (0..=end)
        .rev()
        .find(|&k| rest.is_char_boundary(k))
        .unwrap_or(0);
    let out = rest[..end].trim().trim_end_matches('*').trim();
    (!out.is_empty()).then_some(out)
}

/// The content of the last `#### N` line.
fn hashes(text: &str) -> Option<&str> {
    let p = rfind(text, "####")?;
    let rest = &text[p + 4..];
    let line = rest.split('\n').next().unwrap_or("").trim();
    let line = line.trim_end_matches('.').trim();
    (!line.is_empty()).then_some(line)
}

/// The last number in the text, with thousands commas removed.
fn last_number(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut end = b.len();
    while end > 0 && !b[end - 1].is_ascii_digit() {
        end -= 1;
    }
    if end == 0 {
        return None;
    }
    let mut start = end;
    while start > 0 && end - start <= super::MAX_ANSWER_LEN {
        let c = b[start - 1];
        let sep_ok = start >= 2 && b[start - 2].is_ascii_digit();
        if c.is_ascii_digit() || ((c == b',' || c == b'.') && sep_ok) {
            start -= 1;
        } else {
            break;
        }
    }
    if start > 0 && b[start - 1] == b'-' {
        start -= 1;
    }
    if end - start > super::MAX_ANSWER_LEN {
        return None; // not an answer (and it could only ever match an identical string)
    }
    Some(text[start..end].replace(',', ""))
}

/// The final answer of `text` in `style` (`fallback` turns on the last-number rule).
/// (Borrowed from `text` where possible: no copy of a long answer.)
pub fn extract(text: &str, style: super::Style, fallback: bool) -> Option<Cow<'_, str>> {
    use super::Style;
    if matches!(style, Style::Boxed | Style::Auto) {
        if let Some(b) = boxed(text) {
            return Some(Cow::Borrowed(b));
        }
        if style == Style::Boxed {
            return None;
        }
    }
    if let Some(h) = hashes(text).or_else(|| phrase(text)) {
        return Some(Cow::Borrowed(h));
    }
    if fallback {
        return last_number(text).map(Cow::Owned);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Style;
    use super::*;

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
