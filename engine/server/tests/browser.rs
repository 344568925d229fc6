//! The admin console in a real headless Chromium, driven over WebDriver
//! (chromedriver on a loopback port, the server on another): sign in with
//! the keyboard, try a policy and read why rules did not match, approve a
//! discount from the inbox, read one's own statement and be refused a
//! peer's in words, and walk the console in Chinese with no English label
//! left. Screenshots of the main pages go to
//! `<target>/console-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `DEALRULES_CHROMIUM`
//! and `DEALRULES_CHROMEDRIVER`). Without them the test says so and passes,
//! unless `DEALRULES_REQUIRE_BROWSER=1` (as `.ci/run` sets): then it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A program on `PATH` (or named by `env`).
fn program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or why not (failing when they are required).
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = program("DEALRULES_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
    let driver = program("DEALRULES_CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let why = format!(
                "the console's browser tests need Chromium and chromedriver (apt-get install chromium chromium-driver); found chromium: {:?}, chromedriver: {:?}",
                c, d
            );
            if std::env::var("DEALRULES_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                panic!("{why}; DEALRULES_REQUIRE_BROWSER=1");
            }
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver(driver: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let d = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d
}

async fn start_browser(chromium: &Path, driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--lang=en-US", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": "en-US,en" },
        }),
    );
    let mut last = None;
    // chromedriver may accept connections a moment before it takes sessions.
    for _ in 0..20 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(c) => return c,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no browser session: {last:?}");
}

