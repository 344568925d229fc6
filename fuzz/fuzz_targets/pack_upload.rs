//! An upload body, from the fuzzer's bytes, through the reader the server's
//! `PUT /v1/packs/active` uses (tar.gz, or a JSON map of path -> text) and,
//! when it reads, the pack loader.
#![no_main]

use dealrules_fuzz::on_server_stack;
use dealrules_model::{archive, load_pack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = data.to_vec();
    on_server_stack(move || {
        if let Ok(source) = archive::read_pack(&body) {
            let _ = source.version();
            let _ = load_pack(source);
        }
    });
});
