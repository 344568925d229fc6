//! ABI v2: plugins as WebAssembly components of the `dealrules:plugin`
//! world (`plugins/abi/dealrules.wit`). The limits, the hash check, the
//! disk cache and the fresh instance per call are v1's; what differs is how
//! the request gets in (`call(function, input, config)`, lowered by the
//! canonical ABI) and what may be imported: only the world's three
//! interfaces, checked by name when the component loads.

use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker};
use wasmtime::{Engine, StoreContextMut};

use crate::{CapabilityDenied, Host};

/// The interfaces of the `dealrules:plugin` world a component may import
/// (any patch or minor release of 2.x), and the capability each needs.
pub const INTERFACES: [(&str, &str, &str); 3] = [
    ("dealrules:plugin/clock@2.", "clock", "dealrules:plugin/clock@2.0.0"),
    ("dealrules:plugin/random@2.", "random", "dealrules:plugin/random@2.0.0"),
    ("dealrules:plugin/log@2.", "log", "dealrules:plugin/log@2.0.0"),
];

/// The most `random.bytes` gives in one call.
const RANDOM_MAX: u32 = 64 << 10;

/// Whether `wasm` is a component rather than a core module: the preamble's
/// version and layer fields (`0d 00 01 00` for a component, `01 00 00 00`
/// for a module).
pub fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[4..8] == [0x0d, 0x00, 0x01, 0x00]
}

/// What an import outside the world would have given, for the message.
pub fn import_kind(name: &str) -> &'static str {
    match name {
        n if n.starts_with("wasi:filesystem") => "files",
        n if n.starts_with("wasi:sockets") || n.starts_with("wasi:http") => "network",
        n if n.starts_with("wasi:cli/environment") => "environment",
        n if n.starts_with("wasi:cli") => "stdio and process control",
        n if n.starts_with("wasi:clocks") => "WASI clocks (use dealrules:plugin/clock)",
        n if n.starts_with("wasi:random") => "WASI randomness (use dealrules:plugin/random)",
        n if n.starts_with("wasi:") => "a WASI interface",
        _ => "an interface the host does not have",
    }
}

/// Every import must be one of the world's interfaces; those that are not
/// are named, each with what it would have given.
pub(crate) fn check_imports(engine: &Engine, component: &Component) -> Result<(), String> {
    let refused: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| !INTERFACES.iter().any(|(prefix, _, _)| name.starts_with(prefix)))
        .map(|name| format!("`{name}` ({})", import_kind(name)))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(format!(
        "imports {}, which plugins never get: a component may import only dealrules:plugin/clock, random and log (plugins/abi/dealrules.wit); build JavaScript with every WASI feature disabled and Python with --stub-wasi (`dealrules plugin build` does)",
        refused.join(", ")
    ))
}

fn deny(capability: &'static str, import: &str) -> wasmtime::Error {
    wasmtime::Error::new(CapabilityDenied {
        capability,
        import: import.to_string(),
    })
}

/// The host's side of the world; each function checks its capability when
/// called, as v1's imports do.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<Host>> {
    let mut linker: Linker<Host> = Linker::new(engine);
    linker.instance(INTERFACES[0].2)?.func_wrap(
        "now-ms",
        |c: StoreContextMut<'_, Host>, (): ()| -> wasmtime::Result<(i64,)> {
            if !c.data().caps.clock {
                return Err(deny("clock", "dealrules:plugin/clock.now-ms"));
            }
            Ok(((crate::imports::now_nanos() / 1_000_000) as i64,))
        },
    )?;
    linker.instance(INTERFACES[1].2)?.func_wrap(
        "bytes",
        |c: StoreContextMut<'_, Host>, (len,): (u32,)| -> wasmtime::Result<(Vec<u8>,)> {
            if !c.data().caps.random {
                return Err(deny("random", "dealrules:plugin/random.bytes"));
            }
            if len > RANDOM_MAX {
                return Err(wasmtime::format_err!(
                    "the plugin asked for {len} random bytes; at most {RANDOM_MAX} a call"
                ));
            }
            let mut buf = vec![0u8; len as usize];
            getrandom::fill(&mut buf).map_err(|e| wasmtime::format_err!("no randomness: {e}"))?;
            Ok((buf,))
        },
    )?;
    linker.instance(INTERFACES[2].2)?.func_wrap(
        "line",
        |mut c: StoreContextMut<'_, Host>, (text,): (String,)| -> wasmtime::Result<()> {
            if !c.data().caps.log {
                return Err(deny("log", "dealrules:plugin/log.line"));
            }
            let mut line = text;
            if line.len() > 4096 {
                let mut end = 4096;
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                line.truncate(end);
            }
            let host = c.data_mut();
            if host.log.len() < 100 {
                host.log.push(line.trim_end().to_string());
            }
            Ok(())
        },
    )?;
    Ok(linker)
}

/// A component ready to instantiate, with its two exports found.
pub(crate) struct Linked {
    pub(crate) pre: InstancePre<Host>,
    pub(crate) call: ComponentExportIndex,
    pub(crate) functions: ComponentExportIndex,
}

pub(crate) fn link(engine: &Engine, component: &Component) -> Result<Linked, String> {
    check_imports(engine, component)?;
    let export = |name: &str| {
        component.get_export_index(None, name).ok_or_else(|| {
            format!("does not export `{name}`: not built for the dealrules:plugin@2 world (plugins/abi/dealrules.wit)")
        })
    };
    let call = export("call")?;
    let functions = export("functions")?;
    let linker = linker(engine).map_err(|e| format!("{e:#}"))?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| format!("cannot link: {e:#}"))?;
    Ok(Linked { pre, call, functions })
}
