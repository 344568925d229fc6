//! Progress against targets: for one Targets document and one period, the
//! target of each row (the document's decomposition over the roster), the
//! actual (won credit closed in the period), attainment, pace and the
//! alert flag.
//!
//! - The reps are everyone on the roster during the period, each as of
//!   their last version in it (as an incentive run reads them); a row of
//!   `by: region` (team, product, channel) adds up the targets of the reps
//!   of that region.
//! - Credit is keyed by the rep it credits as of the deal's close date: a
//!   rep who moved region mid-quarter counts in the region of each deal's
//!   day. `product` and `channel` read the deal's own field first.
//! - A period that an adjustment of the total cuts in two takes the days
//!   before at the old total and the rest at the new (see
//!   [`Targets::period_scale`]); the answer lists the figures used.
//! - `pace` is attainment over the elapsed share of the row's period at
//!   `today`; a row is an alert when its pace is under `pace_alert.below`.
//!
//! ```
//! use dealrules_core::measure::progress::{ProgressBy, Credited, progress};
//! use dealrules_core::plan_input::{RosterVersion, period_of};
//! use dealrules_core::targets::Targets;
//! let spec: dealrules_model::TargetsSpec = serde_json::from_value(serde_json::json!({
//!     "measure": "bookings", "year": 2026, "total": 400000,
//!     "split": [{"by": "rep", "shares": "even"}], "pace_alert": {"below": 0.8}})).unwrap();
//! let targets = Targets::new("fy2026", &spec);
//! let ana = RosterVersion { id: "ana".into(), from: "1900-01-01".into(), to: None,
//!     rep: serde_json::json!({"id": "ana"}).as_object().unwrap().clone() };
//! let credit = Credited { deal: "d1".into(), rep: "ana".into(), credit: 50000.into(),
//!     closed: "2026-02-10".parse().unwrap(), product: None, channel: None };
//! let period = period_of("2026-Q1").unwrap();
//! let p = progress(&targets, &period, ProgressBy::Rep, &[ana], &[credit], "2026-02-14".parse().unwrap()).unwrap();
//! assert_eq!(p.rows[0].target.to_string(), "100000.00");  // a quarter of the year
//! assert_eq!(p.rows[0].attainment.unwrap().to_string(), "0.5");
//! ```

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::{elapsed_share, money, ratio};
use crate::period::Period;
use crate::plan_input::{PlanInput, RosterVersion};
use crate::targets::{TargetFigure, Targets, months_of};

/// What progress rows are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressBy {
    Rep,
    Region,
    Team,
    Product,
    Channel,
    Month,
}

impl ProgressBy {
    pub const ALL: [&'static str; 6] = ["rep", "region", "team", "product", "channel", "month"];

    pub fn as_str(self) -> &'static str {
        match self {
            ProgressBy::Rep => "rep",
            ProgressBy::Region => "region",
            ProgressBy::Team => "team",
            ProgressBy::Product => "product",
            ProgressBy::Channel => "channel",
            ProgressBy::Month => "month",
        }
    }
}

impl FromStr for ProgressBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "rep" => ProgressBy::Rep,
            "region" => ProgressBy::Region,
            "team" => ProgressBy::Team,
            "product" => ProgressBy::Product,
            "channel" => ProgressBy::Channel,
            "month" => ProgressBy::Month,
            other => {
                return Err(format!("`by` is one of {}, not `{other}`", ProgressBy::ALL.join(", ")));
            }
        })
    }
}

