//! One YAML file of a pack, from the fuzzer's bytes, through the loader
//! (YAML, envelopes, every document type, tests), the compiler and, when
//! the pack compiles, each policy's summary and the pack's own tests.
//!
//! The first byte says where the file goes, so that mutations of the real
//! policies reach the document types with their references intact:
//! `mode % 5` = 0 alone (`policy.yaml`), 1 beside `rules/` (`fuzz.yaml`),
//! 2 in place of one of `rules/` files, 3 beside `examples/acme`,
//! 4 in place of one of its files; `mode / 5` picks the file replaced.
#![no_main]

use dealrules_core::Snapshot;
use dealrules_fuzz::{on_server_stack, INCENTIVES, NOW, RULES};
use dealrules_model::PackSource;
use libfuzzer_sys::fuzz_target;

fn pack_with(mode: u8, text: &[u8]) -> PackSource {
    let base = match mode % 5 {
        0 => return PackSource { files: [("policy.yaml".to_string(), text.to_vec())].into() },
        1 | 2 => &*RULES,
        _ => &*INCENTIVES,
    };
    let mut pack = base.clone();
    if mode % 5 == 1 || mode % 5 == 3 {
        pack.files.insert("fuzz.yaml".to_string(), text.to_vec());
    } else {
        let replaced = (mode / 5) as usize % pack.files.len();
        let path = pack.files.keys().nth(replaced).cloned().expect("a seed pack has files");
        pack.files.insert(path, text.to_vec());
    }
    pack
}

fuzz_target!(
    init: {
        let _ = (&*RULES, &*INCENTIVES);
    },
    |data: &[u8]| {
        let Some((&mode, text)) = data.split_first() else { return };
        let source = pack_with(mode, text);
        on_server_stack(move || {
            // Snapshot::load is load_pack (its partial form) and then the
            // compiler, which also checks the documents that parse when
            // others do not; parsing once keeps the target twice as fast.
            let Ok(snapshot) = Snapshot::load(source) else { return };
            for policy in snapshot.policies() {
                let _ = snapshot.summary(policy.kind, &policy.name);
            }
            let report = snapshot.run_tests(NOW);
            let _ = serde_json::to_string(&report);
        });
    }
);
