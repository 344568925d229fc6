//! A period read in parts pays exactly what one input of the whole period
//! pays: `examples/acme`'s `ae-2026` (quota from targets split among all
//! reps, marginal tiers with a cap, split deals paid as one, a SPIFF, a
//! draw) decided part by part from a real SQLite store, with parts far
//! smaller than the period so split deals tie reps across parts, deals of
//! an owner off the roster credit reps on it, reps own no deal, and deals
//! cancelled in the period are read by every part.

use std::collections::BTreeMap;
use std::path::Path;

use dealrules_core::plan_input::{PlanInput, RosterVersion, StoredDeal, period_of};
use dealrules_core::{Decision, Snapshot};
use dealrules_store::Store;
use dealrules_store::people::BEGINNING;
use dealrules_workflow::period_parts::PeriodParts;
use serde_json::{Value, json};

const NOW: &str = "2026-04-02T00:00:00.000Z";

fn acme() -> Snapshot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme");
    Snapshot::load(dealrules_model::PackSource::from_dir(&dir).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

/// 30 AEs over three regions (`r00` .. `r29`; `r29` owns nothing) and 400
/// deals: every seventh split half and half between its owner and the
/// owner's pair (r00 and r01, r02 and r03, ...), a few owned by `ghost`
/// (off the roster) and split within a pair, a few closed in 2025 and
/// cancelled in Q1.
async fn history(store: &Store) {
    let regions = ["NA", "EMEA", "APAC"];
    let mut people = String::from("id,name,role,manager,region,team\n");
    for r in 0..30 {
        people.push_str(&format!("r{r:02},Rep {r},ae,,{},t{}\n", regions[r % 3], r % 4));
    }
    let roster =
        dealrules_workflow::imports::people(people.as_bytes(), dealrules_workflow::imports::ImportFormat::Csv).unwrap();
    store.people().import_people(&roster, "test").await.unwrap();
    let at = "2026-04-01T10:00:00.000Z";
    let mut deals = Vec::new();
    for i in 0..400u32 {
        let owner = if i % 50 == 3 {
            "ghost".to_string()
        } else {
            format!("r{:02}", (i * 7) % 29)
        };
        let mut d = json!({
            "id": format!("d{i:04}"), "owner": owner, "stage": if i % 10 < 8 { "won" } else { "lost" },
            "amount": 500 + (i * 37) % 4500, "discount_pct": i % 20, "new_logo": i % 9 == 0,
            "closed_at": format!("2026-0{}-{:02}", 1 + i % 3, 1 + i % 28),
        });
        if i % 7 == 0 || owner == "ghost" {
            // Pairs (r00 and r01, r02 and r03, ...) share deals.
            let first = if owner == "ghost" { i % 28 } else { (i * 7) % 29 };
            let partner = if first == 28 { 27 } else { first ^ 1 };
            d["ae_splits"] = json!([
                { "rep": format!("r{first:02}"), "share": 0.5 },
                { "rep": format!("r{partner:02}"), "share": 0.5 },
            ]);
        }
        if i % 61 == 5 {
            d["closed_at"] = json!("2025-12-20");
            d["cancelled_at"] = json!("2026-02-10");
        }
        let Value::Object(m) = d else { unreachable!() };
        deals.push(dealrules_workflow::imports::deal(m, "sales", at).unwrap());
    }
    store
        .deals()
        .import_deals(&deals, "sha256:test", "test", at, &|_: &dealrules_store::Deal| {
            Vec::new()
        })
        .await
        .unwrap();
}

/// Each rep's statement (as JSON) from one decision.
fn statements(snapshot: &Snapshot, input: &Value) -> BTreeMap<String, Value> {
    let value = dealrules_expr::Value::from_json(input);
    let Decision::Plan(plan) = snapshot.decide("ae-2026", &value, NOW).unwrap() else {
        panic!("not a plan")
    };
    plan.statements
        .iter()
        .map(|s| (s.rep.clone(), serde_json::to_value(s).unwrap()))
        .collect()
}

/// The whole period in one input, as runs read it before parts.
async fn whole(store: &Store) -> Value {
    let period = period_of("2026-Q1").unwrap();
    let roster = store
        .people()
        .people_between(BEGINNING, "2026-03-31")
        .await
        .unwrap()
        .into_iter()
        .map(|p| RosterVersion {
            rep: p.as_rep(),
            id: p.id,
            from: p.valid_from,
            to: p.valid_to,
        })
        .collect();
    let mut input = PlanInput::new(&period, roster);
    let deals = store.deals().scan_deals(1000, Some).await.unwrap();
    for d in &deals {
        input.add_deal(&StoredDeal {
            id: &d.id,
            owner: &d.owner,
            stage: &d.stage,
            fields: &d.fields,
            stage_entered_at: &d.stage_entered_at,
        });
    }
    input.finish(vec![])
}

#[tokio::test]
async fn a_period_read_in_parts_pays_what_the_whole_period_pays() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("parts.db").display()))
        .await
        .unwrap();
    history(&store).await;
    let snapshot = acme();
    let expected = statements(&snapshot, &whole(&store).await);
    assert_eq!(expected.len(), 30);
    assert!(
        expected.values().any(|s| s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["explain"].as_str().unwrap_or("").contains("paid as one"))),
        "some split deal is paid as one: {expected:#?}"
    );

    let plans = vec!["ae-2026".to_string()];
    let mut parts = PeriodParts::open(&store, &[&snapshot], &plans, "2026-Q1", None)
        .await
        .unwrap()
        .sized(40, 3);
    let mut got: BTreeMap<String, Value> = BTreeMap::new();
    let mut decided: BTreeMap<String, usize> = BTreeMap::new();
    let mut n = 0;
    while let Some(part) = parts.next(&[&snapshot], &plans, NOW).await.unwrap() {
        n += 1;
        assert!(part.deals.len() <= 100, "a part stays small: {}", part.deals.len());
        let input = parts.input(&part, vec![]);
        let mine = statements(&snapshot, &input);
        for r in &part.reps {
            *decided.entry(r.clone()).or_default() += 1;
            got.remove(r);
        }
        for (rep, s) in mine {
            assert!(part.reps.contains(&rep), "{rep} is not the part's");
            got.insert(rep, s);
        }
    }
    assert!(n > 5, "{n} parts");
    assert!(
        decided.values().any(|&k| k > 1),
        "split deals across parts: their reps are decided again"
    );
    assert_eq!(got.len(), expected.len());
    for (rep, s) in &expected {
        assert_eq!(got.get(rep), Some(s), "{rep}");
    }
}

