//! Runs one approval decision in a loop, for a profiler:
//! `cargo build --release -p dealrules-core --example profile_approval`.
//! `profile_approval N` decides N times from JSON text; `profile_approval N
//! parsed` from an already parsed value.
use dealrules_core::Snapshot;
use dealrules_model::PackSource;

fn main() {
    let pack = PackSource::from_texts([(
        "a.yaml",
        r#"
apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discount-approvals }
spec:
  levels: [auto, manager, director, vp]
  rules:
    - { id: small, when: "deal.discount_pct <= 10 && deal.amount <= 50000",  level: auto }
    - { id: mid,   when: "deal.discount_pct <= 20 && deal.amount <= 250000", level: manager }
    - { id: large, when: "deal.discount_pct <= 30 || (deal.region == \"APAC\" && deal.discount_pct <= 35)", level: director }
    - { id: rest,  level: vp }
  escalate:
    - { id: long-terms, when: "deal.payment_terms_days > 60", by: 1 }
"#,
    )]);
    let s = Snapshot::load(pack).unwrap();
    let input = r#"{"deal": {"id": "d-1001", "amount": 120000, "discount_pct": 22.5, "region": "APAC", "payment_terms_days": 90, "owner": "r1"}}"#;
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let parsed = (std::env::args().nth(2).as_deref() == Some("parsed"))
        .then(|| dealrules_expr::Value::from_json_str(input).unwrap());
    let mut levels = 0usize;
    for _ in 0..n {
        let d = match &parsed {
            Some(v) => s
                .decide("discount-approvals", std::hint::black_box(v), "2026-11-23T00:00:00Z")
                .unwrap(),
            None => s
                .decide_json(
                    "discount-approvals",
                    std::hint::black_box(input),
                    "2026-11-23T00:00:00Z",
                )
                .unwrap(),
        };
        if let dealrules_core::Decision::Approval(a) = d {
            levels += a.chain.len();
        }
    }
    println!("{levels}");
}
