//! Numeric evaluation of expression trees, exact where the arithmetic is rational.
//!
//! `eval` returns `None` for an unknown value: a division by zero, a function outside its domain,
//! an overflow to infinity, a structure (tuple, set) where a number was expected, or an exhausted
//! operation budget. Every node visited costs one unit of the budget, so the work per comparison is
//! bounded by construction, whatever the input.

use super::parse::{Func, Node};
use super::rational::Q;
use super::value::Value;

/// Largest `n` whose factorial is computed (exactly up to 33!, in floating point up to 170!).
const MAX_FACT: i128 = 170;
/// Most terms of a `\sum` or `\prod` evaluated (each also costs budget).
const MAX_TERMS: i128 = 10_000;

pub struct Budget(pub u32);

impl Budget {
    pub fn spend(&mut self, n: u32) -> Option<()> {
        self.0 = self.0.checked_sub(n)?;
        Some(())
    }
}

fn real_fn(v: Value, f: impl Fn(f64) -> f64) -> Option<Value> {
    Value::float(f(v.as_real()?))
}

fn int_of(v: Value) -> Option<i128> {
    v.as_q().filter(|q| q.is_int()).map(|q| q.numer())
}

fn factorial(v: Value) -> Option<Value> {
    let n = int_of(v)?;
    if !(0..=MAX_FACT).contains(&n) {
        return None;
    }
    let mut acc = Q::ONE;
    for k in 2..=n {
        match acc.mul(Q::new(k, 1)?) {
            Some(a) => acc = a,
            None => {
                let mut f = acc.to_f64();
                for j in k..=n {
                    f *= j as f64;
                }
                return Value::float(f);
            }
        }
    }
    Some(Value::real(acc))
}

fn binom(n: Value, k: Value) -> Option<Value> {
    let (n, k) = (int_of(n)?, int_of(k)?);
    if !(0..=100_000).contains(&n) {
        return None;
    }
    if k < 0 || k > n {
        return Some(Value::int(0));
    }
    let k = k.min(n - k);
    let mut acc = Q::ONE;
    for j in 0..k {
        // acc * (n - j) / (j + 1) stays an integer at every step.
        match acc.mul(Q::new(n - j, j + 1)?) {
            Some(a) => acc = a,
            None => {
                let mut f = acc.to_f64();
                for t in j..k {
                    f = f * (n - t) as f64 / (t + 1) as f64;
                }
                return Value::float(f);
            }
        }
    }
    Some(Value::real(acc))
}

/// `log_b(x)`: exact when x is an integer power of b (log_2 8 = 3), else a float.
fn log(b: Value, x: Value) -> Option<Value> {
    let (bf, xf) = (b.as_real()?, x.as_real()?);
    if bf <= 0.0 || bf == 1.0 || xf <= 0.0 {
        return None;
    }
    let r = xf.ln() / bf.ln();
    if let (Some(bq), Some(xq)) = (b.as_q(), x.as_q()) {
        let k = r.round();
        if (r - k).abs() < 1e-9 && k.abs() < 4096.0 && bq.powi(k as i64) == Some(xq) {
            return Some(Value::int(k as i64));
        }
    }
    Value::float(r)
}

