//! A recursive-descent parser from LaTeX tokens to an answer tree (`Node`).
//!
//! Precedence, lowest first: top-level comma list (an unordered list of solutions), `\cup`,
//! relations (`= \ne < \le > \ge`), `+ -`, products (`\cdot \times * / \div` and juxtaposition),
//! unary signs, powers `^` and postfix `!`, primaries. Recursion is capped (`MAX_DEPTH`), so a
//! deeply nested input fails to parse (and is then compared as text) instead of overflowing the
//! stack.

use super::latex::{RelOp, Tok};
use super::rational::Q;

pub const MAX_DEPTH: u32 = 64;
pub const MAX_VARS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Sec,
    Csc,
    Cot,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Ln,
    Exp,
    Sqrt,
    Abs,
    Floor,
    Ceil,
    Fact,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Num(Q),
    /// A literal too large to hold exactly.
    Float(f64),
    /// A numeral with a base subscript, `1011_2`: its digits and base.
    Based(String, u32),
    Var(u16),
    Pi,
    E,
    I,
    Inf,
    Neg(Box<Node>),
    Add(Vec<Node>),
    Mul(Vec<Node>),
    Div(Box<Node>, Box<Node>),
    Pow(Box<Node>, Box<Node>),
    Func(Func, Box<Node>),
    /// `\sqrt[n]{x}`: (n, x).
    Root(Box<Node>, Box<Node>),
    /// `\log_b x`: (b, x).
    Log(Box<Node>, Box<Node>),
    Binom(Box<Node>, Box<Node>),
    /// `a op b op c ...` (parts, ops).
    Rel(Vec<Node>, Vec<RelOp>),
    /// Brackets with two or more items: a tuple or an interval, `(open, close, items)`.
    Tuple(u8, u8, Vec<Node>),
    /// An unordered collection: `\{...\}` or a top-level comma list.
    Set(Vec<Node>),
    Union(Vec<Node>),
    Matrix(Vec<Vec<Node>>),
    /// Not algebra: compared as normalized text.
    Text(String),
}

/// Variable names shared by the two answers being compared.
#[derive(Default, Debug)]
pub struct Vars {
    pub names: Vec<String>,
}

impl Vars {
    fn id(&mut self, name: &str) -> Option<u16> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Some(i as u16);
        }
        if self.names.len() >= MAX_VARS {
            return None;
        }
        self.names.push(name.to_string());
        Some((self.names.len() - 1) as u16)
    }
}

const GREEK: &[&str] = &[
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
    "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi",
    "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega",
];

type PResult = Result<Node, ()>;

pub struct Parser<'a, 'v> {
    toks: Vec<Tok<'a>>,
    pos: usize,
    depth: u32,
    in_abs: u32,
    vars: &'v mut Vars,
}

/// Parse a whole normalized answer; `Err` when it is not algebra we know.
pub fn parse(toks: Vec<Tok<'_>>, vars: &mut Vars) -> PResult {
    let mut p = Parser { toks, pos: 0, depth: 0, in_abs: 0, vars };
    let items = p.list()?;
    if p.pos != p.toks.len() {
        return Err(());
    }
    Ok(if items.len() == 1 { items.into_iter().next().ok_or(())? } else { Node::Set(items) })
}

fn func_of(name: &str) -> Option<Func> {
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
fn starts_primary(name: &str) -> bool {
    matches!(
        name,
        "frac" | "binom" | "sqrt" | "pi" | "infty" | "infinity" | "infin" | "lfloor" | "lceil" | "log" | "lg"
    ) || func_of(name).is_some()
        || GREEK.contains(&name)
}

/// The exact (or, when too long, float) value of a numeral like `1,000.50` or `1.5e3`.
pub fn number(text: &str) -> Node {
    let t: String = text.chars().filter(|&c| c != ',').collect();
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(k) => (&t[..k], t[k + 1..].parse::<i32>().unwrap_or(i32::MAX)),
        None => (&t[..], 0),
    };
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    match Q::from_decimal(ip, fp, exp) {
        Some(q) => Node::Num(q),
        None => Node::Float(t.parse::<f64>().unwrap_or(f64::INFINITY)),
    }
}

