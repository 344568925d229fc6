//! `dealrules report`, the real binary on a real SQLite store: progress as
//! CSV with figures worked out by hand, the funnel as JSON, and a bad flag.

use std::process::Command;

use dealrules_store::people::BEGINNING;
use dealrules_store::{Deal, Person, Store};
use serde_json::json;

fn dealrules() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dealrules"))
}

const PACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/engine/server/tests/data/measured");

/// ana won 30,000 on Jan 14 and bo 15,000 on Feb 1; Q1's target is 60,000
/// each (NA's half of 240,000), 120,000 for cy. On Feb 14 half the quarter
/// is gone.
#[test]
fn progress_as_csv_and_the_funnel_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("dealrules.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        for (id, region) in [("ana", "NA"), ("bo", "NA"), ("cy", "EMEA")] {
            let person = Person {
                id: id.into(),
                name: id.into(),
                role: "ae".into(),
                manager: Some("mia".into()),
                region: Some(region.into()),
                team: None,
                attributes: Default::default(),
                valid_from: BEGINNING.into(),
                valid_to: None,
            };
            store.people().put_person(&person, "test").await.unwrap();
        }
        let mut tx = store.begin_write().await.unwrap();
        for (id, owner, amount, closed) in [("d1", "ana", 30000, "2026-01-14"), ("d3", "bo", 15000, "2026-02-01")] {
            let at = format!("{closed}T09:00:00.000Z");
            let deal = Deal {
                id: id.into(),
                funnel: "b2b".into(),
                owner: owner.into(),
                stage: "won".into(),
                fields: json!({"amount": amount}),
                context: json!({}),
                stage_entered_at: at.clone(),
                created_at: at.clone(),
                updated_at: at,
                revision: 1,
            };
            assert!(store.deals().insert_deal(&mut tx, &deal).await.unwrap());
        }
        tx.commit().await.unwrap();
        store.close().await;
    });
    let out = dealrules()
        .args([
            "report", "progress", "fy2026", "--period", "2026-Q1", "--rules", PACK, "--db", &db,
        ])
        .args(["--as-of", "2026-02-14", "--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "rep,target,actual,attainment,pace,alert\n\
         ana,60000.00,30000.00,0.5,1,no\n\
         bo,60000.00,15000.00,0.25,0.5,yes\n\
         cy,120000.00,0.00,0,0,yes\n"
    );

    // The same progress as a workbook: money and shares as number cells.
    let out = dealrules()
        .args([
            "report", "progress", "fy2026", "--period", "2026-Q1", "--rules", PACK, "--db", &db,
        ])
        .args(["--as-of", "2026-02-14", "--format", "xlsx"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    {
        use calamine::{Data, Reader};
        let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(out.stdout)).unwrap();
        let range = book.worksheet_range("Report").unwrap();
        let row = |r: u32| -> Vec<Data> {
            (0..6)
                .map(|c| range.get_value((r, c)).cloned().unwrap_or(Data::Empty))
                .collect()
        };
        assert_eq!(
            range.get_value((0, 0)),
            Some(&Data::String(
                "fy2026 2026-Q1 on 2026-02-14: 0.5 of the period elapsed".into()
            ))
        );
        assert_eq!(row(2)[0], Data::String("rep".into()));
        assert_eq!(
            row(4),
            [
                Data::String("bo".into()),
                Data::Float(60000.0),
                Data::Float(15000.0),
                Data::Float(0.25),
                Data::Float(0.5),
                Data::String("yes".into())
            ]
        );
    }

    let out = dealrules()
        .args([
            "report", "funnel", "b2b", "--rules", PACK, "--db", &db, "--format", "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["deals"], 2);

    let out = dealrules()
        .args(["report", "progress", "fy2026", "--period", "2026-Q1", "--by", "planet"])
        .args(["--rules", PACK, "--db", &db])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`by` is one of rep"));
}
