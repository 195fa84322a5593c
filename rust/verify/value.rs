//! Numeric values of evaluated answers: exact complex rationals while the arithmetic stays
//! rational and in range, complex `f64` once an irrational function (or an overflow) is involved,
//! and the two infinities written as `\infty`.
//!
//! Equality (`Value::same`): two exact values are equal only when identical; otherwise both are
//! compared as complex floats with |a − b| ≤ 1e-9·max(|a|, |b|) + 1e-12. Floats that are NaN or
//! infinite never arise: an operation producing one returns `None` (an unknown value, which is never
//! equal to anything), so `10^{10^{10}}` is unknown rather than "equal to every other overflow".

// Checked operations return `Option`, which the `std::ops` traits cannot.
#![allow(clippy::should_implement_trait)]

use super::rational::{pow_by_squaring, Q};

pub const REL_TOL: f64 = 1e-9;
pub const ABS_TOL: f64 = 1e-12;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// `re + im·i`, exact.
    Exact(Q, Q),
    /// `re + im·i` in floating point (always finite).
    Approx(f64, f64),
    /// `+∞` (false) or `−∞` (true): only from `\infty`, never from an overflow.
    Inf(bool),
}

fn approx(re: f64, im: f64) -> Option<Value> {
    (re.is_finite() && im.is_finite()).then_some(Value::Approx(re, im))
}

impl Value {
    pub fn int(n: i64) -> Value {
        Value::Exact(Q::int(n), Q::ZERO)
    }

    pub fn real(q: Q) -> Value {
        Value::Exact(q, Q::ZERO)
    }

    pub fn float(x: f64) -> Option<Value> {
        approx(x, 0.0)
    }

