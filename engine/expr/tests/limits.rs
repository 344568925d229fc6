//! Runaway scripts and expressions end with an error, quickly.

use std::time::{Duration, Instant};

use dealrules_expr::{EvalError, ExprEngine, Value};

fn input() -> Value {
    Value::from_json_str(r#"{"deal": {"amount": 100}}"#).unwrap()
}

fn assert_limited(src: &str) -> EvalError {
    let engine = ExprEngine::default();
    let script = engine.compile_script(src).unwrap();
    let started = Instant::now();
    let err = script.run(&input()).unwrap_err();
    // Generous bound: the point is that it ends, not how fast this machine is.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{src} took {:?}",
        started.elapsed()
    );
    err
}

#[test]
fn an_endless_loop_is_stopped_by_the_operation_limit() {
    let err = assert_limited("fn evaluate(input) { loop {} }");
    assert!(matches!(err, EvalError::Limit(_)), "{err}");
    assert!(err.to_string().contains("too many operations"), "{err}");
}

#[test]
fn runaway_recursion_is_stopped() {
    let err = assert_limited("fn down(n) { down(n + 1) } fn evaluate(input) { down(0) }");
    assert!(matches!(err, EvalError::Limit(_)), "{err}");
}

#[test]
fn a_growing_string_is_stopped_at_the_size_limit() {
    let err = assert_limited("fn evaluate(input) { let s = \"x\"; loop { s += s; } }");
    assert!(matches!(err, EvalError::Limit(_)), "{err}");
}

#[test]
fn a_growing_list_is_stopped_at_the_size_limit() {
    let err = assert_limited("fn evaluate(input) { let a = []; loop { a.push(1); } }");
    assert!(matches!(err, EvalError::Limit(_)), "{err}");
}

#[test]
fn a_thrown_error_is_the_scripts_own() {
    let engine = ExprEngine::default();
    let script = engine
        .compile_script("fn evaluate(input) { throw \"no quota for \" + input.deal.amount; }")
        .unwrap();
    let err = script.run(&input()).unwrap_err();
    assert!(matches!(err, EvalError::Thrown(_)), "{err:?}");
    assert_eq!(err.to_string(), "script error: no quota for 100");
}

#[test]
fn scripts_have_no_eval_and_no_modules() {
    let engine = ExprEngine::default();
    assert!(engine.compile_script("fn evaluate(input) { eval(\"1\") }").is_err());
    assert!(
        engine
            .compile_script("import \"os\" as os; fn evaluate(input) { 1 }")
            .is_err()
    );
}

#[test]
fn a_script_must_define_evaluate() {
    let engine = ExprEngine::default();
    let err = engine.compile_script("fn other(x) { x }").unwrap_err();
    assert!(err.message.contains("evaluate"), "{err:?}");
}

#[test]
fn scripts_compute_in_exact_decimals() {
    let engine = ExprEngine::default();
    let script = engine.compile_script("fn evaluate(input) { let t = 0; for i in 0..10 { t += 0.1; } #{ total: t, exact: t == 1.0, half: 1 / 2 } }").unwrap();
    let out = script.run(&input()).unwrap();
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        r#"{"exact":true,"half":0.5,"total":1}"#
    );
}

#[test]
fn a_deeply_nested_expression_is_refused_at_compile_time() {
    let engine = ExprEngine::default();
    let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    assert!(engine.compile(&deep, &[]).is_err());
}

#[test]
fn expressions_cannot_loop() {
    let engine = ExprEngine::default();
    for src in ["loop { }", "while true { }", "{ let x = 1; x }"] {
        assert!(engine.compile(src, &[]).is_err(), "{src} compiled");
    }
}

#[test]
fn a_runaway_expression_is_stopped() {
    // No loop statement, but a closure over a huge range: the operation
    // limit still ends it.
    let engine = ExprEngine::default();
    let facts = input();
    for src in [
        "range(0, 1000000000).reduce(|sum, x| sum + x, 0)",
        "range(0, 1000000000).map(|x| x * 2).len()",
        "\"x\".pad(100000000, \"y\")",
    ] {
        let e = match engine.compile(src, &[]) {
            Ok(e) => e,
            Err(_) => continue, // refused outright is fine too
        };
        let started = Instant::now();
        let out = e.eval(&dealrules_expr::Env::new(facts.as_map().unwrap(), &[]));
        assert!(out.is_err(), "{src} gave {out:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{src} took {:?}",
            started.elapsed()
        );
    }
}
