//! Load-time checks of the kinds this version validates but does not yet
//! evaluate: IncentivePlan, Targets and Plugin.

use std::collections::HashSet;

use dealrules_model::{
    Component, DealRate, Document, IncentivePlanSpec, Kind, Pack, PluginSpec, Quota, Shares, TargetsSpec, suggest,
};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::context::{BASE_LOCALS, DocCompiler};

/// Names an incentive plan's expressions may read beside the input facts.
pub const PLAN_LOCALS: [&str; 6] = ["vars", "now", "totals", "quota", "period", "history"];

fn check_date(cx: &mut DocCompiler, path: &str, s: &str) {
    if dealrules_expr::funcs::parse_date(s).is_err() || s.len() != 10 {
        cx.error(path, format!("`{s}` is not an ISO-8601 date such as 2026-03-31"));
    }
}

pub fn incentive_plan(_doc: &Document, spec: &IncentivePlanSpec, pack: &Pack, cx: &mut DocCompiler) {
    if let Some(a) = &spec.applies_to {
        cx.expr("spec.applies_to", a, &BASE_LOCALS);
    }
    if let Some(e) = &spec.effective {
        check_date(cx, "spec.effective.from", &e.from);
        check_date(cx, "spec.effective.to", &e.to);
        if e.from > e.to {
            cx.error(
                "spec.effective",
                format!("`from` ({}) is after `to` ({})", e.from, e.to),
            );
        }
    }
    if spec.currency.len() != 3 || !spec.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        cx.error(
            "spec.currency",
            format!("`{}` is not an ISO 4217 currency code such as USD", spec.currency),
        );
    }
    if let Some(r) = &spec.rounding
        && r.places > 10
    {
        cx.error("spec.rounding.places", "at most 10 decimal places");
    }
    cx.expr("spec.credit.when", &spec.credit.when, &PLAN_LOCALS);
    cx.expr("spec.credit.amount", &spec.credit.amount, &PLAN_LOCALS);
    if let Some(s) = &spec.credit.splits {
        cx.expr("spec.credit.splits", s, &PLAN_LOCALS);
    }
    match &spec.quota {
        Some(Quota::From(f)) => {
            let targets: Vec<&str> = pack
                .documents
                .iter()
                .filter(|d| d.kind == Kind::Targets)
                .map(|d| d.metadata.name.as_str())
                .chain(
                    pack.broken
                        .iter()
                        .filter(|(k, _)| *k == Kind::Targets)
                        .map(|(_, n)| n.as_str()),
                )
                .collect();
            if f.from == "targets" && targets.len() > 1 {
                cx.error(
                    "spec.quota.from",
                    format!(
                        "the pack has several Targets documents ({}): name one",
                        targets.join(", ")
                    ),
                );
            }
            let ok = if f.from == "targets" {
                !targets.is_empty()
            } else {
                targets.contains(&f.from.as_str())
            };
            if !ok {
                cx.error(
                    "spec.quota.from",
                    format!(
                        "no Targets document `{}` in the pack{}",
                        f.from,
                        suggest(&f.from, targets.iter().copied())
                    ),
                );
            }
        }
        Some(Quota::Expression(e)) => {
            cx.expr("spec.quota", e, &PLAN_LOCALS);
        }
        Some(Quota::Amount(a)) if *a <= Decimal::ZERO => cx.error("spec.quota", "a quota must be above zero"),
        _ => {}
    }
    let mut ids = HashSet::new();
    for (i, c) in spec.components.iter().enumerate() {
        let path = format!("spec.components[{i}]");
        let id = match c {
            Component::Tiered(t) => &t.id,
            Component::Rate(r) => &r.id,
            Component::Spiff(s) => &s.id,
            Component::Scorecard(s) => &s.id,
            Component::Script(s) => &s.id,
            Component::Plugin(p) => &p.id,
        };
        if !ids.insert(id.clone()) {
            cx.error(&format!("{path}.id"), format!("component id `{id}` is used twice"));
        }
        match c {
            Component::Rate(r) => {
                if let Some(w) = &r.when {
                    cx.expr(&format!("{path}.when"), w, &PLAN_LOCALS);
                }
                match &r.rate {
                    DealRate::Fixed(x) if *x < Decimal::ZERO => {
                        cx.error(&format!("{path}.rate"), "a rate cannot be negative")
                    }
                    DealRate::Fixed(_) => {}
                    DealRate::Expression(e) => {
                        cx.expr(&format!("{path}.rate"), e, &PLAN_LOCALS);
                    }
                    DealRate::Table(t) => rate_table(t, pack, &format!("{path}.rate"), cx),
                }
            }
            Component::Tiered(t) => {
                if let Some(w) = &t.when {
                    cx.expr(&format!("{path}.when"), w, &PLAN_LOCALS);
                }
                if t.tiers.is_empty() {
                    cx.error(&format!("{path}.tiers"), "at least one tier is needed");
                }
                let mut last: Option<Decimal> = None;
                for (j, tier) in t.tiers.iter().enumerate() {
                    let tp = format!("{path}.tiers[{j}]");
                    if tier.rate < Decimal::ZERO {
                        cx.error(&format!("{tp}.rate"), "a rate cannot be negative");
                    }
                    match (tier.upto, j + 1 == t.tiers.len()) {
                        (Some(u), _) => {
                            if last.is_some_and(|l| u <= l) {
                                cx.error(
                                    &format!("{tp}.upto"),
                                    format!("tiers must rise: {u} is not above the tier before it"),
                                );
                            }
                            last = Some(u);
                        }
                        (None, false) => cx.error(&tp, "only the last tier may leave out `upto`"),
                        (None, true) => {}
                    }
                }
            }
            Component::Spiff(s) => {
                cx.expr(&format!("{path}.when"), &s.when, &PLAN_LOCALS);
            }
            Component::Scorecard(s) => {
                if let Some(total) = not_one(s.metrics.iter().map(|m| m.weight)) {
                    cx.error(
                        &format!("{path}.metrics"),
                        format!("metric weights must sum to 1, they sum to {total}"),
                    );
                }
                for (j, m) in s.metrics.iter().enumerate() {
                    cx.expr(&format!("{path}.metrics[{j}].actual"), &m.actual, &PLAN_LOCALS);
                    if let serde_json::Value::String(t) = &m.target {
                        cx.expr(&format!("{path}.metrics[{j}].target"), t, &PLAN_LOCALS);
                    }
                }
            }
            Component::Script(s) => {
                if !pack.scripts.contains_key(&s.script) {
                    cx.error(
                        &format!("{path}.script"),
                        format!(
                            "no script `{}` in the pack{}",
                            s.script,
                            suggest(&s.script, pack.scripts.keys().map(String::as_str))
                        ),
                    );
                }
            }
            Component::Plugin(p) => match pack.find(Kind::Plugin, &p.plugin) {
                None if pack.has(Kind::Plugin, &p.plugin) => {}
                None => cx.error(&format!("{path}.plugin"), format!("no Plugin named `{}`", p.plugin)),
                Some(Document {
                    spec: dealrules_model::Spec::Plugin(ps),
                    ..
                }) if !ps.exports.contains(&p.function) => {
                    cx.error(
                        &format!("{path}.function"),
                        format!(
                            "plugin `{}` does not export `{}` (exports: {})",
                            p.plugin,
                            p.function,
                            ps.exports.join(", ")
                        ),
                    );
                }
                Some(_) => {}
            },
        }
    }
    if let Some(c) = &spec.clawback {
        if let Err(e) = dealrules_model::duration::parse_duration(&c.within.0) {
            cx.error("spec.clawback.within", e);
        }
        if c.share < Decimal::ZERO || c.share > Decimal::ONE {
            cx.error("spec.clawback.share", "share must be between 0 and 1");
        }
    }
}

