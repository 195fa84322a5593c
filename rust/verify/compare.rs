//! Equivalence of two parsed answers, structure by structure.
//!
//! * Numbers and constant expressions: equal values (`value.rs`: exact, or within 1e-9 relative).
//! * Expressions with variables: equal at `POINTS` random points (see `same_expr`).
//! * Equations and inequalities: the same sides (either order for `=`/`\ne`; `a > b` is `b < a`),
//!   or, with variables, `lhs − rhs` proportional by a nonzero constant (positive for
//!   inequalities). `x = 5` (a variable on one side) matches `5`.
//! * Tuples and intervals: same brackets, items equal in order. Lists and sets (`1, 2`, `\{1,2\}`)
//!   and unions of intervals: equal as multisets, in any order. Matrices: same shape, equal cells.
//! * Numerals with a base (`1011_2`): equal value, or the same digits written without the base.
//! * Text: equal after lower-casing and dropping everything but letters and digits.

use super::eval::{eval, vars_of, Budget};
use super::tokenize::RelOp;
use super::parse::{is_name, Node};
use super::rational::Q;
use super::value::Value;

/// Random points tried per comparison of expressions with variables, and how many must be defined.
const POINTS: usize = 6;
const MIN_DEFINED: usize = 3;
/// Largest collection compared element by element.
const MAX_ITEMS: usize = 64;

/// A small deterministic generator (splitmix64), so verification is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random rational a/b with 2 <= |a| <= 40 and 1 <= b <= 9 (about 700 distinct values).
    fn point(&mut self) -> Value {
        let r = self.next();
        let a = 2 + (r % 39) as i128;
        let sign = if (r >> 8) & 1 == 1 { -1 } else { 1 };
        let b = 1 + ((r >> 16) % 9) as i128;
        Value::real(Q::new(sign * a, b).unwrap_or(Q::ONE))
    }
}

/// Whether `a` and `b` are the same answer (see the module doc).
pub fn same(a: &Node, b: &Node, budget: &mut Budget) -> bool {
    if budget.spend(1).is_none() {
        return false;
    }
    match (a, b) {
        (Node::Text(x), Node::Text(y)) => text_key(x) == text_key(y),
        (Node::Text(_), _) | (_, Node::Text(_)) => false,
        (Node::Rel(pa, oa), Node::Rel(pb, ob)) => same_rel(pa, oa, pb, ob, budget),
        (Node::Rel(parts, ops), Node::Tuple(o, c, xs))
        | (Node::Tuple(o, c, xs), Node::Rel(parts, ops))
            if xs.len() == 2 =>
        {
            let tuple = Node::Tuple(*o, *c, xs.clone());
            rel_interval(parts, ops).is_some_and(|(lo, lc, hi, hc)| {
                lc == (*o == b'[')
                    && hc == (*c == b']')
                    && same(&lo, &xs[0], budget)
                    && same(&hi, &xs[1], budget)
            }) || states(parts, ops, &tuple, budget)
        }
        (Node::Rel(parts, ops), other) | (other, Node::Rel(parts, ops)) => {
            states(parts, ops, other, budget)
        }
        (Node::Set(xs), Node::Set(ys)) | (Node::Union(xs), Node::Union(ys)) => {
            same_unordered(xs, ys, budget)
        }
        (Node::Set(xs), other) | (other, Node::Set(xs))
            if !xs.is_empty() && xs.len() <= MAX_ITEMS && !matches!(other, Node::Set(_)) =>
        {
            // A set with one distinct member (`3, 3`) is that member.
            xs.iter().all(|x| same(x, other, budget))
        }
        (Node::Tuple(o1, c1, xs), Node::Tuple(o2, c2, ys)) => {
            o1 == o2 && c1 == c2 && same_ordered(xs, ys, budget)
        }
        (Node::Matrix(r1), Node::Matrix(r2)) => {
            r1.len() == r2.len() && r1.iter().zip(r2).all(|(x, y)| same_ordered(x, y, budget))
        }
        (Node::Matrix(rows), Node::Tuple(b'(', b')', xs))
        | (Node::Tuple(b'(', b')', xs), Node::Matrix(rows)) => {
            let flat: Vec<&Node> = rows.iter().flatten().collect();
            (rows.len() == 1 || rows.iter().all(|r| r.len() == 1))
                && flat.len() == xs.len()
                && flat.iter().zip(xs).all(|(x, y)| same(x, y, budget))
        }
        (Node::Based(d1, b1), Node::Based(d2, b2)) => {
            d1 == d2 && b1 == b2 || same_expr(a, b, budget)
        }
        (Node::Based(digits, _), Node::Num(q)) | (Node::Num(q), Node::Based(digits, _)) => {
            digits.parse::<i128>().ok().and_then(|n| Q::new(n, 1)) == Some(*q)
        }
        _ if is_scalar(a) && is_scalar(b) => same_expr(a, b, budget),
        _ => false,
    }
}

