//! Exact rationals over `i128`, with every operation checked.
//!
//! An operation whose exact result does not fit (numerator or denominator beyond 2^127) returns
//! `None`; the caller (`value.rs`) then falls back to floating point. Numbers in verified answers
//! are small, so this keeps the common path exact and allocation-free.

// Checked operations return `Option`, which the `std::ops` traits cannot.
#![allow(clippy::should_implement_trait)]

use std::cmp::Ordering;

/// A reduced fraction `n / d` with `d > 0` and `gcd(|n|, d) = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Q {
    n: i128,
    d: i128,
}

/// Binary GCD of two non-zero words of one unsigned type.
macro_rules! binary_gcd {
    ($a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        let shift = (a | b).trailing_zeros();
        let (mut a, mut b) = (a >> a.trailing_zeros(), b);
        while b != 0 {
            b >>= b.trailing_zeros();
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            b -= a;
        }
        a << shift
    }};
}

/// Binary GCD: at most ~256 shift/subtract steps, whatever the operands (bounded work); on
/// 64-bit words when both operands fit (the usual case, several times faster).
fn gcd(a: u128, b: u128) -> u128 {
    if a == 0 || b == 0 {
        return a | b;
    }
    match (u64::try_from(a), u64::try_from(b)) {
        (Ok(a), Ok(b)) => binary_gcd!(a, b) as u128,
        _ => binary_gcd!(a, b),
    }
}

/// `a / g` for a divisor `g > 0` of `a`: no division when `g == 1`, a 64-bit one when both fit
/// (128-bit division is a slow library call).
fn div_by(a: i128, g: i128) -> i128 {
    if g == 1 {
        a
    } else if let (Ok(x), Ok(y)) = (i64::try_from(a), i64::try_from(g)) {
        (x / y) as i128
    } else {
        a / g
    }
}

/// The exact integer `k`-th root of `x`, when `x` is a perfect `k`-th power.
fn iroot(x: u128, k: u32) -> Option<u128> {
    if x < 2 || k == 1 {
        return Some(x);
    }
    if k >= 128 {
        return None; // x >= 2 has no integer root of that order
    }
    let guess = (x as f64).powf(1.0 / k as f64).round() as u128;
    let check = |r: u128| r.checked_pow(k).map_or(Ordering::Greater, |p| p.cmp(&x));
    for r in [guess, guess.saturating_sub(1), guess + 1] {
        if check(r) == Ordering::Equal {
            return Some(r);
        }
    }
    if x < (1u128 << 52) {
        return None; // the float guess is exact in this range
    }
    // Large x: binary search (at most 128 steps of k checked multiplications).
    let (mut lo, mut hi) = (0u128, 1u128 << (128 / k + 1).min(127));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match check(mid) {
            Ordering::Equal => return Some(mid),
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
        }
    }
    None
}

/// `base^e` with a checked multiplication (shared by exact rationals and exact complex values).
pub fn pow_by_squaring<T: Copy>(
    base: T,
    e: u64,
    one: T,
    mul: impl Fn(T, T) -> Option<T>,
) -> Option<T> {
    let (mut acc, mut b, mut e) = (one, base, e);
    while e > 0 {
        if e & 1 == 1 {
            acc = mul(acc, b)?;
        }
        e >>= 1;
        if e > 0 {
            b = mul(b, b)?;
        }
    }
    Some(acc)
}

impl Q {
    pub const ZERO: Q = Q { n: 0, d: 1 };
    pub const ONE: Q = Q { n: 1, d: 1 };

    /// `n / d` reduced; `None` when `d == 0` or a value is out of range.
    pub fn new(n: i128, d: i128) -> Option<Q> {
        if d == 0 || n == i128::MIN || d == i128::MIN {
            return None;
        }
        if d == 1 {
            return Some(Q { n, d }); // already reduced (and no i128 division, which is slow)
        }
        let g = gcd(n.unsigned_abs(), d.unsigned_abs()) as i128;
        let (n, d) = (div_by(n, g), div_by(d, g));
        Some(if d < 0 {
            Q { n: -n, d: -d }
        } else {
            Q { n, d }
        })
    }

    pub fn int(n: i64) -> Q {
        Q { n: n as i128, d: 1 }
    }

