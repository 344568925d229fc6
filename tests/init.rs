//! `dealrules init`: every template makes a pack that the real binary
//! checks and tests clean, with the schema line for editors, a README and
//! a .gitignore; a folder with anything in it is never written over.

use std::path::Path;
use std::process::{Command, Output};

fn dealrules(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(args)
        .arg(dir)
        .env_remove("DEALRULES_RULES")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn yaml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn every_template_makes_a_pack_that_checks_and_tests_clean() {
    for template in ["b2b", "distributor", "saas"] {
        let tmp = tempfile::tempdir().unwrap();
        let pack = tmp.path().join("pack");
        let out = dealrules(&["init", "--template", template], &pack);
        assert_eq!(out.status.code(), Some(0), "{template}: {}", text(&out.stderr));

        let out = dealrules(&["check"], &pack);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{template}: {stdout}");
        // One policy of each kind but Plugin (`dealrules plugin new` makes those).
        assert!(stdout.contains("ok, 5 policies"), "{template}: {stdout}");

        let out = dealrules(&["test"], &pack);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{template}: {stdout}");
        assert!(stdout.contains(" passed, 0 failed"), "{template}: {stdout}");
        for kind in ["ApprovalPolicy/", "Funnel/", "DecisionTable/"] {
            assert!(stdout.contains(kind), "{template}: no {kind} coverage in {stdout}");
        }
        assert!(!stdout.contains("never matched"), "{template}: {stdout}");

        let json = dealrules(&["test", "--json"], &pack);
        let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let policies: std::collections::BTreeSet<&str> = report["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["policy"].as_str().unwrap())
            .collect();
        assert_eq!(policies.len(), 5, "{template}: every policy has a test: {policies:?}");

        assert!(pack.join("README.md").is_file(), "{template}");
        let ignore = std::fs::read_to_string(pack.join(".gitignore")).unwrap();
        assert!(ignore.contains("dealrules.db"), "{template}: {ignore}");

        let mut files = Vec::new();
        yaml_files(&pack, &mut files);
        assert!(files.len() >= 9, "{template}: {files:?}");
        for f in files {
            let first = std::fs::read_to_string(&f).unwrap().lines().next().unwrap().to_string();
            let schema = first
                .strip_prefix("# yaml-language-server: $schema=")
                .unwrap_or_else(|| panic!("{}: first line is {first:?}", f.display()));
            let target = f.parent().unwrap().join(schema);
            let parsed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
            let is_test = f.parent().unwrap().ends_with("tests");
            assert_eq!(
                schema.ends_with("dealrules-tests.schema.json"),
                is_test,
                "{}: {schema}",
                f.display()
            );
            assert!(parsed.get("$schema").is_some(), "{}", target.display());
        }
    }
}

#[test]
fn init_never_writes_into_a_folder_with_files() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let out = dealrules(&["init"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not empty"), "{}", text(&out.stderr));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(), "mine");
}

#[test]
fn init_writes_into_an_empty_folder_and_defaults_to_b2b() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dealrules(&["init"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(tmp.path().join("tables/customer-tier.yaml").is_file());
}
