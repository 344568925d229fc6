//! The weighted pipeline of open deals.

use dealrules_core::Snapshot;
use dealrules_store::Deals;
use serde::Serialize;
use serde_json::Value as Json;

use crate::error::WorkflowError;

#[derive(Debug, Serialize)]
pub struct Pipeline {
    pub total: String,
    pub weighted: String,
    pub groups: Vec<PipelineGroup>,
}

#[derive(Debug, Serialize)]
pub struct PipelineGroup {
    pub key: String,
    pub count: usize,
    pub amount: String,
    pub weighted: String,
}

/// The weighted pipeline of open deals (not in a terminal stage): amount x
/// the stage's probability, by stage, owner or period (the quarter of
/// `close_date`).
pub async fn pipeline(deals: &Deals, snapshot: &Snapshot, by: &str) -> Result<Pipeline, WorkflowError> {
    use rust_decimal::Decimal;
    if !["stage", "owner", "period"].contains(&by) {
        return Err(WorkflowError::Invalid(format!(
            "`by` is stage, owner or period, not `{by}`"
        )));
    }
    let mut groups: Vec<(String, usize, Decimal, Decimal)> = Vec::new();
    let (mut total, mut weighted) = (Decimal::ZERO, Decimal::ZERO);
    for deal in deals.deals().await? {
        let Some(f) = snapshot.funnel(&deal.funnel) else {
            continue;
        };
        let Some(stage) = f.stage(&deal.stage).map(|i| &f.stages[i]) else {
            continue;
        };
        if stage.terminal {
            continue;
        }
        let amount = match &deal.fields["amount"] {
            Json::Number(n) => n.to_string().parse::<Decimal>().unwrap_or_default(),
            Json::String(s) => s.parse::<Decimal>().unwrap_or_default(),
            _ => Decimal::ZERO,
        };
        let w = amount * stage.probability;
        let key = match by {
            "stage" => deal.stage.clone(),
            "owner" => deal.owner.clone(),
            _ => deal.fields["close_date"]
                .as_str()
                .and_then(quarter_of)
                .unwrap_or_else(|| "(no close date)".into()),
        };
        total += amount;
        weighted += w;
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => {
                g.1 += 1;
                g.2 += amount;
                g.3 += w;
            }
            None => groups.push((key, 1, amount, w)),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let money = |d: Decimal| {
        format!(
            "{:.2}",
            d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        )
    };
    Ok(Pipeline {
        total: money(total),
        weighted: money(weighted),
        groups: groups
            .into_iter()
            .map(|(key, count, amount, w)| PipelineGroup {
                key,
                count,
                amount: money(amount),
                weighted: money(w),
            })
            .collect(),
    })
}

fn quarter_of(date: &str) -> Option<String> {
    let d = chrono::NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    Some(format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1))
}