/// One rep's credit from one won deal.
#[derive(Debug, Clone, PartialEq)]
pub struct Credited {
    pub deal: String,
    pub rep: String,
    pub credit: Decimal,
    pub closed: NaiveDate,
    /// The deal's own `product` and `channel`, when it has them.
    pub product: Option<String>,
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Progress {
    pub targets: String,
    pub measure: String,
    pub period: String,
    pub by: ProgressBy,
    /// The day progress is measured on.
    #[serde(serialize_with = "crate::answer_text::date")]
    pub today: NaiveDate,
    /// Share of the period elapsed on `today`, 0 to 1.
    pub elapsed_share: Decimal,
    /// `pace_alert.below`, when the targets set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<Decimal>,
    /// The totals in force during the period: one, or one per part of the
    /// period an adjustment cut.
    pub figures: Vec<TargetFigure>,
    pub rows: Vec<ProgressRow>,
    /// Reps the targets cannot place (no region, a region without a
    /// share), with the reason: their target is left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unplaced: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProgressRow {
    pub key: String,
    pub target: Decimal,
    pub actual: Decimal,
    /// actual / target; none for a target of 0.
    pub attainment: Option<Decimal>,
    /// attainment / elapsed share; none before the period starts.
    pub pace: Option<Decimal>,
    pub alert: bool,
    /// For a rep's row: their manager, whom a pace alert also tells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
}

const NONE_KEY: &str = "(none)";

fn field(rep: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    match rep.get(name)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn rep_key(by: ProgressBy, id: &str, rep: Option<&serde_json::Map<String, serde_json::Value>>) -> String {
    match by {
        ProgressBy::Rep => id.to_string(),
        other => rep
            .and_then(|r| field(r, other.as_str()))
            .unwrap_or_else(|| NONE_KEY.to_string()),
    }
}

#[derive(Default)]
struct Sums {
    target: Decimal,
    actual: Decimal,
    manager: Option<String>,
}

/// Progress of `targets` over `period`, rows keyed by `by`, on `today`.
pub fn progress(
    targets: &Targets,
    period: &Period,
    by: ProgressBy,
    roster: &[RosterVersion],
    credits: &[Credited],
    today: NaiveDate,
) -> Result<Progress, String> {
    let overflow = || {
        format!(
            "targets `{}`: progress for {} is out of range",
            targets.name, period.label
        )
    };
    let input = PlanInput::new(period, roster.to_vec());
    let reps = input.reps_in_period();
    let values: Vec<dealrules_expr::Value> = reps
        .iter()
        .map(|v| dealrules_expr::Value::from_json(&serde_json::Value::Object(v.rep.clone())))
        .collect();
    let annual = targets.annual_all(&values);
    // The rows' periods: the period itself, or its months.
    let parts: Vec<Period> = match by {
        ProgressBy::Month => months_of(period),
        _ => vec![period.clone()],
    };
    let mut rows: BTreeMap<String, Sums> = BTreeMap::new();
    let mut unplaced = Vec::new();
    for part in &parts {
        let scale = targets.period_scale(part)?;
        for v in &reps {
            let amount = match annual.get(&v.id) {
                Some(Ok(a)) => *a,
                Some(Err(why)) => {
                    if part.start == period.start {
                        unplaced.push(why.clone());
                    }
                    continue;
                }
                None => continue,
            };
            let key = match by {
                ProgressBy::Month => part.label.clone(),
                _ => rep_key(by, &v.id, Some(&v.rep)),
            };
            let row = rows.entry(key).or_default();
            row.target = amount
                .checked_mul(scale)
                .and_then(|t| row.target.checked_add(t))
                .ok_or_else(overflow)?;
            if by == ProgressBy::Rep {
                row.manager = field(&v.rep, "manager");
            }
        }
    }
    for c in credits.iter().filter(|c| period.contains(c.closed)) {
        let own = match by {
            ProgressBy::Product => c.product.clone(),
            ProgressBy::Channel => c.channel.clone(),
            _ => None,
        };
        let key = match (by, own) {
            (ProgressBy::Month, _) => c.closed.format("%Y-%m").to_string(),
            (_, Some(k)) => k,
            _ => rep_key(by, &c.rep, input.person_on(&c.rep, c.closed).map(|v| &v.rep)),
        };
        let row = rows.entry(key).or_default();
        row.actual = row.actual.checked_add(c.credit).ok_or_else(overflow)?;
    }
    let below = targets.pace_alert();
    let elapsed_of = |key: &str| match by {
        ProgressBy::Month => parts
            .iter()
            .find(|p| p.label == key)
            .map_or(Decimal::ZERO, |p| elapsed_share(p, today)),
        _ => elapsed_share(period, today),
    };
    let rows = rows
        .into_iter()
        .map(|(key, s)| {
            let attainment = if s.target.is_zero() {
                None
            } else {
                Some(s.actual.checked_div(s.target).ok_or_else(overflow)?)
            };
            let elapsed = elapsed_of(&key);
            let pace = match attainment {
                Some(a) if !elapsed.is_zero() => Some(a.checked_div(elapsed).ok_or_else(overflow)?),
                _ => None,
            };
            Ok(ProgressRow {
                alert: matches!((pace, below), (Some(p), Some(b)) if p < b),
                key,
                target: money(s.target),
                actual: money(s.actual),
                attainment: attainment.map(ratio),
                pace: pace.map(ratio),
                manager: s.manager,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Progress {
        targets: targets.name.to_string(),
        measure: targets.measure().to_string(),
        period: period.label.clone(),
        by,
        today,
        elapsed_share: ratio(elapsed_share(period, today)),
        below,
        figures: targets.figures(period),
        rows,
        unplaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan_input::period_of;
    use serde_json::json;

    fn targets(extra: serde_json::Value) -> Targets {
        let mut spec = json!({
            "measure": "bookings", "year": 2026, "total": 1200000,
            "split": [{"by": "region", "shares": {"NA": 0.5, "EMEA": 0.5}}, {"by": "rep", "shares": "even"}],
            "phasing": {"Q1": 0.2, "Q2": 0.25, "Q3": 0.25, "Q4": 0.3},
            "pace_alert": {"below": 0.8}
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        Targets::new("fy2026", &serde_json::from_value(spec).unwrap())
    }

    fn person(id: &str, from: &str, to: Option<&str>, region: &str) -> RosterVersion {
        RosterVersion {
            id: id.into(),
            from: from.into(),
            to: to.map(str::to_string),
            rep: json!({"id": id, "region": region, "manager": "mia"})
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    fn credit(deal: &str, rep: &str, amount: i64, closed: &str) -> Credited {
        Credited {
            deal: deal.into(),
            rep: rep.into(),
            credit: Decimal::from(amount),
            closed: closed.parse().unwrap(),
            product: None,
            channel: None,
        }
    }

    fn roster() -> Vec<RosterVersion> {
        vec![
            person("ana", "1900-01-01", None, "NA"),
            person("bo", "1900-01-01", None, "NA"),
            person("cy", "1900-01-01", None, "EMEA"),
        ]
    }

    /// Q1 targets: NA 600,000 x 0.2 = 120,000 split between ana and bo
    /// (60,000 each), EMEA 120,000 for cy. On 2026-02-14, 45 of Q1's 90
    /// days are done: elapsed 0.5.
    #[test]
    fn progress_and_pace_at_a_fixed_day() {
        let credits = [
            credit("d1", "ana", 30000, "2026-01-20"),
            credit("d2", "ana", 6000, "2026-02-10"),
            credit("d3", "bo", 15000, "2026-02-01"),
            credit("d4", "cy", 90000, "2026-03-01"),
            credit("d5", "cy", 10000, "2026-04-02"), // Q2: not counted
        ];
        let q1 = period_of("2026-Q1").unwrap();
        let today = "2026-02-14".parse().unwrap();
        let p = progress(&targets(json!({})), &q1, ProgressBy::Rep, &roster(), &credits, today).unwrap();
        assert_eq!(p.elapsed_share.to_string(), "0.5");
        let row = |k: &str| p.rows.iter().find(|r| r.key == k).unwrap().clone();
        // ana: 36,000 / 60,000 = 0.6, pace 1.2.
        assert_eq!(
            (row("ana").target.to_string(), row("ana").actual.to_string()),
            ("60000.00".into(), "36000.00".into())
        );
        assert_eq!(row("ana").attainment, Some(Decimal::new(6, 1)));
        assert_eq!(row("ana").pace, Some(Decimal::new(12, 1)));
        assert!(!row("ana").alert);
        // bo: 15,000 / 60,000 = 0.25, pace 0.5 < 0.8: an alert.
        assert_eq!(row("bo").pace, Some(Decimal::new(5, 1)));
        assert!(row("bo").alert);
        assert_eq!(row("bo").manager.as_deref(), Some("mia"));
        // cy: 90,000 / 120,000 = 0.75, pace 1.5.
        assert_eq!(row("cy").pace, Some(Decimal::new(15, 1)));

        let by_region = progress(&targets(json!({})), &q1, ProgressBy::Region, &roster(), &credits, today).unwrap();
        let na = by_region.rows.iter().find(|r| r.key == "NA").unwrap();
        // NA: 51,000 / 120,000 = 0.425, pace 0.85.
        assert_eq!(
            (na.attainment, na.pace),
            (Some(Decimal::new(425, 3)), Some(Decimal::new(85, 2)))
        );
        assert!(!na.alert);

        let by_month = progress(&targets(json!({})), &q1, ProgressBy::Month, &roster(), &credits, today).unwrap();
        // January: 240,000 / 3 = 80,000 target, 30,000 won, fully elapsed: pace 0.375.
        let jan = &by_month.rows[0];
        assert_eq!(
            (jan.key.as_str(), jan.target.to_string(), jan.pace),
            ("2026-01", "80000.00".to_string(), Some(Decimal::new(375, 3)))
        );
        // February: 21,000 won, 14 of 28 days: 21,000 / 80,000 / 0.5 = 0.525.
        assert_eq!(by_month.rows[1].pace, Some(Decimal::new(525, 3)));
        // March has not started.
        assert_eq!(by_month.rows[2].pace, None);
    }

    /// The total goes from 1,200,000 to 1,500,000 on 2026-08-16. Q2 is
    /// before: the old figure. Q4 is after: the new. Q3 is cut: July at the
    /// old (1,200,000 x 0.25 / 3 = 100,000), August 15 of 31 days at the
    /// old and 16 at the new, September at the new (125,000).
    #[test]
    fn a_mid_year_change_of_the_total() {
        let t = targets(
            json!({"adjustments": [{"effective": "2026-08-16", "total": 1500000, "reason": "new region opened"}]}),
        );
        let today = "2026-12-31".parse().unwrap();
        let company = |label: &str| {
            let p = progress(
                &t,
                &period_of(label).unwrap(),
                ProgressBy::Region,
                &roster(),
                &[],
                today,
            )
            .unwrap();
            let total: Decimal = p.rows.iter().map(|r| r.target).sum();
            (total.to_string(), p.figures)
        };
        let (q2, figures) = company("2026-Q2");
        assert_eq!(q2, "300000.00");
        assert_eq!(figures.len(), 1);
        assert_eq!(figures[0].total, Decimal::from(1200000));
        let (q4, figures) = company("2026-Q4");
        assert_eq!(q4, "450000.00");
        assert_eq!(figures[0].reason.as_deref(), Some("new region opened"));
        // August: 100,000 x 15/31 + 125,000 x 16/31 = 112,903.2258...
        let (q3, figures) = company("2026-Q3");
        assert_eq!(q3, "337903.22");
        assert_eq!(
            figures
                .iter()
                .map(|f| (f.from.to_string(), f.to.to_string(), f.total.to_string()))
                .collect::<Vec<_>>(),
            vec![
                ("2026-07-01".into(), "2026-08-15".into(), "1200000".into()),
                ("2026-08-16".into(), "2026-09-30".into(), "1500000".into())
            ]
        );
    }

    /// The year as one period takes each total for its part of the year:
    /// Q1 240,000 + Q2 300,000 + Q3 337,903.2258 + Q4 450,000 =
    /// 1,327,903.2258, half of it (663,951.6129) for each region.
    #[test]
    fn the_year_takes_a_mid_year_change_of_the_total() {
        let t = targets(json!({"adjustments": [{"effective": "2026-08-16", "total": 1500000}]}));
        let p = progress(
            &t,
            &period_of("2026").unwrap(),
            ProgressBy::Region,
            &roster(),
            &[],
            "2026-12-31".parse().unwrap(),
        )
        .unwrap();
        let targets: Vec<String> = p.rows.iter().map(|r| r.target.to_string()).collect();
        assert_eq!(targets, ["663951.61", "663951.61"]);
        assert_eq!(p.figures.len(), 2);
    }

    #[test]
    fn a_rep_who_moved_region_is_credited_where_each_deal_closed() {
        let roster = vec![
            person("ana", "1900-01-01", Some("2026-02-01"), "NA"),
            person("ana", "2026-02-01", None, "EMEA"),
            person("cy", "1900-01-01", None, "EMEA"),
        ];
        let credits = [
            credit("d1", "ana", 1000, "2026-01-31"),
            credit("d2", "ana", 2000, "2026-02-01"),
        ];
        let p = progress(
            &targets(json!({})),
            &period_of("2026-Q1").unwrap(),
            ProgressBy::Region,
            &roster,
            &credits,
            "2026-03-31".parse().unwrap(),
        )
        .unwrap();
        let actual = |k: &str| p.rows.iter().find(|r| r.key == k).map(|r| r.actual.to_string());
        assert_eq!(actual("NA").as_deref(), Some("1000.00"));
        assert_eq!(actual("EMEA").as_deref(), Some("2000.00"));
        // ana's target counts where she ended the quarter: NA has none left.
        assert_eq!(
            p.rows.iter().find(|r| r.key == "NA").unwrap().target.to_string(),
            "0.00"
        );
    }
}
