//! LaTeX clean-up: the cosmetic layer before tokenizing and parsing.
//!
//! `normalize` removes what never changes an answer's value (math delimiters, `\left`/`\right`,
//! spacing commands, `\dfrac`→`\frac`, degree signs, percent and currency signs, thousands
//! separators written `{,}`, trailing units in `\text{...}` or as plain words after a number) and
//! unwraps `\text{...}`-like groups, in time linear in the input (the caller caps the input
//! length). `tokenize.rs` then turns the result into tokens for `parse.rs`.

use super::tokenize::FUNCS;

const SIMPLE: &[(&str, &str)] = &[
    ("\\left.", ""),
    ("\\right.", ""),
    ("\\left", ""),
    ("\\right", ""),
    ("\\bigl", ""),
    ("\\bigr", ""),
    ("\\Bigl", ""),
    ("\\Bigr", ""),
    ("\\big", ""),
    ("\\Big", ""),
    ("\\displaystyle", ""),
    ("\\textstyle", ""),
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\cfrac", "\\frac"),
    ("\\dbinom", "\\binom"),
    ("\\tbinom", "\\binom"),
    ("^{\\circ}", ""),
    ("^\\circ", ""),
    ("{}^\\circ", ""),
    ("\\circ", ""),
    ("\\degree", ""),
    ("°", ""),
    ("\\%", ""),
    ("%", ""),
    ("\\$", ""),
    ("$", ""),
    ("€", ""),
    ("£", ""),
    ("¥", ""),
    ("{,}", ""),
    ("\\!", ""),
    ("\\,", ""),
    ("\\;", ""),
    ("\\:", ""),
    ("\\ ", " "),
    ("\\qquad", " "),
    ("\\quad", " "),
    ("~", " "),
    ("−", "-"),
    ("–", "-"),
    ("×", "\\times "),
    ("·", "\\cdot "),
    ("÷", "\\div "),
    ("π", "\\pi "),
    ("∞", "\\infty "),
    ("≤", "\\le "),
    ("≥", "\\ge "),
    ("≠", "\\ne "),
    ("√", "\\sqrt"),
    ("±", "\\pm "),
    ("≈", "\\approx "),
    ("\\angle", " "),
    ("\\measuredangle", " "),
];

/// Each command with its opening brace: `("\\text", "\\text{")`.
macro_rules! with_open_brace {
    ($($cmd:literal),* $(,)?) => { [$(($cmd, concat!($cmd, "{"))),*] };
}

/// Commands whose braced argument is text (or formatting) to unwrap.
const WRAPPERS: [(&str, &str); 23] = with_open_brace![
    "\\text",
    "\\textbf",
    "\\textit",
    "\\textrm",
    "\\textnormal",
    "\\mathrm",
    "\\mathbf",
    "\\mathit",
    "\\mathsf",
    "\\mathtt",
    "\\boldsymbol",
    "\\operatorname",
    "\\mbox",
    "\\hbox",
    "\\boxed",
    "\\fbox",
    "\\mathbb",
    "\\bf",
    "\\overline",
    "\\overrightarrow",
    "\\overleftrightarrow",
    "\\vec",
    "\\widehat",
];
/// Wrappers that may hold a unit after a number.
const UNIT_WRAPPERS: [(&str, &str); 6] = with_open_brace![
    "\\text",
    "\\textrm",
    "\\textnormal",
    "\\mathrm",
    "\\mbox",
    "\\hbox",
];

