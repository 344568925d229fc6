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
    let e = engine
        .compile("if deal.amount > 1000 { \"big\" } else { \"small\" }", &[])
        .unwrap();
    assert!(!e.is_compiled());
    assert_eq!(eval(&e, &facts).unwrap(), Value::str("big"));
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

#[test]
fn syntax_errors_have_positions() {
    let engine = ExprEngine::default();
    let err = engine.compile("deal.amount >= && 3", &[]).unwrap_err();
    assert_eq!((err.line, err.col), (1, 16), "{err:?}");
}
