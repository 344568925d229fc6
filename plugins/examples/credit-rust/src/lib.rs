//! credit-check: a customer's credit score (300-850), band and limit.
//!
//! input:  {"customer": {"annual_revenue": "1200000", "late_payments_12m": 1, "open_ar": "20000"}}
//! config: {"limit_share": "0.10"}   (the limit is this share of annual revenue, less open AR)
//! answer: {"score": 702, "band": "B", "credit_limit": 100000.00}   (an exact number)

use dealrules_plugin_sdk::{decimal, decimal_value, json, plugin, Request, Value};

fn score(req: &Request) -> Result<Value, String> {
    let c = &req.input["customer"];
    let revenue = decimal(&c["annual_revenue"], 2).ok_or("customer.annual_revenue must be a decimal")?;
    let late = c["late_payments_12m"].as_u64().unwrap_or(0) as i64;
    let open_ar = decimal(&c["open_ar"], 2).unwrap_or(0);
    let share = decimal(&req.config["limit_share"], 4).ok_or("config.limit_share must be a decimal")?;
    // 750 for a clean year, 60 points per late payment, up to 100 more for size.
    let size_bonus = ((revenue / 100) / 100_000).min(100) as i64;
    let points = (750 - 60 * late + size_bonus).clamp(300, 850);
    let band = match points {
        750.. => "A",
        650..=749 => "B",
        550..=649 => "C",
        _ => "D",
    };
    // revenue (cents) x share (1/10,000), rounded half away from zero, less open AR.
    let limit = ((revenue * share + 5_000) / 10_000 - open_ar).max(0);
    Ok(json!({ "score": points, "band": band, "credit_limit": decimal_value(limit, 2) }))
}

plugin! { score => score }
