//! A recursive-descent parser from LaTeX tokens to an answer tree (`Node`).
//!
//! Precedence, lowest first: top-level comma list (an unordered list of solutions), `\cup`,
//! relations (`= \ne < \le > \ge`), `+ -`, products (`\cdot \times * / \div` and juxtaposition),
//! unary signs, powers `^` and postfix `!`, primaries. Recursion is capped (`MAX_DEPTH`), so a
//! deeply nested input fails to parse (and is then compared as text) instead of overflowing the
//! stack.

// A parse failure carries no detail: the answer is then compared as text.
#![allow(clippy::result_unit_err)]

use super::commands::starts_primary;
use super::tokenize::{RelOp, Tok};
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
    /// `\sum_{k=lo}^{hi} body` (false) or `\prod` (true): (product?, k, lo, hi, body).
    Series(bool, u16, Box<Node>, Box<Node>, Box<Node>),
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
#[derive(Clone, Default, Debug)]
pub struct Vars {
    pub names: Vec<String>,
}

impl Vars {
    pub(super) fn id(&mut self, name: &str) -> Option<u16> {
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

pub(super) type PResult = Result<Node, ()>;

pub struct Parser<'a, 'v> {
    pub(super) toks: Vec<Tok<'a>>,
    pub(super) pos: usize,
    depth: u32,
    in_abs: u32,
    pub(super) vars: &'v mut Vars,
}

/// Parse a whole normalized answer; `Err` when it is not algebra we know.
pub fn parse(toks: Vec<Tok<'_>>, vars: &mut Vars) -> PResult {
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        in_abs: 0,
        vars,
    };
    let items = p.list()?;
    if p.pos != p.toks.len() {
        return Err(());
    }
    Ok(if items.len() == 1 {
        items.into_iter().next().ok_or(())?
    } else {
        Node::Set(items)
    })
}

/// A name rather than a value: a variable, a product of names (`AB`, `f(x)`), the absolute value
/// of a name (`|PQ|`), or a tuple or ratio of names (`(a, b)`, `S_1 : S_2`).
pub fn is_name(n: &Node) -> bool {
    match n {
        Node::Var(_) => true,
        // `f(2)` names a value too; `2x` does not.
        Node::Mul(xs) => {
            is_name(&xs[0])
                && xs[1..]
                    .iter()
                    .all(|x| is_name(x) || matches!(x, Node::Num(_)))
        }
        Node::Func(Func::Abs, x) => is_name(x),
        Node::Tuple(_, _, xs) => xs.iter().all(is_name),
        _ => false,
    }
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
    pub(super) fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }

