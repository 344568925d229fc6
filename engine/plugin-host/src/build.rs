//! Building plugins from source, as partners (and the tests) do: C with
//! Debian's clang and wasi-libc, Rust with cargo for `wasm32-unknown-unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The C compiler: `DEALRULES_WASM_CC`, else the first of `clang-19`,
/// `clang` that exists.
pub fn c_compiler() -> String {
    if let Ok(cc) = std::env::var("DEALRULES_WASM_CC") {
        return cc;
    }
    for cc in ["clang-19", "clang"] {
        if Command::new(cc)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return cc.to_string();
        }
    }
    "clang-19".into()
}

/// Compiles one C file (with `plugins/abi/dealrules_plugin.h` reachable
/// from it) to a plugin module.
pub fn build_c(source: &Path, out: &Path) -> Result<Vec<u8>, String> {
    let cc = c_compiler();
    let output = Command::new(&cc)
        .args([
            "--target=wasm32-wasi",
            "--sysroot=/usr",
            "-O2",
            "-mexec-model=reactor",
            "-Wl,--stack-first",
            "-Wl,-z,stack-size=65536",
            "-Wl,--strip-all",
            "-o",
        ])
        .arg(out)
        .arg(source)
        .output()
        .map_err(|e| format!("cannot run {cc} (install clang-19, lld-19 and wasi-libc): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{cc} failed on {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::read(out).map_err(|e| format!("{}: {e}", out.display()))
}

/// Builds a Rust plugin crate for `wasm32-unknown-unknown` with its own
/// target folder (so it never waits on an outer cargo's lock); the module.
pub fn build_rust(crate_dir: &Path, target_dir: &Path) -> Result<Vec<u8>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown", "--quiet"])
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {} failed (is the target installed? `rustup target add wasm32-unknown-unknown`):\n{}",
            crate_dir.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).map_err(|e| e.to_string())?;
    let name = manifest
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("name = ")
                .map(|n| n.trim_matches('"').replace('-', "_"))
        })
        .ok_or("no package name in Cargo.toml")?;
    let wasm: PathBuf = target_dir
        .join("wasm32-unknown-unknown/release")
        .join(format!("{name}.wasm"));
    std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))
}
