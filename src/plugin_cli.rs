//! `dealrules plugin new|build|test|inspect`: what a partner needs to make,
//! check and ship a plugin without a server.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use dealrules_model::{Kind, PackSource, Spec};
use dealrules_plugin_host::Plugin;
use sha2::Digest;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Start a plugin: a C file or a Rust crate (ABI v1), or a JavaScript
    /// or Python component (ABI v2), with one function.
    #[command(
        after_help = "Examples:\n  dealrules plugin new fx-convert            # C, in ./fx-convert\n  dealrules plugin new fx-convert --lang rust --dir plugins-src/fx\n  dealrules plugin new credit --lang js"
    )]
    New {
        name: String,
        #[arg(long, value_parser = ["c", "rust", "js", "python"], default_value = "c")]
        lang: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a plugin's source (a `.c`, `.js` or `.py` file, or a folder
    /// with a Cargo.toml) into OUT.wasm; with --manifest, write the module's
    /// sha256 into it.
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
    /// Print a module's or component's hash, ABI, exports and imports.
    #[command(after_help = "Example:\n  dealrules plugin inspect rules/plugins/fx.wasm")]
    Inspect { wasm: PathBuf },
    /// Write the sha256 of a module built elsewhere (Zig, AssemblyScript,
    /// jco, ...) into its manifest.
    #[command(after_help = "Example:\n  dealrules plugin pin build/fx.wasm --manifest rules/plugins/fx.yaml")]
    Pin {
        wasm: PathBuf,
        #[arg(long)]
        manifest: PathBuf,
    },
}

/// Runs a plugin command.
pub fn run(command: PluginCommand) -> crate::error::Result<std::process::ExitCode> {
    Ok(std::process::ExitCode::from(run_code(command)))
}

fn run_code(command: PluginCommand) -> u8 {
    match command {
        PluginCommand::Inspect { wasm } => inspect(&wasm),
        PluginCommand::Build { source, out, manifest } => build(&source, &out, manifest.as_deref()),
        PluginCommand::Test { manifest, cases } => test(&manifest, &cases),
        PluginCommand::New { name, lang, dir } => new(&name, &lang, &dir.unwrap_or_else(|| PathBuf::from(&name))),
        PluginCommand::Pin { wasm, manifest } => match std::fs::read(&wasm) {
            Ok(bytes) => {
                println!(
                    "{}: {} bytes, sha256 {}",
                    wasm.display(),
                    bytes.len(),
                    hex::encode(sha2::Sha256::digest(&bytes))
                );
                pin(&bytes, &manifest)
            }
            Err(e) => {
                eprintln!("{}: {e}", wasm.display());
                2
            }
        },
    }
}

fn inspect(path: &Path) -> u8 {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return 2;
        }
    };
    let engine = match dealrules_plugin_host::engine() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    if dealrules_plugin_host::component::is_component(&bytes) {
        return inspect_component(path, &bytes, engine);
    }
    let module = match wasmtime::Module::from_binary(engine, &bytes) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{}: not a WebAssembly module: {e:#}", path.display());
            return 1;
        }
    };
    println!("file:    {}", path.display());
    println!("size:    {} bytes", bytes.len());
    println!("sha256:  {}", hex::encode(sha2::Sha256::digest(&bytes)));
    let missing: Vec<&str> = ["memory", "dr_alloc", "dealrules_abi_v1"]
        .into_iter()
        .filter(|e| module.get_export(e).is_none())
        .collect();
    if missing.is_empty() {
        println!("abi:     dealrules v1 (core module)");
    } else {
        println!(
            "abi:     not the dealrules ABI v1: it does not export {}",
            missing.join(", ")
        );
    }
    println!("exports:");
    for e in module.exports() {
        println!("  {} {}", e.name(), describe(&e.ty()));
    }
    println!("imports:");
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
        println!("  {}.{} {}  ({needs})", i.module(), i.name(), describe(&i.ty()));
    }
    if !any {
        println!("  (none)");
    }
    0
}

