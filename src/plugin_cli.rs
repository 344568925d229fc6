//! `dealrules plugin new|build|test|inspect`: what a partner needs to make,
//! check and ship a plugin without a server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use dealrules_model::{Kind, PackSource, Spec};
use dealrules_plugin_host::Plugin;
use sha2::Digest;

use crate::error::{CliError, Result};
use crate::out::outln;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Start a plugin: a C file or a Rust crate with one export.
    #[command(
        after_help = "Examples:\n  dealrules plugin new fx-convert            # C, in ./fx-convert\n  dealrules plugin new fx-convert --lang rust --dir plugins-src/fx"
    )]
    New {
        name: String,
        #[arg(long, value_parser = ["c", "rust"], default_value = "c")]
        lang: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a plugin's source (a `.c` file, or a folder with a Cargo.toml)
    /// into OUT.wasm; with --manifest, write the module's sha256 into it.
    #[command(
        after_help = "Examples:\n  dealrules plugin build fx/fx.c --out rules/plugins/fx.wasm --manifest rules/plugins/fx.yaml\n  dealrules plugin build fx --out fx/fx.wasm       # a Rust crate"
    )]
    Build {
        source: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// Run a plugin on a folder of cases (`*.json`: {"function", "input",
    /// "expect"} or {"function", "input", "expect_error"}), without a server.
    #[command(after_help = "Example:\n  dealrules plugin test rules/plugins/fx.yaml --cases fx/cases")]
    Test {
        /// The plugin's manifest (the module next to it, as in a pack).
        manifest: PathBuf,
        #[arg(long)]
        cases: PathBuf,
    },
    /// Print a module's hash, exports and imports.
    #[command(after_help = "Example:\n  dealrules plugin inspect rules/plugins/fx.wasm")]
    Inspect { wasm: PathBuf },
}

pub fn run(command: PluginCommand) -> Result<ExitCode> {
    match command {
        PluginCommand::Inspect { wasm } => inspect(&wasm),
        PluginCommand::Build { source, out, manifest } => build(&source, &out, manifest.as_deref()),
        PluginCommand::Test { manifest, cases } => test(&manifest, &cases),
        PluginCommand::New { name, lang, dir } => new(&name, &lang, &dir.unwrap_or_else(|| PathBuf::from(&name))),
    }
}

