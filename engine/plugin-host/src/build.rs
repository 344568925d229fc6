//! Building plugins from source, as partners (and the tests) do: ABI v1
//! modules from C (Debian's clang and wasi-libc) and Rust (cargo for
//! `wasm32-unknown-unknown`); ABI v2 components from Rust (the same target,
//! then wit-component), JavaScript (componentize-js) and Python
//! (componentize-py).

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

/// The ABI v2 world (`plugins/abi/dealrules.wit`), as the builders give it
/// to the language tools.
pub const WIT: &str = include_str!("../../../plugins/abi/dealrules.wit");

/// The pinned component toolchain (`scripts/component-toolchain`).
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// Which language a plugin's source is in, from what the path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// ABI v1: one `.c` file.
    C,
    /// ABI v1: a crate using `dealrules-plugin-sdk`.
    Rust,
    /// ABI v2: a crate using `wit-bindgen` with `dealrules.wit`.
    RustComponent,
    /// ABI v2: a `.js` (ES module) file, built with componentize-js.
    JavaScript,
    /// ABI v2: a `.py` file, built with componentize-py.
    Python,
}

impl Lang {
    pub fn of(source: &Path) -> Option<Lang> {
        if source.is_dir() {
            let cargo = std::fs::read_to_string(source.join("Cargo.toml")).ok()?;
            return Some(if cargo.contains("wit-bindgen") {
                Lang::RustComponent
            } else {
                Lang::Rust
            });
        }
        match source.extension()?.to_str()? {
            "c" => Some(Lang::C),
            "js" | "mjs" => Some(Lang::JavaScript),
            "py" => Some(Lang::Python),
            _ => None,
        }
    }
}

/// Builds a plugin from its source, whatever the language; the module (v1)
/// or component (v2). `scratch` holds build products (cargo's target
/// folder, the WIT file given to the tools).
pub fn build(source: &Path, scratch: &Path) -> Result<Vec<u8>, String> {
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    let out = scratch.join(format!("{stem}.wasm"));
    match Lang::of(source) {
        Some(Lang::C) => build_c(source, &out),
        Some(Lang::Rust) => build_rust(source, &scratch.join("cargo")),
        Some(Lang::RustComponent) => build_rust_component(source, &scratch.join("cargo")),
        Some(Lang::JavaScript) => build_js(source, scratch, &out),
        Some(Lang::Python) => build_python(source, scratch, &out),
        None => Err(format!(
            "{}: give a .c, .js or .py file, or a folder with a Cargo.toml",
            source.display()
        )),
    }
}

/// Builds a Rust crate that uses `wit-bindgen` with `dealrules.wit` for
/// `wasm32-unknown-unknown` and makes the component from the core module
/// (wit-component, as `wasm-tools component new` does). Not
/// `wasm32-wasip2`: its standard library imports WASI's stdio, environment
/// and exit, which plugins never get.
pub fn build_rust_component(crate_dir: &Path, target_dir: &Path) -> Result<Vec<u8>, String> {
    let core = build_rust(crate_dir, target_dir)?;
    wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| {
            format!(
                "{}: not a component of the dealrules:plugin world (does it call wit_bindgen::generate! with plugins/abi/dealrules.wit?): {e:#}",
                crate_dir.display()
            )
        })
}

/// Where `scripts/component-toolchain` installs componentize-js and
/// componentize-py: `DEALRULES_COMPONENT_TOOLS`, else
/// `$XDG_CACHE_HOME/dealrules/component-tools` or
/// `~/.cache/dealrules/component-tools`.
pub fn component_tools() -> PathBuf {
    if let Some(d) = std::env::var_os("DEALRULES_COMPONENT_TOOLS").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("dealrules/component-tools")
}

/// The componentize-js command: the toolchain folder's, else one on `PATH`.
pub fn componentize_js() -> Option<PathBuf> {
    tool(
        &component_tools().join("js/node_modules/.bin/componentize-js"),
        "componentize-js",
    )
}

/// The componentize-py command: the toolchain folder's, else one on `PATH`.
pub fn componentize_py() -> Option<PathBuf> {
    tool(&component_tools().join("py/bin/componentize-py"), "componentize-py")
}

