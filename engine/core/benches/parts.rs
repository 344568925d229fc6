use std::hint::black_box;
use criterion::{criterion_group, criterion_main, Criterion};
use rust_decimal::Decimal;
use std::str::FromStr;
const INPUT: &str = r#"{"deal": {"id": "d-1001", "amount": 120000, "discount_pct": 22.5, "region": "APAC", "payment_terms_days": 90, "owner": "r1"}}"#;
fn bench(c: &mut Criterion) {
    c.bench_function("decimal-from-str", |b| b.iter(|| Decimal::from_str(black_box("22.5")).unwrap()));
    c.bench_function("jiter-skip", |b| b.iter(|| { let mut j = jiter::Jiter::new(black_box(INPUT).as_bytes()); j.next_skip().unwrap(); }));
    c.bench_function("jiter-value", |b| b.iter(|| { let mut j = jiter::Jiter::new(black_box(INPUT).as_bytes()); j.next_value().unwrap() }));
    c.bench_function("smolstr", |b| b.iter(|| smol_str::SmolStr::new(black_box("payment_terms_days"))));
    c.bench_function("vec-alloc", |b| b.iter(|| Vec::<(smol_str::SmolStr, u64)>::with_capacity(black_box(8))));
}
criterion_group!(benches, bench);
criterion_main!(benches);
