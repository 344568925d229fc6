//! Spreadsheets in: people and deals from real `.xlsx` workbooks (written
//! here with rust_xlsxwriter), by the real binary into a store and into a
//! running server; a bad workbook is refused whole, each error naming the
//! sheet, the row and the column. A sheet of per-rep targets becomes a
//! Targets policy that gives back every cell; statements come out as
//! workbooks with number cells.

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

/// A rules folder: the default pack plus `extra` files.
fn pack_with(dir: &Path, extra: &[(&str, &str)]) -> std::path::PathBuf {
    let pack = dir.join("pack");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    copy_dir(&rules, &pack);
    for (name, text) in extra {
        std::fs::write(pack.join(name), text).unwrap();
    }
    pack
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_targets_workbook_becomes_a_policy_that_gives_back_every_cell() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("fy2027.xlsx");
    workbook(
        &sheet,
        "Targets",
        &[
            &["rep", "name", "region", "Q1", "Q2", "Q3", "Q4"],
            &["ana", "Ana", "NA", "20000", "25000", "25000", "30000"],
            &["bo", "Bo", "EMEA", "10000", "12500", "12500", "15000"],
            &["cy", "Cy", "EMEA", "10000", "12500", "12500", "15000"],
            &["1001", "王芳", "华东", "13333.34", "16666.67", "16666.67", "20000.00"],
        ],
    );
    let pack = pack_with(dir.path(), &[]);
    let out = pack.join("targets-fy2027.yaml");
    let (ok, _, stderr) = dealrules(&[
        "import",
        "targets",
        &sheet.display().to_string(),
        "--name",
        "fy2027",
        "--year",
        "2027",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("targets `fy2027` for 4 reps, 266666.68 in total"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = dealrules(&["check", &pack.display().to_string()]);
    assert!(ok, "{stdout}{stderr}");

    // The policy decides each rep's year and quarters as the sheet has them.
    let input = r#"{"reps": [{"id": "ana"}, {"id": "bo"}, {"id": "cy"}, {"id": "1001"}]}"#;
    let decided = std::process::Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(["eval", "fy2027", "--rules", &pack.display().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(decided.status.success(), "{}", String::from_utf8_lossy(&decided.stdout));
    let decision = json(&String::from_utf8_lossy(&decided.stdout));
    let amount = |rep: &str, period: &str| -> String {
        decision["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["rep"] == rep && t["period"] == period)
            .map(|t| {
                t["amount"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| t["amount"].to_string())
            })
            .unwrap_or_default()
    };
    assert_eq!(amount("ana", "2027"), "100000.00");
    assert_eq!(amount("ana", "2027-Q4"), "30000.00");
    assert_eq!(amount("bo", "2027-Q2"), "12500.00");
    assert_eq!(amount("1001", "2027"), "66666.68");
    assert_eq!(amount("1001", "2027-Q1"), "13333.34");
    assert_eq!(amount("1001", "2027-Q3"), "16666.67");

    // A rep off the common phasing: named by sheet and row, nothing written.
    let bad = dir.path().join("bad.xlsx");
    workbook(
        &bad,
        "Targets",
        &[
            &["rep", "Q1", "Q2", "Q3", "Q4"],
            &["ana", "20000", "25000", "25000", "30000"],
            &["bo", "40000", "10000", "10000", "40000"],
        ],
    );
    let out = dir.path().join("bad.yaml");
    let (ok, _, stderr) = dealrules(&[
        "import",
        "targets",
        &bad.display().to_string(),
        "--name",
        "fy2027",
        "--year",
        "2027",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "sheet \"Targets\" row 3 column \"Q1\": rep `bo`: `Q1` is 40000 but one phasing for every rep gives"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_statement_comes_out_as_a_workbook_with_number_cells() {
    use calamine::{Data, DataType, Reader};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args = |format: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dealrules"))
            .args(["eval", "ae-2026", "--rules"])
            .arg(root.join("examples/acme"))
            .arg("--input")
            .arg(root.join("examples/acme/data/2026-q1.json"))
            .args(["--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let decision: serde_json::Value = serde_json::from_slice(&args("json")).unwrap();
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(args("xlsx"))).unwrap();
    let range = book.worksheet_range("Statements").unwrap();
    assert_eq!(range.get_value((2, 5)), Some(&Data::String("amount".into())));
    // Each statement's total row holds its total as a number.
    let totals: Vec<(String, f64)> = range
        .rows()
        .filter(|r| r.get(3) == Some(&Data::String("total".into())))
        .map(|r| (r[0].to_string(), r[5].as_f64().unwrap()))
        .collect();
    let expected: Vec<(String, f64)> = decision["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["rep"].as_str().unwrap().to_string(),
                s["total"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| s["total"].to_string())
                    .parse::<f64>()
                    .unwrap(),
            )
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(totals, expected);
}