    pub fn numer(self) -> i128 {
        self.n
    }

    pub fn denom(self) -> i128 {
        self.d
    }

    pub fn is_zero(self) -> bool {
        self.n == 0
    }

    pub fn is_int(self) -> bool {
        self.d == 1
    }

    pub fn signum(self) -> i32 {
        self.n.signum() as i32
    }

    pub fn to_f64(self) -> f64 {
        self.n as f64 / self.d as f64
    }

    pub fn neg(self) -> Option<Q> {
        Some(Q {
            n: self.n.checked_neg()?,
            d: self.d,
        })
    }

    pub fn abs(self) -> Option<Q> {
        Some(Q {
            n: self.n.checked_abs()?,
            d: self.d,
        })
    }

    pub fn add(self, o: Q) -> Option<Q> {
        let g = gcd(self.d as u128, o.d as u128) as i128;
        let n = self
            .n
            .checked_mul(div_by(o.d, g))?
            .checked_add(o.n.checked_mul(div_by(self.d, g))?)?;
        Q::new(n, div_by(self.d, g).checked_mul(o.d)?)
    }

    pub fn sub(self, o: Q) -> Option<Q> {
        self.add(o.neg()?)
    }

    pub fn mul(self, o: Q) -> Option<Q> {
        let g1 = gcd(self.n.unsigned_abs(), o.d as u128).max(1) as i128;
        let g2 = gcd(o.n.unsigned_abs(), self.d as u128).max(1) as i128;
        let n = div_by(self.n, g1).checked_mul(div_by(o.n, g2))?;
        let d = div_by(self.d, g2).checked_mul(div_by(o.d, g1))?;
        Q::new(n, d)
    }

    pub fn recip(self) -> Option<Q> {
        Q::new(self.d, self.n)
    }

    pub fn div(self, o: Q) -> Option<Q> {
        self.mul(o.recip()?)
    }

    /// `self^e` by repeated squaring; `None` on overflow (at most ~64 squarings, each checked).
    pub fn powi(self, e: i64) -> Option<Q> {
        let base = if e < 0 { self.recip()? } else { self };
        pow_by_squaring(base, e.unsigned_abs(), Q::ONE, Q::mul)
    }

    /// The exact real `k`-th root when there is one (a perfect power; odd `k` for negatives).
    pub fn root(self, k: u32) -> Option<Q> {
        if k == 0 {
            return None;
        }
        if self.n < 0 && k % 2 == 0 {
            return None;
        }
        let n = iroot(self.n.unsigned_abs(), k)? as i128;
        let d = iroot(self.d as u128, k)? as i128;
        Q::new(if self.n < 0 { -n } else { n }, d)
    }

    pub fn floor(self) -> Q {
        Q {
            n: self.n.div_euclid(self.d),
            d: 1,
        }
    }

    pub fn ceil(self) -> Option<Q> {
        let f = self.floor();
        if f == self {
            Some(f)
        } else {
            f.add(Q::ONE)
        }
    }

    /// Parse a plain decimal `digits[.digits]` (no sign, no separators) times `10^exp`.
    pub fn from_decimal(int_part: &str, frac_part: &str, exp: i32) -> Option<Q> {
        let mut n: i128 = 0;
        for c in int_part.bytes().chain(frac_part.bytes()) {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add((c - b'0') as i128)?;
        }
        let scale = exp - frac_part.len() as i32;
        if !(-38..=38).contains(&scale) {
            return None;
        }
        // 10^38 < 2^127: the power always fits.
        let p = 10i128.pow(scale.unsigned_abs());
        if scale >= 0 {
            Q::new(n.checked_mul(p)?, 1)
        } else {
            Q::new(n, p)
        }
    }
}