/// Where the screenshots go: `<target>/console-screenshots/`.
fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A screenshot of the whole page (the window grown to the page's height).
async fn shot(c: &Client, name: &str) {
    let height = c
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(1000)
        .clamp(600, 4000) as u32;
    c.set_window_size(1280, height + 140).await.unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
    c.set_window_size(1280, 1000).await.unwrap();
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

async fn path_of(c: &Client) -> String {
    let url = c.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Signs in as the keyboard would: type the token, press Enter.
async fn sign_in(c: &Client, base: &str, token: &str) {
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{base}/admin")).await.unwrap();
    assert_eq!(path_of(c).await, "/admin/signin", "no session: the sign-in page");
    let field = c.find(Locator::Id("token")).await.unwrap();
    field.send_keys(&format!("{token}\u{E007}")).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form.signout"))
        .await
        .unwrap();
    assert_eq!(path_of(c).await, "/admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_headless_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let (state, approval) = common::world::world().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, dealrules_server::routes::app(state)).await });
    let driver = start_driver(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let c = start_browser(&chromium, &driver, profile.path()).await;
    let outcome = journeys(&c, &base, &approval).await;
    let _ = c.close().await;
    drop(driver);
    outcome.unwrap();
}

/// Every journey, in one browser; an error names the journey.
async fn journeys(c: &Client, base: &str, approval: &str) -> Result<(), String> {
    sign_in_with_the_keyboard(c, base).await;
    try_it_shows_why_not(c, base).await;
    an_approver_approves_a_discount_from_the_inbox(c, base, approval).await;
    a_rep_reads_their_statement_but_not_a_peers(c, base).await;
    an_admin_reads_targets_pace_and_the_funnel(c, base).await;
    the_chinese_console_shows_no_english_label(c, base).await;
    an_admin_changes_a_commission_rate_and_a_second_admin_approves_it(c, base).await;
    a_broken_edit_shows_its_error_at_its_line_and_cannot_be_submitted(c, base).await;
    Ok(())
}

async fn sign_in_with_the_keyboard(c: &Client, base: &str) {
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{base}/admin/signin")).await.unwrap();
    shot(c, "signin").await;
    // A wrong token: the error is next to the field, in words.
    let field = c.find(Locator::Id("token")).await.unwrap();
    field.send_keys("not-a-token\u{E007}").await.unwrap();
    let error = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("token-error"))
        .await
        .unwrap();
    assert!(error.text().await.unwrap().contains("not known"));
    let invalid = c.find(Locator::Id("token")).await.unwrap();
    assert_eq!(invalid.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert!(
        invalid
            .attr("aria-describedby")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("token-error")
    );

    sign_in(c, base, "t-admin").await;
    assert!(text_of(c, "h1").await.contains("Overview"));
    // Keyboard: the first Tab reaches the skip link, and focus is visible.
    c.execute("document.activeElement.blur(); window.focus();", vec![])
        .await
        .unwrap();
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focused: Value = c
        .execute(
            "const e = document.activeElement; const s = getComputedStyle(e); return [e.className, e.getAttribute('href'), s.outlineStyle, s.outlineWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focused[0], "skip", "{focused}");
    assert_eq!(focused[1], "#main");
    assert_ne!(focused[2], "none", "a focused element shows an outline: {focused}");
    shot(c, "overview").await;
}

async fn try_it_shows_why_not(c: &Client, base: &str) {
    c.goto(&format!("{base}/admin/policies")).await.unwrap();
    shot(c, "policies").await;
    c.find(Locator::LinkText("discount-approvals"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let input = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("input"))
        .await
        .unwrap();
    input.clear().await.unwrap();
    input
        .send_keys(r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 30}, "why_not": true}"#)
        .await
        .unwrap();
    c.find(Locator::Css("form[action^='/admin/policies/'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("pre.result"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(result.contains("why_not"), "{result}");
    assert!(
        result.contains("\"small\""),
        "the rule that did not match is named: {result}"
    );
    assert!(result.contains("\"manager\""), "{result}");
    shot(c, "policy-try-it").await;
}

async fn an_approver_approves_a_discount_from_the_inbox(c: &Client, base: &str, approval: &str) {
    sign_in(c, base, "t-u17").await;
    c.find(Locator::LinkText("Approvals"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let card = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!("section[aria-labelledby='h-{approval}']")))
        .await
        .unwrap();
    let text = card.text().await.unwrap();
    assert!(text.contains("d-1001"), "{text}");
    assert!(text.contains("discount-approvals"), "{text}");
    assert!(
        text.contains("deal.discount_pct"),
        "the values the policy tested: {text}"
    );
    assert!(text.contains("mid"), "the rule that asked for approval: {text}");
    shot(c, "approvals-inbox").await;
    let comment = c.find(Locator::Id(&format!("comment-{approval}"))).await.unwrap();
    comment.send_keys("15% is fine for a three-year renewal").await.unwrap();
    c.find(Locator::Css(&format!(
        "form[action='/admin/approvals/{approval}'] button[value=approve]"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let notice = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("p.notice"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notice.contains("Approved") && notice.contains(approval), "{notice}");
    assert!(
        c.find(Locator::Css(&format!("section[aria-labelledby='h-{approval}']")))
            .await
            .is_err(),
        "decided: no longer in the inbox"
    );
    c.goto(&format!("{base}/admin/deals/d-1001")).await.unwrap();
    let approvals = text_of(c, "section[aria-labelledby='approvals-h']").await;
    assert!(approvals.contains("u-17"), "{approvals}");
    assert!(
        approvals.contains("15% is fine for a three-year renewal"),
        "{approvals}"
    );
    assert!(approvals.contains("approved"), "{approvals}");
    shot(c, "deal").await;
}

async fn a_rep_reads_their_statement_but_not_a_peers(c: &Client, base: &str) {
    sign_in(c, base, "t-ana").await;
    c.find(Locator::LinkText("Statements"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let rep = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("s-rep"))
        .await
        .unwrap();
    assert_eq!(
        rep.prop("value").await.unwrap().as_deref(),
        Some("ana"),
        "one's own id by default"
    );
    let period = c.find(Locator::Id("s-period")).await.unwrap();
    period.send_keys("2026-Q1\u{E007}").await.unwrap();
    let statement = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("section.card[aria-labelledby^='st-']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(statement.contains("ae-commission"), "{statement}");
    assert!(statement.contains("Credited bookings"), "{statement}");
    shot(c, "statement").await;

    // A peer's: the API refuses, the page says so in words.
    let rep = c.find(Locator::Id("s-rep")).await.unwrap();
    rep.clear().await.unwrap();
    rep.send_keys("ben\u{E007}").await.unwrap();
    let refusal = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(".refusal[role=alert]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(refusal.contains("Not allowed"), "{refusal}");
    assert!(
        refusal.contains("ana may read their own statements and their reports', not ben's"),
        "{refusal}"
    );
    assert!(
        c.find(Locator::Css("section.card[aria-labelledby^='st-']"))
            .await
            .is_err(),
        "nothing of ben's statement is shown"
    );
    shot(c, "statement-refused").await;
}

/// Targets and pace, then the funnel and its forecast, reached from the
/// navigation; the grouping switched with the form.
async fn an_admin_reads_targets_pace_and_the_funnel(c: &Client, base: &str) {
    sign_in(c, base, "t-admin").await;
    c.find(Locator::LinkText("Targets and pace"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("table.progress-table"))
        .await
        .unwrap();
    assert!(text_of(c, "h1").await.contains("Targets and pace"));
    // ana's won deals of Q1 count in Q1: her row has an actual and a bar.
    c.find(Locator::Id("tg-period")).await.unwrap().clear().await.unwrap();
    c.find(Locator::Id("tg-period"))
        .await
        .unwrap()
        .send_keys("2026-Q1\u{E007}")
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//h2[@id='tg-h' and contains(., '2026-Q1')]"))
        .await
        .unwrap();
    let table = text_of(c, "table.progress-table").await;
    assert!(table.contains("ana") && table.contains("210000.00"), "{table}");
    let bars = c
        .find_all(Locator::Css("table.progress-table svg.bar[role=img]"))
        .await
        .unwrap();
    assert!(!bars.is_empty());
    assert!(
        bars[0]
            .attr("aria-label")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("Attainment"),
        "the bar is named for assistive technology"
    );
    shot(c, "targets").await;
    // By region, with the form's select.
    c.find(Locator::Css("#tg-by option[value='region']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/admin/targets'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//h2[@id='tg-h' and contains(., 'Region')]"))
        .await
        .unwrap();
    let first = text_of(c, "table.progress-table tbody tr:first-child th").await;
    assert_eq!(first, "NA");

    c.find(Locator::LinkText("Funnel and forecast"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let forecast = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("fc-h"))
        .await
        .unwrap();
    assert_eq!(forecast.text().await.unwrap(), "Forecast");
    let stages = text_of(c, "main section.card table tbody").await;
    assert!(stages.contains("lead") && stages.contains("proposal"), "{stages}");
    shot(c, "funnel").await;
}

/// The English labels a Chinese page must not show: every label whose two
/// languages differ.
fn english_labels() -> Vec<&'static str> {
    dealrules_server::console::i18n::LABELS
        .iter()
        .filter(|(_, en, zh)| en != zh)
        .map(|(_, en, _)| *en)
        .collect()
}

async fn the_chinese_console_shows_no_english_label(c: &Client, base: &str) {
    sign_in(c, base, "t-admin").await;
    // The switch, with the keyboard's worth of clicks.
    c.find(Locator::Css("#lang-choice option[value='zh-CN']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form.lang button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("html[lang='zh-CN']"))
        .await
        .unwrap();
    let mut pages = vec![
        "/admin".to_string(),
        "/admin/policies".into(),
        "/admin/policies/ApprovalPolicy/discount-approvals".into(),
        "/admin/approvals".into(),
        "/admin/deals".into(),
        "/admin/deals/d-1001".into(),
        "/admin/runs".into(),
        "/admin/statements?rep=ana&period=2026-Q1".into(),
        "/admin/decisions".into(),
        "/admin/targets?name=fy2026&period=2026-Q1&by=rep".into(),
        "/admin/funnel?funnel=b2b&by=owner".into(),
        "/admin/changes".into(),
    ];
    // The first run and the first logged decision, as linked.
    for (list, prefix) in [
        ("/admin/runs", "/admin/runs/run_"),
        ("/admin/decisions", "/admin/decisions/"),
        ("/admin/changes", "/admin/changes/chg_"),
    ] {
        c.goto(&format!("{base}{list}")).await.unwrap();
        let hrefs: Value = c
            .execute(
                "return [...document.querySelectorAll('main a')].map(a => a.getAttribute('href'));",
                vec![],
            )
            .await
            .unwrap();
        let first = hrefs
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h.as_str())
            .find(|h| h.starts_with(prefix))
            .unwrap_or_else(|| panic!("{list} links a {prefix}...: {hrefs}"))
            .to_string();
        pages.push(first);
    }
    let english = english_labels();
    for path in &pages {
        c.goto(&format!("{base}{path}")).await.unwrap();
        let lang = c.find(Locator::Css("html")).await.unwrap().attr("lang").await.unwrap();
        assert_eq!(lang.as_deref(), Some("zh-CN"), "{path}");
        // What a reader sees and hears: the visible text, cell by cell and
        // line by line, and the names given to assistive technology.
        let seen: Value = c
            .execute(
                r#"const out = [];
                   // Text shown on screen, node by node; source code, JSON
                   // and ids (pre, code, a policy file in its editor) are
                   // content, not labels.
                   const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                   for (let n = walk.nextNode(); n; n = walk.nextNode()) {
                     const e = n.parentElement;
                     if (e.closest('pre, code, script, style, textarea')) continue;
                     if (!e.checkVisibility()) continue;
                     for (const line of n.textContent.split(/\n|\t/)) out.push(line.trim());
                   }
                   for (const e of document.querySelectorAll('[aria-label],[title],[placeholder]'))
                     for (const a of ['aria-label', 'title', 'placeholder']) if (e.getAttribute(a)) out.push(e.getAttribute(a).trim());
                   out.push(document.title);
                   return out.filter(s => s.length > 0);"#,
                vec![],
            )
            .await
            .unwrap();
        let seen: Vec<&str> = seen.as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert!(seen.len() > 5, "{path}: {seen:?}");
        for en in &english {
            for text in &seen {
                // A label is a whole line or cell; a long label is also
                // caught inside a sentence.
                let hit = text == en || text.starts_with(&format!("{en}:")) || (en.len() >= 12 && text.contains(en));
                assert!(!hit, "{path}: English label `{en}` on the zh-CN console, in `{text}`");
            }
        }
    }
    c.goto(&format!("{base}/admin/approvals")).await.unwrap();
    shot(c, "approvals-zh-CN").await;
    c.goto(&format!("{base}/admin/statements?rep=ana&period=2026-Q1"))
        .await
        .unwrap();
    shot(c, "statement-zh-CN").await;
    c.goto(&format!("{base}{}", pages[pages.len() - 3])).await.unwrap();
    shot(c, "run-zh-CN").await;
    c.goto(&format!("{base}/admin/decisions")).await.unwrap();
    shot(c, "decisions-zh-CN").await;
    c.goto(&format!("{base}/admin/targets?name=fy2026&period=2026-Q1&by=rep"))
        .await
        .unwrap();
    shot(c, "targets-zh-CN").await;
}

/// Waits for an element, then returns it.
async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            // What the page said instead, to tell why.
            let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let shown = text_of(c, "main").await;
            let tail: String = shown
                .chars()
                .rev()
                .take(1500)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!("no `{css}` on {url}: {e}\n...{tail}")
        }
    }
}

/// Opens a new change titled `title` from the changes page, and a file of
/// its base in an editor.
async fn open_a_change(c: &Client, base: &str, title: &str, file: &str) -> String {
    c.goto(&format!("{base}/admin")).await.unwrap();
    c.find(Locator::LinkText("Changes"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#new-title").await.send_keys(title).await.unwrap();
    c.find(Locator::Css("form[action='/admin/changes'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#open-file").await;
    let path = path_of(c).await;
    assert!(path.starts_with("/admin/changes/chg_"), "{path}");
    c.find(Locator::Css(&format!("#open-file option[value='{file}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form[method=get] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, &format!("textarea[name='file:{file}']")).await;
    path
}

/// Replaces `from` with `to` in a file's editor, typing the whole new text.
async fn edit(c: &Client, file: &str, from: &str, to: &str) {
    let editor = c
        .find(Locator::Css(&format!("textarea[name='file:{file}']")))
        .await
        .unwrap();
    let text = editor.prop("value").await.unwrap().unwrap_or_default();
    assert!(text.contains(from), "{file} has `{from}`");
    editor.clear().await.unwrap();
    editor.send_keys(&text.replace(from, to)).await.unwrap();
}

/// Saves the editors; the page the save redirects to (no file opened).
async fn save(c: &Client) {
    c.find(Locator::Id("save")).await.unwrap().click().await.unwrap();
    let started = Instant::now();
    while path_of(c).await.contains("?open=") {
        assert!(started.elapsed() < Duration::from_secs(20), "the save did not answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(c, "#validation").await;
}

async fn an_admin_changes_a_commission_rate_and_a_second_admin_approves_it(c: &Client, base: &str) {
    sign_in(c, base, "t-admin").await;
    let path = open_a_change(c, base, "AE base rate to 10%", "incentives.yaml").await;
    edit(
        c,
        "incentives.yaml",
        "- { upto: 1.0, rate: 0.08 }",
        "- { upto: 1.0, rate: 0.10 }",
    )
    .await;
    save(c).await;
    // The pack's own test of the plan now fails, at its line in the tests file.
    assert_eq!(text_of(c, "#tests-failed").await, "1");
    let elsewhere = text_of(c, "#errors-elsewhere").await;
    assert!(elsewhere.contains("tests/incentives.yaml"), "{elsewhere}");
    assert!(elsewhere.contains("policy test"), "{elsewhere}");
    c.find(Locator::Css("#errors-elsewhere a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "textarea[name='file:tests/incentives.yaml']").await;
    assert!(
        c.find(Locator::Css("pre.gutter span.bad")).await.is_ok(),
        "the failing test's line is marked"
    );
    // 600,000 x 10% + 150,000 x 12% + the SPIFF.
    edit(
        c,
        "tests/incentives.yaml",
        r#"total: "67000.00""#,
        r#"total: "79000.00""#,
    )
    .await;
    save(c).await;
    assert_eq!(text_of(c, "#tests-failed").await, "0");
    assert!(text_of(c, "#validation").await.contains("Passes"));
    assert!(
        text_of(c, "#files")
            .await
            .contains("+        - { upto: 1.0, rate: 0.10 }")
    );
    shot(c, "change").await;

    // The impact on the quarter's statements: each rep's delta, and a chart.
    wait_for(c, "#imp-periods").await.send_keys("2026-Q1").await.unwrap();
    c.find(Locator::Id("imp-since"))
        .await
        .unwrap()
        .send_keys("2026-01-01")
        .await
        .unwrap();
    c.find(Locator::Id("imp-start")).await.unwrap().click().await.unwrap();
    let deltas = wait_for(c, "table.deltas").await.text().await.unwrap();
    assert!(deltas.contains("ana") && deltas.contains("4200.00"), "{deltas}");
    assert!(deltas.contains("ben") && deltas.contains("800.00"), "{deltas}");
    assert!(deltas.contains("5000.00"), "the total: {deltas}");
    let bars: Value = c
        .execute("return document.querySelectorAll('svg.chart rect').length;", vec![])
        .await
        .unwrap();
    assert_eq!(bars, json!(2), "a bar per rep whose pay changes");
    c.goto(&format!("{base}{}#impact", path_of(c).await.split('#').next().unwrap()))
        .await
        .unwrap();
    shot(c, "change-impact").await;

    // Submitted; its author may not approve it (four eyes), and the page says why.
    c.goto(&format!("{base}{path}")).await.unwrap();
    wait_for(c, "#comment-submit")
        .await
        .send_keys("ready for review")
        .await
        .unwrap();
    c.find(Locator::Id("act-submit")).await.unwrap().click().await.unwrap();
    wait_for(c, "#act-approve").await.click().await.unwrap();
    let refused = wait_for(c, "#move-error").await.text().await.unwrap();
    assert!(refused.contains("four eyes"), "{refused}");
    shot(c, "change-four-eyes").await;

    // A second admin approves: the change is live.
    sign_in(c, base, "t-controller").await;
    c.goto(&format!("{base}{path}")).await.unwrap();
    let candidate = wait_for(c, "#candidate-version").await.text().await.unwrap();
    c.find(Locator::Id("comment-approve"))
        .await
        .unwrap()
        .send_keys("checked the deltas")
        .await
        .unwrap();
    c.find(Locator::Id("act-approve")).await.unwrap().click().await.unwrap();
    // The page the approval answers with (the one clicked may still show).
    let started = Instant::now();
    let mut history = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        history = match c.find(Locator::Id("history")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if history.contains("checked the deltas") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        history.contains("checked the deltas") && history.contains("controller"),
        "{history}"
    );
    assert!(text_of(c, "#state-h").await.contains("active"));
    c.goto(&format!("{base}/admin")).await.unwrap();
    let overview = text_of(c, "main").await;
    assert!(
        overview.contains(&candidate),
        "the active version is the change's: {overview}"
    );
    c.goto(&format!("{base}/admin/policies/IncentivePlan/ae-commission"))
        .await
        .unwrap();
    assert!(text_of(c, "ol.source").await.contains("rate: 0.10"));
}

async fn a_broken_edit_shows_its_error_at_its_line_and_cannot_be_submitted(c: &Client, base: &str) {
    sign_in(c, base, "t-admin").await;
    open_a_change(c, base, "A SPIFF condition cut short", "incentives.yaml").await;
    edit(c, "incentives.yaml", "deal.amount >= 20000'", "deal.amount >= '").await;
    save(c).await;
    // Line 34 (the SPIFF's condition) is marked, and its error is said beside it and below.
    let marked = wait_for(c, "pre.gutter span.bad").await;
    assert_eq!(marked.text().await.unwrap(), "34");
    let note = text_of(c, ".notes span.bad").await;
    assert!(!note.is_empty(), "the error beside its line");
    let errors = text_of(c, "#errors-0").await;
    assert!(errors.contains("Line 34"), "{errors}");
    let editor = c.find(Locator::Id("text-0")).await.unwrap();
    assert_eq!(editor.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    let submit = c.find(Locator::Id("act-submit")).await.unwrap();
    assert_eq!(submit.attr("disabled").await.unwrap().as_deref(), Some("true"));
    shot(c, "change-error").await;
    // Forced anyway: the API refuses, and the page says why.
    c.execute("document.getElementById('act-submit').disabled = false;", vec![])
        .await
        .unwrap();
    c.find(Locator::Id("act-submit")).await.unwrap().click().await.unwrap();
    let refused = wait_for(c, "#move-error").await.text().await.unwrap();
    assert!(refused.contains("does not pass"), "{refused}");
}
