//! The input of an IncentivePlan built from what a server holds: stored
//! deals and the effective-dated roster, for one period.
//!
//! Pure: the caller reads the rows; this decides which deals a period
//! reads, when a deal closed, and who each rep was on each date.
//!
//! - A deal's close date is its `closed_at` field, else its `booked_on`
//!   (set by the funnel on entering `won`), else, for a deal in a `won`
//!   stage, the day it entered that stage. Its cancellation date is its
//!   `cancelled_at` field.
//! - A period reads the deals that closed in it, and those cancelled in
//!   it (for clawbacks of deals paid earlier).
//! - Each deal carries its owner as of its close date as `deal.rep` (unless
//!   the deal names its own `rep`): a rep who moved region mid-quarter is
//!   credited by the region of the day each deal closed.
//! - The reps are everyone on the roster during the period, each as of the
//!   last version in force in it, with attributes beside the fields
//!   (`rep.quota`, `rep.csat`).
//!
//! ```
//! use dealrules_core::plan_input::{PlanInput, RosterVersion, StoredDeal, period_of};
//! let period = period_of("2026-Q1").unwrap();
//! let rep = RosterVersion { id: "ana".into(), from: "1900-01-01".into(), to: None,
//!     rep: serde_json::json!({"id": "ana", "role": "ae"}).as_object().unwrap().clone() };
//! let fields = serde_json::json!({"amount": 1000, "closed_at": "2026-02-01"});
//! let deal = StoredDeal { id: "d1", owner: "ana", stage: "won", fields: &fields, stage_entered_at: "2026-02-01T10:00:00.000Z" };
//! let mut input = PlanInput::new(&period, vec![rep]);
//! assert!(input.add_deal(&deal));
//! let json = input.finish(vec![]);
//! assert_eq!(json["deals"][0]["rep"]["role"], "ae");
//! assert_eq!(json["reps"][0]["id"], "ana");
//! ```

use std::collections::BTreeMap;

use chrono::NaiveDate;
use dealrules_expr::funcs::{day_text, parse_date};
use dealrules_expr::{Map as FactMap, Value as Facts};
use dealrules_model::PeriodKind;
use serde_json::{Map, Value};

use crate::period::Period;

/// A stored deal, as a run reads it.
#[derive(Debug, Clone, Copy)]
pub struct StoredDeal<'a> {
    pub id: &'a str,
    pub owner: &'a str,
    pub stage: &'a str,
    /// The deal's fields (a JSON object).
    pub fields: &'a Value,
    /// RFC 3339.
    pub stage_entered_at: &'a str,
}

/// One version of a person: in force from `from` (inclusive) to `to`
/// (exclusive), both `YYYY-MM-DD`; `rep` is what a plan reads as `rep`.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterVersion {
    pub id: String,
    pub from: String,
    pub to: Option<String>,
    pub rep: Map<String, Value>,
}

/// The kind of period a label names: `2026` a year, `2026-Q1` a quarter,
/// `2026-03` a month.
pub fn period_of(label: &str) -> Result<Period, String> {
    let kind = if label.contains("-Q") {
        PeriodKind::Quarter
    } else if label.contains('-') {
        PeriodKind::Month
    } else {
        PeriodKind::Year
    };
    Period::parse(label, kind)
}

/// The day a text starts with: its first ten characters as `YYYY-MM-DD`.
fn day_of(s: &str) -> Option<NaiveDate> {
    parse_date(s.get(..10)?).ok()
}

fn date_of(v: Option<&Value>) -> Option<NaiveDate> {
    day_of(v?.as_str()?)
}

/// When a deal closed, if it did (see the module's rules).
pub fn close_date(deal: &StoredDeal<'_>) -> Option<NaiveDate> {
    date_of(deal.fields.get("closed_at"))
        .or_else(|| date_of(deal.fields.get("booked_on")))
        .or_else(|| (deal.stage == "won").then(|| day_of(deal.stage_entered_at)).flatten())
}

/// When a deal was cancelled, if it was.
pub fn cancel_date(deal: &StoredDeal<'_>) -> Option<NaiveDate> {
    date_of(deal.fields.get("cancelled_at"))
}

/// A plan input being built for one period.
pub struct PlanInput {
    period: Period,
    /// Every version of each person, by id, oldest first.
    roster: BTreeMap<String, Vec<RosterVersion>>,
    /// Each version's `rep` as facts, in the order of `roster`'s versions
    /// (made once, shared by every deal of the person:
    /// [`PlanInput::deal_facts`]).
    rep_facts: BTreeMap<String, Vec<Facts>>,
    deals: Vec<Value>,
}

