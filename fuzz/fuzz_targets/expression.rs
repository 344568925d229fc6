//! An expression's text, from the fuzzer's bytes, through the compiler
//! (lowering to the IR, or Rhai when it cannot) and, when it compiles,
//! evaluated on fixed facts as a value and as a condition, on both paths.
#![no_main]

use std::sync::LazyLock;

use dealrules_expr::{Env, ExprEngine, Interest, Map, Value};
use dealrules_fuzz::on_server_stack;
use libfuzzer_sys::fuzz_target;

static ENGINE: LazyLock<ExprEngine> = LazyLock::new(ExprEngine::default);

/// Facts shaped like a decision's input: numbers, text, lists, maps, null,
/// dates, and the amounts near the decimal type's edges.
static FACTS: LazyLock<Map> = LazyLock::new(|| {
    let facts = Value::from_json_str(
        r#"{
            "deal": {"amount": 120000, "discount_pct": 15.5, "region": "EMEA", "payment_terms_days": 90,
                     "currency": "EUR", "closed_at": "2026-02-10", "tags": ["renewal", "strategic"],
                     "lines": [{"sku": "A-1", "qty": 3, "price": "19.99"}, {"sku": "B-2", "qty": 0, "price": 0}],
                     "customer": {"tier": "A", "revenue": 1000000, "since": "2019-05-01"},
                     "non_standard_contract": false, "notes": null, "huge": 79228162514264337593543950335,
                     "tiny": 0.0000000000000000000000000001, "negative": -79228162514264337593543950335},
            "rep": {"id": "ae-ana", "role": "ae", "manager": "mgr-frank", "quota": 480000},
            "now": "2026-03-31T00:00:00Z",
            "stage": "proposal"
        }"#,
    )
    .expect("the fuzz facts are valid JSON");
    facts.as_map().expect("the fuzz facts are an object").clone()
});

/// A local, as table rows and incentive components declare them.
const LOCALS: [&str; 1] = ["line"];
static LOCAL_VALUES: LazyLock<Vec<Value>> =
    LazyLock::new(|| vec![Value::from_json_str(r#"{"sku": "A-1", "qty": 3, "price": "19.99"}"#).expect("valid JSON")]);

fuzz_target!(
    init: {
        let _ = (&*ENGINE, &*FACTS, &*LOCAL_VALUES);
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let text = text.to_string();
        on_server_stack(move || {
            let env = Env::new(&FACTS, &[]);
            if let Ok(expr) = ENGINE.compile(&text, &[]) {
                let _ = expr.eval(&env);
                let _ = expr.eval_bool(&env);
                let mut interest = Interest::default();
                expr.collect_interest(&mut interest);
                let _ = expr.conjunction_atoms();
            }
            // The same text on Rhai alone, the path lowering falls back to.
            if let Ok(expr) = ENGINE.compile_rhai_only(&text, &[]) {
                let _ = expr.eval_bool(&env);
            }
            let with_local = Env::new(&FACTS, &LOCAL_VALUES);
            if let Ok(expr) = ENGINE.compile(&text, &LOCALS) {
                let _ = expr.eval(&with_local);
            }
        });
    }
);
