//! territory: the sales territory and owning team of an account's address,
//! as a WebAssembly component (ABI v2, `plugins/abi/dealrules.wit`).
//!
//! input:  {"account": {"country": "DE", "postal_code": "80331"}}
//! config: {"territories": [{"name": "DACH South", "team": "munich", "country": "DE", "postal_prefixes": ["8", "9"]}, ...]}
//! answer: {"territory": "DACH South", "team": "munich", "matched": "DE 8"}
//!
//! The longest matching postal prefix in the account's country wins; a
//! territory without prefixes covers the rest of its country.

wit_bindgen::generate!({ path: "../../abi/dealrules.wit", world: "plugin" });

use serde_json::{Value, json};

struct Territory;

fn lookup(input: &Value, config: &Value) -> Result<Value, String> {
    let account = &input["account"];
    let country = account["country"]
        .as_str()
        .ok_or("account.country must be a country code such as \"DE\"")?
        .to_ascii_uppercase();
    let postal = account["postal_code"].as_str().unwrap_or("").replace(' ', "");
    let territories = config["territories"]
        .as_array()
        .ok_or("config.territories must be a list of territories")?;
    let mut best: Option<(usize, &Value, String)> = None;
    for t in territories {
        if t["country"].as_str().map(str::to_ascii_uppercase) != Some(country.clone()) {
            continue;
        }
        let prefixes: Vec<&str> = t["postal_prefixes"]
            .as_array()
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let matched = if prefixes.is_empty() {
            Some((0, country.clone()))
        } else {
            prefixes
                .iter()
                .filter(|p| postal.starts_with(**p))
                .map(|p| (p.len(), format!("{country} {p}")))
                .max_by_key(|(len, _)| *len)
        };
        if let Some((len, how)) = matched
            && best.as_ref().is_none_or(|(l, _, _)| len > *l)
        {
            best = Some((len, t, how));
        }
    }
    match best {
        Some((_, t, how)) => Ok(json!({ "territory": t["name"], "team": t["team"], "matched": how })),
        None => Err(format!("no territory covers {country} {postal}")),
    }
}

impl Guest for Territory {
    fn functions() -> Vec<String> {
        vec!["lookup".into()]
    }

    fn call(function: String, input: String, config: String) -> Result<String, String> {
        let input: Value = serde_json::from_str(&input).map_err(|e| format!("input is not JSON: {e}"))?;
        let config: Value = serde_json::from_str(&config).map_err(|e| format!("config is not JSON: {e}"))?;
        match function.as_str() {
            "lookup" => lookup(&input, &config).map(|v| v.to_string()),
            other => Err(format!("no function `{other}` (functions: lookup)")),
        }
    }
}

export!(Territory);
