//! The rounding vocabulary, case by case from `data/rounding.txt`: every
//! function, places 0 to 4, halves and negatives, written every way an
//! expression can write it (a literal, a field, numeric text, a method
//! call), on the compiled path and on Rhai. Both must give the table's
//! value exactly, with the places asked for.

use dealrules_expr::{Env, ExprEngine, Value};

const FUNCTIONS: [&str; 4] = ["round", "round_even", "floor", "ceil"];

fn rows() -> Vec<(String, String, [String; 4])> {
    include_str!("data/rounding.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 6, "{l}");
            (
                f[0].to_string(),
                f[1].to_string(),
                [f[2], f[3], f[4], f[5]].map(str::to_string),
            )
        })
        .collect()
}

fn show(v: &Value) -> String {
    match v {
        Value::Num(d) => d.to_string(),
        other => format!("not a number: {other:?}"),
    }
}

#[test]
fn rounding_table_holds_on_both_paths_every_way_it_is_written() {
    let engine = ExprEngine::default();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (x, places, want) in rows() {
        let facts = Value::from_json_str(&format!(
            r#"{{"deal": {{"x": {x}, "x_text": "{x}", "places": {places}}}}}"#
        ))
        .unwrap();
        let env = Env::new(facts.as_map().unwrap(), &[]);
        for (f, want) in FUNCTIONS.iter().zip(&want) {
            let mut forms = vec![
                format!("{f}({x}, {places})"),
                format!("{f}(deal.x, {places})"),
                format!("{f}(deal.x_text, {places})"),
                format!("{f}(deal.x, deal.places)"),
            ];
            if places == "0" {
                forms.push(format!("{f}(deal.x)"));
            }
            for src in forms {
                let fast = engine.compile(&src, &[]).unwrap();
                assert!(fast.is_compiled(), "{src} fell back to Rhai");
                let slow = engine.compile_rhai_only(&src, &[]).unwrap();
                for (which, e) in [("compiled", &fast), ("rhai", &slow)] {
                    checked += 1;
                    match e.eval(&env) {
                        Ok(v) if show(&v) == *want => {}
                        got => failures.push(format!("{src} [{which}]: got {got:?}, want {want}")),
                    }
                }
            }
            // Method-call syntax runs on Rhai, with the same functions.
            let src = format!("deal.x.{f}({places})");
            let method = engine.compile(&src, &[]).unwrap();
            checked += 1;
            match method.eval(&env) {
                Ok(v) if show(&v) == *want => {}
                got => failures.push(format!("{src}: got {got:?}, want {want}")),
            }
        }
    }
    assert!(checked > 800, "only {checked} checks");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn places_must_be_a_whole_number_from_0_to_28() {
    let engine = ExprEngine::default();
    let facts = Value::from_json_str(r#"{"deal": {"x": 1.5}}"#).unwrap();
    let env = Env::new(facts.as_map().unwrap(), &[]);
    for (src, fragment) in [
        (
            "round(deal.x, -1)",
            "round() needs places as a whole number from 0 to 28, got -1",
        ),
        (
            "floor(deal.x, 2.5)",
            "floor() needs places as a whole number from 0 to 28, got 2.5",
        ),
        (
            "ceil(deal.x, 29)",
            "ceil() needs places as a whole number from 0 to 28, got 29",
        ),
        ("round_even(\"abc\", 2)", "round_even() needs a number, got text `abc`"),
        ("round(deal.x, \"two\")", "round() needs a number, got text `two`"),
        ("round(deal.missing, 2)", "deal.missing is missing"),
    ] {
        for e in [
            engine.compile(src, &[]).unwrap(),
            engine.compile_rhai_only(src, &[]).unwrap(),
        ] {
            let err = e.eval(&env).unwrap_err().to_string();
            assert!(err.contains(fragment), "{src} [{e:?}]: {err}");
        }
    }
}

#[test]
fn rounding_a_value_with_more_places_than_asked_keeps_it_exact() {
    // 28 places is the most an exact decimal holds; rounding to it changes nothing.
    let engine = ExprEngine::default();
    let facts = Value::from_json_str(r#"{"deal": {"x": 0.1234567890123456789012345678}}"#).unwrap();
    let env = Env::new(facts.as_map().unwrap(), &[]);
    for e in [
        engine.compile("round(deal.x, 28)", &[]).unwrap(),
        engine.compile_rhai_only("round(deal.x, 28)", &[]).unwrap(),
    ] {
        assert_eq!(show(&e.eval(&env).unwrap()), "0.1234567890123456789012345678");
    }
}
