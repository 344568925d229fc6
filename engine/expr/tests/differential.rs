//! The ahead-of-time path and Rhai give the same answer, expression by
//! expression: a table of (expression, expected) over one set of facts.

use dealrules_expr::{Env, EvalError, ExprEngine, Value};

const FACTS: &str = r#"{
  "deal": {"amount": 40000, "discount_pct": 10.5, "region": "APAC", "payment_terms_days": 30,
           "close_date": "2026-03-31", "tags": ["new", "upsell"], "owner": {"id": "r1", "team": "east"},
           "note": null, "new_logo": true, "amount_text": "40000.0", "days_text": "90",
           "precise_text": "1.00499999999999999999999999999999"},
  "customer": {"annual_revenue": 1200000, "late_payments_12m": 0},
  "rep": {"role": "ae", "quota": 100000}
}"#;

/// `Ok(json)` for a value, `Err(fragment)` for an error containing fragment.
fn cases() -> Vec<(&'static str, Result<&'static str, &'static str>)> {
    vec![
        ("deal.amount", Ok("40000")),
        ("deal.amount <= 50000", Ok("true")),
        ("deal.discount_pct <= 10", Ok("false")),
        ("deal.discount_pct > 10 && deal.discount_pct <= 20", Ok("true")),
        ("deal.discount_pct >= 10.5", Ok("true")),
        ("deal.discount_pct == 10.50", Ok("true")),
        ("0.1 + 0.2 == 0.3", Ok("true")),
        ("7 / 2", Ok("3.5")),
        ("deal.amount / 3 * 3 == deal.amount", Ok("false")),
        ("deal.amount * (1 - deal.discount_pct / 100)", Ok("35800")),
        ("deal.amount - 50000", Ok("-10000")),
        ("-deal.amount", Ok("-40000")),
        ("deal.amount % 7", Ok("2")),
        ("deal.region == \"APAC\" || deal.discount_pct <= 35", Ok("true")),
        ("!(deal.region == \"NA\")", Ok("true")),
        ("deal.region != \"NA\"", Ok("true")),
        ("deal.region in [\"NA\", \"EMEA\"]", Ok("false")),
        ("deal.region in [\"APAC\", \"EMEA\"]", Ok("true")),
        ("\"new\" in deal.tags", Ok("true")),
        ("\"AP\" in deal.region", Ok("true")),
        ("\"owner\" in deal", Ok("true")),
        ("deal.owner.team", Ok("\"east\"")),
        ("deal.tags[1]", Ok("\"upsell\"")),
        ("deal.tags[-1]", Ok("\"upsell\"")),
        ("deal[\"region\"]", Ok("\"APAC\"")),
        ("deal.note", Ok("null")),
        ("deal.note ?? \"none\"", Ok("\"none\"")),
        ("has(deal, \"region\")", Ok("true")),
        ("has(deal, \"segment\")", Ok("false")),
        ("get(deal, \"segment\", \"SMB\")", Ok("\"SMB\"")),
        ("get(deal, \"region\", \"NA\")", Ok("\"APAC\"")),
        ("days_between(\"2026-01-01\", deal.close_date)", Ok("89")),
        ("date(\"2026-03-31T10:00:00Z\")", Ok("\"2026-03-31\"")),
        ("add_days(deal.close_date, 90)", Ok("\"2026-06-29\"")),
        ("deal.close_date < \"2026-04-01\"", Ok("true")),
        ("deal.new_logo && deal.amount >= 20000", Ok("true")),
        (
            "customer.annual_revenue >= 1000000 && customer.late_payments_12m == 0",
            Ok("true"),
        ),
        ("deal.region == 1", Ok("false")),
        ("\"a\" + \"b\"", Ok("\"ab\"")),
        ("[1, 2] + [3]", Ok("[1,2,3]")),
        ("deal.amount > rep.quota / 4", Ok("true")),
        ("deal.amount > rep.quota / 2", Ok("false")),
        // numeric text next to a number is a number
        ("deal.amount_text > 10000", Ok("true")),
        ("deal.amount_text == 40000", Ok("true")),
        ("deal.amount_text * 2", Ok("80000")),
        ("deal.amount_text + 1", Ok("40001")),
        ("deal.amount_text + \"x\"", Ok("\"40000.0x\"")),
        ("deal.region == 40000", Ok("false")),
        ("-deal.amount_text", Ok("-40000")),
        ("add_days(deal.close_date, deal.days_text)", Ok("\"2026-06-29\"")),
        // numeric text no exact decimal holds is refused, never rounded
        (
            "deal.precise_text * 2",
            Err("has more digits than an exact decimal holds"),
        ),
        (
            "deal.precise_text == 1",
            Err("has more digits than an exact decimal holds"),
        ),
        (
            "deal.precise_text > 1",
            Err("has more digits than an exact decimal holds"),
        ),
        ("-deal.region", Err("needs a number, got text `APAC`")),
        // errors
        ("deal.region > 10000", Err("cannot order text `APAC` against a number")),
        ("deal.region * 2", Err("not a number")),
        ("\"total: \" + deal.amount", Ok("\"total: 40000\"")),
        ("deal.segment == \"SMB\"", Err("segment")),
        ("partner.id", Err("partner")),
        ("deal.amount / 0", Err("zero")),
        ("deal.region > 3", Err("")),
        ("deal.amount.value", Err("")),
        ("date(\"31/03/2026\")", Err("ISO-8601")),
        ("deal.amount && deal.new_logo", Err("")),
        ("deal.new_logo || deal.amount", Ok("true")),
        ("deal.note > 3", Err("")),
        ("3 <= deal.region", Err("")),
        // conditionals: only the branch taken is evaluated
        ("if deal.amount > 1000 { \"big\" } else { \"small\" }", Ok("\"big\"")),
        (
            "if deal.region == \"NA\" { 0.08 } else if deal.region == \"APAC\" { 0.05 } else { 0.03 }",
            Ok("0.05"),
        ),
        ("if deal.new_logo { 500 }", Ok("500")),
        ("if !deal.new_logo { 500 }", Ok("null")),
        ("if deal.amount < 0 { deal.segment } else { 0 }", Ok("0")),
        (
            "if deal.amount > 0 { deal.segment } else { 0 }",
            Err("deal.segment is missing"),
        ),
        ("if deal.amount { 1 } else { 2 }", Err("")),
        ("if deal.region in [\"NA\", \"EMEA\"] { 1 } else { 2 }", Ok("2")),
        ("(if deal.new_logo { 2 } else { 1 }) * deal.amount", Ok("80000")),
        (
            "deal.amount > 30000 && if deal.new_logo { true } else { false }",
            Ok("true"),
        ),
        // min, max, abs
        ("min(deal.amount, 20000)", Ok("20000")),
        ("max(deal.amount_text, 50000)", Ok("50000")),
        ("min(deal.amount, 40000.00)", Ok("40000")),
        ("max(40000.00, deal.amount)", Ok("40000")),
        ("abs(deal.amount - 50000)", Ok("10000")),
        ("abs(-deal.discount_pct)", Ok("10.5")),
        ("max(deal.region, 1)", Err("max() needs a number, got text `APAC`")),
        ("min(deal.note, 1)", Err("min() needs a number, got null")),
        // rounding (the full table is tests/rounding.rs)
        ("round(50.025, 2)", Ok("50.03")),
        ("round_even(50.025, 2)", Ok("50.02")),
        ("floor(-1.005, 2)", Ok("-1.01")),
        ("ceil(deal.discount_pct)", Ok("11")),
        ("round(deal.amount / 3, 2)", Ok("13333.33")),
        // a money formula: net, rate, cap
        (
            "min(round(deal.amount * (1 - deal.discount_pct / 100) * 0.08, 2), 20000)",
            Ok("2864"),
        ),
        ("deal.amount * 12.5 / 100", Ok("5000")),
        // dates on the close date
        ("days_between(deal.close_date, add_days(deal.close_date, 30))", Ok("30")),
        (
            "if days_between(deal.close_date, \"2026-06-30\") > 60 { \"late\" } else { \"in quarter\" }",
            Ok("\"late\""),
        ),
    ]
}