impl PartialOrd for Q {
    fn partial_cmp(&self, o: &Q) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Q {
    fn cmp(&self, o: &Q) -> Ordering {
        // Compare n1/d1 with n2/d2 through the sign of n1*d2 - n2*d1, widening on overflow.
        match (self.n.checked_mul(o.d), o.n.checked_mul(self.d)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self
                .to_f64()
                .partial_cmp(&o.to_f64())
                .unwrap_or(Ordering::Equal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i128, d: i128) -> Q {
        Q::new(n, d).unwrap()
    }

    #[test]
    fn reduces_and_normalises_sign() {
        assert_eq!(q(2, -4), q(-1, 2));
        assert_eq!(q(-3, -9), q(1, 3));
        assert!(Q::new(1, 0).is_none());
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(q(1, 3).add(q(1, 6)).unwrap(), q(1, 2));
        assert_eq!(q(2, 3).mul(q(3, 4)).unwrap(), q(1, 2));
        assert_eq!(q(1, 2).div(q(1, 4)).unwrap(), Q::int(2));
        assert_eq!(q(2, 3).powi(-2).unwrap(), q(9, 4));
        assert!(Q::ZERO.recip().is_none());
    }

    #[test]
    fn overflow_is_none_not_a_panic() {
        assert!(Q::int(10).powi(40).is_none());
        assert!(Q::int(i64::MAX)
            .mul(Q::int(i64::MAX))
            .unwrap()
            .mul(Q::int(4))
            .is_none());
        assert_eq!(Q::ONE.powi(i64::MAX).unwrap(), Q::ONE);
        assert_eq!(Q::int(-1).powi(i64::MAX).unwrap(), Q::int(-1));
    }

    #[test]
    fn exact_roots_only_of_perfect_powers() {
        assert_eq!(q(9, 4).root(2).unwrap(), q(3, 2));
        assert_eq!(Q::int(-27).root(3).unwrap(), Q::int(-3));
        assert!(Q::int(2).root(2).is_none());
        assert!(Q::int(-4).root(2).is_none());
        let big = Q::int(3_000_000_019).mul(Q::int(3_000_000_019)).unwrap();
        assert_eq!(big.root(2).unwrap(), Q::int(3_000_000_019));
    }

    #[test]
    fn decimals_and_floor() {
        assert_eq!(Q::from_decimal("2", "50", 0).unwrap(), q(5, 2));
        assert_eq!(Q::from_decimal("1", "5", 3).unwrap(), Q::int(1500));
        assert_eq!(q(-5, 2).floor(), Q::int(-3));
        assert_eq!(q(-5, 2).ceil().unwrap(), Q::int(-2));
        assert!(q(1, 3) < q(1, 2));
    }

    /// Euclid's GCD on 128-bit words (an independent oracle).
    fn euclid(mut a: u128, mut b: u128) -> u128 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }

    proptest::proptest! {
        /// `gcd` (with its 64-bit shortcut) is Euclid's; `div_by` divides as 128-bit division does.
        #[test]
        fn word_shortcuts_agree(a in proptest::num::i128::ANY, b in proptest::num::i128::ANY, small in -1i128 << 62..1i128 << 62) {
            for (x, y) in [(a, b), (small, b), (a, small), (small, small / 3 + 1)] {
                let g = gcd(x.unsigned_abs(), y.unsigned_abs());
                proptest::prop_assert_eq!(g, euclid(x.unsigned_abs(), y.unsigned_abs()));
                if let (Ok(g), true) = (i128::try_from(g), g > 0) {
                    proptest::prop_assert_eq!(div_by(x, g), x / g);
                }
            }
        }
    }

    /// `from_decimal` builds `n·10^scale` directly; it agrees with the product of rationals
    /// (`n` times `10^scale` by repeated squaring), overflow included.
    #[test]
    fn decimals_agree_with_the_rational_product() {
        let ints = [
            "0",
            "1",
            "7",
            "10",
            "250",
            "999999999",
            "170141183460469231731687303715884105727",
        ];
        let fracs = [
            "",
            "0",
            "5",
            "25",
            "000",
            "1234567890",
            "99999999999999999999",
        ];
        for ip in ints {
            for fp in fracs {
                for exp in [-60, -40, -38, -10, -1, 0, 1, 3, 20, 38, 40] {
                    let product = || {
                        let n: i128 = format!("{ip}{fp}").parse().ok()?;
                        let scale = exp - fp.len() as i32;
                        if !(-38..=38).contains(&scale) {
                            return None;
                        }
                        Q::new(n, 1)?.mul(Q::int(10).powi(scale as i64)?)
                    };
                    assert_eq!(Q::from_decimal(ip, fp, exp), product(), "{ip}.{fp}e{exp}");
                }
            }
        }
    }
}
