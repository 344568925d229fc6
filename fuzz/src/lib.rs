//! What the fuzz targets share: the repo's own packs, read once, and a
//! worker thread with the stack a server worker has.
//!
//! The server decides and loads packs on tokio's threads (2 MiB stacks), not
//! on a main thread's 8 MiB, so a recursion that survives `dealrules check`
//! can still abort the server. Every target runs its input on a thread of
//! that size.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{LazyLock, Mutex};

use dealrules_core::Snapshot;
use dealrules_model::PackSource;

/// The evaluation time every target passes, so runs are reproducible.
pub const NOW: &str = "2026-03-31T00:00:00Z";

/// Stack of a tokio worker or blocking thread (tokio's default).
pub const SERVER_STACK_BYTES: usize = 2 << 20;

/// The repository root (this crate is `fuzz/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_pack(rel: &str) -> PackSource {
    let dir = repo().join(rel);
    PackSource::from_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
}

/// The default pack, `rules/`: approvals, a funnel, tables, a script, tests.
pub static RULES: LazyLock<PackSource> = LazyLock::new(|| read_pack("rules"));

/// `examples/acme`: incentive plans and targets, with tests. Only the files
/// a pack loader reads (YAML and scripts), not the example's data.
pub static INCENTIVES: LazyLock<PackSource> = LazyLock::new(|| {
    let mut pack = read_pack("examples/acme");
    pack.files.retain(|path, _| path.ends_with(".yaml") || path.ends_with(".rhai"));
    pack
});

/// The golden incentive pack: splits, clawbacks, draws, a script kicker.
pub static GOLDEN_INCENTIVES: LazyLock<PackSource> = LazyLock::new(|| read_pack("tests/golden/incentives/pack"));

/// The packs above, compiled once; each must load, or the target is wrong.
pub static SNAPSHOTS: LazyLock<Vec<Snapshot>> = LazyLock::new(|| {
    [&*RULES, &*INCENTIVES, &*GOLDEN_INCENTIVES]
        .into_iter()
        .map(|source| Snapshot::load(source.clone()).unwrap_or_else(|e| panic!("a seed pack does not load: {e}")))
        .collect()
});

type Job = Box<dyn FnOnce() + Send>;

struct Worker {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<()>,
}

static WORKER: LazyLock<Mutex<Worker>> = LazyLock::new(|| {
    let (jobs, incoming) = mpsc::channel::<Job>();
    let (finished, done) = mpsc::channel();
    std::thread::Builder::new()
        .name("fuzz-worker".into())
        .stack_size(SERVER_STACK_BYTES)
        .spawn(move || {
            for job in incoming {
                job();
                let _ = finished.send(());
            }
        })
        .expect("spawning the fuzz worker thread");
    Mutex::new(Worker { jobs, done })
});

/// Runs `job` on a thread with a server worker's stack and waits for it. A
/// panic there aborts the process (libfuzzer-sys's panic hook), so libFuzzer
/// records it as a crash like one on the main thread.
pub fn on_server_stack(job: impl FnOnce() + Send + 'static) {
    let worker = WORKER.lock().unwrap_or_else(|e| e.into_inner());
    worker.jobs.send(Box::new(job)).expect("the fuzz worker is gone");
    worker.done.recv().expect("the fuzz worker is gone");
}