/// A rate read from a DecisionTable: the table exists, has the output,
/// and answers with one row.
fn rate_table(t: &dealrules_model::RateTable, pack: &Pack, path: &str, cx: &mut DocCompiler) {
    match pack.find(Kind::DecisionTable, &t.table) {
        None if pack.has(Kind::DecisionTable, &t.table) => {}
        None => {
            let tables = pack
                .documents
                .iter()
                .filter(|d| d.kind == Kind::DecisionTable)
                .map(|d| d.metadata.name.as_str());
            cx.error(
                &format!("{path}.table"),
                format!(
                    "no DecisionTable `{}` in the pack{}",
                    t.table,
                    suggest(&t.table, tables)
                ),
            );
        }
        Some(Document {
            spec: dealrules_model::Spec::DecisionTable(ts),
            ..
        }) => {
            if !ts.outputs.contains(&t.output) {
                cx.error(
                    &format!("{path}.output"),
                    format!(
                        "table `{}` has no output `{}` (outputs: {}){}",
                        t.table,
                        t.output,
                        ts.outputs.join(", "),
                        suggest(&t.output, ts.outputs.iter().map(String::as_str))
                    ),
                );
            }
            if ts.hit == dealrules_model::HitPolicy::Collect {
                cx.error(
                    &format!("{path}.table"),
                    format!(
                        "table `{}` collects rows; a rate needs one answer (hit: first, unique or priority)",
                        t.table
                    ),
                );
            }
        }
        Some(_) => {}
    }
}