    /// The value as a complex float (infinities as `f64` infinities).
    pub fn c64(self) -> (f64, f64) {
        match self {
            Value::Exact(a, b) => (a.to_f64(), b.to_f64()),
            Value::Approx(a, b) => (a, b),
            Value::Inf(neg) => (
                if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                },
                0.0,
            ),
        }
    }

    /// The exact real rational, when the value is one.
    pub fn as_q(self) -> Option<Q> {
        match self {
            Value::Exact(a, b) if b.is_zero() => Some(a),
            _ => None,
        }
    }

    /// The real part as a float when the value is (numerically) real.
    pub fn as_real(self) -> Option<f64> {
        let (re, im) = self.c64();
        (im.abs() <= ABS_TOL + REL_TOL * re.abs() && re.is_finite()).then_some(re)
    }

    pub fn is_zero(self) -> bool {
        match self {
            Value::Exact(a, b) => a.is_zero() && b.is_zero(),
            Value::Approx(a, b) => a.abs() <= ABS_TOL && b.abs() <= ABS_TOL,
            Value::Inf(_) => false,
        }
    }

    pub fn neg(self) -> Option<Value> {
        match self {
            Value::Exact(a, b) => match (a.neg(), b.neg()) {
                (Some(a), Some(b)) => Some(Value::Exact(a, b)),
                _ => approx(-a.to_f64(), -b.to_f64()),
            },
            Value::Approx(a, b) => approx(-a, -b),
            Value::Inf(n) => Some(Value::Inf(!n)),
        }
    }

    pub fn add(self, o: Value) -> Option<Value> {
        match (self, o) {
            (Value::Inf(a), Value::Inf(b)) => (a == b).then_some(Value::Inf(a)),
            (Value::Inf(a), _) | (_, Value::Inf(a)) => Some(Value::Inf(a)),
            (Value::Exact(a, b), Value::Exact(c, d)) => {
                if let (Some(re), Some(im)) = (a.add(c), b.add(d)) {
                    return Some(Value::Exact(re, im));
                }
                let ((x, y), (u, v)) = (self.c64(), o.c64());
                approx(x + u, y + v)
            }
            _ => {
                let ((x, y), (u, v)) = (self.c64(), o.c64());
                approx(x + u, y + v)
            }
        }
    }

    pub fn sub(self, o: Value) -> Option<Value> {
        self.add(o.neg()?)
    }

    pub fn mul(self, o: Value) -> Option<Value> {
        match (self, o) {
            (Value::Inf(_), _) | (_, Value::Inf(_)) => {
                let sign = |v: Value| match v {
                    Value::Inf(n) => Some(n),
                    _ => v.as_real().filter(|r| *r != 0.0).map(|r| r < 0.0),
                };
                Some(Value::Inf(sign(self)? != sign(o)?))
            }
            (Value::Exact(a, b), Value::Exact(c, d)) => {
                let exact = || {
                    let re = a.mul(c)?.sub(b.mul(d)?)?;
                    let im = a.mul(d)?.add(b.mul(c)?)?;
                    Some(Value::Exact(re, im))
                };
                exact().or_else(|| cmul_f(self.c64(), o.c64()))
            }
            _ => cmul_f(self.c64(), o.c64()),
        }
    }

    pub fn recip(self) -> Option<Value> {
        match self {
            Value::Inf(_) => Some(Value::int(0)),
            Value::Exact(a, b) if b.is_zero() => Some(Value::real(a.recip()?)),
            Value::Exact(a, b) => {
                let exact = || {
                    let m = a.mul(a)?.add(b.mul(b)?)?;
                    Some(Value::Exact(a.div(m)?, b.neg()?.div(m)?))
                };
                exact().or_else(|| crecip_f(self.c64()))
            }
            Value::Approx(..) => crecip_f(self.c64()),
        }
    }

    pub fn div(self, o: Value) -> Option<Value> {
        if o.is_zero() {
            return None;
        }
        self.mul(o.recip()?)
    }

    /// Principal square root: exact for perfect squares (of either sign), else a float.
    pub fn sqrt(self) -> Option<Value> {
        if let Some(q) = self.as_q() {
            if q.signum() >= 0 {
                if let Some(r) = q.root(2) {
                    return Some(Value::real(r));
                }
                return Value::float(q.to_f64().sqrt());
            }
            if let Some(r) = q.neg()?.root(2) {
                return Some(Value::Exact(Q::ZERO, r));
            }
        }
        let (x, y) = self.finite_c64()?;
        let m = x.hypot(y);
        let re = ((m + x) / 2.0).sqrt();
        let im = ((m - x) / 2.0)
            .sqrt()
            .copysign(if y == 0.0 { 1.0 } else { y });
        approx(re, im)
    }

    /// Real `k`-th root (exact for perfect powers; odd roots of negatives are negative).
    pub fn nth_root(self, k: Value) -> Option<Value> {
        let kq = k.as_q()?;
        if !kq.is_int() || kq.numer() < 1 || kq.numer() > 64 {
            return self.pow(k.recip()?);
        }
        let kk = kq.numer() as u32;
        if kk == 2 {
            return self.sqrt();
        }
        if let Some(q) = self.as_q() {
            if let Some(r) = q.root(kk) {
                return Some(Value::real(r));
            }
            let x = q.to_f64();
            if x < 0.0 && kk % 2 == 1 {
                return Value::float(-(-x).powf(1.0 / kk as f64));
            }
        }
        self.pow(k.recip()?)
    }

    /// `self^e`: exact for exact bases and integer exponents (|e| < 2^63, stopping at the first
    /// overflow), exact roots for rational exponents of perfect powers, complex floats otherwise.
    pub fn pow(self, e: Value) -> Option<Value> {
        if let (Value::Exact(..), Some(q)) = (self, e.as_q()) {
            if q.is_int() {
                let n = i64::try_from(q.numer()).ok()?;
                if let Some(v) = self.powi_exact(n) {
                    return Some(v);
                }
            } else if let (Some(b), Ok(k)) = (self.as_q(), u32::try_from(q.denom())) {
                if let Some(r) = b.root(k) {
                    if let Ok(n) = i64::try_from(q.numer()) {
                        if let Some(p) = r.powi(n) {
                            return Some(Value::real(p));
                        }
                    }
                }
            }
        }
        if matches!(self, Value::Inf(_)) || matches!(e, Value::Inf(_)) {
            return None;
        }
        let (x, y) = self.finite_c64()?;
        let (u, v) = e.finite_c64()?;
        if y == 0.0 && v == 0.0 && (x > 0.0 || u.fract() == 0.0) {
            return Value::float(x.powf(u));
        }
        if x == 0.0 && y == 0.0 {
            return (u > 0.0).then_some(Value::int(0));
        }
        // exp(e · log(base)), principal branch.
        let (lr, li) = (x.hypot(y).ln(), y.atan2(x));
        let (ar, ai) = (u * lr - v * li, u * li + v * lr);
        let m = ar.exp();
        approx(m * ai.cos(), m * ai.sin())
    }

    fn powi_exact(self, n: i64) -> Option<Value> {
        match self {
            Value::Exact(a, b) if b.is_zero() => Some(Value::real(a.powi(n)?)),
            Value::Exact(..) => {
                if n.unsigned_abs() > 4096 {
                    return None;
                }
                let base = if n < 0 { self.recip()? } else { self };
                let acc = pow_by_squaring(base, n.unsigned_abs(), Value::int(1), Value::mul)?;
                matches!(acc, Value::Exact(..)).then_some(acc)
            }
            _ => None,
        }
    }

    fn finite_c64(self) -> Option<(f64, f64)> {
        let (x, y) = self.c64();
        (x.is_finite() && y.is_finite()).then_some((x, y))
    }

    /// Whether two values are the same number (exact, or within the float tolerance).
    pub fn same(self, o: Value) -> bool {
        match (self, o) {
            (Value::Exact(a, b), Value::Exact(c, d)) => a == c && b == d,
            (Value::Inf(a), Value::Inf(b)) => a == b,
            (Value::Inf(_), _) | (_, Value::Inf(_)) => false,
            _ => {
                let ((x, y), (u, v)) = (self.c64(), o.c64());
                let diff = (x - u).hypot(y - v);
                diff <= REL_TOL * x.hypot(y).max(u.hypot(v)) + ABS_TOL
            }
        }
    }
}

