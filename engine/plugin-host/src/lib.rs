//! The plugin host: partners' WebAssembly run by wasmtime inside the engine,
//! without trusting them (ABI: `plugins/abi/ABI.md`).
//!
//! - One wasmtime [`Engine`] per process, with fuel, epoch interruption (a
//!   1 ms ticker) and the pooling allocator.
//! - A module is checked against the manifest's `sha256` before anything is
//!   compiled; compiled code is cached on disk, keyed by the module's hash
//!   and the engine's compatibility hash, so a restart does not recompile.
//! - Every call gets a fresh instance ([`InstancePre`] keeps that cheap)
//!   with the manifest's fuel, deadline, memory and output limits, and only
//!   the input fields the manifest's `inputs:` name.
//! - No capability unless the manifest grants it: the host's own small
//!   import set (`dealrules.log`, `now_ms`, `random`) and the few WASI
//!   imports C's libc links against, each checked at call time.
//! - ABI v2 ([`component`]): a WebAssembly component of the
//!   `dealrules:plugin` world (`plugins/abi/dealrules.wit`), told apart from
//!   a v1 module by its preamble, under the same limits, cache and fresh
//!   instance per call; it may import only the world's clock, random and
//!   log interfaces, anything else is refused at load with its name.
//!
//! A plugin that loops, traps, exhausts its memory or answers too much
//! fails that call with a [`PluginError`] naming the plugin; the engine and
//! every other call go on.
#![deny(unsafe_code)]

pub mod build;
mod cache;
pub mod component;
mod imports;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dealrules_model::PluginSpec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};

pub use cache::CacheStats;

/// Defaults when the manifest says nothing.
pub const DEFAULT_FUEL: u64 = 10_000_000;
pub const DEFAULT_MEMORY: u64 = 16 << 20;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
pub const DEFAULT_OUTPUT: u64 = 1 << 20;
/// The most any manifest may ask for.
pub const MAX_MEMORY: u64 = 256 << 20;
/// The longest deadline a manifest may ask for, unless the operator sets
/// `DEALRULES_PLUGIN_MAX_TIMEOUT` (a duration such as `2s`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);
/// The most fuel a manifest may ask for, unless the operator sets
/// `DEALRULES_PLUGIN_MAX_FUEL`.
pub const MAX_FUEL: u64 = 100_000_000_000;

/// The engine-wide ceilings on what a manifest may ask for: the defaults
/// above, or the operator's environment settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceilings {
    pub fuel: u64,
    pub timeout: Duration,
    pub memory: u64,
}

impl Ceilings {
    /// From `DEALRULES_PLUGIN_MAX_TIMEOUT` and `DEALRULES_PLUGIN_MAX_FUEL`;
    /// an unreadable setting is an error naming it, never ignored.
    pub fn from_env() -> Result<Ceilings, String> {
        let mut c = Ceilings {
            fuel: MAX_FUEL,
            timeout: MAX_TIMEOUT,
            memory: MAX_MEMORY,
        };
        if let Ok(t) = std::env::var("DEALRULES_PLUGIN_MAX_TIMEOUT") {
            c.timeout = dealrules_model::duration::parse_duration(&t)
                .map_err(|e| format!("DEALRULES_PLUGIN_MAX_TIMEOUT: {e}"))?;
        }
        if let Ok(f) = std::env::var("DEALRULES_PLUGIN_MAX_FUEL") {
            c.fuel = f
                .trim()
                .replace('_', "")
                .parse()
                .map_err(|e| format!("DEALRULES_PLUGIN_MAX_FUEL `{f}`: {e}"))?;
        }
        Ok(c)
    }
}
/// Wasm stack per call.
pub const WASM_STACK: usize = 256 << 10;
/// Instances alive at once, across plugins.
pub const POOL_INSTANCES: u32 = 64;
/// Core instances one component may make (its runtime, adapters, shims):
/// a Python component (componentize-py) makes 38.
pub const COMPONENT_CORE_INSTANCES: u32 = 64;
/// Core instances alive at once, across plugins: a component counts each
/// of its own.
pub const POOL_CORE_INSTANCES: u32 = 1024;
/// Memories one component may define.
pub const COMPONENT_MEMORIES: u32 = 4;
/// Elements of a table: a language runtime's function table is large.
pub const TABLE_ELEMENTS: usize = 100_000;

