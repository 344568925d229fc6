//! Every console page an admin opens, over real HTTP on loopback, on the
//! demo company's data (`dealrules serve --demo`): the time from sending the
//! GET to reading the whole page, on one kept-alive connection, signed in.
//!
//! `cargo bench -p dealrules-server --bench console_pages` starts the server
//! in process on 127.0.0.1 with the default `rules/` pack and a SQLite store
//! in a temporary folder, seeds the demo company through the runtime (as
//! `serve --demo` does), logs a few decisions, opens a session for an admin
//! token and measures each page. Under `cargo test` (no `--bench`) each page
//! is fetched once as a smoke test. The issue's bar is every page under
//! 100 ms; the medians are in `docs/benchmarks.md`, "Console pages".

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use dealrules_server::auth::{TokenBook, hash_token};
use dealrules_server::state::{AppState, Setup};
use dealrules_store::{SessionRecord, Store};

const TOKEN: &str = "bench-admin";
const SESSION: &str = "bench-session";
const DECIDE: &str = r#"{"deal": {"id": "d-1001", "amount": 120000, "discount_pct": 22.5, "region": "APAC", "payment_terms_days": 90, "owner": "r1"}}"#;

/// One kept-alive connection to the console, signed in.
struct Browser {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    addr: String,
}

impl Browser {
    fn open(addr: &str) -> Browser {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Browser {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
            addr: addr.to_string(),
        }
    }

    /// A request's status and body; bodies are read by `Content-Length`
    /// (the console's pages are not chunked).
    fn send(&mut self, request: &str) -> (u16, String) {
        self.writer.write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        let mut length = 0usize;
        let mut status = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if let Some(rest) = line.strip_prefix("HTTP/1.1 ") {
                status = rest[..3].parse().unwrap();
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A console page, signed in; it must answer 200.
    fn page(&mut self, path: &str) -> String {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: dealrules_session={SESSION}\r\nAccept-Language: en\r\n\r\n",
            self.addr
        );
        let (status, body) = self.send(&request);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn decide(&mut self) {
        let request = format!(
            "POST /v1/decide/discount-approvals HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{DECIDE}",
            self.addr,
            DECIDE.len()
        );
        let (status, body) = self.send(&request);
        assert_eq!(status, 200, "{body}");
    }
}

/// The first link on `html` that starts with `prefix`, entities undone.
fn first_link(html: &str, prefix: &str) -> String {
    let needle = format!("href=\"{prefix}");
    let at = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no link to {prefix}... on the page"));
    html[at + "href=\"".len()..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

/// The demo company served on loopback; the address.
fn serve(
    runtime: &tokio::runtime::Runtime,
    dir: &std::path::Path,
) -> (String, Arc<AppState>, Option<(String, String)>) {
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let db = format!("sqlite://{}", dir.join("console.db").display());
    runtime.block_on(async {
        let store = Arc::new(Store::open(&db).await.unwrap());
        let token_hash = hex::encode(hash_token(TOKEN));
        store
            .tokens()
            .add_token(&token_hash, "admin", "bench", &[], "bench")
            .await
            .unwrap();
        let (snapshot, activation, errors) = dealrules_server::reload::startup(&store, &rules).await.unwrap();
        assert!(errors.is_none(), "{errors:?}");
        let state = AppState::start(Setup {
            snapshot,
            activation,
            rules_dir: rules.clone(),
            store: store.clone(),
            fixed_tokens: TokenBook::default(),
            decision_log: true,
            clock: Default::default(),
            four_eyes: true,
        })
        .await
        .unwrap();
        let company = dealrules_workflow::demo::seed(store.clone(), state.snapshot.load_full(), state.clock.now())
            .await
            .unwrap();
        eprintln!(
            "console_pages: the demo company, {} people, {} deals, {} approvals pending",
            company.people, company.deals, company.pending_approvals
        );
        state.tokens.refresh(&store.tokens()).await.unwrap();
        let now = chrono::Utc::now();
        store
            .sessions()
            .add_session(&SessionRecord {
                id_hash: hex::encode(hash_token(SESSION)),
                token_hash,
                subject: "bench".into(),
                csrf: "bench-csrf".into(),
                created_at: dealrules_store::timestamp(now),
                expires_at: dealrules_store::timestamp(now + chrono::Duration::hours(8)),
            })
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = dealrules_server::routes::app(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, state, company.run)
    })
}

fn console_pages(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (addr, state, run) = serve(&runtime, dir.path());
    let mut browser = Browser::open(&addr);
    // A day's decisions in the log, for the log's pages.
    for _ in 0..20 {
        browser.decide();
    }
    runtime.block_on(state.log.flush());

    // The pages' addresses, found as an admin finds them: by their links.
    let policies = browser.page("/admin/policies");
    let policy = first_link(&policies, "/admin/policies/ApprovalPolicy/");
    let deals = browser.page("/admin/deals");
    let deal = first_link(&deals, "/admin/deals/d");
    let decisions = browser.page("/admin/decisions");
    let decision = first_link(&decisions, "/admin/decisions/");
    let (run, period) = run.expect("the demo publishes a run");
    let run_path = format!("/admin/runs/{run}");
    let run_page = browser.page(&run_path);
    let statement = first_link(&run_page, "/admin/statements?rep=");
    let _ = period;
    let pages = [
        ("overview", "/admin".to_string()),
        ("policies", "/admin/policies".to_string()),
        ("policy", policy),
        ("approvals", "/admin/approvals".to_string()),
        ("deals", "/admin/deals".to_string()),
        ("deal", deal),
        ("runs", "/admin/runs".to_string()),
        ("run", run_path),
        ("statements", statement),
        ("decisions", "/admin/decisions".to_string()),
        ("decision", decision),
        // The targets' page opens on the current quarter of their year.
        ("targets", "/admin/targets?name=fy2026&by=rep".to_string()),
        ("funnel", "/admin/funnel?funnel=b2b".to_string()),
    ];
    let mut group = c.benchmark_group("console");
    group.sample_size(30);
    group.measurement_time(std::time::Duration::from_secs(3));
    group.warm_up_time(std::time::Duration::from_millis(500));
    for (name, path) in &pages {
        // Each page once before it is timed: it must answer 200.
        browser.page(path);
        group.bench_function(*name, |b| b.iter(|| browser.page(path).len()));
    }
    group.finish();
    drop(browser);
    runtime.block_on(state.log.flush());
    runtime.block_on(state.store.close());
}

criterion_group!(benches, console_pages);
criterion_main!(benches);