impl PlanInput {
    pub fn new(period: &Period, versions: Vec<RosterVersion>) -> PlanInput {
        let mut roster: BTreeMap<String, Vec<RosterVersion>> = BTreeMap::new();
        for v in versions {
            roster.entry(v.id.clone()).or_default().push(v);
        }
        for versions in roster.values_mut() {
            versions.sort_by(|a, b| a.from.cmp(&b.from));
        }
        let rep_facts = roster
            .iter()
            .map(|(id, versions)| {
                let facts = versions
                    .iter()
                    .map(|v| Facts::from_json(&Value::Object(v.rep.clone())))
                    .collect();
                (id.clone(), facts)
            })
            .collect();
        PlanInput {
            period: period.clone(),
            roster,
            rep_facts,
            deals: Vec::new(),
        }
    }

    /// Whether the period reads this deal (closed or cancelled in it).
    pub fn reads(period: &Period, deal: &StoredDeal<'_>) -> bool {
        Self::read_close(period, deal).is_some()
    }

    /// When the deal closed, if the period reads it (`Some(None)`: read
    /// for its cancel day alone).
    pub fn read_close(period: &Period, deal: &StoredDeal<'_>) -> Option<Option<NaiveDate>> {
        let closed = close_date(deal);
        let reads = closed.is_some_and(|d| period.contains(d)) || cancel_date(deal).is_some_and(|d| period.contains(d));
        reads.then_some(closed)
    }

    /// The person `id` as of `date`.
    pub fn person_on(&self, id: &str, date: NaiveDate) -> Option<&RosterVersion> {
        let versions = self.roster.get(id)?;
        versions.get(Self::version_on(versions, date)?)
    }

    /// Which of a person's `versions` is in force on `date`.
    fn version_on(versions: &[RosterVersion], date: NaiveDate) -> Option<usize> {
        let day = day_text(date);
        versions
            .iter()
            .position(|v| v.from <= day && v.to.as_deref().is_none_or(|to| day.as_str() < to))
    }

    /// Everyone on the roster during the period, each as of their last
    /// version in force in it, by id.
    pub fn reps_in_period(&self) -> Vec<&RosterVersion> {
        let (start, end) = (day_text(self.period.start), day_text(self.period.end));
        self.roster
            .values()
            .filter_map(|versions| {
                versions
                    .iter()
                    .rev()
                    .find(|v| v.from <= end && v.to.as_deref().is_none_or(|to| start.as_str() < to))
            })
            .collect()
    }

    /// The period the input is for.
    pub fn period(&self) -> &Period {
        &self.period
    }

    /// Adds a deal if the period reads it; whether it did.
    pub fn add_deal(&mut self, deal: &StoredDeal<'_>) -> bool {
        match self.deal(deal) {
            Some(d) => {
                self.deals.push(d);
                true
            }
            None => false,
        }
    }