/// ABI v2: the world a component targets, what it imports (each allowed or
/// not) and what it exports, with the functions' types.
fn inspect_component(path: &Path, bytes: &[u8], engine: &wasmtime::Engine) -> u8 {
    use wasmtime::component::types::ComponentItem;
    let component = match wasmtime::component::Component::from_binary(engine, bytes) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: not a WebAssembly component: {e:#}", path.display());
            return 1;
        }
    };
    let ty = component.component_type();
    println!("file:    {}", path.display());
    println!("size:    {} bytes", bytes.len());
    println!("sha256:  {}", hex::encode(sha2::Sha256::digest(bytes)));
    let has = |n: &str| ty.get_export(engine, n).is_some();
    if has("call") && has("functions") {
        println!("abi:     dealrules v2 (component, world dealrules:plugin/plugin@2.0.0)");
    } else {
        println!("abi:     a component, but not of the dealrules:plugin world (needs exports `call` and `functions`)");
    }
    println!("imports:");
    let mut any = false;
    for (name, _) in ty.imports(engine) {
        any = true;
        let verdict = match dealrules_plugin_host::component::INTERFACES
            .iter()
            .find(|(prefix, _, _)| name.starts_with(prefix))
        {
            Some((_, cap, _)) => format!("capability {cap}"),
            None => format!(
                "NOT ALLOWED: {}; the pack will not load",
                dealrules_plugin_host::component::import_kind(name)
            ),
        };
        println!("  {name}  ({verdict})");
    }
    if !any {
        println!("  (none)");
    }
    println!("exports:");
    for (name, item) in ty.exports(engine) {
        match &item.ty {
            ComponentItem::ComponentFunc(f) => {
                let params: Vec<String> = f.params().map(|(n, t)| format!("{n}: {}", wit_type(&t))).collect();
                let results: Vec<String> = f.results().map(|t| wit_type(&t)).collect();
                let arrow = if results.is_empty() {
                    String::new()
                } else {
                    format!(" -> {}", results.join(", "))
                };
                println!("  {name}: func({}){arrow}", params.join(", "));
            }
            ComponentItem::ComponentInstance(_) => println!("  {name}: interface"),
            _ => println!("  {name}"),
        }
    }
    if has("functions") {
        println!("functions: load it with a manifest (`dealrules plugin test`) to list what `call` answers");
    }
    0
}

/// A component value type as WIT spells it (the common ones).
fn wit_type(t: &wasmtime::component::types::Type) -> String {
    use wasmtime::component::types::Type;
    match t {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", wit_type(&l.ty())),
        Type::Option(o) => format!("option<{}>", wit_type(&o.ty())),
        Type::Result(r) => format!(
            "result<{}, {}>",
            r.ok().map(|t| wit_type(&t)).unwrap_or_else(|| "_".into()),
            r.err().map(|t| wit_type(&t)).unwrap_or_else(|| "_".into())
        ),
        Type::Record(_) => "record".into(),
        Type::Variant(_) => "variant".into(),
        Type::Enum(_) => "enum".into(),
        Type::Tuple(_) => "tuple".into(),
        Type::Flags(_) => "flags".into(),
        _ => "resource".into(),
    }
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

fn build(source: &Path, out: &Path, manifest: Option<&Path>) -> u8 {
    let scratch = std::env::temp_dir().join("dealrules-plugin-build");
    let bytes = match dealrules_plugin_host::build::build(source, &scratch) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    if let Err(e) = std::fs::write(out, &bytes) {
        eprintln!("{}: {e}", out.display());
        return 2;
    }
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    println!("{}: {} bytes, sha256 {sha}", out.display(), bytes.len());
    match manifest {
        Some(m) => pin(&bytes, m),
        None => 0,
    }
}

/// Writes the sha256 of `bytes` into the manifest's `sha256:` line.
fn pin(bytes: &[u8], m: &Path) -> u8 {
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    let text = match std::fs::read_to_string(m) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", m.display());
            return 2;
        }
    };
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
        eprintln!("{}: no `sha256:` line to update", m.display());
        return 1;
    }
    if let Err(e) = std::fs::write(m, updated.join("\n") + "\n") {
        eprintln!("{}: {e}", m.display());
        return 2;
    }
    println!("{}: sha256 updated", m.display());
    0
}

fn test(manifest: &Path, cases: &Path) -> u8 {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        eprintln!("{}: cannot read", manifest.display());
        return 2;
    };
    let name = manifest
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // `territory.yaml` has the parent "": the current folder.
    let dir = manifest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
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
    let pack = match dealrules_model::load_pack(source) {
        Ok(p) => p,
        Err(e) => {
            for d in &e.0 {
                eprintln!("{d}");
            }
            return 1;
        }
    };
    let Some(doc) = pack.documents.iter().find(|d| d.kind == Kind::Plugin) else {
        eprintln!("{}: not a Plugin manifest", manifest.display());
        return 1;
    };
    let Spec::Plugin(spec) = &doc.spec else { return 1 };
    let Some(wasm) = pack.source.files.get(&format!("plugins/{}", spec.wasm)).cloned() else {
        eprintln!(
            "{}: no module `{}` beside the manifest (in {}); build it with `dealrules plugin build`",
            manifest.display(),
            spec.wasm,
            dir.display()
        );
        return 1;
    };
    let plugin = match Plugin::load(&doc.metadata.name, spec, &wasm, None) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
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
                println!("FAIL {}: {e}", f.display());
                failed += 1;
                continue;
            }
        };
        let function = case["function"]
            .as_str()
            .unwrap_or_else(|| plugin.exports.first().map(String::as_str).unwrap_or("run"));
        // Numbers as a pack's decisions pass them (`1e+5` is `100000`), so
        // a plugin sees the same JSON text here and in a pack.
        let input = dealrules_expr::Value::from_json(&case["input"]).to_json();
        let got = plugin.call(function, &input);
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
            println!("ok   {}: {shown}", f.display());
        } else {
            failed += 1;
            println!(
                "FAIL {}: got {shown}; wanted {}",
                f.display(),
                case.get("expect")
                    .map(|v| v.to_string())
                    .or_else(|| case.get("expect_error").map(|v| format!("error containing {v}")))
                    .unwrap_or_else(|| "an `expect` or `expect_error`".into())
            );
        }
    }
    println!("{passed} passed, {failed} failed");
    u8::from(failed > 0 || files.is_empty())
}

