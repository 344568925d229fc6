//! Spreadsheets in: people and deals from real `.xlsx` workbooks (written
//! here with rust_xlsxwriter), by the real binary into a store and into a
//! running server; a bad workbook is refused whole, each error naming the
//! sheet, the row and the column.

mod common;

use std::path::Path;

use common::{http, json, start_on};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

/// A one-sheet workbook; cells that parse as numbers are numbers, `date:`
/// cells are dates, the rest text.
fn workbook(path: &Path, sheet_name: &str, rows: &[&[&str]]) {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(sheet_name).unwrap();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            if cell.is_empty() {
                continue;
            } else if let Some(d) = cell.strip_prefix("date:") {
                let d = ExcelDateTime::parse_from_str(d).unwrap();
                sheet.write_datetime_with_format(r, c, &d, &date).unwrap();
            } else if let Ok(n) = cell.parse::<f64>() {
                sheet.write_number(r, c, n).unwrap();
            } else {
                sheet.write_string(r, c, *cell).unwrap();
            }
        }
    }
    book.save(path).unwrap();
}

fn dealrules(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(args)
        .env_remove("DEALRULES_DB")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const HEADER: &[&str] = &["id", "name", "role", "manager", "region", "effective_from", "quota"];

#[test]
fn workbooks_of_people_and_deals_go_in_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("dealrules.db").display());
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");

    // A bad workbook: every bad row on stderr, nothing imported.
    let bad = dir.path().join("people.xlsx");
    workbook(
        &bad,
        "People",
        &[
            HEADER,
            &["u-priya", "Priya Nair", "manager", "", "NA", "", ""],
            &["ana", "Ana Ruiz", "", "u-priya", "NA", "date:2026-01-01", "480000"],
            &["ben", "Ben Carter", "ae", "ben", "NA", "", ""],
        ],
    );
    let (ok, _, err) = dealrules(&["import", "people", bad.to_str().unwrap(), "--db", &db]);
    assert!(!ok);
    let file = bad.display();
    assert!(
        err.contains(&format!(
            "{file}: sheet \"People\" row 3 column \"role\": `role` is missing"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}: sheet \"People\" row 4 column \"manager\": `manager`: ben cannot be their own manager"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");

    // The same workbook put right.
    workbook(
        &bad,
        "People",
        &[
            HEADER,
            &["u-priya", "Priya Nair", "manager", "", "NA", "", ""],
            &["ana", "Ana Ruiz", "ae", "u-priya", "NA", "date:2026-01-01", "480000"],
            &["ben", "Ben Carter", "ae", "u-priya", "NA", "", ""],
        ],
    );
    let (ok, out, err) = dealrules(&["import", "people", bad.to_str().unwrap(), "--db", &db]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["imported"], 3, "only the good file counts: {out}");

    // Deals into a running server: the workbook is sent as XLSX.
    let server = start_on(&rules, &db, tempfile::tempdir().unwrap());
    let (code, body) = http(&server.addr, "GET", "/v1/people?as_of=2026-02-01", "");
    assert_eq!(code, 200, "{body}");
    let people = json(&body);
    let ana = people["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "ana")
        .unwrap_or_else(|| panic!("{people}"));
    assert_eq!(ana["valid_from"], "2026-01-01");
    assert_eq!(ana["attributes"]["quota"], 480000);

    let deals = dir.path().join("deals.xlsx");
    workbook(
        &deals,
        "Deals",
        &[
            &["id", "owner", "stage", "amount", "discount_pct", "closed_at"],
            &["d-1", "ana", "won", "42000.5", "5", "date:2026-02-12"],
            &["d-2", "ben", "qualified", "18000", "", ""],
        ],
    );
    let url = format!("http://{}", server.addr);
    let (ok, out, err) = dealrules(&[
        "import",
        "deals",
        deals.to_str().unwrap(),
        "--server",
        &url,
        "--token",
        common::TOKEN,
    ]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["created"], 2, "{out}");
    let d1 = json(&http(&server.addr, "GET", "/v1/deals/d-1", "").1);
    assert_eq!(d1["fields"]["amount"].to_string(), "42000.5");
    assert_eq!(d1["fields"]["closed_at"], "2026-02-12");
    assert_eq!(d1["funnel"], "b2b");

    // A bad deals workbook through the server: refused whole, placed.
    workbook(
        &deals,
        "Deals",
        &[
            &["id", "owner", "stage", "amount"],
            &["d-3", "ana", "won", "lots"],
            &["d-4", "ana", "won", "10"],
        ],
    );
    let (ok, _, err) = dealrules(&[
        "import",
        "deals",
        deals.to_str().unwrap(),
        "--server",
        &url,
        "--token",
        common::TOKEN,
    ]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{}: sheet \"Deals\" row 2 column \"amount\": `amount` must be a number",
            deals.display()
        )),
        "{err}"
    );
    assert_eq!(
        http(&server.addr, "GET", "/v1/deals/d-4", "").0,
        404,
        "nothing half imported"
    );
}
