//! The JSON Schema files in `schema/` are generated from the model types,
//! stay in step with them, and accept every document the project ships.

use std::path::{Path, PathBuf};

use dealrules_model::{pack_schema, tests_schema, yaml::parse_documents};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_schema(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("schema").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn committed_schemas_match_the_model() {
    assert_eq!(
        read_schema("dealrules-pack.schema.json"),
        pack_schema(),
        "run `cargo run -- schema > schema/dealrules-pack.schema.json`"
    );
    assert_eq!(
        read_schema("dealrules-tests.schema.json"),
        tests_schema(),
        "run `cargo run -- schema --tests > schema/dealrules-tests.schema.json`"
    );
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn every_shipped_document_validates() {
    let pack = jsonschema::validator_for(&pack_schema()).unwrap();
    let tests = jsonschema::validator_for(&tests_schema()).unwrap();
    let mut files = Vec::new();
    for dir in ["rules", "examples", "tests/golden"] {
        yaml_files(&repo().join(dir), &mut files);
    }
    assert!(files.len() >= 8, "found only {files:?}");
    let mut checked = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let is_test = f.components().any(|c| c.as_os_str() == "tests") && !f.to_string_lossy().contains("/golden/");
        for doc in parse_documents(&f.to_string_lossy(), &text).unwrap() {
            let v = if is_test { &tests } else { &pack };
            let errors: Vec<String> = v
                .iter_errors(&doc.value)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {}", f.display(), errors.join("; "));
            checked += 1;
        }
    }
    assert!(checked >= 8);
}

#[test]
fn the_schema_refuses_unknown_keys_and_values() {
    let pack = jsonschema::validator_for(&pack_schema()).unwrap();
    let doc = |spec: &str| {
        let text = format!("apiVersion: dealrules/v1\nkind: ApprovalPolicy\nmetadata: {{ name: x }}\nspec: {spec}\n");
        parse_documents("x.yaml", &text).unwrap().remove(0).value
    };
    assert!(pack.is_valid(&doc("{ levels: [auto], rules: [ { id: a, level: auto } ] }")));
    assert!(!pack.is_valid(&doc("{ lvels: [auto], rules: [ { id: a, level: auto } ] }")));
    assert!(!pack.is_valid(&doc(
        "{ levels: [auto], hit: frist, rules: [ { id: a, level: auto } ] }"
    )));
}