/// What went wrong, in a word, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The module is not what the manifest pins, or does not compile, or
    /// does not follow the ABI.
    Load,
    OutOfFuel,
    Timeout,
    MemoryLimit,
    StackOverflow,
    Trap,
    OutputTooLarge,
    CapabilityDenied,
    /// The plugin answered `{"error": ...}` or an answer that is not the ABI's.
    Plugin,
}

/// The one mapping of the host's causes onto the engine's.
impl From<ErrorKind> for dealrules_core::PluginFailure {
    fn from(kind: ErrorKind) -> Self {
        use dealrules_core::PluginFailure as F;
        match kind {
            ErrorKind::Load => F::Load,
            ErrorKind::OutOfFuel => F::OutOfFuel,
            ErrorKind::Timeout => F::Timeout,
            ErrorKind::MemoryLimit => F::MemoryLimit,
            ErrorKind::StackOverflow => F::StackOverflow,
            ErrorKind::Trap => F::Trap,
            ErrorKind::OutputTooLarge => F::OutputTooLarge,
            ErrorKind::CapabilityDenied => F::CapabilityDenied,
            ErrorKind::Plugin => F::Plugin,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}`{}: {detail}", function.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
pub struct PluginError {
    pub plugin: String,
    pub function: Option<String>,
    pub kind: ErrorKind,
    pub detail: String,
}

/// A call's answer and what it cost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallOutcome {
    pub value: Value,
    pub fuel_used: u64,
    pub micros: u64,
    /// Lines the plugin logged (with the `log` capability).
    pub log: Vec<String>,
}

/// The process's wasmtime engine.
pub fn engine() -> Result<&'static Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_core_instances(POOL_CORE_INSTANCES)
                .total_memories(POOL_INSTANCES)
                .total_tables(POOL_CORE_INSTANCES)
                .max_memories_per_module(1)
                .max_tables_per_module(1)
                .max_memory_size(MAX_MEMORY as usize)
                .table_elements(TABLE_ELEMENTS)
                // Components (ABI v2): a JavaScript or Python runtime is a
                // handful of core instances sharing one or two memories.
                .total_component_instances(POOL_INSTANCES)
                .max_core_instances_per_component(COMPONENT_CORE_INSTANCES)
                .max_memories_per_component(COMPONENT_MEMORIES)
                .max_tables_per_component(COMPONENT_CORE_INSTANCES);
            let mut config = Config::new();
            config
                .consume_fuel(true)
                .epoch_interruption(true)
                .max_wasm_stack(WASM_STACK)
                .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            let engine = Engine::new(&config).map_err(|e| format!("cannot start the WebAssembly engine: {e:#}"))?;
            let weak = engine.weak();
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_millis(1));
                        match weak.upgrade() {
                            Some(e) => e.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(|e| format!("cannot start the plugin deadline clock: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Where compiled plugins are kept: `DEALRULES_PLUGIN_CACHE`, else
/// `$XDG_CACHE_HOME/dealrules/plugins` or `~/.cache/dealrules/plugins`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DEALRULES_PLUGIN_CACHE") {
        return (!d.is_empty()).then(|| PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("dealrules").join("plugins"))
}

/// The limits of one plugin, from its manifest.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub fuel: u64,
    pub memory: u64,
    pub timeout: Duration,
    pub output: u64,
}

/// Capabilities a manifest granted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    pub clock: bool,
    pub random: bool,
    pub log: bool,
}

/// A plugin ready to call: compiled, linked, checked against the ABI.
pub struct Plugin {
    pub name: String,
    pub sha256: String,
    pub exports: Vec<String>,
    pub limits: Limits,
    pub caps: Caps,
    /// Which ABI the plugin was built for: 1 (a core module) or 2 (a component).
    pub abi: u8,
    inputs: Vec<Vec<String>>,
    config: Value,
    code: Code,
    /// Whether the compiled code came from the disk cache.
    pub from_cache: bool,
    /// Time to compile (or read from the cache) and link.
    pub load_micros: u64,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("exports", &self.exports)
            .finish()
    }
}

/// What a call instantiates.
enum Code {
    Module(InstancePre<Host>),
    Component(component::Linked),
}

/// The state of one call's store.
pub(crate) struct Host {
    limiter: Limiter,
    pub(crate) caps: Caps,
    pub(crate) log: Vec<String>,
    /// When the call must be done: host functions doing work for the
    /// guest stop here too.
    pub(crate) deadline: Instant,
}

/// The memory of all a call's memories together (a component may have
/// more than one), against the manifest's `limits.memory`.
struct Limiter {
    max: usize,
    used: usize,
}

impl Limiter {
    fn new(max: u64) -> Limiter {
        Limiter {
            max: max as usize,
            used: 0,
        }
    }
}

#[derive(Debug)]
pub(crate) struct MemoryLimit {
    limit: usize,
    desired: usize,
}

impl std::fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory limit of {} bytes reached (it asked for {})",
            self.limit, self.desired
        )
    }
}

impl std::error::Error for MemoryLimit {}

#[derive(Debug)]
pub(crate) struct CapabilityDenied {
    pub(crate) capability: &'static str,
    pub(crate) import: String,
}

impl std::fmt::Display for CapabilityDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.capability == "files" || self.capability == "network" || self.capability == "environment" {
            write!(
                f,
                "capability denied: plugins get no {} ({})",
                self.capability, self.import
            )
        } else {
            write!(
                f,
                "capability denied: `{}` is not granted in the manifest ({})",
                self.capability, self.import
            )
        }
    }
}

impl std::error::Error for CapabilityDenied {}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.max {
            return Err(wasmtime::Error::new(MemoryLimit {
                limit: self.max,
                desired: total,
            }));
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS)
    }
}

fn limits_of(spec: &PluginSpec) -> Result<Limits, String> {
    let ceilings = Ceilings::from_env()?;
    let l = spec.limits.clone().unwrap_or_default();
    let memory = match &l.memory {
        Some(m) => dealrules_model::duration::parse_bytes(m)?,
        None => DEFAULT_MEMORY,
    };
    if memory > ceilings.memory {
        return Err(format!(
            "limits.memory {memory} is above the engine's {} bytes",
            ceilings.memory
        ));
    }
    let timeout = match &l.timeout {
        Some(t) => dealrules_model::duration::parse_duration(&t.0)?,
        None => DEFAULT_TIMEOUT,
    };
    if timeout > ceilings.timeout {
        return Err(format!(
            "limits.timeout {timeout:?} is above the engine's maximum of {:?} (DEALRULES_PLUGIN_MAX_TIMEOUT)",
            ceilings.timeout
        ));
    }
    let fuel = l.fuel.unwrap_or(DEFAULT_FUEL);
    if fuel > ceilings.fuel {
        return Err(format!(
            "limits.fuel {fuel} is above the engine's maximum of {} (DEALRULES_PLUGIN_MAX_FUEL)",
            ceilings.fuel
        ));
    }
    let output = match &l.output {
        Some(o) => dealrules_model::duration::parse_bytes(o)?,
        None => DEFAULT_OUTPUT,
    };
    Ok(Limits {
        fuel,
        memory,
        timeout,
        output,
    })
}

impl Plugin {
    /// Checks the module against the manifest, compiles it (or reads the
    /// compiled code from `cache`), links the imports its capabilities
    /// allow and checks the ABI's exports.
    pub fn load(
        name: &str,
        spec: &PluginSpec,
        wasm: &[u8],
        cache: Option<&std::path::Path>,
    ) -> Result<Plugin, PluginError> {
        let err = |detail: String| PluginError {
            plugin: name.to_string(),
            function: None,
            kind: ErrorKind::Load,
            detail,
        };
        let started = Instant::now();
        // The hash first: nothing unpinned is ever compiled.
        let sha = hex::encode(Sha256::digest(wasm));
        if !sha.eq_ignore_ascii_case(&spec.sha256) {
            return Err(err(format!(
                "the module has sha256 {sha}, not the pinned {}",
                spec.sha256
            )));
        }
        let limits = limits_of(spec).map_err(err)?;
        let mut caps = Caps::default();
        for c in &spec.capabilities {
            match c.as_str() {
                "clock" => caps.clock = true,
                "random" => caps.random = true,
                "log" => caps.log = true,
                other => return Err(err(format!("unknown capability `{other}`"))),
            }
        }
        let engine = engine().map_err(err)?;
        let (code, from_cache) = if component::is_component(wasm) {
            let (c, from_cache) =
                cache::load_component(engine, wasm, &sha, cache).map_err(|e| err(format!("does not compile: {e}")))?;
            (Code::Component(component::link(engine, &c).map_err(err)?), from_cache)
        } else {
            let (pre, from_cache) = load_module(engine, spec, wasm, &sha, &limits, cache).map_err(err)?;
            (Code::Module(pre), from_cache)
        };
        let inputs = spec
            .inputs
            .iter()
            .map(|p| p.split('.').map(str::to_string).collect())
            .collect();
        let mut plugin = Plugin {
            name: name.to_string(),
            sha256: sha,
            exports: spec.exports.clone(),
            limits,
            caps,
            abi: if matches!(code, Code::Component(_)) { 2 } else { 1 },
            inputs,
            config: serde_json::to_value(&spec.config).unwrap_or(Value::Null),
            code,
            from_cache,
            load_micros: 0,
        };
        // A component says which functions `call` answers: every one the
        // manifest lists must be among them.
        if plugin.abi == 2 {
            let served = plugin.functions().map_err(|e| err(e.detail))?;
            for f in &spec.exports {
                if !served.contains(f) {
                    return Err(err(format!(
                        "the manifest lists `{f}`, which the component does not serve (its functions: {})",
                        served.join(", ")
                    )));
                }
            }
        }
        plugin.load_micros = started.elapsed().as_micros() as u64;
        Ok(plugin)
    }

    /// Only the fields of `facts` the manifest's `inputs:` name.
    pub fn project(&self, facts: &Value) -> Value {
        let mut out = json!({});
        for path in &self.inputs {
            let mut v = facts;
            let mut found = true;
            for k in path {
                match v.get(k) {
                    Some(x) => v = x,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            if found {
                insert_at(&mut out, path, v.clone());
            }
        }
        out
    }

    /// Calls `function` with the facts (projected to the manifest's inputs)
    /// in a fresh instance.
    pub fn call(&self, function: &str, facts: &Value) -> Result<CallOutcome, PluginError> {
        let err = |kind: ErrorKind, detail: String| PluginError {
            plugin: self.name.clone(),
            function: Some(function.to_string()),
            kind,
            detail,
        };
        if !self.exports.iter().any(|e| e == function) {
            return Err(err(
                ErrorKind::Load,
                format!("does not export `{function}` (exports: {})", self.exports.join(", ")),
            ));
        }
        let input = self.project(facts);
        let started = Instant::now();
        let mut store = self.store(started);
        let result = match &self.code {
            Code::Module(pre) => self.run_module(pre, &mut store, function, &input).map(Answer::V1),
            Code::Component(linked) => self.run_component(linked, &mut store, function, &input).map(Answer::V2),
        };
        let fuel_used = self.limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let micros = started.elapsed().as_micros() as u64;
        let log = std::mem::take(&mut store.data_mut().log);
        let answer = result.map_err(|e| classify(&e, &self.limits, err))?;
        let value = match answer {
            Answer::V1(bytes) => {
                let answer: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| err(ErrorKind::Plugin, format!("the answer is not JSON: {e}")))?;
                match (answer.get("ok"), answer.get("error")) {
                    (Some(v), None) => v.clone(),
                    (None, Some(e)) => {
                        return Err(err(
                            ErrorKind::Plugin,
                            e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string()),
                        ));
                    }
                    _ => {
                        return Err(err(
                            ErrorKind::Plugin,
                            "the answer must be {\"ok\": ...} or {\"error\": \"...\"}".into(),
                        ));
                    }
                }
            }
            Answer::V2(Ok(text)) => serde_json::from_str(&text)
                .map_err(|e| err(ErrorKind::Plugin, format!("the answer is not JSON: {e}")))?,
            Answer::V2(Err(message)) => return Err(err(ErrorKind::Plugin, message)),
        };
        Ok(CallOutcome {
            value,
            fuel_used,
            micros,
            log,
        })
    }

    /// A component's own list of the functions its `call` answers, asked in
    /// a fresh instance under the manifest's limits; empty for a v1 module.
    pub fn functions(&self) -> Result<Vec<String>, PluginError> {
        let Code::Component(linked) = &self.code else {
            return Ok(Vec::new());
        };
        let mut store = self.store(Instant::now());
        let run = |store: &mut Store<Host>| -> wasmtime::Result<Vec<String>> {
            let instance = linked.pre.instantiate(&mut *store).map_err(|e| e.context(Starting))?;
            let f = instance.get_typed_func::<(), (Vec<String>,)>(&mut *store, &linked.functions)?;
            Ok(f.call(&mut *store, ())?.0)
        };
        run(&mut store).map_err(|e| {
            classify(&e, &self.limits, |kind, detail| PluginError {
                plugin: self.name.clone(),
                function: Some("functions".into()),
                kind,
                detail,
            })
        })
    }

    /// A store for one call: the manifest's fuel, memory and deadline.
    fn store(&self, started: Instant) -> Store<Host> {
        let engine = match &self.code {
            Code::Module(pre) => pre.module().engine(),
            Code::Component(linked) => linked.pre.component().engine(),
        };
        let mut store = Store::new(
            engine,
            Host {
                limiter: Limiter::new(self.limits.memory),
                caps: self.caps,
                log: Vec::new(),
                deadline: started + self.limits.timeout,
            },
        );
        store.limiter(|h| &mut h.limiter);
        // Fuel is always on in this engine, so setting it cannot fail.
        let _ = store.set_fuel(self.limits.fuel);
        // Epoch ticks are 1 ms; at least one tick past the deadline.
        store.set_epoch_deadline((self.limits.timeout.as_millis() as u64).max(1) + 1);
        store
    }

    /// ABI v1: the request written through `dr_alloc`, the answer read from
    /// where the function says it lies.
    fn run_module(
        &self,
        pre: &InstancePre<Host>,
        store: &mut Store<Host>,
        function: &str,
        input: &Value,
    ) -> wasmtime::Result<Vec<u8>> {
        let request = serde_json::to_vec(&json!({ "function": function, "input": input, "config": self.config }))?;
        // Starting the module (its data segments, tables, start and
        // `_initialize` code) is told apart from the call, so a limit hit
        // there says so.
        let start = |store: &mut Store<Host>| -> wasmtime::Result<wasmtime::Instance> {
            let instance = pre.instantiate(&mut *store)?;
            if let Ok(init) = instance.get_typed_func::<(), ()>(&mut *store, "_initialize") {
                init.call(&mut *store, ())?;
            }
            Ok(instance)
        };
        let instance = start(store).map_err(|e| e.context(Starting))?;
        let memory = instance
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| wasmtime::format_err!("no memory export"))?;
        let alloc = instance.get_typed_func::<u32, u32>(&mut *store, "dr_alloc")?;
        let f = instance.get_typed_func::<(u32, u32), u64>(&mut *store, function)?;
        let ptr = alloc.call(&mut *store, request.len() as u32)?;
        if ptr == 0 {
            return Err(wasmtime::format_err!("dr_alloc could not give {} bytes", request.len()));
        }
        memory.write(&mut *store, ptr as usize, &request)?;
        let packed = f.call(&mut *store, (ptr, request.len() as u32))?;
        let (at, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        if len as u64 > self.limits.output {
            return Err(wasmtime::Error::new(OutputTooLarge {
                limit: self.limits.output,
                len,
            }));
        }
        memory
            .data(&*store)
            .get(at..at + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| wasmtime::format_err!("the answer at {at}..{} lies outside the plugin's memory", at + len))
    }

    /// ABI v2: `call(function, input, config)` on a fresh instance of the
    /// component; the answer (or the error message) is held to the output
    /// limit.
    fn run_component(
        &self,
        linked: &component::Linked,
        store: &mut Store<Host>,
        function: &str,
        input: &Value,
    ) -> wasmtime::Result<Result<String, String>> {
        let input = serde_json::to_string(input)?;
        let config = serde_json::to_string(&self.config)?;
        let instance = linked.pre.instantiate(&mut *store).map_err(|e| e.context(Starting))?;
        let f = instance.get_typed_func::<(&str, &str, &str), (Result<String, String>,)>(&mut *store, &linked.call)?;
        let (answer,) = f.call(&mut *store, (function, &input, &config))?;
        let len = match &answer {
            Ok(text) | Err(text) => text.len(),
        };
        if len as u64 > self.limits.output {
            return Err(wasmtime::Error::new(OutputTooLarge {
                limit: self.limits.output,
                len,
            }));
        }
        Ok(answer)
    }
}

/// What a call answered, before it is read as JSON.
enum Answer {
    /// ABI v1: `{"ok": ...}` or `{"error": ...}` as bytes.
    V1(Vec<u8>),
    /// ABI v2: the JSON text of the answer, or the plugin's error message.
    V2(Result<String, String>),
}

/// ABI v1: the module compiled (or read from the cache), checked against the
/// ABI's exports and the manifest's, and linked.
fn load_module(
    engine: &Engine,
    spec: &PluginSpec,
    wasm: &[u8],
    sha: &str,
    limits: &Limits,
    cache: Option<&std::path::Path>,
) -> Result<(InstancePre<Host>, bool), String> {
    let (module, from_cache) = cache::load(engine, wasm, sha, cache).map_err(|e| format!("does not compile: {e}"))?;
    for required in ["memory", "dr_alloc", "dealrules_abi_v1"] {
        if module.get_export(required).is_none() {
            return Err(format!(
                "does not export `{required}`: not built for the dealrules plugin ABI v1"
            ));
        }
    }
    // A module whose starting memory is over the limit would fail every
    // call; say so at load, with both figures.
    if let Some(wasmtime::ExternType::Memory(m)) = module.get_export("memory") {
        let initial = m.minimum().saturating_mul(m.page_size());
        if initial > limits.memory {
            return Err(format!(
                "the module starts with {initial} bytes of memory ({} pages), more than limits.memory of {} bytes: raise limits.memory or build with a smaller stack and heap",
                m.minimum(),
                limits.memory
            ));
        }
    }
    for f in &spec.exports {
        match module.get_export(f) {
            Some(wasmtime::ExternType::Func(t)) if t.params().len() == 2 && t.results().len() == 1 => {}
            Some(_) => return Err(format!("export `{f}` is not a function (i32, i32) -> i64")),
            None => {
                return Err(format!("the manifest lists `{f}`, which the module does not export"));
            }
        }
    }
    let mut linker: Linker<Host> = Linker::new(engine);
    imports::link(&mut linker, &module)?;
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| format!("cannot link: {e:#}"))?;
    Ok((pre, from_cache))
}

#[derive(Debug)]
struct OutputTooLarge {
    limit: u64,
    len: usize,
}

impl std::fmt::Display for OutputTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the answer has {} bytes, more than the output limit of {}",
            self.len, self.limit
        )
    }
}

impl std::error::Error for OutputTooLarge {}

/// Marks an error met while the module was being started, not called.
#[derive(Debug)]
struct Starting;

impl std::fmt::Display for Starting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("while starting the module (data segments, tables, start code)")
    }
}

impl std::error::Error for Starting {}

fn classify(e: &wasmtime::Error, limits: &Limits, err: impl Fn(ErrorKind, String) -> PluginError) -> PluginError {
    let plain = classify_call(e, limits, &err);
    if e.is::<Starting>() {
        return err(
            plain.kind,
            format!(
                "{} while starting the module (its data segments, tables and start code count against the limits too)",
                plain.detail
            ),
        );
    }
    plain
}

fn classify_call(e: &wasmtime::Error, limits: &Limits, err: impl Fn(ErrorKind, String) -> PluginError) -> PluginError {
    if let Some(m) = e.downcast_ref::<MemoryLimit>() {
        return err(ErrorKind::MemoryLimit, m.to_string());
    }
    if let Some(c) = e.downcast_ref::<CapabilityDenied>() {
        return err(ErrorKind::CapabilityDenied, c.to_string());
    }
    if let Some(o) = e.downcast_ref::<OutputTooLarge>() {
        return err(ErrorKind::OutputTooLarge, o.to_string());
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => err(ErrorKind::OutOfFuel, format!("ran out of fuel ({} units)", limits.fuel)),
        Some(Trap::Interrupt) => err(
            ErrorKind::Timeout,
            format!("did not finish within {:?}", limits.timeout),
        ),
        Some(Trap::StackOverflow) => err(ErrorKind::StackOverflow, "stack overflow (wasm stack exhausted)".into()),
        Some(Trap::MemoryOutOfBounds) => err(
            ErrorKind::Trap,
            "trapped: out-of-bounds memory access (a C stack overflow lands here too)".into(),
        ),
        Some(t) => err(ErrorKind::Trap, format!("trapped: {t}")),
        None => err(ErrorKind::Trap, format!("{e:#}")),
    }
}

/// Sets `value` at `path` in `out`, making the objects on the way.
fn insert_at(out: &mut Value, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(map) = out.as_object_mut() else { return };
    if rest.is_empty() {
        map.insert(first.clone(), value);
    } else {
        insert_at(map.entry(first.clone()).or_insert_with(|| json!({})), rest, value);
    }
}

/// The plugins of a pack, by name.
#[derive(Debug, Default)]
pub struct Plugins {
    pub by_name: std::collections::HashMap<String, Arc<Plugin>>,
}

impl Plugins {
    /// Loads every Plugin document of a pack; every failure, each naming
    /// its plugin.
    pub fn load_pack(
        pack: &dealrules_model::Pack,
        cache: Option<&std::path::Path>,
    ) -> Result<Plugins, Vec<PluginError>> {
        let mut by_name = std::collections::HashMap::new();
        let mut errors = Vec::new();
        for doc in pack
            .documents
            .iter()
            .filter(|d| d.kind == dealrules_model::Kind::Plugin)
        {
            let dealrules_model::Spec::Plugin(spec) = &doc.spec else {
                continue;
            };
            let dir = doc
                .file
                .rsplit_once('/')
                .map(|(d, _)| format!("{d}/"))
                .unwrap_or_default();
            let Some(wasm) = pack.source.files.get(&format!("{dir}{}", spec.wasm)) else {
                errors.push(PluginError {
                    plugin: doc.metadata.name.clone(),
                    function: None,
                    kind: ErrorKind::Load,
                    detail: format!("no module `{dir}{}` in the pack", spec.wasm),
                });
                continue;
            };
            match Plugin::load(&doc.metadata.name, spec, wasm, cache) {
                Ok(p) => {
                    by_name.insert(doc.metadata.name.clone(), Arc::new(p));
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Plugins { by_name })
        } else {
            Err(errors)
        }
    }
}

impl dealrules_core::PluginRuntime for Plugins {
    fn call(
        &self,
        plugin: &str,
        function: &str,
        facts: &Value,
    ) -> Result<dealrules_core::PluginCall, dealrules_core::PluginCallError> {
        let p = self
            .by_name
            .get(plugin)
            .ok_or_else(|| dealrules_core::PluginCallError {
                kind: dealrules_core::PluginFailure::NotLoaded,
                message: format!("plugin `{plugin}` is not loaded"),
            })?;
        let out = p.call(function, facts).map_err(|e| dealrules_core::PluginCallError {
            kind: e.kind.into(),
            message: e.to_string(),
        })?;
        Ok(dealrules_core::PluginCall {
            value: out.value,
            fuel_used: out.fuel_used,
            micros: out.micros,
            log: out.log,
        })
    }
}

/// Loads a snapshot's plugins and attaches them, so its decisions can call
/// them; every failure as `file:line:col: Plugin/name: message`.
pub fn attach(snapshot: &mut dealrules_core::Snapshot, cache: Option<&std::path::Path>) -> Result<(), Vec<String>> {
    if !snapshot.has_plugins() {
        return Ok(());
    }
    match Plugins::load_pack(&snapshot.pack, cache) {
        Ok(plugins) => {
            snapshot.attach_plugins(Arc::new(plugins));
            Ok(())
        }
        Err(errors) => Err(errors
            .iter()
            .map(|e| match snapshot.pack.find(dealrules_model::Kind::Plugin, &e.plugin) {
                Some(doc) => doc.error_at("spec.wasm", e.detail.clone()).to_string(),
                None => e.to_string(),
            })
            .collect()),
    }
}
