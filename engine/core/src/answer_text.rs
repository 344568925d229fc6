//! Dates and times in answers: `YYYY-MM-DD`, and RFC 3339 UTC with
//! milliseconds (as the store writes them); for `serialize_with`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serializer;

pub fn date<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&d.format("%Y-%m-%d"))
}

pub fn time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

pub fn time_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => time(t, s),
        None => s.serialize_none(),
    }
}