fn inspect(path: &Path) -> Result<ExitCode> {
    let bytes = std::fs::read(path).map_err(|source| file_error(path, source))?;
    let engine = dealrules_plugin_host::engine().map_err(|e| CliError::PluginEngine(e.to_string()))?;
    let module = wasmtime::Module::from_binary(engine, &bytes)
        .map_err(|e| CliError::Plugin(format!("{}: not a WebAssembly module: {e:#}", path.display())))?;
    outln!("file:    {}", path.display())?;
    outln!("size:    {} bytes", bytes.len())?;
    outln!("sha256:  {}", hex::encode(sha2::Sha256::digest(&bytes)))?;
    let abi = module.get_export("dealrules_abi_v1").is_some()
        && module.get_export("dr_alloc").is_some()
        && module.get_export("memory").is_some();
    outln!(
        "abi:     {}",
        if abi {
            "dealrules v1"
        } else {
            "not the dealrules ABI (needs memory, dr_alloc, dealrules_abi_v1)"
        }
    )?;
    outln!("exports:")?;
    for e in module.exports() {
        outln!("  {} {}", e.name(), describe(&e.ty()))?;
    }
    outln!("imports:")?;
    let mut any = false;
    for i in module.imports() {
        any = true;
        let needs = match (i.module(), i.name()) {
            ("dealrules", "log") | ("wasi_snapshot_preview1", "fd_write") => {
                "capability log (fd_write: dropped without it)"
            }
            ("dealrules", "now_ms") | ("wasi_snapshot_preview1", "clock_time_get" | "clock_res_get") => {
                "capability clock"
            }
            ("dealrules", "random") | ("wasi_snapshot_preview1", "random_get") => "capability random",
            (
                "wasi_snapshot_preview1",
                "fd_close" | "fd_seek" | "fd_fdstat_get" | "fd_fdstat_set_flags" | "fd_prestat_get",
            ) => "answered EBADF (no files)",
            ("wasi_snapshot_preview1", "proc_exit") => "stops the call",
            ("wasi_snapshot_preview1", _) => "denied when called (never granted)",
            _ => "NOT ALLOWED: the pack will not load",
        };
        outln!("  {}.{} {}  ({needs})", i.module(), i.name(), describe(&i.ty()))?;
    }
    if !any {
        outln!("  (none)")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(t: &wasmtime::ExternType) -> String {
    match t {
        wasmtime::ExternType::Func(f) => {
            let list = |it: &mut dyn Iterator<Item = wasmtime::ValType>| {
                it.map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
            };
            format!("func({}) -> ({})", list(&mut f.params()), list(&mut f.results()))
        }
        wasmtime::ExternType::Memory(_) => "memory".into(),
        wasmtime::ExternType::Table(_) => "table".into(),
        wasmtime::ExternType::Global(_) => "global".into(),
        _ => "other".into(),
    }
}

fn build(source: &Path, out: &Path, manifest: Option<&Path>) -> Result<ExitCode> {
    let built = if source.is_dir() && source.join("Cargo.toml").is_file() {
        let target = std::env::temp_dir().join("dealrules-plugin-build");
        dealrules_plugin_host::build::build_rust(source, &target)
    } else if source.extension().is_some_and(|e| e == "c") {
        dealrules_plugin_host::build::build_c(source, out)
    } else {
        Err(format!(
            "{}: give a .c file or a folder with a Cargo.toml",
            source.display()
        ))
    };
    let bytes = built.map_err(CliError::Plugin)?;
    std::fs::write(out, &bytes).map_err(|source| file_error(out, source))?;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    outln!("{}: {} bytes, sha256 {sha}", out.display(), bytes.len())?;
    if let Some(m) = manifest {
        let text = std::fs::read_to_string(m).map_err(|source| file_error(m, source))?;
        let mut replaced = false;
        let updated: Vec<String> = text
            .lines()
            .map(|l| {
                let indent = &l[..l.len() - l.trim_start().len()];
                if l.trim_start().starts_with("sha256:") {
                    replaced = true;
                    format!("{indent}sha256: {sha}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        if !replaced {
            return Err(CliError::Plugin(format!(
                "{}: no `sha256:` line to update",
                m.display()
            )));
        }
        std::fs::write(m, updated.join("\n") + "\n").map_err(|source| file_error(m, source))?;
        outln!("{}: sha256 updated", m.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn test(manifest: &Path, cases: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(manifest).map_err(|source| file_error(manifest, source))?;
    let name = manifest
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = manifest.parent().unwrap_or(Path::new("."));
    // The manifest and the files beside it, as a one-plugin pack.
    let mut source = PackSource::from_texts([(format!("plugins/{name}").as_str(), text.as_str())]);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "wasm")
                && let Ok(b) = std::fs::read(&p)
            {
                source.files.insert(
                    format!("plugins/{}", p.file_name().unwrap_or_default().to_string_lossy()),
                    b,
                );
            }
        }
    }
    let pack = dealrules_model::load_pack(source)
        .map_err(|e| CliError::Plugin(e.0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")))?;
    let not_a_plugin = || CliError::Plugin(format!("{}: not a Plugin manifest", manifest.display()));
    let doc = pack
        .documents
        .iter()
        .find(|d| d.kind == Kind::Plugin)
        .ok_or_else(not_a_plugin)?;
    let Spec::Plugin(spec) = &doc.spec else {
        return Err(not_a_plugin());
    };
    let wasm = pack
        .source
        .files
        .get(&format!("plugins/{}", spec.wasm))
        .cloned()
        .unwrap_or_default();
    let plugin = Plugin::load(&doc.metadata.name, spec, &wasm, None).map_err(|e| CliError::Plugin(e.to_string()))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        let case: serde_json::Value = match std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => {
                outln!("FAIL {}: {e}", f.display())?;
                failed += 1;
                continue;
            }
        };
        let function = case["function"]
            .as_str()
            .unwrap_or_else(|| plugin.exports.first().map(String::as_str).unwrap_or("run"));
        let got = plugin.call(function, &case["input"]);
        let ok = match (
            &got,
            case.get("expect"),
            case.get("expect_error").and_then(|e| e.as_str()),
        ) {
            (Ok(out), Some(want), _) => out.value == *want,
            (Err(e), _, Some(want)) => e.to_string().contains(want),
            _ => false,
        };
        let shown = match &got {
            Ok(out) => format!("{} (fuel {}, {} µs)", out.value, out.fuel_used, out.micros),
            Err(e) => e.to_string(),
        };
        if ok {
            passed += 1;
            outln!("ok   {}: {shown}", f.display())?;
        } else {
            failed += 1;
            outln!(
                "FAIL {}: got {shown}; wanted {}",
                f.display(),
                case.get("expect")
                    .map(|v| v.to_string())
                    .or_else(|| case.get("expect_error").map(|v| format!("error containing {v}")))
                    .unwrap_or_else(|| "an `expect` or `expect_error`".into())
            )?;
        }
    }
    outln!("{passed} passed, {failed} failed")?;
    Ok(if failed > 0 || files.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn new(name: &str, lang: &str, dir: &Path) -> Result<ExitCode> {
    if dir.exists() {
        return Err(CliError::Exists(dir.to_path_buf()));
    }
    let abi = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let files: Vec<(PathBuf, String)> = match lang {
        "c" => vec![
            (dir.join(format!("{name}.c")), format!(
                "/* {name}: a dealrules plugin (ABI v1: plugins/abi/ABI.md). */\n#include \"{}\"\n\nDR_PLUGIN_BOILERPLATE\n\nstatic char out[256];\n\n/* {{\"input\": {{\"deal\": {{\"amount\": ...}}}}}} -> {{\"ok\": \"<amount>\"}} */\nDR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {{\n    int64_t cents;\n    if (dr_decimal(dr_find(req, len, \"amount\"), 2, &cents)) return dr_answer(\"{{\\\"error\\\":\\\"deal.amount is missing\\\"}}\", 31);\n    int n = 0;\n    const char *pre = \"{{\\\"ok\\\":\\\"\";\n    while (*pre) out[n++] = *pre++;\n    n += dr_format(out + n, cents, 2);\n    out[n++] = '\"';\n    out[n++] = '}}';\n    return dr_answer(out, (uint32_t)n);\n}}\n",
                abi.join("abi/dealrules_plugin.h").display()
            )),
        ],
        _ => vec![
            (dir.join("Cargo.toml"), format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ndealrules-plugin-sdk = {{ path = \"{}\" }}\n\n[profile.release]\nopt-level = \"s\"\nlto = true\npanic = \"abort\"\nstrip = true\n\n[workspace]\n",
                abi.join("sdk-rust").display()
            )),
            (dir.join("src/lib.rs"), "use dealrules_plugin_sdk::{json, plugin, Request, Value};\n\n/// {\"input\": {\"deal\": {\"amount\": ...}}} -> {\"ok\": <amount>}\nfn run(req: &Request) -> Result<Value, String> {\n    let amount = req.input[\"deal\"][\"amount\"].clone();\n    if amount.is_null() {\n        return Err(\"deal.amount is missing\".into());\n    }\n    Ok(json!(amount))\n}\n\nplugin! { run => run }\n".into()),
        ],
    };
    let manifest = format!(
        "apiVersion: dealrules/v1\nkind: Plugin\nmetadata: {{ name: {name} }}\nspec:\n  wasm: {name}.wasm\n  sha256: {}   # `dealrules plugin build` writes it\n  exports: [run]\n  inputs: [deal.amount]\n  limits: {{ fuel: 10000000, memory: 16MiB, timeout: 50ms }}\n  capabilities: []\n",
        "0".repeat(64)
    );
    let case = "{\"function\": \"run\", \"input\": {\"deal\": {\"amount\": \"12.50\"}}, \"expect\": \"12.50\"}\n";
    let mut all = files;
    all.push((dir.join(format!("{name}.yaml")), manifest));
    all.push((dir.join("cases/amount.json"), case.into()));
    for (path, text) in all {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| file_error(parent, source))?;
        }
        std::fs::write(&path, text).map_err(|source| file_error(&path, source))?;
        outln!("created {}", path.display())?;
    }
    let src = if lang == "c" {
        format!("{}/{name}.c", dir.display())
    } else {
        dir.display().to_string()
    };
    outln!(
        "next: dealrules plugin build {src} --out {0}/{name}.wasm --manifest {0}/{name}.yaml && dealrules plugin test {0}/{name}.yaml --cases {0}/cases",
        dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn file_error(path: &Path, source: std::io::Error) -> CliError {
    CliError::File {
        path: path.to_path_buf(),
        source,
    }
}
