//! The generated deals and the decision written by hand in Rust (the
//! baseline every engine is compared with).

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

pub const LEVELS: [&str; 4] = ["auto", "manager", "director", "vp"];
const REGIONS: [&str; 4] = ["NA", "EMEA", "APAC", "LATAM"];
const PRODUCTS: [&str; 4] = ["core", "addon", "services", "support"];
const TERMS: [u32; 4] = [30, 45, 60, 90];

/// One deal, as the input of every engine.
#[derive(Debug, Clone, Deserialize)]
pub struct Deal {
    pub id: String,
    pub amount: Decimal,
    pub discount_pct: Decimal,
    pub region: String,
    pub product: String,
    pub payment_terms_days: u32,
}

#[derive(Deserialize)]
pub struct Input {
    pub deal: Deal,
}

impl Deal {
    /// The input as JSON text, amounts with their cents written out.
    pub fn json(&self) -> String {
        format!(
            r#"{{"deal": {{"id": "{}", "amount": {}, "discount_pct": {}, "region": "{}", "product": "{}", "payment_terms_days": {}}}}}"#,
            self.id, self.amount, self.discount_pct, self.region, self.product, self.payment_terms_days
        )
    }
}

/// What every engine answers for a deal: the approval level (index into
/// [`LEVELS`]) and the commission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub level: u8,
    pub commission: Decimal,
}

/// splitmix64: small, fast and the same sequence everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// `n` deals from `seed`. Amounts have cents (most under 50,000, some up
/// to 600,000), discounts one decimal (0.0 to 40.0), four regions, four
/// products, terms 30/45/60/90. One deal in ten is built to land on half
/// a cent before rounding (no discount, an amount whose commission ends
/// in 5 tenths of a cent), so the rounding rule decides the money.
pub fn generate(n: usize, seed: u64) -> Vec<Deal> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let region = rng.pick(&REGIONS);
            let product = rng.pick(&PRODUCTS);
            let payment_terms_days = rng.pick(&TERMS);
            let (cents, tenths) = if rng.next().is_multiple_of(10) {
                half_cent_case(&mut rng, product)
            } else {
                let cents = match rng.next() % 10 {
                    0..=4 => rng.range(50_000, 5_000_000),
                    5..=7 => rng.range(5_000_000, 25_000_000),
                    _ => rng.range(25_000_000, 60_000_000),
                };
                (cents, rng.range(0, 400))
            };
            Deal {
                id: format!("d-{i:06}"),
                amount: Decimal::new(cents as i64, 2),
                discount_pct: Decimal::new(tenths as i64, 1),
                region: region.to_string(),
                product: product.to_string(),
                payment_terms_days,
            }
        })
        .collect()
}

/// An amount in cents and a discount in tenths of a percent whose
/// commission before rounding ends in exactly half a cent, in the lowest
/// accelerator band (net under 100,000).
fn half_cent_case(rng: &mut Rng, product: &str) -> (u64, u64) {
    let cents = match product {
        // 0.08 x c cents is never half a cent; with 12.5% off, net is
        // 7c/8 and the commission 7c/100 cents: x.5 when c = 100k + 50.
        "core" => 100 * rng.range(500, 90_000) + 50,
        // 0.05 x c cents = c/20: x.5 when c = 20k + 10.
        "addon" => 20 * rng.range(2_500, 490_000) + 10,
        // 0.03 x c cents = 3c/100: x.5 when c = 100k + 50.
        "services" => 100 * rng.range(500, 99_000) + 50,
        // 0.025 x c cents = c/40: x.5 when c = 40k + 20.
        _ => 40 * rng.range(1_250, 240_000) + 20,
    };
    let tenths = if product == "core" { 125 } else { 0 };
    (cents, tenths)
}

/// The decision written by hand: the spec's discount-approvals with the
/// payment-terms escalation, and the commission.
pub fn decide(d: &Deal) -> Answer {
    let pct = d.discount_pct;
    let amount = d.amount;
    let mut level: u8 = if pct <= Decimal::from(10) && amount <= Decimal::from(50_000) {
        0
    } else if pct <= Decimal::from(20) && amount <= Decimal::from(250_000) {
        1
    } else if pct <= Decimal::from(30) || (d.region == "APAC" && pct <= Decimal::from(35)) {
        2
    } else {
        3
    };
    if d.payment_terms_days > 60 {
        level = (level + 1).min(3);
    }
    Answer {
        level,
        commission: unrounded_commission(d)
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
            .min(Decimal::from(20_000)),
    }
}

/// The commission before rounding and the cap.
pub fn unrounded_commission(d: &Deal) -> Decimal {
    let net = d.amount * (Decimal::ONE - d.discount_pct / Decimal::ONE_HUNDRED);
    let rate = match d.product.as_str() {
        "core" => Decimal::new(8, 2),
        "addon" => Decimal::new(5, 2),
        "services" => Decimal::new(3, 2),
        _ => Decimal::new(25, 3),
    };
    let accelerator = if net >= Decimal::from(250_000) {
        Decimal::new(15, 1)
    } else if net >= Decimal::from(100_000) {
        Decimal::new(125, 2)
    } else {
        Decimal::ONE
    };
    net * rate * accelerator
}

/// The same decision from the JSON text: serde into typed structs first.
pub fn decide_json(text: &str) -> Answer {
    let input: Input = serde_json::from_str(text).expect("generated input is valid");
    decide(&input.deal)
}

/// The commission computed in binary floating point, rounded half up the
/// way a float user would; for the count of deals floats get wrong.
pub fn float_commission(d: &Deal) -> Decimal {
    let f = |x: Decimal| -> f64 { x.to_string().parse().expect("decimal text is a float") };
    let net = f(d.amount) * (1.0 - f(d.discount_pct) / 100.0);
    let rate = match d.product.as_str() {
        "core" => 0.08,
        "addon" => 0.05,
        "services" => 0.03,
        _ => 0.025,
    };
    let accelerator = if net >= 250_000.0 {
        1.5
    } else if net >= 100_000.0 {
        1.25
    } else {
        1.0
    };
    let c = ((net * rate * accelerator * 100.0).round() / 100.0).min(20_000.0);
    format!("{c:.2}").parse().expect("formatted float is a decimal")
}
