//! Equivalence tests by family, positive and negative (extraction, parsing and values have their
//! own tests next to their code).

use super::*;

fn eq(a: &str, b: &str) -> bool {
    equivalent(a, b)
}

#[track_caller]
fn yes(pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        assert!(eq(a, b), "expected {a:?} ≡ {b:?}");
        assert!(eq(b, a), "expected {b:?} ≡ {a:?} (symmetry)");
    }
}

#[track_caller]
fn no(pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        assert!(!eq(a, b), "expected {a:?} ≢ {b:?}");
        assert!(!eq(b, a), "expected {b:?} ≢ {a:?} (symmetry)");
    }
}

#[test]
fn numbers_with_cosmetics() {
    yes(&[
        ("1000", "1,000"),
        ("1000", "1{,}000"),
        ("18", "\\$18.00"),
        ("50", "50\\%"),
        ("0.5", "50\\%"),
        ("11111111100", "11,\\! 111,\\! 111,\\! 100"),
        ("\\frac{12}{5525}", "\\frac{12}{5,\\!525}"),
        ("(-\\infty,-4)\\cup(-4,6)\\cup(6,\\infty)", "\\left(\\left(-\\infty, -4\\right) \\cup \\left(-4, 6\\right)\\right) \\cup \\left(6, \\infty\\right)"),
        ("5", "5\\text{ cm}^2"),
        ("90", "90^\\circ"),
        ("-3", "−3"),
        ("0.5", ".50"),
        ("1500", "1.5\\times10^{3}"),
        ("1000", "1e3"),
        ("12", "12 dollars"),
    ]);
    no(&[
        ("1000", "100"),
        ("0.5", "5\\%"),
        ("18", "18.01"),
        ("-3", "3"),
        ("1500", "1.5\\times10^{4}"),
    ]);
}

#[test]
fn exact_rationals() {
    yes(&[
        ("\\frac{1}{2}", "0.5"),
        ("\\frac13", "\\dfrac{1}{3}"),
        ("\\tfrac{3}{4}", "3/4"),
        ("-\\frac{1}{2}", "\\frac{-1}{2}"),
        ("-\\frac{1}{2}", "\\frac{1}{-2}"),
        ("2\\frac{1}{4}", "\\frac94"),
        ("2\\frac{1}{4}", "2.25"),
    ]);
    no(&[
        ("\\frac{1}{3}", "0.333"),
        ("\\frac12", "\\frac{1}{3}"),
        ("2\\frac{1}{4}", "\\frac12"),
    ]);
}

#[test]
fn latex_algebra() {
    yes(&[
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
        ("2\\sqrt{3}", "\\sqrt{12}"),
        ("\\sqrt[3]{8}", "2"),
        ("2\\pi", "\\pi \\cdot 2"),
        ("e^2", "e\\times e"),
        ("\\left(\\frac{1}{2}\\right)^2", "\\frac14"),
        ("\\log_2 8", "3"),
        ("\\sin\\frac{\\pi}{6}", "\\frac12"),
        ("5!", "120"),
        ("\\binom{5}{2}", "10"),
        ("|-4|", "4"),
        ("\\lfloor 3.7 \\rfloor", "3"),
        ("\\lceil 3.2 \\rceil", "4"),
        ("3+4i", "4i+3"),
        ("i^2", "-1"),
    ]);
    no(&[
        ("\\sqrt{2}", "1.414"),
        ("2\\pi", "6.28"),
        ("3+4i", "3-4i"),
        ("\\binom{5}{2}", "20"),
    ]);
}

#[test]
fn expressions_with_variables() {
    yes(&[
        ("x^2+2x+1", "(x+1)^2"),
        ("\\frac{x^2-1}{x-1}", "x+1"),
        ("2(a+b)", "2a+2b"),
        ("\\sin^2 x + \\cos^2 x", "1"),
        ("\\sqrt{x^2}", "|x|"),
    ]);
    no(&[
        ("x^2+1", "(x+1)^2"),
        ("x", "|x|"),
        ("x+y", "x-y"),
        ("2x", "2y"),
    ]);
}