/// Split deals are found from what their splits name, without crediting
/// them: a won deal split between reps decided in different parts is paid
/// once to each rep, at their share, from one input that holds it whole;
/// a lost deal whose splits name a rep of another part, and a deal split
/// only to its owner, change nothing.
#[tokio::test]
async fn a_split_deal_across_parts_pays_each_rep_their_share_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("split.db").display()))
        .await
        .unwrap();
    let people =
        "id,name,role,manager,region,team\nra,A,ae,,NA,t1\nrb,B,ae,,NA,t1\nrc,C,ae,,EMEA,t2\nrd,D,ae,,APAC,t3\n";
    let roster =
        dealrules_workflow::imports::people(people.as_bytes(), dealrules_workflow::imports::ImportFormat::Csv).unwrap();
    store.people().import_people(&roster, "test").await.unwrap();
    let at = "2026-04-01T10:00:00.000Z";
    let raw = [
        json!({"id": "d1", "owner": "ra", "stage": "won", "amount": 10000, "discount_pct": 0, "new_logo": false,
               "closed_at": "2026-02-10",
               "ae_splits": [{"rep": "ra", "share": 0.6}, {"rep": "rc", "share": 0.4}]}),
        json!({"id": "d2", "owner": "rb", "stage": "lost", "amount": 7000, "discount_pct": 0, "new_logo": false,
               "closed_at": "2026-02-11",
               "ae_splits": [{"rep": "rb", "share": 0.5}, {"rep": "rd", "share": 0.5}]}),
        json!({"id": "d3", "owner": "rc", "stage": "won", "amount": 3000, "discount_pct": 0, "new_logo": false,
               "closed_at": "2026-03-01", "ae_splits": [{"rep": "rc", "share": 1}]}),
        json!({"id": "d4", "owner": "rb", "stage": "won", "amount": 2000, "discount_pct": 0, "new_logo": false,
               "closed_at": "2026-01-05"}),
        json!({"id": "d5", "owner": "rd", "stage": "won", "amount": 1000, "discount_pct": 0, "new_logo": false,
               "closed_at": "2026-03-20"}),
    ];
    let deals: Vec<_> = raw
        .into_iter()
        .map(|d| {
            let Value::Object(m) = d else { unreachable!() };
            dealrules_workflow::imports::deal(m, "sales", at).unwrap()
        })
        .collect();
    store
        .deals()
        .import_deals(&deals, "sha256:test", "test", at, &|_: &dealrules_store::Deal| {
            Vec::new()
        })
        .await
        .unwrap();
    let snapshot = acme();
    let expected = statements(&snapshot, &whole(&store).await);

    let plans = vec!["ae-2026".to_string()];
    // One rep a part: ra and rc (d1), rb and rd (d2) fall apart.
    let mut parts = PeriodParts::open(&store, &[&snapshot], &plans, "2026-Q1", None)
        .await
        .unwrap()
        .sized(1, 1);
    let mut got: BTreeMap<String, Value> = BTreeMap::new();
    let mut holding_d1: Vec<Vec<String>> = Vec::new();
    while let Some(part) = parts.next(&[&snapshot], &plans, NOW).await.unwrap() {
        if part.deals.iter().any(|d| d["id"] == "d1") {
            holding_d1.push(part.reps.clone());
        }
        for (rep, s) in statements(&snapshot, &parts.input(&part, vec![])) {
            got.insert(rep, s);
        }
    }
    // The last part holding d1 decides both its reps together.
    let last = holding_d1.last().unwrap();
    assert!(
        last.contains(&"ra".to_string()) && last.contains(&"rc".to_string()),
        "{holding_d1:?}"
    );
    assert_eq!(got, expected);
    let credit = |rep: &str| -> String {
        let c = &got[rep]["credit"];
        c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string())
    };
    let d1_lines = |rep: &str| {
        got[rep]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["deals"].as_array().is_some_and(|ds| ds.iter().any(|d| d == "d1")))
            .count()
    };
    // ra: 60% of d1; rc: 40% of d1 and all of d3; rb: d4 only (d2 lost); rd: d5.
    assert_eq!(credit("ra").parse::<f64>().unwrap(), 6000.0);
    assert_eq!(credit("rc").parse::<f64>().unwrap(), 7000.0);
    assert_eq!(credit("rb").parse::<f64>().unwrap(), 2000.0);
    assert_eq!(credit("rd").parse::<f64>().unwrap(), 1000.0);
    assert_eq!(d1_lines("ra"), 1, "{:#}", got["ra"]);
    assert_eq!(d1_lines("rc"), 1, "{:#}", got["rc"]);
}
