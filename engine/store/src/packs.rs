//! A pack's files as stored: JSON, text files as text (readable with SQL),
//! anything else (a plugin module) as base64.

use std::collections::BTreeMap;

use base64::Engine as _;
use dealrules_model::PackSource;
use serde_json::{Map, Value, json};

pub fn pack_to_json(source: &PackSource) -> String {
    let mut files = Map::new();
    for (path, bytes) in &source.files {
        let entry = match std::str::from_utf8(bytes) {
            Ok(text) => json!({ "text": text }),
            Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) }),
        };
        files.insert(path.clone(), entry);
    }
    json!({ "files": files }).to_string()
}

pub fn pack_from_json(content: &str) -> Result<PackSource, String> {
    let value: Value = serde_json::from_str(content).map_err(|e| e.to_string())?;
    let files = value
        .get("files")
        .and_then(Value::as_object)
        .ok_or("no `files` object")?;
    let mut out = BTreeMap::new();
    for (path, entry) in files {
        let bytes = if let Some(text) = entry.get("text").and_then(Value::as_str) {
            text.as_bytes().to_vec()
        } else if let Some(b64) = entry.get("base64").and_then(Value::as_str) {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("{path}: {e}"))?
        } else {
            return Err(format!("{path}: neither `text` nor `base64`"));
        };
        out.insert(path.clone(), bytes);
    }
    Ok(PackSource { files: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_files_round_trip() {
        let mut source = PackSource::from_texts([("policies/a.yaml", "kind: X\n")]);
        source
            .files
            .insert("plugins/fx.wasm".into(), vec![0, 97, 115, 109, 255, 254]);
        let back = pack_from_json(&pack_to_json(&source)).unwrap();
        assert_eq!(back, source);
        assert_eq!(back.version(), source.version());
    }
}
