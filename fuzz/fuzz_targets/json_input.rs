//! A decision's JSON input, from the fuzzer's bytes, through the shape check
//! every body passes first, the exact-decimal reader, and a decision by each
//! policy of the repo's packs (`rules/`, `examples/acme`, the golden
//! incentive pack), compiled once.
#![no_main]

use dealrules_expr::{input_shape, Value};
use dealrules_fuzz::{on_server_stack, NOW, SNAPSHOTS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        let _ = &*SNAPSHOTS;
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let text = text.to_string();
        on_server_stack(move || {
            let _ = input_shape::check(&text);
            if let Ok(value) = Value::from_json_str(&text) {
                let _ = value.to_json();
            }
            for snapshot in SNAPSHOTS.iter() {
                for policy in snapshot.policies() {
                    let name = format!("{}/{}", policy.kind, policy.name);
                    if let Ok(decision) = snapshot.decide_json(&name, &text, NOW) {
                        // What the API writes back and logs.
                        let _ = serde_json::to_string(&decision);
                    }
                }
            }
        });
    }
);
