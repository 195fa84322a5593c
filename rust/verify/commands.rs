//! The parser's primaries that are commands and literals: numerals (with a base subscript, or a
//! mixed number `2\\frac14`), letters and subscripted names, `\\frac \\sqrt \\binom \\log`,
//! function application (`\\sin^2 x`), floor/ceiling, and matrix environments.

use super::tokenize::Tok;
use super::parse::{number, Func, Node, PResult, Parser};
use super::rational::Q;

pub(super) const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];

pub(super) fn func_of(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "sec" => Func::Sec,
        "csc" => Func::Csc,
        "cot" => Func::Cot,
        "arcsin" => Func::Asin,
        "arccos" => Func::Acos,
        "arctan" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "ln" | "log" => Func::Ln,
        "exp" => Func::Exp,
        _ => return None,
    })
}

/// Whether the command `\\name` begins a primary (and so may follow a factor implicitly).
pub(super) fn starts_primary(name: &str) -> bool {
    matches!(
        name,
        "frac"
            | "binom"
            | "sqrt"
            | "pi"
            | "infty"
            | "infinity"
            | "infin"
            | "lfloor"
            | "lceil"
            | "log"
            | "lg"
            | "sum"
            | "prod"
    ) || func_of(name).is_some()
        || GREEK.contains(&name)
}

impl<'a, 'v> Parser<'a, 'v> {
    pub(super) fn numeral(&mut self, text: &str) -> PResult {
        // A base subscript: 1011_2, 1011_{2}.
        if self.peek() == Some(Tok::Sym(b'_')) && text.bytes().all(|b| b.is_ascii_digit()) {
            self.pos += 1;
            let base = match self.peek() {
                Some(Tok::Num(b)) => {
                    self.pos += 1;
                    b
                }
                Some(Tok::Sym(b'{')) => match (self.peek_at(1), self.peek_at(2)) {
                    (Some(Tok::Num(b)), Some(Tok::Sym(b'}'))) => {
                        self.pos += 3;
                        b
                    }
                    _ => return Err(()),
                },
                _ => return Err(()),
            };
            let base: u32 = base.parse().map_err(|_| ())?;
            if !(2..=36).contains(&base) || text.bytes().any(|d| (d - b'0') as u32 >= base) {
                return Err(());
            }
            return Ok(Node::Based(text.to_string(), base));
        }
        let n = number(text);
        // A mixed number: 2\frac{1}{4} is 2 + 1/4 when all three parts are integer literals.
        if let (Node::Num(w), Some(Tok::Cmd("frac"))) = (&n, self.peek()) {
            if w.is_int() && text.bytes().all(|b| b.is_ascii_digit()) {
                if let Some((a, b, len)) = self.int_frac_ahead() {
                    self.pos += len;
                    let frac = Q::new(a, b).ok_or(())?;
                    return Ok(Node::Add(vec![n, Node::Num(frac)]));
                }
            }
        }
        Ok(n)
    }