fn new(name: &str, lang: &str, dir: &Path) -> u8 {
    if dir.exists() {
        eprintln!("{} exists", dir.display());
        return 2;
    }
    let abi = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let component = lang == "js" || lang == "python";
    let files: Vec<(PathBuf, String)> = match lang {
        "js" => vec![(
            dir.join(format!("{name}.js")),
            "// A dealrules plugin component (ABI v2: plugins/abi/dealrules.wit) in JavaScript.\n// Keep money exact: decimal strings in, decimal strings out (BigInt cents for arithmetic).\n\n/** {\"deal\": {\"amount\": \"12.50\"}} -> \"12.50\" */\nfunction run(input, config) {\n  const amount = input.deal && input.deal.amount;\n  if (amount === undefined) throw \"deal.amount is missing\";\n  return String(amount);\n}\n\nconst FUNCTIONS = { run };\n\nexport function functions() {\n  return Object.keys(FUNCTIONS);\n}\n\n// A thrown string is the error the decision shows.\nexport function call(fn, input, config) {\n  const f = FUNCTIONS[fn];\n  if (!f) throw `no function ${fn}`;\n  return JSON.stringify(f(JSON.parse(input), JSON.parse(config)));\n}\n".into(),
        )],
        "python" => vec![(
            dir.join(format!("{}.py", name.replace('-', "_"))),
            "\"\"\"A dealrules plugin component (ABI v2: plugins/abi/dealrules.wit) in Python.\"\"\"\n\nimport json\nfrom decimal import Decimal\n\nimport wit_world\nfrom componentize_py_types import Err\n\n\ndef run(inp, config):\n    \"\"\"{\"deal\": {\"amount\": \"12.50\"}} -> \"12.50\" (exact: Decimal, never float)\"\"\"\n    amount = (inp.get(\"deal\") or {}).get(\"amount\")\n    if amount is None:\n        raise Err(\"deal.amount is missing\")\n    return str(Decimal(str(amount)))\n\n\nFUNCTIONS = {\"run\": run}\n\n\nclass WitWorld(wit_world.WitWorld):\n    def functions(self):\n        return list(FUNCTIONS)\n\n    def call(self, function, input, config):\n        f = FUNCTIONS.get(function)\n        if f is None:\n            raise Err(f\"no function {function}\")\n        return json.dumps(f(json.loads(input, parse_float=Decimal), json.loads(config)), default=str)\n".into(),
        )],
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
        "apiVersion: dealrules/v1\nkind: Plugin\nmetadata: {{ name: {name} }}\nspec:\n  wasm: {name}.wasm\n  sha256: {}   # `dealrules plugin build` writes it\n  exports: [run]\n  inputs: [deal.amount]\n  limits: {{ fuel: {}, memory: {}, timeout: 50ms }}\n  capabilities: []\n",
        "0".repeat(64),
        // A JavaScript or Python runtime starts with 10-40 MiB and burns
        // more fuel than compiled C or Rust.
        if component { "1000000000" } else { "10000000" },
        if component { "64MiB" } else { "16MiB" },
    );
    let case = "{\"function\": \"run\", \"input\": {\"deal\": {\"amount\": \"12.50\"}}, \"expect\": \"12.50\"}\n";
    let mut all = files;
    all.push((dir.join(format!("{name}.yaml")), manifest));
    all.push((dir.join("cases/amount.json"), case.into()));
    for (path, text) in all {
        if let Some(parent) = path.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            eprintln!("{}: {e}", parent.display());
            return 2;
        }
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("{}: {e}", path.display());
            return 2;
        }
        println!("created {}", path.display());
    }
    let src = match lang {
        "c" => format!("{}/{name}.c", dir.display()),
        "js" => format!("{}/{name}.js", dir.display()),
        "python" => format!("{}/{}.py", dir.display(), name.replace('-', "_")),
        _ => dir.display().to_string(),
    };
    println!(
        "next: dealrules plugin build {src} --out {0}/{name}.wasm --manifest {0}/{name}.yaml && dealrules plugin test {0}/{name}.yaml --cases {0}/cases",
        dir.display()
    );
    0
}