/// A set of up to 64 literal patterns, found together in one pass over a text: bit `k` of
/// `Patterns::present` says whether `pats[k]` occurs. At each byte only the patterns whose first
/// two bytes match are compared, so the pass costs about one table look-up per byte (instead of
/// one substring search per pattern).
pub(super) struct Patterns<const N: usize> {
    pats: [&'static str; N],
    /// Patterns by first byte.
    first: [u64; 256],
    /// Patterns by second byte (one-byte patterns under every byte).
    second: [u64; 256],
    /// The one-byte patterns.
    single: u64,
}

impl<const N: usize> Patterns<N> {
    pub(super) const fn new(pats: [&'static str; N]) -> Self {
        assert!(N <= 64);
        let (mut first, mut second, mut single) = ([0u64; 256], [0u64; 256], 0u64);
        let mut k = 0;
        while k < N {
            let p = pats[k].as_bytes();
            assert!(!p.is_empty());
            first[p[0] as usize] |= 1 << k;
            if p.len() == 1 {
                single |= 1 << k;
            } else {
                second[p[1] as usize] |= 1 << k;
            }
            k += 1;
        }
        let mut b = 0;
        while b < 256 {
            second[b] |= single;
            b += 1;
        }
        Patterns {
            pats,
            first,
            second,
            single,
        }
    }

    /// Bit `k` set when `pats[k]` occurs in `s`.
    pub(super) fn present(&self, s: &str) -> u64 {
        let b = s.as_bytes();
        let mut found = 0u64;
        for i in 0..b.len() {
            let mut cand = self.first[b[i] as usize] & !found;
            if cand == 0 {
                continue;
            }
            cand &= b
                .get(i + 1)
                .map_or(self.single, |&n| self.second[n as usize]);
            while cand != 0 {
                let k = cand.trailing_zeros();
                cand &= cand - 1;
                if b[i..].starts_with(self.pats[k as usize].as_bytes()) {
                    found |= 1 << k;
                }
            }
        }
        found
    }
}

/// One column of a table of string pairs (`second`: the right one), as an array.
const fn column<const N: usize>(
    rows: &[(&'static str, &'static str)],
    second: bool,
) -> [&'static str; N] {
    let mut out = [""; N];
    let mut k = 0;
    while k < N {
        out[k] = if second { rows[k].1 } else { rows[k].0 };
        k += 1;
    }
    out
}

static SIMPLE_PATTERNS: Patterns<{ SIMPLE.len() }> = Patterns::new(column(SIMPLE, false));
static WRAPPER_OPENS: Patterns<{ WRAPPERS.len() }> = Patterns::new(column(&WRAPPERS, true));
static UNIT_WRAPPER_OPENS: Patterns<{ UNIT_WRAPPERS.len() }> =
    Patterns::new(column(&UNIT_WRAPPERS, true));

/// Index just past the `}` matching the `{` at `open`, if balanced (jumping between braces and
/// backslashes with SIMD `memchr3`).
pub fn match_brace(s: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while let Some(off) = memchr::memchr3(b'{', b'}', b'\\', s.get(i..)?) {
        i += off;
        match s[i] {
            b'\\' => i += 1, // skip the escaped character (\{ \})
            b'{' => depth += 1,
            _ => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
        }
        i += 1;
    }
    None
}

pub(super) fn strip_delims(s: &str) -> &str {
    let mut s = s.trim();
    loop {
        let t = s
            .strip_prefix("$$")
            .and_then(|t| t.strip_suffix("$$"))
            .or_else(|| s.strip_prefix('$').and_then(|t| t.strip_suffix('$')))
            .or_else(|| s.strip_prefix("\\(").and_then(|t| t.strip_suffix("\\)")))
            .or_else(|| s.strip_prefix("\\[").and_then(|t| t.strip_suffix("\\]")));
        match t {
            Some(t) if !t.is_empty() => s = t.trim(),
            _ => return s,
        }
    }
}

fn is_unit_text(content: &str) -> bool {
    let letters = content.chars().filter(|c| c.is_ascii_alphabetic()).count();
    let ok_chars = content.chars().all(|c| {
        c.is_ascii_alphabetic()
            || c.is_whitespace()
            || matches!(c, '.' | '/' | '-' | '^' | '2' | '3')
    });
    ok_chars && (letters >= 2 || (letters == 1 && content.starts_with(' ')))
}

/// Remove one trailing `\text{unit}` (with an optional `^2`/`^3`) after something else.
pub(super) fn strip_trailing_unit_group(s: &str) -> Option<String> {
    let t = s.trim_end();
    let t = ["^2", "^3", "^{2}", "^{3}"]
        .iter()
        .find_map(|p| t.strip_suffix(p))
        .unwrap_or(t);
    if !t.ends_with('}') {
        return None;
    }
    let present = UNIT_WRAPPER_OPENS.present(t);
    for (k, (w, pat)) in UNIT_WRAPPERS.iter().enumerate() {
        if present & (1 << k) == 0 {
            continue;
        }
        let Some(start) = t.rfind(pat) else { continue };
        let open = start + w.len();
        if match_brace(t.as_bytes(), open) != Some(t.len()) {
            continue;
        }
        let content = &t[open + 1..t.len() - 1];
        let prefix = t[..start].trim_end();
        if is_unit_text(content)
            && !prefix.is_empty()
            && !prefix.ends_with(['=', '+', '-', '(', ','])
        {
            return Some(prefix.to_string());
        }
    }
    None
}

/// Replace every `\wrapper{content}` by its content (`or`/`and` become list commas).
fn unwrap_groups(s: &mut String) {
    // Only the wrappers that occur are searched for (found again after each change).
    let mut present = WRAPPER_OPENS.present(s);
    for (k, (w, pat)) in WRAPPERS.iter().enumerate() {
        if present & (1 << k) == 0 {
            continue;
        }
        let mut from = 0;
        while let Some(off) = s[from..].find(pat) {
            let start = from + off;
            let open = start + w.len();
            let Some(end) = match_brace(s.as_bytes(), open) else {
                from = open;
                continue;
            };
            let inner = s[open + 1..end - 1].trim();
            let repl = if inner == "or" || inner == "and" {
                ",".to_string()
            } else {
                format!(" {} ", &s[open + 1..end - 1])
            };
            s.replace_range(start..end, &repl);
            from = start;
        }
        present = WRAPPER_OPENS.present(s);
    }
}

/// Drop trailing plain unit words after a number: `18 dollars`, `5 sq ft`, `3 cm^2`.
pub(super) fn strip_unit_words(s: &str) -> &str {
    let mut t = s.trim_end();
    loop {
        let Some(sp) = t.rfind(' ') else { return t };
        let word = t[sp + 1..].trim_end_matches(['.', '2', '3', '^']);
        let prefix = t[..sp].trim_end();
        let is_word = (word.len() >= 2 || matches!(word, "m" | "g" | "s" | "h"))
            && word.bytes().all(|b| b.is_ascii_alphabetic())
            && !FUNCS.contains(&word);
        if !is_word || !prefix.bytes().any(|b| b.is_ascii_digit()) {
            return t;
        }
        t = prefix;
    }
}

/// Drop LaTeX thousands separators `,\!` (as in `10,\!080` or `11,\! 111`): a comma, `\!`,
/// optional spaces, then three digits.
fn drop_spaced_separators(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find(",\\!") {
        out.push_str(&rest[..p]);
        let after = rest[p + 3..].trim_start_matches(' ');
        let b = after.as_bytes();
        let three = b.len() >= 3
            && b[..3].iter().all(u8::is_ascii_digit)
            && b.get(3).map_or(true, |c| !c.is_ascii_digit());
        if !three {
            out.push(',');
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The cosmetic normal form of an answer (see the module doc).
pub fn normalize(s: &str) -> String {
    // Protect `\\` (row breaks) from the rules for `\ ` and `\,`.
    // Trailing punctuation first, so that `$5$.` and `5 \text{ m}.` lose their delimiters and units.
    let s = strip_delims(s.trim().trim_end_matches(['.', ',', ';', ':']));
    let s = s.trim_end_matches(['.', ',', ';']);
    let mut out = if has(s, "\\\\") {
        s.replace("\\\\", "\u{1}")
    } else {
        s.to_string()
    };
    if has(&out, ",\\!") {
        out = drop_spaced_separators(&out);
    }
    // Only the rules that occur in the answer are applied (found again after each change).
    let mut present = SIMPLE_PATTERNS.present(&out);
    for (k, (from, to)) in SIMPLE.iter().enumerate() {
        if present & (1 << k) != 0 {
            out = out.replace(from, to);
            present = SIMPLE_PATTERNS.present(&out);
        }
    }
    while let Some(t) = strip_trailing_unit_group(&out) {
        out = t;
    }
    if out.contains('\\') {
        unwrap_groups(&mut out);
    }
    for conn in [" or ", " and "] {
        if has(&out, conn) {
            out = out.replace(conn, ",");
        }
    }
    let t = strip_unit_words(&out);
    let t = t.trim().trim_end_matches(['.', ',', ';']).trim();
    let t = t.trim_end_matches('\u{1}').trim();
    if t.contains('\u{1}') {
        t.replace('\u{1}', "\\\\")
    } else {
        t.to_string()
    }
}

/// Whether `pat` occurs in `hay` (a short answer: the first byte by SIMD, then a comparison; no
/// searcher to build).
fn has(hay: &str, pat: &str) -> bool {
    let (h, p) = (hay.as_bytes(), pat.as_bytes());
    memchr::memchr_iter(p[0], h).any(|i| h[i..].starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_removes_cosmetics() {
        assert_eq!(
            normalize("$\\left( 3, \\dfrac{\\pi}{2} \\right)$"),
            "( 3, \\frac{\\pi}{2} )"
        );
        assert_eq!(normalize("\\$1{,}000.00"), "1000.00");
        assert_eq!(normalize("90^\\circ"), "90");
        assert_eq!(normalize("50\\%"), "50");
        assert_eq!(normalize("5\\text{ cm}^2"), "5");
        assert_eq!(normalize("18 dollars."), "18");
        assert_eq!(normalize("\\text{Monday}").trim(), "Monday");
        assert_eq!(normalize("1 \\text{ or } 2").replace(' ', ""), "1,2");
        assert_eq!(normalize("New York"), "New York");
        assert_eq!(normalize("11,\\! 111,\\!100"), "11111100");
        assert_eq!(normalize("(1,\\!2)"), "(1,2)");
        assert_eq!(normalize("90\\text{ square\nunits}"), "90");
    }

    #[test]
    fn match_brace_handles_nesting_and_escapes() {
        let s = b"{a{b}\\}c}d";
        assert_eq!(match_brace(s, 0), Some(9));
        assert_eq!(match_brace(b"{{}", 0), None);
    }
}