#[test]
fn equations_and_inequalities() {
    yes(&[
        ("5", "x = 5"),
        ("y = 2x+3", "y = 3+2x"),
        ("y = 2x + 3", "2x - y + 3 = 0"),
        ("x \\ge 3", "3 \\leq x"),
        ("x > 3", "3 < x"),
    ]);
    no(&[
        ("y = 2x+3", "y = 2x-3"),
        ("5x - 7y + 11z + 4 = 0", "0"),
        ("x \\ge 3", "x > 3"),
        ("x > 3", "x < 3"),
        ("x = 5", "x = 6"),
    ]);
}

#[test]
fn intervals_tuples_sets_matrices() {
    yes(&[
        ("(-\\infty, 3]", "\\left(-\\infty,3\\right]"),
        ("(1,2) \\cup (3,4)", "(3,4)\\cup(1,2)"),
        ("(1, \\frac{1}{2})", "(1, 0.5)"),
        ("1, 2", "2, 1"),
        ("\\{1,2,3\\}", "\\{3,1,2\\}"),
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}",
        ),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 2)"),
        ("x = 1 \\pm \\sqrt{2}", "1-\\sqrt2, 1+\\sqrt2"),
    ]);
    no(&[
        ("(1, 2)", "[1, 2]"),
        ("(1, 2)", "(2, 1)"),
        ("1, 2", "1, 2, 3"),
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",
        ),
    ]);
}

#[test]
fn text_and_bases() {
    yes(&[
        ("\\text{Monday}", "Monday"),
        ("\\text{(C)}", "C"),
        ("(C)", "C"),
        ("1011_2", "1011_{2}"),
        ("1011_2", "1011"),
        ("13_8", "1011_2"),
    ]);
    no(&[
        ("\\text{Monday}", "Tuesday"),
        ("(C)", "(D)"),
        ("1011_2", "1011_3"),
        ("1011_2", "11"),
    ]);
}

#[test]
fn malformed_and_huge_inputs_are_not_equivalent() {
    let big = "1".repeat(1 << 20);
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    for bad in [
        "\\frac{1}{",
        "}}}{{{",
        "10^{10^{10}}",
        "\\boxed{",
        big.as_str(),
        deep.as_str(),
        "\\sqrt[",
        "2^{2^{2^{2^{2^{2}}}}}",
    ] {
        assert!(!eq("1", bad), "{bad:.40}");
    }
    assert!(!eq("10^{10^{10}}", "10^{10^{11}}"));
    assert!(!eq("", ""));
}

#[test]
fn style_names() {
    assert_eq!("auto".parse::<Style>().unwrap(), Style::Auto);
    assert!("latex".parse::<Style>().is_err());
}

#[test]
fn verify_extracts_then_compares() {
    assert!(verify(
        "so the total is \\boxed{\\frac{1}{2}}.",
        "0.5",
        Style::Auto
    ));
    assert!(verify("She pays 3 * 6 = 18.\n#### 18", "18", Style::Gsm8k));
    assert!(!verify("#### 17", "18", Style::Gsm8k));
    assert!(!verify("no answer", "18", Style::Boxed));
}

#[test]
fn large_unordered_sets_match_within_the_budget() {
    let items: Vec<String> = (0..60).map(|i| format!("x^{{{i}}}+y")).collect();
    let fwd = format!("\\{{{}\\}}", items.join(","));
    let rev = format!(
        "\\{{{}\\}}",
        items.iter().rev().cloned().collect::<Vec<_>>().join(",")
    );
    assert!(eq(&fwd, &rev));
    let shifted: Vec<String> = (1..61).map(|i| format!("x^{{{i}}}+y")).collect();
    assert!(!eq(&fwd, &format!("\\{{{}\\}}", shifted.join(","))));
    yes(&[("1011_2, 3", "3, 1011")]);
}

#[test]
fn mixed_numbers_never_multiply() {
    yes(&[
        ("4 4/9", "\\frac{40}{9}"),
        ("4 4/9", "4\\frac{4}{9}"),
        ("-4 4/9", "-\\frac{40}{9}"),
        ("2 1/2", "2.5"),
        ("\\log_2 8", "3"),
        ("\\frac 1 2", "0.5"),
    ]);
    no(&[
        ("\\frac{16}{9}", "4 4/9"),
        ("6", "2 3"),
        ("23", "2 3"),
        ("\\frac{40}{9}", "4 4/9x"),
    ]);
}