    /// The deals added so far, taken out (the roster stays): a period read
    /// in batches builds each batch's deals with one `PlanInput`.
    pub fn take_deals(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.deals)
    }

    /// A deal as the input holds it, if the period reads it.
    pub fn deal(&self, deal: &StoredDeal<'_>) -> Option<Value> {
        let closed = Self::read_close(&self.period, deal)?;
        let mut d = match deal.fields {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        d.insert("id".into(), Value::String(deal.id.to_string()));
        d.insert("owner".into(), Value::String(deal.owner.to_string()));
        d.insert("stage".into(), Value::String(deal.stage.to_string()));
        if let Some(c) = closed {
            d.insert("closed_at".into(), Value::String(day_text(c)));
            if !d.contains_key("rep")
                && let Some(v) = self.person_on(deal.owner, c)
            {
                d.insert("rep".into(), Value::Object(v.rep.clone()));
            }
        }
        Some(Value::Object(d))
    }

    /// A deal as facts, as [`PlanInput::deal`] makes it (the same keys and
    /// values), if the period reads it: built as facts directly, with the
    /// owner's `rep` shared rather than copied, for a period's deals
    /// credited by the thousand.
    pub fn deal_facts(&self, deal: &StoredDeal<'_>) -> Option<Facts> {
        let closed = Self::read_close(&self.period, deal)?;
        let mut facts = match deal.fields {
            Value::Object(_) => Facts::from_json(deal.fields),
            _ => Facts::map(FactMap::new()),
        };
        let Facts::Map(shared) = &mut facts else {
            return None;
        };
        let map = std::sync::Arc::make_mut(shared);
        map.insert("id", Facts::str(deal.id));
        map.insert("owner", Facts::str(deal.owner));
        map.insert("stage", Facts::str(deal.stage));
        if let Some(c) = closed {
            map.insert("closed_at", Facts::str(&day_text(c)));
            if !map.contains_key("rep")
                && let Some(versions) = self.roster.get(deal.owner)
                && let Some(i) = Self::version_on(versions, c)
                && let Some(rep) = self.rep_facts.get(deal.owner).and_then(|f| f.get(i))
            {
                map.insert("rep", rep.clone());
            }
        }
        Some(facts)
    }

    /// The input: `period`, `reps` (everyone on the roster during the
    /// period, as of their last version in it), `deals` and `history` (the
    /// statements of earlier periods, oldest first).
    pub fn finish(self, history: Vec<Value>) -> Value {
        let reps: Vec<Value> = self
            .reps_in_period()
            .into_iter()
            .map(|v| Value::Object(v.rep.clone()))
            .collect();
        let mut input = Map::new();
        input.insert("period".into(), Value::String(self.period.label.clone()));
        input.insert("reps".into(), Value::Array(reps));
        input.insert("deals".into(), Value::Array(self.deals));
        input.insert("history".into(), Value::Array(history));
        Value::Object(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn version(id: &str, from: &str, to: Option<&str>, region: &str) -> RosterVersion {
        RosterVersion {
            id: id.into(),
            from: from.into(),
            to: to.map(str::to_string),
            rep: json!({"id": id, "role": "ae", "region": region})
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    #[test]
    fn a_rep_who_moved_region_is_read_as_of_each_close_date() {
        let period = period_of("2026-Q1").unwrap();
        let mut input = PlanInput::new(
            &period,
            vec![
                version("ana", "1900-01-01", Some("2026-02-15"), "NA"),
                version("ana", "2026-02-15", None, "EMEA"),
            ],
        );
        for (id, closed) in [("d1", "2026-02-14"), ("d2", "2026-02-15"), ("d3", "2026-04-01")] {
            let fields = json!({"amount": 10, "closed_at": closed});
            input.add_deal(&StoredDeal {
                id,
                owner: "ana",
                stage: "won",
                fields: &fields,
                stage_entered_at: "2026-01-01T00:00:00.000Z",
            });
        }
        let v = input.finish(vec![]);
        assert_eq!(v["deals"].as_array().unwrap().len(), 2, "d3 closed in Q2");
        assert_eq!(v["deals"][0]["rep"]["region"], "NA");
        assert_eq!(v["deals"][1]["rep"]["region"], "EMEA");
        assert_eq!(v["reps"], json!([{"id": "ana", "role": "ae", "region": "EMEA"}]));
    }

    /// A deal as facts is the deal as JSON made facts: the same keys in the
    /// same order, the rep as of the close day, fields that name `id`,
    /// `stage` or `rep` overridden or kept as the JSON does.
    #[test]
    fn a_deals_facts_are_its_json_as_facts() {
        let period = period_of("2026-Q1").unwrap();
        let input = PlanInput::new(
            &period,
            vec![
                version("ana", "1900-01-01", Some("2026-02-15"), "NA"),
                version("ana", "2026-02-15", None, "EMEA"),
            ],
        );
        for (owner, stage, fields) in [
            (
                "ana",
                "won",
                json!({"amount": 10.50, "closed_at": "2026-02-14T09:00:00Z", "product": "云"}),
            ),
            (
                "ana",
                "won",
                json!({"amount": "1e3", "closed_at": "2026-02-15", "id": "other", "stage": "x"}),
            ),
            (
                "ana",
                "won",
                json!({"amount": 1, "closed_at": "2026-03-01", "rep": {"region": "APAC"}}),
            ),
            (
                "bo",
                "won",
                json!({"amount": 1, "closed_at": "2026-03-01", "lines": [1, {"a": null}]}),
            ),
            (
                "ana",
                "won",
                json!({"amount": 1, "closed_at": "2025-12-01", "cancelled_at": "2026-01-05"}),
            ),
            ("ana", "proposal", json!({"amount": 1})),
            ("ana", "won", json!({"amount": 1, "closed_at": "2026-04-01"})),
        ] {
            let deal = StoredDeal {
                id: "d1",
                owner,
                stage,
                fields: &fields,
                stage_entered_at: "2026-01-01T00:00:00.000Z",
            };
            let as_json = input.deal(&deal).map(|d| Facts::from_json(&d));
            assert!(as_json == input.deal_facts(&deal), "{fields}");
        }
    }

    #[test]
    fn close_dates_come_from_the_fields_or_the_won_stage() {
        let f = json!({"booked_on": "2026-03-02"});
        let d = StoredDeal {
            id: "d",
            owner: "o",
            stage: "won",
            fields: &f,
            stage_entered_at: "2026-03-03T09:00:00.000Z",
        };
        assert_eq!(close_date(&d), NaiveDate::from_ymd_opt(2026, 3, 2));
        let none = json!({});
        let won = StoredDeal { fields: &none, ..d };
        assert_eq!(close_date(&won), NaiveDate::from_ymd_opt(2026, 3, 3));
        let open = StoredDeal {
            stage: "proposal",
            fields: &none,
            ..d
        };
        assert_eq!(close_date(&open), None);
    }

    #[test]
    fn periods_are_read_from_their_labels() {
        assert_eq!(
            period_of("2026-Q2").unwrap().start,
            NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()
        );
        assert_eq!(
            period_of("2026-03").unwrap().end,
            NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()
        );
        assert_eq!(
            period_of("2026").unwrap().end,
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
        assert!(period_of("Q1").is_err());
    }
}