fn is_scalar(n: &Node) -> bool {
    !matches!(
        n,
        Node::Rel(..)
            | Node::Tuple(..)
            | Node::Set(_)
            | Node::Union(_)
            | Node::Matrix(_)
            | Node::Text(_)
    )
}

/// Lower-cased letters and digits only: `\text{(C)}` → `c`, `Monday.` → `monday`.
pub fn text_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The value a relation states for a name (`parse::is_name`): `x = 5` → `5`, `5 = x` → `5`,
/// `(a, b) = (4, 1)` → `(4, 1)`, `|PQ| = 7` → `7`, `t = 2 + 3 = 5` → `5` (the last value).
fn solved_value<'n>(parts: &'n [Node], ops: &[RelOp]) -> Option<&'n Node> {
    if !ops.iter().all(|o| *o == RelOp::Eq) {
        return None;
    }
    let (first, last) = (parts.first()?, parts.last()?);
    if is_name(first) {
        Some(last)
    } else if parts.len() == 2 && is_name(last) {
        Some(first)
    } else {
        None
    }
}

/// Whether the relation states the answer `other` (`x = 5`, `2 + 3 = 5` state `5`).
fn states(parts: &[Node], ops: &[RelOp], other: &Node, budget: &mut Budget) -> bool {
    match solved_value(parts, ops) {
        Some(v) => same(v, other, budget),
        None => true_chain(parts, ops, budget) && same(&parts[parts.len() - 1], other, budget),
    }
}

/// A chain of equalities between constants that all hold (`2 + 3 = 5`): it states its value.
fn true_chain(parts: &[Node], ops: &[RelOp], budget: &mut Budget) -> bool {
    if !ops.iter().all(|o| *o == RelOp::Eq) {
        return false;
    }
    let Some(last) = parts.last().and_then(|n| eval(n, &[], budget)) else {
        return false;
    };
    parts[..parts.len() - 1]
        .iter()
        .all(|p| eval(p, &[], budget).is_some_and(|v| v.same(last)))
}

