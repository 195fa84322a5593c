//! Tokens of a normalized answer (`latex::normalize`'s output) for `parse.rs`, in time linear in
//! the input; a character no rule knows, or too many tokens, is no answer.

use super::latex::match_brace;

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
}