fn eval(expr: &dealrules_expr::Expr, facts: &Value) -> Result<Value, EvalError> {
    expr.eval(&Env::new(facts.as_map().unwrap(), &[]))
}

#[test]
fn compiled_and_rhai_agree() {
    let engine = ExprEngine::default();
    let facts = Value::from_json_str(FACTS).unwrap();
    let mut failures = Vec::new();
    for (src, expected) in cases() {
        let fast = engine.compile(src, &[]).unwrap_or_else(|e| panic!("{src}: {e}"));
        let slow = engine.compile_rhai_only(src, &[]).unwrap();
        let (a, b) = (eval(&fast, &facts), eval(&slow, &facts));
        let check = |which: &str, got: &Result<Value, EvalError>| match (got, &expected) {
            (Ok(v), Ok(want)) if serde_json::to_string(v).unwrap() == *want => None,
            (Err(e), Err(frag)) if e.to_string().contains(frag) => None,
            _ => Some(format!("{src} [{which}]: got {got:?}, want {expected:?}")),
        };
        failures.extend(check("compiled", &a));
        failures.extend(check("rhai", &b));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn common_forms_are_compiled_ahead_of_time() {
    let engine = ExprEngine::default();
    for (src, _) in cases() {
        let e = engine.compile(src, &[]).unwrap();
        assert!(e.is_compiled(), "{src} fell back to Rhai");
    }
    // Forms outside the compiled subset still work, on Rhai.
    let facts = Value::from_json_str(FACTS).unwrap();
    let e = engine.compile("deal.tags.len() > 1", &[]).unwrap();
    assert!(!e.is_compiled());
    assert_eq!(eval(&e, &facts).unwrap(), Value::Bool(true));
    let e = engine.compile("deal.region.to_lower()", &[]).unwrap();
    assert_eq!(eval(&e, &facts).unwrap(), Value::str("apac"));
}

#[test]
fn missing_fields_name_the_path() {
    let engine = ExprEngine::default();
    let facts = Value::from_json_str(FACTS).unwrap();
    let e = engine.compile("deal.customer.segment == \"SMB\"", &[]).unwrap();
    assert_eq!(eval(&e, &facts).unwrap_err().to_string(), "deal.customer is missing");
    let e = engine
        .compile("deal.region == \"NA\" || deal.segment == \"SMB\"", &[])
        .unwrap();
    assert_eq!(eval(&e, &facts).unwrap_err().to_string(), "deal.segment is missing");
}

#[test]
fn missing_fields_name_the_path_on_the_rhai_path_too() {
    let engine = ExprEngine::default();
    let facts = Value::from_json_str(FACTS).unwrap();
    let e = engine
        .compile("deal.region.to_lower() == \"apac\" && deal.segment == \"SMB\"", &[])
        .unwrap();
    assert!(!e.is_compiled());
    assert_eq!(eval(&e, &facts).unwrap_err().to_string(), "deal.segment is missing");
}

#[test]
fn locals_shadow_facts() {
    let engine = ExprEngine::default();
    let facts = Value::from_json_str(FACTS).unwrap();
    let locals = [Value::Num(5.into())];
    for e in [
        engine.compile("revenue * 2", &["revenue"]).unwrap(),
        engine.compile_rhai_only("revenue * 2", &["revenue"]).unwrap(),
    ] {
        let v = e.eval(&Env::new(facts.as_map().unwrap(), &locals)).unwrap();
        assert_eq!(v, Value::Num(10.into()));
    }
}

/// Found by the generated formulas: a day count past what a duration holds
/// panicked inside the date library instead of failing the expression.
#[test]
fn add_days_with_a_huge_count_is_an_error_not_a_panic() {
    let engine = ExprEngine::default();
    let facts = Value::from_json_str(FACTS).unwrap();
    for src in [
        "add_days(deal.close_date, 1067513917203)",
        "add_days(deal.close_date, -99999999999999999)",
    ] {
        for e in [
            engine.compile(src, &[]).unwrap(),
            engine.compile_rhai_only(src, &[]).unwrap(),
        ] {
            let err = eval(&e, &facts).unwrap_err().to_string();
            assert!(err.contains("out of range"), "{src}: {err}");
        }
    }
}

#[test]
fn syntax_errors_have_positions() {
    let engine = ExprEngine::default();
    let err = engine.compile("deal.amount >= && 3", &[]).unwrap_err();
    assert_eq!((err.line, err.col), (1, 16), "{err:?}");
}

/// Generated money formulas over generated deals: every form the compiled
/// path knows (arithmetic, comparisons, `&&`, `!`, `in`, `if`, `min`,
/// `max`, `abs`, the rounding family, dates), nested, must give exactly
/// what Rhai gives, scale included, or an error on both paths.
mod generated {
    use dealrules_expr::{Env, ExprEngine, Value};
    use proptest::prelude::*;

    fn number() -> impl Strategy<Value = String> {
        // halves at every place, negatives, zero, and large values
        (-2_000_000i64..2_000_000, 0u32..4, prop::bool::ANY).prop_map(|(m, scale, half)| {
            let d = rust_decimal::Decimal::new(m, scale);
            if half {
                format!("{}", d + rust_decimal::Decimal::new(5, scale + 1))
            } else {
                d.to_string()
            }
        })
    }

    fn places() -> impl Strategy<Value = String> {
        prop_oneof![(0u32..5).prop_map(|p| p.to_string()), Just("deal.places".to_string())]
    }

    fn num_expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("deal.a".to_string()),
            Just("deal.b".to_string()),
            Just("deal.c".to_string()),
            Just("deal.text".to_string()),
            number(),
            (0i64..100).prop_map(|i| i.to_string()),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            let cond = bool_expr(inner.clone());
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} + {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} - {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} * {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} / {b})")),
                (inner.clone(), places()).prop_map(|(a, p)| format!("round({a}, {p})")),
                (inner.clone(), places()).prop_map(|(a, p)| format!("round_even({a}, {p})")),
                (inner.clone(), places()).prop_map(|(a, p)| format!("floor({a}, {p})")),
                (inner.clone(), places()).prop_map(|(a, p)| format!("ceil({a}, {p})")),
                inner.clone().prop_map(|a| format!("round({a})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("min({a}, {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("max({a}, {b})")),
                inner.clone().prop_map(|a| format!("abs({a})")),
                inner.clone().prop_map(|a| format!("-({a})")),
                (cond, inner.clone(), inner.clone()).prop_map(|(c, a, b)| format!("(if {c} {{ {a} }} else {{ {b} }})")),
                inner
                    .clone()
                    .prop_map(|a| format!("days_between(deal.close, add_days(deal.close, round({a})))")),
            ]
        })
    }

    fn bool_expr(num: impl Strategy<Value = String> + Clone + 'static) -> impl Strategy<Value = String> + Clone {
        let cmp = prop_oneof![Just("<"), Just("<="), Just(">"), Just(">="), Just("=="), Just("!=")];
        prop_oneof![
            (num.clone(), cmp, num.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            Just("deal.region in [\"NA\", \"EMEA\"]".to_string()),
            Just("deal.new_logo".to_string()),
            Just("!deal.new_logo".to_string()),
            (num.clone(), num).prop_map(|(a, b)| format!("({a} > 0 && {b} < 1000)")),
            Just("deal.close < \"2026-04-01\"".to_string()),
        ]
        .boxed()
    }

    fn facts() -> impl Strategy<Value = String> {
        (
            number(),
            number(),
            number(),
            number(),
            0u32..5,
            prop_oneof![Just("NA"), Just("EMEA"), Just("APAC")],
            prop::bool::ANY,
            prop_oneof![Just("2026-03-31"), Just("2026-04-01"), Just("2025-12-31")],
        )
            .prop_map(|(a, b, c, text, places, region, new_logo, close)| {
                format!(
                    r#"{{"deal": {{"a": {a}, "b": {b}, "c": {c}, "text": "{text}", "places": {places},
                        "region": "{region}", "new_logo": {new_logo}, "close": "{close}"}}}}"#
                )
            })
    }

    /// A value with its scale: `2864.00` and `2864` are the same number
    /// but not the same money on a statement.
    fn exact(v: &Value) -> String {
        match v {
            Value::Num(d) => d.to_string(),
            other => format!("{other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        #[test]
        fn compiled_and_rhai_agree_on_generated_formulas(src in num_expr(), input in facts()) {
            let engine = ExprEngine::default();
            let fast = engine.compile(&src, &[]).unwrap();
            prop_assert!(fast.is_compiled(), "{} fell back to Rhai", src);
            let slow = engine.compile_rhai_only(&src, &[]).unwrap();
            let facts = Value::from_json_str(&input).unwrap();
            let env = Env::new(facts.as_map().unwrap(), &[]);
            match (fast.eval(&env), slow.eval(&env)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(exact(&a), exact(&b), "{} over {}", src, input),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{} over {}: compiled {:?}, rhai {:?}", src, input, a, b),
            }
        }
    }
}
