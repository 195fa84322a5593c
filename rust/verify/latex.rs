//! LaTeX clean-up and tokenizing: the cosmetic layer before parsing.
//!
//! `normalize` removes what never changes an answer's value (math delimiters, `\left`/`\right`,
//! spacing commands, `\dfrac`→`\frac`, degree signs, percent and currency signs, thousands
//! separators written `{,}`, trailing units in `\text{...}` or as plain words after a number) and
//! unwraps `\text{...}`-like groups. `tokenize` turns the result into tokens for `parse.rs`.
//! Both run in time linear in the input (the caller caps the input length).

/// Relation operators of equations and inequalities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tok<'a> {
    /// A numeral: digits with optional thousands commas, decimal part and `e` exponent.
    Num(&'a str),
    Letter(char),
    /// A run of three or more letters that is not a function name (text, not algebra).
    Word(&'a str),
    /// `\name` (without the backslash), or a function name written without one (`sin`, `log`).
    Cmd(&'a str),
    Sym(u8),
    Rel(RelOp),
    Begin(&'a str),
    End(&'a str),
    /// `\{` and `\}`.
    SetOpen,
    SetClose,
    /// `\\` (a matrix row break).
    RowSep,
}

/// Function names recognised without a backslash.
pub const FUNCS: &[&str] = &[
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "log", "ln", "exp", "sqrt", "lg",
];

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

fn rel_cmd(name: &str) -> Option<RelOp> {
    Some(match name {
        "le" | "leq" | "leqslant" => RelOp::Le,
        "ge" | "geq" | "geqslant" => RelOp::Ge,
        "ne" | "neq" => RelOp::Ne,
        "lt" => RelOp::Lt,
        "gt" => RelOp::Gt,
        _ => return None,
    })
}

/// Scan a numeral at `i` (an ASCII digit or a `.` before one); returns its end.
fn scan_number(b: &[u8], mut i: usize, top_level: bool) -> usize {
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    // Thousands separators: 1,000 or 12,345,678 (only outside brackets, where commas list items).
    if top_level && (1..=3).contains(&(i - start)) {
        while i + 3 < b.len()
            && b[i] == b','
            && b[i + 1..i + 4].iter().all(u8::is_ascii_digit)
            && (i + 4 == b.len() || !b[i + 4].is_ascii_digit())
        {
            i += 4;
        }
    }
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    // Scientific notation: 1e3, 2.5E-4 (an `e` followed by a digit or a signed digit).
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    i
}

/// End of `b/c` (integers, optional spaces around `/`) at `i` when nothing numeric follows it:
/// the fraction of a mixed number.
fn mixed_fraction(b: &[u8], i: usize) -> Option<usize> {
    let digits = |j: usize| j + b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
    let spaces = |j: usize| j + b[j..].iter().take_while(|c| **c == b' ').count();
    let n_end = digits(i);
    let slash = spaces(n_end);
    if n_end == i || b.get(slash) != Some(&b'/') {
        return None;
    }
    let d_start = spaces(slash + 1);
    let end = digits(d_start);
    let next = b.get(end).copied().unwrap_or(b' ');
    let clean =
        !(next.is_ascii_alphanumeric() || matches!(next, b'.' | b'^' | b'_' | b'!' | b'{' | b'('));
    (end > d_start && clean).then_some(end)
}

/// Tokens of a normalized answer; `None` when it holds a character no rule knows or more than
/// `max_tokens` tokens.
pub fn tokenize(s: &str, max_tokens: usize) -> Option<Vec<Tok<'_>>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(s.len() / 2 + 1);
    let mut depth = 0i32;
    let mut i = 0;
    // End of the last numeral; a numeral right after it (white space between) is a mixed number.
    let mut num_end = usize::MAX;
    while i < b.len() {
        if out.len() > max_tokens {
            return None;
        }
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if !(c.is_ascii_digit() || c == b'.') {
            num_end = usize::MAX;
        }
        if c.is_ascii_digit() || (c == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()) {
            // After `_`, `^` or a command the earlier numeral is an argument (`\log_2 8`,
            // `\frac 1 2`), not a number of its own.
            let argument =
                out.len() >= 2 && matches!(out[out.len() - 2], Tok::Sym(b'_' | b'^') | Tok::Cmd(_));
            if let (Some(Tok::Num(prev)), false) = (out.last(), argument) {
                if num_end < i {
                    // Two numbers separated by white space never multiply: `4 4/9` is a mixed
                    // number, anything else is not algebra.
                    let (whole, end) = (*prev, mixed_fraction(b, i)?);
                    let (num, den) = s[i..end].split_once('/')?;
                    if !whole.bytes().all(|d| d.is_ascii_digit()) {
                        return None;
                    }
                    out.pop();
                    out.extend([Tok::Sym(b'('), Tok::Num(whole), Tok::Sym(b'+')]);
                    out.extend([Tok::Num(num.trim()), Tok::Sym(b'/'), Tok::Num(den.trim())]);
                    out.push(Tok::Sym(b')'));
                    i = end;
                    continue;
                }
            }
            let end = scan_number(b, i, depth == 0);
            out.push(Tok::Num(&s[i..end]));
            i = end;
            num_end = end;
            continue;
        }
        if c.is_ascii_alphabetic() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_alphabetic() {
                j += 1;
            }
            let w = &s[i..j];
            if FUNCS.contains(&w) {
                out.push(Tok::Cmd(w));
            } else if w.len() <= 2 || (w.len() <= 4 && w.bytes().all(|c| c.is_ascii_uppercase())) {
                // `xy`, and points of a figure (`ABC`), are products of letters.
                out.extend(w.chars().map(Tok::Letter));
            } else {
                out.push(Tok::Word(w));
            }
            i = j;
            continue;
        }
        if c == b'\\' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_alphabetic() {
                j += 1;
            }
            if j == i + 1 {
                // A backslash before a non-letter.
                let &n = b.get(i + 1)?;
                match n {
                    b'{' => out.push(Tok::SetOpen),
                    b'}' => out.push(Tok::SetClose),
                    b'\\' => out.push(Tok::RowSep),
                    b'|' => out.push(Tok::Sym(b'|')),
                    b',' | b';' | b':' | b'!' | b' ' | b'%' | b'$' => {}
                    _ => return None,
                }
                i += 2;
                continue;
            }
            let name = &s[i + 1..j];
            i = j;
            if let Some(r) = rel_cmd(name) {
                out.push(Tok::Rel(r));
                continue;
            }
            match name {
                "begin" | "end" => {
                    if b.get(i) != Some(&b'{') {
                        return None;
                    }
                    let end = match_brace(b, i)?;
                    let env = &s[i + 1..end - 1];
                    out.push(if name == "begin" {
                        Tok::Begin(env)
                    } else {
                        Tok::End(env)
                    });
                    i = end;
                }
                "lbrace" => out.push(Tok::SetOpen),
                "rbrace" => out.push(Tok::SetClose),
                "lvert" | "rvert" | "vert" | "mid" => out.push(Tok::Sym(b'|')),
                "langle" => out.push(Tok::Sym(b'(')),
                "rangle" => out.push(Tok::Sym(b')')),
                "lbrack" => out.push(Tok::Sym(b'[')),
                "rbrack" => out.push(Tok::Sym(b']')),
                _ => out.push(Tok::Cmd(name)),
            }
            continue;
        }
        match c {
            b'<' | b'>' => {
                let eq = b.get(i + 1) == Some(&b'=');
                out.push(Tok::Rel(match (c, eq) {
                    (b'<', false) => RelOp::Lt,
                    (b'<', true) => RelOp::Le,
                    (_, false) => RelOp::Gt,
                    (_, true) => RelOp::Ge,
                }));
                i += 1 + eq as usize;
                continue;
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Rel(RelOp::Ne));
                i += 2;
                continue;
            }
            b'=' => out.push(Tok::Rel(RelOp::Eq)),
            b'(' | b'[' | b'{' => {
                depth += 1;
                out.push(Tok::Sym(c));
            }
            b')' | b']' | b'}' => {
                depth -= 1;
                out.push(Tok::Sym(c));
            }
            b'+' | b'-' | b'*' | b'/' | b'^' | b'_' | b',' | b'!' | b'|' | b'&' | b';' | b':'
            | b'\'' => out.push(Tok::Sym(c)),
            _ => {
                // A non-ASCII letter (θ, α) is a variable; anything else is not algebra.
                let ch = s[i..].chars().next()?;
                if ch.is_alphabetic() {
                    out.push(Tok::Letter(ch));
                    i += ch.len_utf8();
                    continue;
                }
                return None;
            }
        }
        i += 1;
    }
    Some(out)
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
    fn tokenize_numbers_and_commands() {
        let t = tokenize("1,000 + \\frac{1}{2}x \\le 3", 100).unwrap();
        assert_eq!(t[0], Tok::Num("1,000"));
        assert_eq!(t[2], Tok::Cmd("frac"));
        assert!(t.contains(&Tok::Letter('x')));
        assert!(t.contains(&Tok::Rel(RelOp::Le)));
        // Inside brackets a comma separates items.
        let t = tokenize("(10,100)", 100).unwrap();
        assert_eq!(t[1], Tok::Num("10"));
        assert_eq!(tokenize("1.5e3", 10).unwrap(), vec![Tok::Num("1.5e3")]);
        assert_eq!(tokenize("Monday", 10).unwrap(), vec![Tok::Word("Monday")]);
        assert!(tokenize("1 @ 2", 10).is_none());
        assert!(tokenize("1+1+1+1", 3).is_none());
    }

    #[test]
    fn match_brace_handles_nesting_and_escapes() {
        let s = b"{a{b}\\}c}d";
        assert_eq!(match_brace(s, 0), Some(9));
        assert_eq!(match_brace(b"{{}", 0), None);
    }
}