impl<'a, 'v> Parser<'a, 'v> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<Tok<'a>> {
        self.toks.get(self.pos + k).copied()
    }

    fn eat(&mut self, t: Tok<'a>) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok<'a>) -> Result<(), ()> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(())
        }
    }

    fn enter(&mut self) -> Result<(), ()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(())
        } else {
            Ok(())
        }
    }

    /// Comma-separated items (at least one).
    fn list(&mut self) -> Result<Vec<Node>, ()> {
        let mut items = vec![self.union()?];
        while self.eat(Tok::Sym(b',')) || self.eat(Tok::Sym(b';')) {
            items.push(self.union()?);
        }
        Ok(items)
    }

    fn union(&mut self) -> PResult {
        let first = self.relation()?;
        if self.peek() != Some(Tok::Cmd("cup")) {
            return Ok(first);
        }
        let mut parts = vec![];
        let mut push = |n: Node| match n {
            // ((a ∪ b) ∪ c) is a ∪ b ∪ c.
            Node::Union(inner) => parts.extend(inner),
            n => parts.push(n),
        };
        push(first);
        while self.eat(Tok::Cmd("cup")) {
            push(self.relation()?);
        }
        Ok(Node::Union(parts))
    }

    fn relation(&mut self) -> PResult {
        let first = self.sum()?;
        let mut parts = vec![first];
        let mut ops = Vec::new();
        while let Some(Tok::Rel(op)) = self.peek() {
            self.pos += 1;
            ops.push(op);
            parts.push(self.sum()?);
        }
        Ok(if ops.is_empty() { parts.pop().ok_or(())? } else { Node::Rel(parts, ops) })
    }

    fn sum(&mut self) -> PResult {
        self.enter()?;
        let mut terms = vec![self.product()?];
        loop {
            if self.eat(Tok::Sym(b'+')) {
                terms.push(self.product()?);
            } else if self.eat(Tok::Sym(b'-')) {
                terms.push(Node::Neg(Box::new(self.product()?)));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 { terms.pop().ok_or(())? } else { Node::Add(terms) })
    }

    fn starts_factor(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Letter(_) | Tok::Begin(_) | Tok::SetOpen) => true,
            Some(Tok::Sym(b'(' | b'{')) => true,
            Some(Tok::Sym(b'|')) => self.in_abs == 0,
            Some(Tok::Cmd(c)) => starts_primary(c),
            _ => false,
        }
    }

    fn product(&mut self) -> PResult {
        let mut factors = vec![self.unary()?];
        loop {
            let t = self.peek();
            if matches!(t, Some(Tok::Sym(b'*') | Tok::Cmd("cdot" | "times" | "ast"))) {
                self.pos += 1;
                factors.push(self.unary()?);
            } else if matches!(t, Some(Tok::Sym(b'/') | Tok::Cmd("div"))) {
                self.pos += 1;
                let den = self.unary()?;
                let num = if factors.len() == 1 { factors.pop().ok_or(())? } else { Node::Mul(std::mem::take(&mut factors)) };
                factors = vec![Node::Div(Box::new(num), Box::new(den))];
            } else if self.starts_factor() {
                factors.push(self.power()?);
            } else {
                break;
            }
        }
        Ok(if factors.len() == 1 { factors.pop().ok_or(())? } else { Node::Mul(factors) })
    }

    fn unary(&mut self) -> PResult {
        self.enter()?;
        let out = if self.eat(Tok::Sym(b'-')) {
            Node::Neg(Box::new(self.unary()?))
        } else if self.eat(Tok::Sym(b'+')) {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(out)
    }

    fn power(&mut self) -> PResult {
        self.enter()?;
        let mut base = self.primary()?;
        loop {
            if self.eat(Tok::Sym(b'!')) {
                base = Node::Func(Func::Fact, Box::new(base));
            } else if self.eat(Tok::Sym(b'^')) {
                let e = self.exponent()?;
                base = Node::Pow(Box::new(base), Box::new(e));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(base)
    }

    /// The exponent after `^`: a braced group, or a signed single primary (`x^-1`, `2^10`).
    fn exponent(&mut self) -> PResult {
        if self.eat(Tok::Sym(b'-')) {
            return Ok(Node::Neg(Box::new(self.exponent()?)));
        }
        self.enter()?;
        let e = self.primary();
        self.depth -= 1;
        e
    }

    /// A `\frac`/`\sqrt`/`\binom` argument: a braced group or a single token (`\frac13`).
    fn arg(&mut self) -> PResult {
        match self.peek() {
            Some(Tok::Num(t)) if t.len() > 1 && t.as_bytes()[0].is_ascii_digit() => {
                // LaTeX takes one digit: \frac13 is 1/3.
                self.toks[self.pos] = Tok::Num(&t[1..]);
                Ok(number(&t[..1]))
            }
            _ => self.primary(),
        }
    }

    fn group_until(&mut self, close: Tok<'a>) -> Result<Vec<Node>, ()> {
        let items = self.list()?;
        self.expect(close)?;
        Ok(items)
    }

    fn single(items: Vec<Node>) -> PResult {
        if items.len() == 1 {
            items.into_iter().next().ok_or(())
        } else {
            Err(())
        }
    }

    fn primary(&mut self) -> PResult {
        self.enter()?;
        let t = self.peek().ok_or(())?;
        self.pos += 1;
        let out = match t {
            Tok::Num(text) => self.numeral(text)?,
            Tok::Letter(c) => self.letter(c)?,
            Tok::Word(_) => return Err(()),
            Tok::Sym(b'(') | Tok::Sym(b'[') => {
                let open = if t == Tok::Sym(b'(') { b'(' } else { b'[' };
                let items = self.list()?;
                let close = match self.peek() {
                    Some(Tok::Sym(c @ (b')' | b']'))) => c,
                    _ => return Err(()),
                };
                self.pos += 1;
                if items.len() == 1 && open == b'(' && close == b')' || items.len() == 1 && open == b'[' && close == b']' {
                    Self::single(items)?
                } else if items.len() >= 2 {
                    Node::Tuple(open, close, items)
                } else {
                    return Err(());
                }
            }
            Tok::Sym(b'{') => {
                let items = self.group_until(Tok::Sym(b'}'))?;
                if items.len() == 1 { Self::single(items)? } else { Node::Set(items) }
            }
            Tok::SetOpen => {
                if self.eat(Tok::SetClose) {
                    Node::Set(vec![])
                } else {
                    Node::Set(self.group_until(Tok::SetClose)?)
                }
            }
            Tok::Sym(b'|') => {
                self.in_abs += 1;
                let inner = self.sum();
                self.in_abs -= 1;
                self.expect(Tok::Sym(b'|'))?;
                Node::Func(Func::Abs, Box::new(inner?))
            }
            Tok::Begin(env) => self.matrix(env)?,
            Tok::Cmd(name) => self.command(name)?,
            _ => return Err(()),
        };
        self.depth -= 1;
        Ok(out)
    }

    fn numeral(&mut self, text: &str) -> PResult {
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
        if let (Some(Tok::Sym(b'{')), Some(a), Some(Tok::Sym(b'}')), Some(Tok::Sym(b'{')), Some(b), Some(Tok::Sym(b'}'))) = (
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

    fn letter(&mut self, c: char) -> PResult {
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

    fn command(&mut self, name: &str) -> PResult {
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
            "pi" => Node::Pi,
            "infty" | "infinity" | "infin" => Node::Inf,
            "emptyset" | "varnothing" => Node::Set(vec![]),
            "lfloor" => Node::Func(Func::Floor, Box::new(Self::single(self.group_until(Tok::Cmd("rfloor"))?)?)),
            "lceil" => Node::Func(Func::Ceil, Box::new(Self::single(self.group_until(Tok::Cmd("rceil"))?)?)),
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
                let power = if self.eat(Tok::Sym(b'^')) { Some(self.exponent()?) } else { None };
                let x = self.func_arg()?;
                let applied = Node::Func(f, Box::new(x));
                match power {
                    Some(p) => Node::Pow(Box::new(applied), Box::new(p)),
                    None => applied,
                }
            }
        })
    }

    /// A function's argument: a bracketed group, or juxtaposed factors (`\sin 2x` is sin(2x)).
    fn func_arg(&mut self) -> PResult {
        if matches!(self.peek(), Some(Tok::Sym(b'(' | b'{'))) {
            return self.power();
        }
        let mut factors = vec![self.power()?];
        while self.starts_factor() && !matches!(self.peek(), Some(Tok::Cmd(c)) if func_of(c).is_some()) {
            factors.push(self.power()?);
        }
        Ok(if factors.len() == 1 { factors.pop().ok_or(())? } else { Node::Mul(factors) })
    }

    fn matrix(&mut self, env: &'a str) -> PResult {
        if !matches!(env, "pmatrix" | "bmatrix" | "matrix" | "smallmatrix" | "Bmatrix" | "array") {
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