/// What shares or weights that must sum to 1 sum to instead, if they do
/// not; a sum past the decimal's range is said so rather than panicking.
fn not_one(values: impl IntoIterator<Item = Decimal>) -> Option<String> {
    match crate::money::checked_sum(values) {
        Ok(total) if total == Decimal::ONE => None,
        Ok(total) => Some(total.to_string()),
        Err(_) => Some("more than the largest decimal".into()),
    }
}

pub fn targets(spec: &TargetsSpec, cx: &mut DocCompiler) {
    for (i, level) in spec.split.iter().enumerate() {
        let path = format!("spec.split[{i}].shares");
        match &level.shares {
            Shares::Even(s) if s == "even" => {}
            Shares::Even(s) => cx.error(
                &path,
                format!("shares must be `even` or a mapping of shares, found `{s}`"),
            ),
            Shares::Explicit(m) => {
                if let Some(total) = not_one(m.values().copied()) {
                    cx.error(&path, format!("shares must sum to 1, they sum to {total}"));
                }
            }
        }
    }
    let mut last: Option<chrono::NaiveDate> = None;
    for (i, a) in spec.adjustments.iter().enumerate() {
        let path = format!("spec.adjustments[{i}].effective");
        match chrono::NaiveDate::parse_from_str(&a.effective, "%Y-%m-%d") {
            Err(_) => cx.error(&path, format!("`{}` is not a date such as 2026-07-01", a.effective)),
            Ok(d) if chrono::Datelike::year(&d) != spec.year => cx.error(
                &path,
                format!("{} is not in the targets' year {}", a.effective, spec.year),
            ),
            Ok(d) if last.is_some_and(|l| d <= l) => cx.error(&path, "adjustments must be in date order, one per date"),
            Ok(d) => last = Some(d),
        }
    }
    if !spec.phasing.is_empty() {
        if let Some(total) = not_one(spec.phasing.values().copied()) {
            cx.error("spec.phasing", format!("phasing must sum to 1, it sums to {total}"));
        }
        let quarters = ["Q1", "Q2", "Q3", "Q4"];
        let months: Vec<String> = (1..=12).map(|m| format!("M{m:02}")).collect();
        for k in spec.phasing.keys() {
            if !quarters.contains(&k.as_str()) && !months.contains(k) {
                cx.error(
                    &format!("spec.phasing.{k}"),
                    format!(
                        "unknown period `{k}`: expected Q1..Q4 or M01..M12{}",
                        suggest(k, quarters)
                    ),
                );
            }
        }
    }
}

