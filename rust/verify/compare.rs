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
use super::latex::RelOp;
use super::parse::Node;
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
            rel_interval(parts, ops).is_some_and(|(lo, lc, hi, hc)| {
                lc == (*o == b'[')
                    && hc == (*c == b']')
                    && same(&lo, &xs[0], budget)
                    && same(&hi, &xs[1], budget)
            })
        }
        (Node::Rel(parts, ops), other) | (other, Node::Rel(parts, ops)) => {
            solved_value(parts, ops).is_some_and(|v| same(v, other, budget))
        }
        (Node::Set(xs), Node::Set(ys)) | (Node::Union(xs), Node::Union(ys)) => {
            same_unordered(xs, ys, budget)
        }
        (Node::Set(xs), other) | (other, Node::Set(xs)) if xs.len() == 1 => {
            same(&xs[0], other, budget)
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

/// The value a relation states for its variable: `x = 5` → `5`, `5 = x` → `5`, `x = y = 5` → `5`.
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

/// A variable, or a function-like name such as `f(x)` (parsed as a product of variables).
fn is_name(n: &Node) -> bool {
    match n {
        Node::Var(_) => true,
        Node::Mul(xs) => xs.iter().all(|x| matches!(x, Node::Var(_))),
        _ => false,
    }
}

/// The interval a one-variable inequality states, as (low, closed, high, closed):
/// `x > 3` → (3, ∞), `x \le 2` → (−∞, 2], `1 \le x < 2` → [1, 2).
fn rel_interval(parts: &[Node], ops: &[RelOp]) -> Option<(Node, bool, Node, bool)> {
    let var = |n: &Node| matches!(n, Node::Var(_));
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

/// Equal as multisets: every item of `xs` matched to a distinct item of `ys`.
fn same_unordered(xs: &[Node], ys: &[Node], budget: &mut Budget) -> bool {
    if xs.len() != ys.len() || xs.len() > MAX_ITEMS {
        return false;
    }
    let mut vars = Vec::new();
    xs.iter().chain(ys).for_each(|n| vars_of(n, &mut vars));
    let mut rng = Rng(0x51_6E_A7);
    let mut env = vec![Value::int(0); vars.iter().max().map_or(0, |m| *m as usize + 1)];
    for &v in &vars {
        env[v as usize] = rng.point();
    }
    let (sx, sy) = (signatures(xs, &env, budget), signatures(ys, &env, budget));
    let mut used = vec![false; ys.len()];
    'outer: for (x, a) in xs.iter().zip(&sx) {
        for (j, y) in ys.iter().enumerate() {
            let differ = matches!((a, sy[j]), (Some(a), Some(b)) if !a.same(b));
            if !used[j] && !differ && same(x, y, budget) {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
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
            (Some(x), Some(y)) => x.same(y),
            _ => false,
        };
    }
    at_random_points(&vars, budget, |env, budget| {
        let x = eval(a, env, budget)?;
        let y = eval(b, env, budget)?;
        Some(x.same(y))
    })
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