    /// `\frac{int}{int}` (or `\frac12`) right here: (numerator, denominator, tokens).
    fn int_frac_ahead(&self) -> Option<(i128, i128, usize)> {
        let int = |t: Option<Tok<'_>>| match t {
            Some(Tok::Num(s)) if s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<i128>().ok(),
            _ => None,
        };
        if let (
            Some(Tok::Sym(b'{')),
            Some(a),
            Some(Tok::Sym(b'}')),
            Some(Tok::Sym(b'{')),
            Some(b),
            Some(Tok::Sym(b'}')),
        ) = (
            self.peek_at(1),
            int(self.peek_at(2)),
            self.peek_at(3),
            self.peek_at(4),
            int(self.peek_at(5)),
            self.peek_at(6),
        ) {
            return Some((a, b, 7));
        }
        match self.peek_at(1) {
            Some(Tok::Num(s)) if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) => {
                let v = s.as_bytes();
                Some(((v[0] - b'0') as i128, (v[1] - b'0') as i128, 2))
            }
            _ => None,
        }
    }

    pub(super) fn letter(&mut self, c: char) -> PResult {
        let mut name = c.to_string();
        if self.eat(Tok::Sym(b'_')) {
            name.push('_');
            match self.peek() {
                Some(Tok::Num(s)) => name.push_str(s),
                Some(Tok::Letter(l)) => name.push(l),
                Some(Tok::Sym(b'{')) => {
                    self.pos += 1;
                    while let Some(t) = self.peek() {
                        self.pos += 1;
                        match t {
                            Tok::Sym(b'}') => break,
                            Tok::Num(s) | Tok::Word(s) | Tok::Cmd(s) => name.push_str(s),
                            Tok::Letter(l) => name.push(l),
                            _ => return Err(()),
                        }
                    }
                    self.pos -= 1;
                }
                _ => return Err(()),
            }
            self.pos += 1;
            return Ok(Node::Var(self.vars.id(&name).ok_or(())?));
        }
        Ok(match c {
            'e' => Node::E,
            'i' => Node::I,
            _ => Node::Var(self.vars.id(&name).ok_or(())?),
        })
    }

    pub(super) fn command(&mut self, name: &str) -> PResult {
        Ok(match name {
            "frac" => {
                let a = self.arg()?;
                let b = self.arg()?;
                Node::Div(Box::new(a), Box::new(b))
            }
            "binom" => {
                let a = self.arg()?;
                let b = self.arg()?;
                Node::Binom(Box::new(a), Box::new(b))
            }
            "sqrt" => {
                if self.eat(Tok::Sym(b'[')) {
                    let n = Self::single(self.group_until(Tok::Sym(b']'))?)?;
                    let x = self.arg()?;
                    Node::Root(Box::new(n), Box::new(x))
                } else {
                    Node::Func(Func::Sqrt, Box::new(self.arg()?))
                }
            }
            "sum" | "prod" => self.series(name == "prod")?,
            "pi" => Node::Pi,
            "infty" | "infinity" | "infin" => Node::Inf,
            "emptyset" | "varnothing" => Node::Set(vec![]),
            "lfloor" => Node::Func(
                Func::Floor,
                Box::new(Self::single(self.group_until(Tok::Cmd("rfloor"))?)?),
            ),
            "lceil" => Node::Func(
                Func::Ceil,
                Box::new(Self::single(self.group_until(Tok::Cmd("rceil"))?)?),
            ),
            "log" | "lg" if self.peek() == Some(Tok::Sym(b'_')) => {
                self.pos += 1;
                let base = self.arg()?;
                let x = self.func_arg()?;
                Node::Log(Box::new(base), Box::new(x))
            }
            "lg" => Node::Log(Box::new(Node::Num(Q::int(10))), Box::new(self.func_arg()?)),
            _ if GREEK.contains(&name) => Node::Var(self.vars.id(name).ok_or(())?),
            _ => {
                let f = func_of(name).ok_or(())?;
                // \sin^2 x is (\sin x)^2.
                let power = if self.eat(Tok::Sym(b'^')) {
                    Some(self.exponent()?)
                } else {
                    None
                };
                let x = self.func_arg()?;
                let applied = Node::Func(f, Box::new(x));
                match power {
                    Some(p) => Node::Pow(Box::new(applied), Box::new(p)),
                    None => applied,
                }
            }
        })
    }

    /// `\sum_{k=lo}^{hi} body`: the index, its bounds, and the term (juxtaposed factors).
    fn series(&mut self, product: bool) -> PResult {
        self.expect(Tok::Sym(b'_'))?;
        self.expect(Tok::Sym(b'{'))?;
        let Some(Tok::Letter(c)) = self.peek() else {
            return Err(());
        };
        self.pos += 1;
        let Node::Var(k) = self.letter(c)? else {
            return Err(());
        };
        self.expect(Tok::Rel(super::tokenize::RelOp::Eq))?;
        let lo = self.sum()?;
        self.expect(Tok::Sym(b'}'))?;
        self.expect(Tok::Sym(b'^'))?;
        let hi = self.exponent()?;
        let body = self.func_arg()?;
        Ok(Node::Series(
            product,
            k,
            Box::new(lo),
            Box::new(hi),
            Box::new(body),
        ))
    }

    /// A function's argument: a bracketed group, or juxtaposed factors (`\sin 2x` is sin(2x)).
    pub(super) fn func_arg(&mut self) -> PResult {
        if matches!(self.peek(), Some(Tok::Sym(b'(' | b'{'))) {
            return self.power();
        }
        let mut factors = vec![self.power()?];
        while self.starts_factor()
            && !matches!(self.peek(), Some(Tok::Cmd(c)) if func_of(c).is_some())
        {
            factors.push(self.power()?);
        }
        Ok(if factors.len() == 1 {
            factors.pop().ok_or(())?
        } else {
            Node::Mul(factors)
        })
    }

    pub(super) fn matrix(&mut self, env: &'a str) -> PResult {
        if !matches!(
            env,
            "pmatrix" | "bmatrix" | "matrix" | "smallmatrix" | "Bmatrix" | "array"
        ) {
            return Err(());
        }
        if env == "array" && self.peek() == Some(Tok::Sym(b'{')) {
            // Skip the column spec {cc}.
            while let Some(t) = self.peek() {
                self.pos += 1;
                if t == Tok::Sym(b'}') {
                    break;
                }
            }
        }
        let mut rows = vec![];
        let mut row = vec![];
        loop {
            if self.eat(Tok::End(env)) {
                break;
            }
            row.push(self.sum()?);
            if self.eat(Tok::Sym(b'&')) {
                continue;
            }
            if self.eat(Tok::RowSep) {
                rows.push(std::mem::take(&mut row));
                if self.eat(Tok::End(env)) {
                    break;
                }
                continue;
            }
            self.expect(Tok::End(env))?;
            break;
        }
        if !row.is_empty() {
            rows.push(row);
        }
        if rows.is_empty() || rows.iter().any(|r| r.len() != rows[0].len()) {
            return Err(());
        }
        Ok(Node::Matrix(rows))
    }
}