pub fn plugin(doc: &Document, spec: &PluginSpec, pack: &Pack, cx: &mut DocCompiler) {
    let dir = doc
        .file
        .rsplit_once('/')
        .map(|(d, _)| format!("{d}/"))
        .unwrap_or_default();
    let wasm_path = format!("{dir}{}", spec.wasm);
    if spec.wasm.contains("..") || spec.wasm.starts_with('/') {
        cx.error(
            "spec.wasm",
            "the module path must stay inside the pack (no `..`, no absolute path)",
        );
    } else {
        match pack.source.files.get(&wasm_path) {
            None => cx.error("spec.wasm", format!("no module `{wasm_path}` in the pack")),
            Some(bytes) => {
                let actual = hex::encode(Sha256::digest(bytes));
                if !actual.eq_ignore_ascii_case(&spec.sha256) {
                    cx.error(
                        "spec.sha256",
                        format!(
                            "module `{wasm_path}` has sha256 {actual}, not the pinned {}",
                            spec.sha256
                        ),
                    );
                }
            }
        }
    }
    if spec.exports.is_empty() {
        cx.error("spec.exports", "a plugin must export at least one function");
    }
    if let Some(l) = &spec.limits {
        if let Some(m) = &l.memory
            && let Err(e) = dealrules_model::duration::parse_bytes(m)
        {
            cx.error("spec.limits.memory", e);
        }
        if let Some(t) = &l.timeout
            && let Err(e) = dealrules_model::duration::parse_duration(&t.0)
        {
            cx.error("spec.limits.timeout", e);
        }
        if let Some(o) = &l.output
            && let Err(e) = dealrules_model::duration::parse_bytes(o)
        {
            cx.error("spec.limits.output", e);
        }
    }
    for (i, c) in spec.capabilities.iter().enumerate() {
        const KNOWN: [&str; 3] = ["clock", "random", "log"];
        if !KNOWN.contains(&c.as_str()) {
            cx.error(
                &format!("spec.capabilities[{i}]"),
                format!(
                    "unknown capability `{c}` (known: {}){}",
                    KNOWN.join(", "),
                    suggest(c, KNOWN)
                ),
            );
        }
    }
}

/// A policy's `plugins:` list: each names a Plugin and one of its exports,
/// under a name not used twice.
pub fn plugin_facts(facts: &[dealrules_model::PluginFact], pack: &Pack, cx: &mut DocCompiler) {
    let mut seen = std::collections::HashSet::new();
    for (i, f) in facts.iter().enumerate() {
        if !seen.insert(f.name.as_str()) {
            cx.error(
                &format!("spec.plugins[{i}].as"),
                format!("`plugins.{}` is given twice", f.name),
            );
        }
        match pack.find(dealrules_model::Kind::Plugin, &f.plugin) {
            None if pack.has(dealrules_model::Kind::Plugin, &f.plugin) => {}
            None => {
                let known = pack
                    .documents
                    .iter()
                    .filter(|d| d.kind == dealrules_model::Kind::Plugin)
                    .map(|d| d.metadata.name.as_str());
                cx.error(
                    &format!("spec.plugins[{i}].plugin"),
                    format!("no Plugin named `{}`{}", f.plugin, suggest(&f.plugin, known)),
                );
            }
            Some(doc) => {
                if let dealrules_model::Spec::Plugin(p) = &doc.spec
                    && !p.exports.contains(&f.function)
                {
                    cx.error(
                        &format!("spec.plugins[{i}].function"),
                        format!(
                            "plugin `{}` does not export `{}` (exports: {})",
                            f.plugin,
                            f.function,
                            p.exports.join(", ")
                        ),
                    );
                }
            }
        }
    }
}
