//! ABI v2 through the real binary: the JavaScript and Python example
//! components built from source by `dealrules plugin build`, answering in
//! a pack's tests (`dealrules test`); `plugin inspect` on a component;
//! `plugin pin` for a module built elsewhere; `plugin test` run from the
//! manifest's own folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::copy_dir;

fn dealrules_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dealrules"));
    cmd.args(args).env(
        "DEALRULES_PLUGIN_CACHE",
        std::env::temp_dir().join("dealrules-test-plugin-cache"),
    );
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.output().unwrap()
}

fn dealrules(args: &[&str]) -> Output {
    dealrules_in(None, args)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Both toolchains, or `None` with the reason printed. CI installs them
/// (`scripts/component-toolchain`) and sets DEALRULES_REQUIRE_COMPONENT_TOOLS,
/// which makes their absence a failure.
fn toolchains() -> Option<()> {
    use dealrules_plugin_host::build;
    if build::componentize_js().is_some() && build::componentize_py().is_some() {
        return Some(());
    }
    assert!(
        std::env::var_os("DEALRULES_REQUIRE_COMPONENT_TOOLS").is_none(),
        "componentize-js and componentize-py are required (DEALRULES_REQUIRE_COMPONENT_TOOLS): run scripts/component-toolchain"
    );
    eprintln!("SKIPPED: componentize-js or componentize-py is not installed here; run scripts/component-toolchain");
    None
}

/// Builds `source` with `dealrules plugin build`, or copies the build kept
/// under the target folder for the same sources (and pins it).
fn build_into(source: &str, out: &Path, manifest: &Path) {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-builds");
    let (bytes, _) = dealrules_plugin_host::build::build_cached(&root().join(source), &cache).unwrap();
    std::fs::write(out, &bytes).unwrap();
    let pinned = dealrules(&[
        "plugin",
        "pin",
        &out.display().to_string(),
        "--manifest",
        &manifest.display().to_string(),
    ]);
    assert!(pinned.status.success(), "{}", text(&pinned));
}

#[test]
fn javascript_and_python_components_answer_in_a_packs_tests() {
    if toolchains().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    copy_dir(&root().join("plugins/examples/components-pack"), &pack);
    // One of the two through `plugin build` itself, the other from the kept build.
    let p = |s: &str| pack.join(s).display().to_string();
    let built = dealrules(&[
        "plugin",
        "build",
        &root()
            .join("plugins/examples/credit-js/credit.js")
            .display()
            .to_string(),
        "--out",
        &p("plugins/credit-bureau.wasm"),
        "--manifest",
        &p("plugins/credit-bureau.yaml"),
    ]);
    assert!(built.status.success(), "{}", text(&built));
    build_into(
        "plugins/examples/territory-py/territory.py",
        &pack.join("plugins/territory.wasm"),
        &pack.join("plugins/territory.yaml"),
    );
    let tested = dealrules(&["test", &pack.display().to_string()]);
    let out = text(&tested);
    assert!(tested.status.success(), "{out}");
    assert!(out.contains("policy tests: 5 passed, 0 failed"), "{out}");

    let inspected = dealrules(&["plugin", "inspect", &p("plugins/territory.wasm")]);
    let out = text(&inspected);
    assert!(inspected.status.success(), "{out}");
    assert!(
        out.contains("abi:     dealrules v2 (component, world dealrules:plugin/plugin@2.0.0)"),
        "{out}"
    );
    assert!(
        out.contains("call: func(function: string, input: string, config: string) -> result<string, string>"),
        "{out}"
    );
    assert!(out.contains("dealrules:plugin/log@2.0.0  (capability log)"), "{out}");
}

#[test]
fn plugin_test_from_the_manifests_own_folder_opens_the_module() {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    std::fs::create_dir_all(fx.join("cases")).unwrap();
    std::fs::copy(
        root().join("examples/partners/plugins/fx-convert.yaml"),
        fx.join("fx-convert.yaml"),
    )
    .unwrap();
    copy_dir(&root().join("examples/partners/cases/fx"), &fx.join("cases"));
    let built = dealrules(&[
        "plugin",
        "build",
        &root().join("plugins/examples/fx-c/fx.c").display().to_string(),
        "--out",
        &fx.join("fx-convert.wasm").display().to_string(),
        "--manifest",
        &fx.join("fx-convert.yaml").display().to_string(),
    ]);
    assert!(built.status.success(), "{}", text(&built));
    // Numbers reach the plugin as in a pack: `1e+5` as `100000`.
    std::fs::write(
        fx.join("cases/exponent.json"),
        r#"{"function": "convert", "input": {"amount": 1e+5, "currency": "EUR"}, "expect": "92000.00"}"#,
    )
    .unwrap();
    // A bare file name: its folder is the current one.
    let tested = dealrules_in(Some(&fx), &["plugin", "test", "fx-convert.yaml", "--cases", "cases"]);
    assert!(tested.status.success(), "{}", text(&tested));
    assert!(text(&tested).contains("3 passed, 0 failed"), "{}", text(&tested));
    // Without the module: said so, not a hash of nothing.
    std::fs::remove_file(fx.join("fx-convert.wasm")).unwrap();
    let missing = dealrules_in(Some(&fx), &["plugin", "test", "fx-convert.yaml", "--cases", "cases"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("no module `fx-convert.wasm` beside the manifest"),
        "{}",
        text(&missing)
    );
}

#[test]
fn plugin_pin_writes_the_hash_of_a_module_built_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("fx.wasm");
    dealrules_plugin_host::build::build_c(&root().join("plugins/examples/fx-c/fx.c"), &wasm).unwrap();
    let manifest = dir.path().join("fx.yaml");
    std::fs::copy(root().join("examples/partners/plugins/fx-convert.yaml"), &manifest).unwrap();
    let pinned = dealrules(&[
        "plugin",
        "pin",
        &wasm.display().to_string(),
        "--manifest",
        &manifest.display().to_string(),
    ]);
    assert!(pinned.status.success(), "{}", text(&pinned));
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&wasm).unwrap()))
    };
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .contains(&format!("sha256: {sha}"))
    );
}

#[test]
fn plugin_new_makes_javascript_and_python_components_that_build_and_pass_their_case() {
    if toolchains().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (lang, source) in [("js", "quote.js"), ("python", "quote.py")] {
        let plugin = dir.path().join(lang);
        let made = dealrules(&[
            "plugin",
            "new",
            "quote",
            "--lang",
            lang,
            "--dir",
            &plugin.display().to_string(),
        ]);
        assert!(made.status.success(), "{}", text(&made));
        let built = dealrules(&[
            "plugin",
            "build",
            &plugin.join(source).display().to_string(),
            "--out",
            &plugin.join("quote.wasm").display().to_string(),
            "--manifest",
            &plugin.join("quote.yaml").display().to_string(),
        ]);
        assert!(built.status.success(), "{lang}: {}", text(&built));
        let tested = dealrules_in(Some(&plugin), &["plugin", "test", "quote.yaml", "--cases", "cases"]);
        assert!(
            text(&tested).contains("1 passed, 0 failed"),
            "{lang}: {}",
            text(&tested)
        );
    }
}