fn apply(f: Func, v: Value) -> Option<Value> {
    use Func::*;
    let exact_zero = v.as_q().is_some_and(|q| q.is_zero());
    match f {
        Sqrt => v.sqrt(),
        Abs => match v {
            Value::Exact(a, b) if b.is_zero() => Some(Value::real(a.abs()?)),
            Value::Inf(_) => Some(Value::Inf(false)),
            _ => {
                let (x, y) = v.c64();
                Value::float(x.hypot(y))
            }
        },
        Floor => match v.as_q() {
            Some(q) => Some(Value::real(q.floor())),
            None => real_fn(v, f64::floor),
        },
        Ceil => match v.as_q() {
            Some(q) => Some(Value::real(q.ceil()?)),
            None => real_fn(v, f64::ceil),
        },
        Fact => factorial(v),
        Sin | Tan | Asin | Atan | Sinh | Tanh if exact_zero => Some(Value::int(0)),
        Cos | Cosh | Exp if exact_zero => Some(Value::int(1)),
        Sin => real_fn(v, f64::sin),
        Cos => real_fn(v, f64::cos),
        Tan => real_fn(v, f64::tan),
        Sec => real_fn(v, |x| 1.0 / x.cos()),
        Csc => real_fn(v, |x| 1.0 / x.sin()),
        Cot => real_fn(v, |x| 1.0 / x.tan()),
        Asin => real_fn(v, f64::asin),
        Acos => real_fn(v, f64::acos),
        Atan => real_fn(v, f64::atan),
        Sinh => real_fn(v, f64::sinh),
        Cosh => real_fn(v, f64::cosh),
        Tanh => real_fn(v, f64::tanh),
        Ln => {
            if v.as_q() == Some(Q::ONE) {
                return Some(Value::int(0));
            }
            let x = v.as_real()?;
            (x > 0.0).then(|| Value::float(x.ln())).flatten()
        }
        Exp => real_fn(v, f64::exp),
    }
}

/// The value of `node` with variable `k` bound to `env[k]`.
pub fn eval(node: &Node, env: &[Value], budget: &mut Budget) -> Option<Value> {
    // Nodes whose evaluation loops (powers, roots, factorials, binomials, logarithms) cost more.
    let cost = match node {
        Node::Pow(..)
        | Node::Root(..)
        | Node::Binom(..)
        | Node::Log(..)
        | Node::Func(Func::Fact, _) => 16,
        _ => 1,
    };
    budget.spend(cost)?;
    match node {
        Node::Num(q) => Some(Value::real(*q)),
        Node::Float(x) => Value::float(*x),
        Node::Based(digits, base) => {
            let n = u64::from_str_radix(digits, *base).ok()?;
            Some(Value::int(i64::try_from(n).ok()?))
        }
        Node::Var(k) => env.get(*k as usize).copied(),
        Node::Pi => Value::float(std::f64::consts::PI),
        Node::E => Value::float(std::f64::consts::E),
        Node::I => Some(Value::Exact(Q::ZERO, Q::ONE)),
        Node::Inf => Some(Value::Inf(false)),
        Node::Neg(a) => eval(a, env, budget)?.neg(),
        Node::Add(ts) => {
            let mut acc = Value::int(0);
            for t in ts {
                acc = acc.add(eval(t, env, budget)?)?;
            }
            Some(acc)
        }
        Node::Mul(fs) => {
            let mut acc = Value::int(1);
            for f in fs {
                acc = acc.mul(eval(f, env, budget)?)?;
            }
            Some(acc)
        }
        Node::Div(a, b) => eval(a, env, budget)?.div(eval(b, env, budget)?),
        Node::Pow(a, b) => {
            let base = eval(a, env, budget)?;
            let e = eval(b, env, budget)?;
            if base.is_zero() && e.as_real().is_some_and(|x| x <= 0.0) {
                return None;
            }
            base.pow(e)
        }
        Node::Func(f, a) => apply(*f, eval(a, env, budget)?),
        Node::Root(n, x) => {
            let n = eval(n, env, budget)?;
            eval(x, env, budget)?.nth_root(n)
        }
        Node::Log(b, x) => log(eval(b, env, budget)?, eval(x, env, budget)?),
        Node::Binom(n, k) => binom(eval(n, env, budget)?, eval(k, env, budget)?),
        Node::Series(product, k, lo, hi, body) => {
            let (lo, hi) = (
                int_of(eval(lo, env, budget)?)?,
                int_of(eval(hi, env, budget)?)?,
            );
            if hi - lo > MAX_TERMS {
                return None;
            }
            let mut env = env.to_vec();
            let slot = *k as usize;
            if env.len() <= slot {
                env.resize(slot + 1, Value::int(0));
            }
            let mut acc = Value::int(if *product { 1 } else { 0 });
            for j in lo..=hi {
                env[slot] = Value::real(Q::new(j, 1)?);
                let term = eval(body, &env, budget)?;
                acc = if *product {
                    acc.mul(term)?
                } else {
                    acc.add(term)?
                };
            }
            Some(acc)
        }
        Node::Rel(..)
        | Node::Tuple(..)
        | Node::Set(_)
        | Node::Union(_)
        | Node::Matrix(_)
        | Node::Text(_) => None,
    }
}

