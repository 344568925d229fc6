//! Runs one decision of a 1,000-row first-hit table (the `table-1000`
//! benchmark's) in a loop, for a profiler:
//! `cargo build --release -p dealrules-core --example profile_table`, then
//! `profile_table N` decides N times from JSON text.
use dealrules_core::Snapshot;
use dealrules_model::PackSource;

fn main() {
    let mut yaml = String::from(
        "apiVersion: dealrules/v1\nkind: DecisionTable\nmetadata: { name: price-book }\nspec:\n  hit: first\n  inputs: { region: deal.region, product: deal.product, amount: deal.amount }\n  outputs: [list_price, max_discount]\n  rules:\n",
    );
    for r in 0..10 {
        for p in 0..10 {
            for band in 0..10 {
                let lo = band * 10_000;
                let hi = lo + 10_000;
                yaml.push_str(&format!(
                    "    - {{ id: r{r}-p{p}-b{band}, when: \"region == \\\"R{r}\\\" && product == \\\"P{p}\\\" && amount >= {lo} && amount < {hi}\", list_price: {}, max_discount: {} }}\n",
                    100 + r * 10 + p,
                    band
                ));
            }
        }
    }
    let s = Snapshot::load(PackSource::from_texts([("tables/price-book.yaml", yaml.as_str())])).unwrap();
    let input = r#"{"deal": {"region": "R9", "product": "P7", "amount": 95000.50}}"#;
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let mut matched = 0usize;
    for _ in 0..n {
        let d = s
            .decide_json("price-book", std::hint::black_box(input), "2026-11-23T00:00:00Z")
            .unwrap();
        if let dealrules_core::Decision::Table(t) = d {
            matched += usize::from(t.matched);
        }
    }
    println!("{matched}");
}