fn tool(installed: &Path, name: &str) -> Option<PathBuf> {
    if installed.is_file() {
        return Some(installed.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn write_wit(scratch: &Path) -> Result<PathBuf, String> {
    let wit = scratch.join("dealrules.wit");
    std::fs::write(&wit, WIT).map_err(|e| format!("{}: {e}", wit.display()))?;
    Ok(wit)
}

fn run_tool(mut cmd: Command, what: &str, out: &Path) -> Result<Vec<u8>, String> {
    let output = cmd.output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::read(out).map_err(|e| format!("{}: {e}", out.display()))
}

/// Builds a JavaScript plugin (an ES module exporting `functions` and
/// `call`) into a component with componentize-js, with every WASI feature
/// disabled so the component imports nothing but the world's interfaces.
pub fn build_js(source: &Path, scratch: &Path, out: &Path) -> Result<Vec<u8>, String> {
    let tool = componentize_js().ok_or_else(|| {
        format!(
            "componentize-js is not installed: run scripts/component-toolchain (npm install @bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION})"
        )
    })?;
    let wit = write_wit(scratch)?;
    let mut cmd = Command::new(tool);
    cmd.arg(source)
        .arg("--wit")
        .arg(&wit)
        .args([
            "--world-name",
            "plugin",
            "--disable",
            "stdio",
            "random",
            "clocks",
            "http",
            "fetch-event",
            "--out",
        ])
        .arg(out);
    run_tool(cmd, "componentize-js", out)
}

/// Builds a Python plugin (a module defining `class WitWorld` with
/// `functions` and `call`) into a component with componentize-py, WASI
/// stubbed out so the component imports nothing but the world's interfaces.
pub fn build_python(source: &Path, scratch: &Path, out: &Path) -> Result<Vec<u8>, String> {
    let tool = componentize_py().ok_or_else(|| {
        format!(
            "componentize-py is not installed: run scripts/component-toolchain (pip install componentize-py=={COMPONENTIZE_PY_VERSION})"
        )
    })?;
    let wit = write_wit(scratch)?;
    let dir = source
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let module = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .ok_or("no module name")?;
    let mut cmd = Command::new(tool);
    cmd.arg("-d")
        .arg(&wit)
        .args(["-w", "plugin", "componentize", "--stub-wasi", "-p"])
        .arg(dir)
        .arg(&module)
        .arg("-o")
        .arg(out);
    run_tool(cmd, "componentize-py", out)
}

/// Builds `source` unless a build of the same source files (and the same
/// toolchain pins and WIT) is in `cache_dir`; the bytes and whether they
/// came from the cache. The tests and benchmarks use it so a JavaScript or
/// Python component (10-20 s to build) is built once per change.
pub fn build_cached(source: &Path, cache_dir: &Path) -> Result<(Vec<u8>, bool), String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(WIT);
    h.update(COMPONENTIZE_JS_VERSION);
    h.update(COMPONENTIZE_PY_VERSION);
    let mut files = Vec::new();
    collect_sources(source, &mut files);
    files.sort();
    for f in &files {
        h.update(f.to_string_lossy().as_bytes());
        h.update(std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    let key = hex::encode(&h.finalize()[..16]);
    let cached = cache_dir.join(format!("{key}.wasm"));
    if let Ok(bytes) = std::fs::read(&cached) {
        return Ok((bytes, true));
    }
    // One scratch folder for every build, so cargo's compiled dependencies
    // are shared between plugins and kept between changes.
    let bytes = build(source, &cache_dir.join("scratch"))?;
    let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &cached))
        .map_err(|e| format!("{}: {e}", cached.display()))?;
    Ok((bytes, false))
}

fn collect_sources(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        // A one-file plugin: its folder's other sources may be imported.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension()
                    .is_some_and(|x| x == "py" || x == "js" || x == "mjs" || x == "c" || x == "h")
                {
                    out.push(p);
                }
            }
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            collect_sources(&p, out);
        } else {
            out.push(p);
        }
    }
}