fn cmul_f((x, y): (f64, f64), (u, v): (f64, f64)) -> Option<Value> {
    approx(x * u - y * v, x * v + y * u)
}

fn crecip_f((x, y): (f64, f64)) -> Option<Value> {
    let m = x * x + y * y;
    if m == 0.0 {
        return None;
    }
    approx(x / m, -y / m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i128, d: i128) -> Value {
        Value::real(Q::new(n, d).unwrap())
    }

    #[test]
    fn exact_arithmetic_stays_exact() {
        let v = q(1, 2).add(q(1, 3)).unwrap();
        assert_eq!(v, q(5, 6));
        let i = Value::Exact(Q::ZERO, Q::ONE);
        assert_eq!(i.mul(i).unwrap(), Value::int(-1));
        assert_eq!(q(9, 4).sqrt().unwrap(), q(3, 2));
        assert_eq!(
            Value::int(-4).sqrt().unwrap(),
            Value::Exact(Q::ZERO, Q::int(2))
        );
        assert_eq!(Value::int(8).pow(q(2, 3)).unwrap(), Value::int(4));
        assert_eq!(
            Value::int(-27).nth_root(Value::int(3)).unwrap(),
            Value::int(-3)
        );
    }

    #[test]
    fn overflow_falls_back_or_is_unknown() {
        let big = Value::int(10).pow(Value::int(40)).unwrap();
        assert!(matches!(big, Value::Approx(..)));
        let huge = Value::int(10).pow(Value::int(10_000_000_000));
        assert!(huge.is_none());
        assert!(Value::int(1).div(Value::int(0)).is_none());
    }

    #[test]
    fn equality_is_exact_or_within_tolerance() {
        assert!(!q(1, 3).same(q(333_333, 1_000_000)));
        let s = Value::int(2).sqrt().unwrap();
        assert!(s.mul(s).unwrap().same(Value::int(2)));
        assert!(!s.same(Value::float(1.414).unwrap()));
        assert!(Value::Inf(true).same(Value::Inf(true)));
        assert!(!Value::Inf(true).same(Value::Inf(false)));
    }
}
