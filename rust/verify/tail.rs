//! The last statement of a completion that names no answer (no box, no "answer is"): the later
//! of its last math region (`$...$`, `$$...$$`, `\(...\)`, `\[...\]`) and its last number outside
//! math (`Therefore $y \le 3$ is the solution.` → `y \le 3`; `... so she has 14 left.` → `14`).
//!
//! A number glued to a preceding letter (`XK9B`, `H2O`) is not an answer; a fraction `5/7` and a
//! mixed number `4 4/9` are kept whole; thousands separators (`1,234`, `12{,}345`) are dropped.
//! A `$...$` pair whose content starts or ends with a space or holds a bare word of three or more
//! letters is prose between two dollar signs (`$5 and $3`), not math, and so is math that ends
//! in punctuation inside the dollars (a problem's sentence copied back). All scans are linear.

use std::borrow::Cow;

use super::MAX_ANSWER_LEN;

/// A math region: content bounds and the end of the closing delimiter.
struct Region {
    start: usize,
    end: usize,
    after: usize,
}

fn rfind_from(h: &[u8], end: usize, needle: &[u8]) -> Option<usize> {
    let mut end = end;
    while let Some(p) = memchr::memrchr(needle[0], &h[..end]) {
        if h[p..].starts_with(needle) {
            return Some(p);
        }
        end = p;
    }
    None
}