/// The interval a one-variable inequality states, as (low, closed, high, closed):
/// `x > 3` → (3, ∞), `x \le 2` → (−∞, 2], `1 \le x < 2` → [1, 2).
fn rel_interval(parts: &[Node], ops: &[RelOp]) -> Option<(Node, bool, Node, bool)> {
    let var = is_name;
    let up = |o: RelOp| matches!(o, RelOp::Lt | RelOp::Le);
    let down = |o: RelOp| matches!(o, RelOp::Gt | RelOp::Ge);
    match (parts, ops) {
        ([a, b], [op]) => {
            let (l, op, r) = oriented(a, *op, b);
            if !up(op) {
                return None;
            }
            let closed = op == RelOp::Le;
            if var(l) && !var(r) {
                Some((Node::Neg(Box::new(Node::Inf)), false, r.clone(), closed))
            } else if var(r) && !var(l) {
                Some((l.clone(), closed, Node::Inf, false))
            } else {
                None
            }
        }
        ([a, x, b], [o1, o2]) if var(x) => {
            if up(*o1) && up(*o2) {
                Some((a.clone(), *o1 == RelOp::Le, b.clone(), *o2 == RelOp::Le))
            } else if down(*o1) && down(*o2) {
                Some((b.clone(), *o2 == RelOp::Ge, a.clone(), *o1 == RelOp::Ge))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn same_ordered(xs: &[Node], ys: &[Node], budget: &mut Budget) -> bool {
    xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y, budget))
}

/// The value of a scalar item at one random point: equivalent items have equal signatures, so
/// matching a collection compares in full only the pairs whose signatures agree (linear work for
/// the usual case instead of quadratic).
fn signatures(items: &[Node], env: &[Value], budget: &mut Budget) -> Vec<Option<Value>> {
    items
        .iter()
        .map(|n| match n {
            Node::Based(..) => None, // matched by digits, not only by value
            n if is_scalar(n) => eval(n, env, budget),
            _ => None,
        })
        .collect()
}

/// Equal as sets (a repeated member counts once): every distinct item of `xs` matched to a
/// distinct item of `ys`.
fn same_unordered(xs: &[Node], ys: &[Node], budget: &mut Budget) -> bool {
    if xs.len() > MAX_ITEMS || ys.len() > MAX_ITEMS {
        return false;
    }
    let mut vars = Vec::new();
    xs.iter().chain(ys).for_each(|n| vars_of(n, &mut vars));
    let mut rng = Rng(0x51_6E_A7);
    let mut env = vec![Value::int(0); vars.iter().max().map_or(0, |m| *m as usize + 1)];
    for &v in &vars {
        env[v as usize] = rng.point();
    }
    let sx = signatures(xs, &env, budget);
    let sy = signatures(ys, &env, budget);
    let (xs, sx) = distinct(xs, sx, budget);
    let (ys, sy) = distinct(ys, sy, budget);
    if xs.len() != ys.len() {
        return false;
    }
    let mut used = vec![false; ys.len()];
    'outer: for (x, a) in xs.iter().zip(&sx) {
        for (j, y) in ys.iter().enumerate() {
            if !used[j] && compatible(*a, sy[j]) && same(x, y, budget) {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

/// Whether two signatures allow the items to be equal.
fn compatible(a: Option<Value>, b: Option<Value>) -> bool {
    !matches!((a, b), (Some(a), Some(b)) if !a.same(b))
}

/// The items with repeats removed (the first of each equal run kept), with their signatures.
fn distinct<'n>(
    items: &'n [Node],
    sigs: Vec<Option<Value>>,
    budget: &mut Budget,
) -> (Vec<&'n Node>, Vec<Option<Value>>) {
    let (mut out, mut out_sigs): (Vec<&Node>, Vec<Option<Value>>) = (vec![], vec![]);
    for (n, s) in items.iter().zip(sigs) {
        let repeat = out
            .iter()
            .zip(&out_sigs)
            .any(|(m, t)| compatible(s, *t) && same(n, m, budget));
        if !repeat {
            out.push(n);
            out_sigs.push(s);
        }
    }
    (out, out_sigs)
}

/// Normalize a relation's direction: `a > b` → (b, <, a), `a ≥ b` → (b, ≤, a).
fn oriented<'n>(l: &'n Node, op: RelOp, r: &'n Node) -> (&'n Node, RelOp, &'n Node) {
    match op {
        RelOp::Gt => (r, RelOp::Lt, l),
        RelOp::Ge => (r, RelOp::Le, l),
        _ => (l, op, r),
    }
}

fn same_rel(pa: &[Node], oa: &[RelOp], pb: &[Node], ob: &[RelOp], budget: &mut Budget) -> bool {
    if oa.len() != ob.len() {
        return false;
    }
    if oa.len() > 1 {
        // Chains (1 < x < 3): parts in order, or reversed with every operator flipped.
        let flip = |o: &RelOp| match o {
            RelOp::Lt => RelOp::Gt,
            RelOp::Gt => RelOp::Lt,
            RelOp::Le => RelOp::Ge,
            RelOp::Ge => RelOp::Le,
            o => *o,
        };
        if oa == ob && same_ordered(pa, pb, budget) {
            return true;
        }
        let rev_ops: Vec<RelOp> = ob.iter().rev().map(flip).collect();
        return oa == rev_ops.as_slice()
            && pa
                .iter()
                .zip(pb.iter().rev())
                .all(|(x, y)| same(x, y, budget));
    }
    let (l1, o1, r1) = oriented(&pa[0], oa[0], &pa[1]);
    let (l2, o2, r2) = oriented(&pb[0], ob[0], &pb[1]);
    if o1 != o2 {
        return false;
    }
    if same(l1, l2, budget) && same(r1, r2, budget) {
        return true;
    }
    let symmetric = matches!(o1, RelOp::Eq | RelOp::Ne);
    if symmetric && same(l1, r2, budget) && same(r1, l2, budget) {
        return true;
    }
    proportional(l1, r1, l2, r2, !symmetric, budget)
}

/// Bind `vars` to fresh random points and call `f` with the environment, `POINTS` times; true
/// when `f` held at every point where it was defined and at least `MIN_DEFINED` were.
fn at_random_points(
    vars: &[u16],
    budget: &mut Budget,
    mut f: impl FnMut(&[Value], &mut Budget) -> Option<bool>,
) -> bool {
    let size = vars.iter().max().map_or(0, |m| *m as usize + 1);
    let mut env = vec![Value::int(0); size];
    let mut rng = Rng(0x005E_ED0F_E4D6);
    let mut defined = 0;
    for _ in 0..POINTS {
        for &v in vars {
            env[v as usize] = rng.point();
        }
        match f(&env, budget) {
            Some(true) => defined += 1,
            Some(false) => return false,
            None if budget.0 == 0 => return false,
            None => {}
        }
    }
    defined >= MIN_DEFINED
}

/// Expressions: equal values when constant, else equal at random rational points.
///
/// Error bound: with no irrational operation the evaluation is exact, so equivalent expressions
/// always agree (points where either side is undefined are skipped), and two different rational
/// functions whose numerator of `f − g` has degree `d` agree at one random point with
/// probability at most `d/700` (Schwartz–Zippel over ~700 values per variable), hence at all six
/// with at most `(d/700)^6` (< 1e-13 for d ≤ 10). With irrational functions the values are
/// floats compared with a 1e-9 relative tolerance.
fn same_expr(a: &Node, b: &Node, budget: &mut Budget) -> bool {
    let mut vars = Vec::new();
    vars_of(a, &mut vars);
    vars_of(b, &mut vars);
    if vars.is_empty() {
        return match (eval(a, &[], budget), eval(b, &[], budget)) {
            (Some(x), Some(y)) => x.same(y) || rounded_to(a, y) || rounded_to(b, x),
            _ => false,
        };
    }
    at_random_points(&vars, budget, |env, budget| {
        let x = eval(a, env, budget)?;
        let y = eval(b, env, budget)?;
        Some(x.same(y))
    })
}

/// Fewest decimal places a decimal needs to stand for a value it only approximates.
const MIN_PLACES: u32 = 6;

/// The precision policy: a decimal literal written with `k >= MIN_PLACES` places (`0.142857`)
/// stands for a real value `v` that no terminating decimal equals (`1/7`, `\sqrt2`, `\pi`) when
/// it is `v` rounded (half up) or truncated to `k` places (`0.666667` and `0.666666` are `2/3`,
/// `0.666668` is not). A decimal never matches a
/// different terminating decimal or a value it approximates more coarsely (`0.333` ≢ `1/3`).
fn rounded_to(node: &Node, v: Value) -> bool {
    let q = match node {
        Node::Num(q) => *q,
        Node::Neg(x) => match **x {
            Node::Num(q) => q.neg().unwrap_or(q),
            _ => return false,
        },
        _ => return false,
    };
    let Some(k) = decimal_places(q.denom()).filter(|k| (MIN_PLACES..=15).contains(k)) else {
        return false;
    };
    let scale = 10i128.pow(k);
    // The decimal as an integer count of units in its last place.
    let Some(units) = q.numer().checked_mul(scale / q.denom()) else {
        return false;
    };
    match v.as_q() {
        Some(r) if decimal_places(r.denom()).is_some() => false, // a terminating decimal
        Some(r) => {
            let Some(t) = r.numer().checked_mul(scale) else {
                return false;
            };
            let m = r.denom();
            let Some(twice) = t.checked_mul(2).and_then(|x| x.checked_add(m)) else {
                return false;
            };
            units == t / m || units == twice.div_euclid(2 * m)
        }
        None => v.as_real().is_some_and(|x| {
            let x = x * scale as f64;
            x.abs() < 2f64.powi(52) && (units as f64 == x.trunc() || units as f64 == x.round())
        }),
    }
}

/// `k` when `d = 2^a·5^b` with `k = max(a, b)` (a terminating decimal needs `k` places).
fn decimal_places(d: i128) -> Option<u32> {
    let (mut d, mut twos, mut fives) = (d, 0, 0);
    while d % 2 == 0 {
        d /= 2;
        twos += 1;
    }
    while d % 5 == 0 {
        d /= 5;
        fives += 1;
    }
    (d == 1).then_some(twos.max(fives))
}

/// `l1 − r1 = c·(l2 − r2)` for one constant `c ≠ 0` (`c > 0` for inequalities) at random points.
fn proportional(
    l1: &Node,
    r1: &Node,
    l2: &Node,
    r2: &Node,
    positive: bool,
    budget: &mut Budget,
) -> bool {
    let mut vars = Vec::new();
    for n in [l1, r1, l2, r2] {
        vars_of(n, &mut vars);
    }
    if vars.is_empty() {
        return false;
    }
    let mut ratio: Option<Value> = None;
    at_random_points(&vars, budget, |env, budget| {
        let f = eval(l1, env, budget)?.sub(eval(r1, env, budget)?)?;
        let g = eval(l2, env, budget)?.sub(eval(r2, env, budget)?)?;
        if g.is_zero() || f.is_zero() {
            return Some(g.is_zero() && f.is_zero());
        }
        let c = f.div(g)?;
        match ratio {
            None => {
                let ok = !positive || c.as_real().is_some_and(|x| x > 0.0);
                ratio = Some(c);
                Some(ok)
            }
            Some(r) => Some(r.same(c)),
        }
    }) && ratio.is_some()
}
