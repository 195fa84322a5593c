//! The boxed answer of a completion: the last `\boxed{...}`, `\boxed ...` or `\fbox{...}` (nested
//! braces matched), and the boxes that close the text together as one list answer. Linear in the
//! text length.

use std::borrow::Cow;

use super::latex::match_brace;

/// The last box's content (see `boxed`) and where it ends; several boxes that close the text
/// together (`\boxed{2} and \boxed{5}`) are one list answer, `2, 5`.
pub fn boxes(text: &str) -> Option<(usize, Cow<'_, str>)> {
    boxes_checked(text, true)
}

/// `boxes`; `precheck` spares the scan back for an earlier box where none can end (the tests
/// compare both ways).
pub(super) fn boxes_checked(text: &str, precheck: bool) -> Option<(usize, Cow<'_, str>)> {
    let (start, end, last) = boxed_at(text, text.len())?;
    let mut items = vec![last];
    let mut before = start;
    while items.len() < MAX_BOXES {
        let gap = box_gap(&text[..before]);
        if precheck && !box_may_end_at(text, gap.len()) {
            break; // (spares the scan back for a box, which could not end there)
        }
        match boxed_at(text, gap.len()) {
            Some((s, e, b)) if e == gap.len() => {
                items.push(b);
                before = s;
            }
            _ => break,
        }
    }
    if items.len() == 1 {
        return Some((end, Cow::Borrowed(last)));
    }
    items.reverse();
    Some((end, Cow::Owned(items.join(", "))))
}

/// Whether a box (as `boxed_at` reads one) can end at `end`: a braced box ends after a `}`, a
/// `\\boxed 5` box before white space, a `$` or the end of the text.
fn box_may_end_at(text: &str, end: usize) -> bool {
    let b = text.as_bytes();
    (end > 0 && b[end - 1] == b'}')
        || b.get(end).map_or(true, |&c| {
            c == b'$' || text[end..].starts_with(char::is_whitespace)
        })
}

/// `text` without what may separate two boxes of one answer: spaces, punctuation, `$`, `and`,
/// `or`, `\quad`, and a short name with `=` (`\boxed{2}$ and $x = \boxed{5}`).
fn box_gap(text: &str) -> &str {
    let mut t = text;
    for _ in 0..4 {
        t = t.trim_end_matches(|c: char| c.is_whitespace() || ",;$.".contains(c));
        t = [
            "and",
            "or",
            "\\text{ and }",
            "\\text{ or }",
            "\\quad",
            "\\qquad",
        ]
        .iter()
        .find_map(|w| t.strip_suffix(w))
        .unwrap_or(t);
        if let Some(before_eq) = t.strip_suffix('=') {
            let b = before_eq.trim_end().as_bytes();
            let name = b
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || b"_{}".contains(c))
                .count();
            if (1..=6).contains(&name) {
                t = &before_eq.trim_end()[..b.len() - name];
            }
        }
    }
    t
}

/// Most boxes joined into one answer.
const MAX_BOXES: usize = 16;

/// The content of the last `\boxed`/`\fbox`.
pub fn boxed(text: &str) -> Option<&str> {
    boxed_at(text, text.len()).map(|(_, _, b)| b)
}

/// The last `\\boxed` or `\\fbox` in `hay`: its position and length (one SIMD scan back over the
/// backslashes for both names).
fn last_box_command(hay: &[u8]) -> Option<(usize, usize)> {
    let mut end = hay.len();
    while let Some(p) = memchr::memrchr(b'\\', &hay[..end]) {
        let name = &hay[p + 1..];
        if name.starts_with(b"boxed") {
            return Some((p, 6));
        }
        if name.starts_with(b"fbox") {
            return Some((p, 5));
        }
        end = p;
    }
    None
}

/// The last box that starts before `limit`: (start, end, trimmed content).
fn boxed_at(text: &str, limit: usize) -> Option<(usize, usize, &str)> {
    let (pos, cmd) = last_box_command(&text.as_bytes()[..limit])?;
    let rest = &text[pos + cmd..];
    let b = rest.as_bytes();
    let (out, end) = if rest.starts_with('{') {
        let end = match_brace(b, 0)?;
        (&rest[1..end - 1], pos + cmd + end)
    } else if rest.starts_with(' ') {
        // `\boxed 5`: up to the end of the token.
        let t = rest.trim_start();
        let len = t
            .find(|c: char| c.is_whitespace() || c == '$')
            .unwrap_or(t.len());
        (&t[..len], text.len() - t.len() + len)
    } else {
        return None;
    };
    let out = out.trim();
    (!out.is_empty()).then_some((pos, end, out))
}