    pub(super) fn peek_at(&self, k: usize) -> Option<Tok<'a>> {
        self.toks.get(self.pos + k).copied()
    }

    pub(super) fn eat(&mut self, t: Tok<'a>) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, t: Tok<'a>) -> Result<(), ()> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(())
        }
    }

    pub(super) fn enter(&mut self) -> Result<(), ()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(())
        } else {
            Ok(())
        }
    }

    /// Comma-separated items (at least one).
    pub(super) fn list(&mut self) -> Result<Vec<Node>, ()> {
        let mut items = vec![self.union()?];
        while self.eat(Tok::Sym(b',')) || self.eat(Tok::Sym(b';')) {
            items.push(self.union()?);
        }
        Ok(items)
    }

    pub(super) fn union(&mut self) -> PResult {
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
        let first = self.ratio()?;
        // `x \in S` states S.
        if matches!(first, Node::Var(_)) && self.eat(Tok::Cmd("in")) {
            return self.union();
        }
        if !matches!(self.peek(), Some(Tok::Rel(_) | Tok::Cmd("approx"))) {
            return Ok(first); // (the usual case: no vectors to allocate)
        }
        let mut parts = vec![first];
        let mut ops = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Rel(op)) => {
                    self.pos += 1;
                    ops.push(op);
                    parts.push(self.ratio()?);
                }
                Some(Tok::Cmd("approx")) => {
                    // The exact value before `\approx` is the answer; after a lone name
                    // (`x \approx 0.71`) the approximation is all there is.
                    self.pos += 1;
                    let approx = self.ratio()?;
                    if ops.is_empty() && is_name(&parts[0]) {
                        parts[0] = approx;
                    }
                }
                _ => break,
            }
        }
        Ok(if ops.is_empty() {
            parts.pop().ok_or(())?
        } else {
            Node::Rel(parts, ops)
        })
    }

    /// `a : b : c` (a ratio, items in order), or a single sum.
    fn ratio(&mut self) -> PResult {
        let first = self.sum()?;
        if self.peek() != Some(Tok::Sym(b':')) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(Tok::Sym(b':')) {
            items.push(self.sum()?);
        }
        Ok(Node::Tuple(b':', b':', items))
    }

    pub(super) fn sum(&mut self) -> PResult {
        self.enter()?;
        let first = self.product()?;
        if !matches!(self.peek(), Some(Tok::Sym(b'+' | b'-'))) {
            self.depth -= 1;
            return Ok(first);
        }
        let mut terms = vec![first];
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
        Ok(if terms.len() == 1 {
            terms.pop().ok_or(())?
        } else {
            Node::Add(terms)
        })
    }

    pub(super) fn starts_factor(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Letter(_) | Tok::Begin(_) | Tok::SetOpen) => true,
            Some(Tok::Sym(b'(' | b'{')) => true,
            Some(Tok::Sym(b'|')) => self.in_abs == 0,
            Some(Tok::Cmd(c)) => starts_primary(c),
            _ => false,
        }
    }

    fn product(&mut self) -> PResult {
        let first = self.unary()?;
        let more = matches!(
            self.peek(),
            Some(Tok::Sym(b'*' | b'/') | Tok::Cmd("cdot" | "times" | "ast" | "div"))
        ) || self.starts_factor();
        if !more {
            return Ok(first); // a single factor: no vector to allocate
        }
        let mut factors = vec![first];
        loop {
            let t = self.peek();
            if matches!(t, Some(Tok::Sym(b'*') | Tok::Cmd("cdot" | "times" | "ast"))) {
                self.pos += 1;
                factors.push(self.unary()?);
            } else if matches!(t, Some(Tok::Sym(b'/') | Tok::Cmd("div"))) {
                self.pos += 1;
                let den = self.unary()?;
                let num = if factors.len() == 1 {
                    factors.pop().ok_or(())?
                } else {
                    Node::Mul(std::mem::take(&mut factors))
                };
                factors = vec![Node::Div(Box::new(num), Box::new(den))];
            } else if self.starts_factor() {
                factors.push(self.power()?);
            } else {
                break;
            }
        }
        Ok(if factors.len() == 1 {
            factors.pop().ok_or(())?
        } else {
            Node::Mul(factors)
        })
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

    pub(super) fn power(&mut self) -> PResult {
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
    pub(super) fn exponent(&mut self) -> PResult {
        if self.eat(Tok::Sym(b'-')) {
            return Ok(Node::Neg(Box::new(self.exponent()?)));
        }
        self.enter()?;
        let e = self.primary();
        self.depth -= 1;
        e
    }

    /// A `\frac`/`\sqrt`/`\binom` argument: a braced group or a single token (`\frac13`).
    pub(super) fn arg(&mut self) -> PResult {
        match self.peek() {
            Some(Tok::Num(t)) if t.len() > 1 && t.as_bytes()[0].is_ascii_digit() => {
                // LaTeX takes one digit: \frac13 is 1/3.
                self.toks[self.pos] = Tok::Num(&t[1..]);
                Ok(number(&t[..1]))
            }
            _ => self.primary(),
        }
    }

    pub(super) fn group_until(&mut self, close: Tok<'a>) -> Result<Vec<Node>, ()> {
        let items = self.list()?;
        self.expect(close)?;
        Ok(items)
    }

    pub(super) fn single(items: Vec<Node>) -> PResult {
        if items.len() == 1 {
            items.into_iter().next().ok_or(())
        } else {
            Err(())
        }
    }

    pub(super) fn primary(&mut self) -> PResult {
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
                if items.len() == 1 && open == b'(' && close == b')'
                    || items.len() == 1 && open == b'[' && close == b']'
                {
                    Self::single(items)?
                } else if items.len() >= 2 {
                    Node::Tuple(open, close, items)
                } else {
                    return Err(());
                }
            }
            Tok::Sym(b'{') => {
                let items = self.group_until(Tok::Sym(b'}'))?;
                if items.len() == 1 {
                    Self::single(items)?
                } else {
                    Node::Set(items)
                }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::latex::normalize;
    use crate::verify::tokenize::tokenize;

    fn tree(s: &str) -> Result<Node, ()> {
        let n = normalize(s);
        parse(tokenize(&n, 4096).ok_or(())?, &mut Vars::default())
    }

    #[test]
    fn structures_have_their_shapes() {
        assert!(matches!(tree("(1, 2]"), Ok(Node::Tuple(b'(', b']', v)) if v.len() == 2));
        assert!(matches!(tree("\\{1, 2, 3\\}"), Ok(Node::Set(v)) if v.len() == 3));
        assert!(matches!(tree("1, 2"), Ok(Node::Set(v)) if v.len() == 2));
        assert!(matches!(tree("(0,1) \\cup (2,3)"), Ok(Node::Union(v)) if v.len() == 2));
        assert!(
            matches!(tree("x \\le 3"), Ok(Node::Rel(p, o)) if p.len() == 2 && o == vec![RelOp::Le])
        );
        assert!(
            matches!(tree("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"), Ok(Node::Matrix(r)) if r.len() == 2)
        );
        assert!(matches!(tree("1011_2"), Ok(Node::Based(d, 2)) if d == "1011"));
        assert!(matches!(tree("(5)"), Ok(Node::Num(_))));
    }

    #[test]
    fn rejects_what_is_not_algebra() {
        assert!(tree("Monday").is_err());
        assert!(tree("(1, 2").is_err());
        assert!(tree("1012_2").is_err(), "2 is not a binary digit");
        assert!(
            tree("\\begin{pmatrix}1&2\\\\3\\end{pmatrix}").is_err(),
            "ragged matrix"
        );
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(tree(&deep).is_err(), "deeper than MAX_DEPTH");
        let many = (0..20)
            .map(|i| format!("x_{{{i}}}"))
            .collect::<Vec<_>>()
            .join("+");
        assert!(tree(&many).is_err(), "more than MAX_VARS variables");
    }
}