#[test]
fn equations_with_a_named_left_side() {
    yes(&[
        ("(4,1)", "(a,b)=(4,1)"),
        ("7", "|PQ|=7"),
        ("3:5", "S_1:S_2=3:5"),
        ("5", "t = 2+3 = 5"),
        ("5", "2 + 3 = 5"),
        ("12", "f(2) = 12"),
        ("7", "\\overline{AB} = 7"),
        ("30", "m\\angle ABC = 30^\\circ"),
        ("\\frac{\\sqrt2}{2}", "\\frac{\\sqrt{2}}{2} \\approx 0.707"),
        (
            "\\frac{\\sqrt2}{2}",
            "x = \\frac{\\sqrt{2}}{2} \\approx 0.707",
        ),
    ]);
    no(&[
        ("(4,1)", "(a,b)=(1,4)"),
        ("5", "x + 1 = 5"),
        ("5", "2x = 5"),
        ("5", "2 + 2 = 5"),
        ("3:5", "5:3"),
        ("3:5", "S_1:S_2=6:10"),
        ("0.707", "\\frac{\\sqrt{2}}{2} \\approx 0.707"),
    ]);
}

#[test]
fn inequalities_on_a_name() {
    yes(&[
        ("(0,2)", "0<g(x)<2"),
        ("[1,2]", "1 \\le |w| \\le 2"),
        ("(-\\infty, 3]", "f(x) \\le 3"),
    ]);
    no(&[
        ("(0,2)", "0<g(x)\\le2"),
        ("(0,2)", "0 < 2x < 2"),
        ("[1,2]", "2 \\ge |w| > 1"),
    ]);
}

#[test]
fn sets_ignore_repeats() {
    yes(&[
        ("\\{2,5\\}", "2, 5"),
        ("\\{1,2\\}", "\\{1,1,2\\}"),
        ("1, 2", "2, 1, 2"),
        ("3", "3, 3"),
    ]);
    no(&[("\\{1,2\\}", "\\{1,1,3\\}"), ("1, 2", "1, 1")]);
}

#[test]
fn decimals_against_values_without_a_terminating_decimal() {
    yes(&[
        ("\\frac17", "0.142857"),
        ("\\frac17", "0.1428571"),
        ("\\frac23", "0.666667"),
        ("\\frac23", "0.666666"),
        ("-\\frac23", "-0.666667"),
        ("\\sqrt2", "1.414214"),
        ("\\pi", "3.141593"),
    ]);
    no(&[
        ("\\frac17", "0.1429"),
        ("\\frac13", "0.333"),
        ("\\frac23", "0.666668"),
        ("\\frac18", "0.1250001"),
        ("0.142857", "0.1428571"),
        ("\\sqrt2", "1.414"),
        ("\\frac17", "-0.142857"),
    ]);
}

#[test]
fn separators_and_units_with_punctuation() {
    yes(&[
        ("12345", "12{,}345"),
        ("5", "5 \\text{ m}."),
        ("5", "$5$."),
        ("5", "5\\mbox{ cm},"),
        ("4", "4 \\text{ hours};"),
    ]);
    no(&[("12345", "12{,}346"), ("5", "6 \\text{ m}.")]);
}

#[test]
fn sums_and_products() {
    yes(&[
        ("55", "\\sum_{k=1}^{10} k"),
        ("120", "\\prod_{k=1}^{5} k"),
        ("15", "\\sum_{n=0}^{3} 2^n"),
    ]);
    // Bounds must be integers: a symbolic sum is never equal to anything (points are fractions).
    assert!(!eq("\\frac{n(n+1)}{2}", "\\sum_{k=1}^{n} k"));
    no(&[
        ("45", "\\sum_{k=1}^{10} k"),
        ("1", "\\sum_{k=1}^{10^{9}} k"),
    ]);
}

#[test]
fn different_units_differ() {
    yes(&[
        ("5\\text{ cm}", "5 centimeters"),
        ("5", "5\\text{ m}"),
        ("3\\text{ ft}", "3 feet."),
    ]);
    no(&[
        ("5\\text{ cm}", "5\\text{ m}"),
        ("5\\text{ cm}^2", "5\\text{ cm}"),
        ("2 hours", "2 minutes"),
    ]);
}