fn looks_like_math(content: &str) -> bool {
    let b = content.as_bytes();
    if b.is_empty() || b[0].is_ascii_whitespace() || b[b.len() - 1].is_ascii_whitespace() {
        return false;
    }
    // Math that ends a sentence inside the dollars (`$(-1 + i\sqrt3)^8.$`) is a problem's text
    // copied back, not a stated answer.
    if matches!(b[b.len() - 1], b'.' | b',' | b';' | b'?' | b':') {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() {
            let j = i + b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            let bare = i == 0 || b[i - 1] == b' ';
            if bare && j - i >= 3 && !super::tokenize::FUNCS.contains(&&content[i..j]) {
                return false;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    true
}

/// The last delimited math region, if any.
fn last_math(text: &str) -> Option<Region> {
    let b = text.as_bytes();
    let mut best: Option<Region> = None;
    for (open, close) in [("\\(", "\\)"), ("\\[", "\\]")] {
        let Some(c) = rfind_from(b, b.len(), close.as_bytes()) else {
            continue;
        };
        let Some(o) = rfind_from(b, c, open.as_bytes()) else {
            continue;
        };
        if best.as_ref().map_or(true, |r| r.after < c + 2) {
            best = Some(Region {
                start: o + 2,
                end: c,
                after: c + 2,
            });
        }
    }
    // The last `$` that is not an escaped dollar sign `\$`.
    let mut last = b.len();
    let dollar_at = loop {
        match memchr::memrchr(b'$', &b[..last]) {
            Some(p) if p > 0 && b[p - 1] == b'\\' => last = p,
            other => break other,
        }
    };
    if let Some(p) = dollar_at {
        let dollar = if p > 0 && b[p - 1] == b'$' {
            rfind_from(b, p - 1, b"$$").map(|q| Region {
                start: q + 2,
                end: p - 1,
                after: p + 1,
            })
        } else {
            memchr::memrchr(b'$', &b[..p])
                .filter(|&q| q == 0 || b[q - 1] != b'$')
                .map(|q| Region {
                    start: q + 1,
                    end: p,
                    after: p + 1,
                })
        };
        if let Some(r) =
            dollar.filter(|r| r.start <= r.end && looks_like_math(&text[r.start..r.end]))
        {
            if best.as_ref().map_or(true, |x| x.after < r.after) {
                best = Some(r);
            }
        }
    }
    best.filter(|r| r.end > r.start && r.end - r.start <= MAX_ANSWER_LEN)
}

/// The last number not glued to a preceding letter: (start, end).
fn last_number(text: &str) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut end = b.len();
    loop {
        while end > 0 && !b[end - 1].is_ascii_digit() {
            end -= 1;
        }
        if end == 0 {
            return None;
        }
        let mut start = end;
        while start > 0 && end - start <= MAX_ANSWER_LEN {
            let c = b[start - 1];
            let sep_ok = start >= 2 && b[start - 2].is_ascii_digit();
            if c.is_ascii_digit() || ((c == b',' || c == b'.') && sep_ok) {
                start -= 1;
            } else if start >= 4 && &b[start - 3..start] == b"{,}" && b[start - 4].is_ascii_digit()
            {
                start -= 3;
            } else {
                break;
            }
        }
        if end - start > MAX_ANSWER_LEN {
            return None; // not an answer (and it could only ever match an identical string)
        }
        if start > 0 && b[start - 1].is_ascii_alphabetic() {
            end = start; // a digit inside a word (`XK9B`)
            continue;
        }
        // `5/7`, and the whole part of a mixed number `4 4/9`.
        if start >= 2 && b[start - 1] == b'/' && b[start - 2].is_ascii_digit() {
            start -= 1;
            while start > 0 && b[start - 1].is_ascii_digit() {
                start -= 1;
            }
            if start >= 2 && b[start - 1] == b' ' && b[start - 2].is_ascii_digit() {
                let whole = start
                    - 1
                    - b[..start - 1]
                        .iter()
                        .rev()
                        .take_while(|c| c.is_ascii_digit())
                        .count();
                if whole == 0 || !b[whole - 1].is_ascii_alphanumeric() {
                    start = whole;
                }
            }
        }
        if start > 0 && b[start - 1] == b'-' {
            start -= 1;
        }
        return Some((start, end));
    }
}

/// The last statement of `text` (see the module doc).
pub fn last_statement(text: &str) -> Option<Cow<'_, str>> {
    let math = last_math(text);
    let num = last_number(text);
    match (math, num) {
        (Some(m), Some((_, e))) if e <= m.after => Some(Cow::Borrowed(text[m.start..m.end].trim())),
        (Some(m), None) => Some(Cow::Borrowed(text[m.start..m.end].trim())),
        (_, Some((s, e))) => {
            let n = &text[s..e];
            Some(if n.contains(',') {
                Cow::Owned(n.replace("{,}", "").replace(',', ""))
            } else {
                Cow::Borrowed(n)
            })
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(t: &str) -> Option<String> {
        last_statement(t).map(|c| c.into_owned())
    }

    #[test]
    fn prose_answers() {
        assert_eq!(
            last("Therefore $y \\le 3$ is the solution.").as_deref(),
            Some("y \\le 3")
        );
        assert_eq!(last("so the ratio is 5/7.").as_deref(), Some("5/7"));
        assert_eq!(last("she ran 4 4/9 miles").as_deref(), Some("4 4/9"));
        assert_eq!(last("code 12 then XK9B").as_deref(), Some("12"));
        assert_eq!(last("total 12{,}345 units").as_deref(), Some("12345"));
        assert_eq!(last("We have $x=2$, so 14 apples.").as_deref(), Some("14"));
        assert_eq!(last("He paid $5 and $3 more").as_deref(), Some("3"));
        assert_eq!(
            last("So \\(x = \\frac12\\) here.").as_deref(),
            Some("x = \\frac12")
        );
        assert_eq!(last("$$a = 3 + 4 = 7$$").as_deref(), Some("a = 3 + 4 = 7"));
        assert_eq!(last("it costs 1,234.5 dollars").as_deref(), Some("1234.5"));
        assert_eq!(last("then -7 more.").as_deref(), Some("-7"));
        assert_eq!(last("no digits"), None);
        // A problem's sentence copied back (punctuation inside the math) is not an answer.
        assert_eq!(
            last("calculate the expression: $(-1 + i \\sqrt{3})^8.$").as_deref(),
            Some("8")
        );
        assert_eq!(last(&"9".repeat(10_000)), None);
    }
}
