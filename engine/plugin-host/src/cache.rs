//! Compiled plugins on disk, keyed by the module's sha256 and the engine's
//! compatibility hash (wasmtime version, target, settings), so a restart
//! does not recompile and a new engine never loads old code.

use std::hash::{Hash, Hasher};
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// How many loads the cache served (for tests and benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

struct Sha(Sha256);

impl Hasher for Sha {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

fn compatibility(engine: &Engine) -> String {
    let mut h = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..8])
}

/// Compiled code the cache can hold: a v1 module or a v2 component.
trait Compiled: Sized {
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self>;
    /// # Safety
    /// `bytes` must be what `serialize` wrote for this engine.
    #[allow(unsafe_code)]
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;
    /// Compiled code from the cache file at `path`.
    ///
    /// # Safety
    /// The file must be what `serialize` wrote for this engine.
    #[allow(unsafe_code)]
    unsafe fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self> {
        // Read into memory rather than mapped: a file changed under a
        // mapping would crash the process (SIGBUS), a read copy cannot.
        let bytes = std::fs::read(path)?;
        // SAFETY: the caller's promise, passed on.
        unsafe { Self::deserialize(engine, &bytes) }
    }
}

impl Compiled for Module {
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
        Module::from_binary(engine, wasm)
    }

    #[allow(unsafe_code)]
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: the caller's promise, passed on.
        unsafe { Module::deserialize(engine, bytes) }
    }

    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Module::serialize(self)
    }
}

impl Compiled for Component {
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
        Component::from_binary(engine, wasm)
    }

    #[allow(unsafe_code)]
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: the caller's promise, passed on.
        unsafe { Component::deserialize(engine, bytes) }
    }

    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Component::serialize(self)
    }

    /// Mapped, not read: a JavaScript or Python component's compiled code
    /// is tens of MB, and a mapping lets wasmtime use the file for the
    /// heap snapshot's copy-on-write image instead of copying it twice.
    /// The cache is written only through a rename (a mapping keeps the
    /// inode it mapped) in a folder private to the user; a process able to
    /// truncate a file there could as well replace the code it trusts.
    #[allow(unsafe_code)]
    unsafe fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self> {
        // SAFETY: the caller's promise, passed on.
        unsafe { Component::deserialize_file(engine, path) }
    }
}

/// The module, compiled or read back; whether it came from the cache.
pub fn load(engine: &Engine, wasm: &[u8], sha: &str, dir: Option<&Path>) -> Result<(Module, bool), String> {
    load_compiled(engine, wasm, sha, dir, "cwasm")
}

/// The component (ABI v2), compiled or read back; whether it came from the cache.
pub fn load_component(
    engine: &Engine,
    wasm: &[u8],
    sha: &str,
    dir: Option<&Path>,
) -> Result<(Component, bool), String> {
    load_compiled(engine, wasm, sha, dir, "ccomponent")
}

fn load_compiled<C: Compiled>(
    engine: &Engine,
    wasm: &[u8],
    sha: &str,
    dir: Option<&Path>,
    extension: &str,
) -> Result<(C, bool), String> {
    let Some(dir) = dir else {
        return C::compile(engine, wasm)
            .map(|m| (m, false))
            .map_err(|e| format!("{e:#}"));
    };
    let path = dir.join(format!("{sha}-{}.{extension}", compatibility(engine)));
    if path.is_file() {
        // SAFETY: `deserialize` trusts its input to be code this engine
        // produced. Only this function writes to the cache folder (made
        // private to the user below), naming each file by the module's
        // sha256 (checked against the manifest before we got here) and the
        // engine's compatibility hash, and writing through a rename so no
        // reader sees half a file; a file that fails to load is removed and
        // the module compiled again.
        #[allow(unsafe_code)]
        let loaded = unsafe { C::deserialize_file(engine, &path) };
        match loaded {
            Ok(m) => return Ok((m, true)),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let module = C::compile(engine, wasm).map_err(|e| format!("{e:#}"))?;
    // A cache that cannot be written is not an error: the module runs.
    if make_private_dir(dir).is_ok()
        && let Ok(bytes) = module.serialize()
    {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok((module, false))
}

fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