/// Collect the variable ids used in `node` into `out` (sorted, unique).
pub fn vars_of(node: &Node, out: &mut Vec<u16>) {
    let push = |k: u16, out: &mut Vec<u16>| {
        if let Err(pos) = out.binary_search(&k) {
            out.insert(pos, k);
        }
    };
    match node {
        Node::Var(k) => push(*k, out),
        Node::Neg(a) | Node::Func(_, a) => vars_of(a, out),
        Node::Div(a, b)
        | Node::Pow(a, b)
        | Node::Root(a, b)
        | Node::Log(a, b)
        | Node::Binom(a, b) => {
            vars_of(a, out);
            vars_of(b, out);
        }
        Node::Series(_, k, lo, hi, body) => {
            push(*k, out);
            vars_of(lo, out);
            vars_of(hi, out);
            vars_of(body, out);
        }
        Node::Add(xs)
        | Node::Mul(xs)
        | Node::Set(xs)
        | Node::Union(xs)
        | Node::Rel(xs, _)
        | Node::Tuple(_, _, xs) => xs.iter().for_each(|x| vars_of(x, out)),
        Node::Matrix(rows) => rows.iter().flatten().for_each(|x| vars_of(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::latex::normalize;
    use crate::verify::tokenize::tokenize;
    use crate::verify::parse::{parse, Vars};

    fn val(s: &str) -> Option<Value> {
        let n = normalize(s);
        let mut vars = Vars::default();
        let node = parse(tokenize(&n, 4096)?, &mut vars).ok()?;
        eval(&node, &[], &mut Budget(100_000))
    }

    fn q(n: i128, d: i128) -> Value {
        Value::real(Q::new(n, d).unwrap())
    }

    #[test]
    fn evaluates_exact_arithmetic() {
        assert_eq!(val("\\frac{1}{2} + \\frac13").unwrap(), q(5, 6));
        assert_eq!(val("2\\frac{1}{4}").unwrap(), q(9, 4));
        assert_eq!(val("1.5\\times10^{3}").unwrap(), Value::int(1500));
        assert_eq!(val("\\binom{10}{3}").unwrap(), Value::int(120));
        assert_eq!(val("5!").unwrap(), Value::int(120));
        assert_eq!(val("|-3|").unwrap(), Value::int(3));
        assert_eq!(val("\\lfloor 7/2 \\rfloor").unwrap(), Value::int(3));
        assert_eq!(val("\\log_2 8").unwrap(), Value::int(3));
        assert_eq!(val("\\sqrt[3]{27}").unwrap(), Value::int(3));
        assert_eq!(val("(1+i)^2").unwrap(), Value::Exact(Q::ZERO, Q::int(2)));
    }

    #[test]
    fn evaluates_irrationals_in_floating_point() {
        let v = val("\\sin^2 x").is_none();
        assert!(v, "a free variable has no value without an environment");
        assert!(val("\\frac{\\sqrt{2}}{2}")
            .unwrap()
            .same(val("\\sin(\\pi/4)").unwrap()));
        assert!(val("e^{i\\pi}").unwrap().same(Value::int(-1)));
    }

    #[test]
    fn unknown_values_are_none() {
        assert!(val("1/0").is_none());
        assert!(val("10^{10^{10}}").is_none());
        assert!(val("\\ln(-1)").is_none());
        assert!(val("1000!").is_none());
        assert!(val("0^{-1}").is_none());
    }
}
