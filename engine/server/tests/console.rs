//! The admin console over real HTTP on loopback: sign-in and its cookie,
//! every page for an admin, CSRF refusals, the API's role checks, the
//! languages, and no page loading anything from another origin.

mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One HTTP/1.1 request on a fresh connection.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

async fn server() -> std::net::SocketAddr {
    let state = common::state().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, dealrules_server::routes::app(state)).await });
    addr
}

/// The value of the first `name="csrf"` hidden field.
fn csrf(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
    html[at..].split('"').next().unwrap().to_string()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Signs in with `token`; the `name=value` of the session cookie.
async fn sign_in(addr: std::net::SocketAddr, token: &str) -> String {
    let page = http(addr, "GET", "/admin/signin", &[], "").await;
    assert_eq!(page.status, 200);
    let pre = page.cookies()[0].split(';').next().unwrap().to_string();
    let form = format!("csrf={}&token={}", csrf(&page.body), enc(token));
    let done = http(addr, "POST", "/admin/signin", &[("Cookie", &pre)], &form).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let session = done
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("dealrules_session="))
        .expect("a session cookie");
    session.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn root_redirects_and_pages_need_a_session() {
    let addr = server().await;
    let root = http(addr, "GET", "/", &[], "").await;
    assert!(root.status == 303 || root.status == 307, "{}", root.status);
    assert_eq!(root.header("location"), Some("/admin"));
    let overview = http(addr, "GET", "/admin", &[], "").await;
    assert_eq!(overview.header("location"), Some("/admin/signin"));
    let forged = http(addr, "GET", "/admin", &[("Cookie", "dealrules_session=00ff")], "").await;
    assert_eq!(forged.header("location"), Some("/admin/signin"));
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_a_wrong_token_says_so_next_to_the_field() {
    let addr = server().await;
    let page = http(addr, "GET", "/admin/signin", &[], "").await;
    let pre = page.cookies()[0].split(';').next().unwrap().to_string();
    let wrong = http(
        addr,
        "POST",
        "/admin/signin",
        &[("Cookie", &pre)],
        &format!("csrf={}&token=nope", csrf(&page.body)),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains(r#"id="token-error""#), "{}", wrong.body);
    assert!(wrong.body.contains("aria-invalid=\"true\""));

    let page = http(addr, "GET", "/admin/signin", &[], "").await;
    let pre = page.cookies()[0].split(';').next().unwrap().to_string();
    let done = http(
        addr,
        "POST",
        "/admin/signin",
        &[("Cookie", &pre)],
        &format!("csrf={}&token=t-admin", csrf(&page.body)),
    )
    .await;
    assert_eq!(done.status, 303);
    let cookie = done
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("dealrules_session="))
        .unwrap()
        .to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: not Secure");
    // Behind TLS (a proxy says so) the cookie is Secure.
    let page = http(addr, "GET", "/admin/signin", &[], "").await;
    let pre = page.cookies()[0].split(';').next().unwrap().to_string();
    let tls = http(
        addr,
        "POST",
        "/admin/signin",
        &[("Cookie", &pre), ("X-Forwarded-Proto", "https")],
        &format!("csrf={}&token=t-admin", csrf(&page.body)),
    )
    .await;
    assert!(
        tls.cookies()
            .iter()
            .any(|c| c.starts_with("dealrules_session=") && c.contains("; Secure"))
    );
}

#[tokio::test]
async fn every_page_answers_an_admin_and_loads_nothing_from_another_origin() {
    let addr = server().await;
    let session = sign_in(addr, "t-admin").await;
    let mut paths = vec!["/admin".to_string(), "/admin/policies".to_string()];
    let list = http(addr, "GET", "/admin/policies", &[("Cookie", &session)], "").await;
    for part in list.body.split(r#"href="/admin/policies/"#).skip(1) {
        paths.push(format!("/admin/policies/{}", part.split('"').next().unwrap()));
    }
    assert!(paths.len() > 4, "the example pack's policies are listed: {paths:?}");
    for path in &paths {
        let page = http(addr, "GET", path, &[("Cookie", &session)], "").await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.header("content-type").unwrap().starts_with("text/html"));
        for attr in ["src=\"", "href=\"", "action=\""] {
            for value in page.body.split(attr).skip(1) {
                let url = value.split('"').next().unwrap();
                assert!(
                    url.starts_with('/') && !url.starts_with("//") || url.starts_with('#'),
                    "{path} references {url}"
                );
            }
        }
        assert!(
            !page.body.contains("http://") && !page.body.contains("https://"),
            "{path}"
        );
        // Every form carries the session's CSRF token.
        assert_eq!(
            page.body.matches("<form").count(),
            page.body.matches(r#"name="csrf""#).count(),
            "{path}"
        );
    }
    let css = http(addr, "GET", "/admin/console.css", &[], "").await;
    assert_eq!(css.status, 200);
    assert!(!css.body.contains("url("), "the stylesheet loads nothing");
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    let addr = server().await;
    let session = sign_in(addr, "t-admin").await;
    let input = enc(r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 30}}"#);
    for (path, body) in [
        (
            "/admin/policies/ApprovalPolicy/discount-approvals",
            format!("input={input}"),
        ),
        (
            "/admin/policies/ApprovalPolicy/discount-approvals",
            format!("csrf=abc&input={input}"),
        ),
        ("/admin/signout", String::new()),
        ("/admin/lang", "lang=zh-CN".to_string()),
    ] {
        let answer = http(addr, "POST", path, &[("Cookie", &session)], &body).await;
        assert_eq!(answer.status, 403, "{path} {body}");
        assert!(answer.header("content-type").unwrap().starts_with("text/html"));
    }
    // Sign-in without the sign-in page's token.
    let answer = http(addr, "POST", "/admin/signin", &[], "token=t-admin").await;
    assert_eq!(answer.status, 403);
    // The session still works: nothing was done.
    assert_eq!(
        http(addr, "GET", "/admin", &[("Cookie", &session)], "").await.status,
        200
    );
}

#[tokio::test]
async fn try_it_decides_through_the_api_with_why_not_and_a_viewer_may_not() {
    let addr = server().await;
    let input = r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 30}, "why_not": true}"#;
    let path = "/admin/policies/ApprovalPolicy/discount-approvals";
    let admin = sign_in(addr, "t-admin").await;
    let page = http(addr, "GET", path, &[("Cookie", &admin)], "").await;
    let form = format!("csrf={}&input={}", csrf(&page.body), enc(input));
    let tried = http(addr, "POST", path, &[("Cookie", &admin)], &form).await;
    assert_eq!(tried.status, 200, "{}", tried.body);
    assert!(tried.body.contains("trace"), "{}", tried.body);
    assert!(tried.body.contains("why_not"), "{}", tried.body);

    let broken = format!("csrf={}&input={}", csrf(&page.body), enc("{not json"));
    let refused = http(addr, "POST", path, &[("Cookie", &admin)], &broken).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains(r#"id="input-error""#));

    let viewer = sign_in(addr, "t-viewer").await;
    let page = http(addr, "GET", path, &[("Cookie", &viewer)], "").await;
    assert_eq!(page.status, 200);
    let form = format!("csrf={}&input={}", csrf(&page.body), enc(input));
    let tried = http(addr, "POST", path, &[("Cookie", &viewer)], &form).await;
    assert_eq!(tried.status, 403, "the API's role check refuses a viewer");
    assert!(tried.body.contains("service role"), "{}", tried.body);
}

#[tokio::test]
async fn sign_out_revokes_the_session() {
    let addr = server().await;
    let session = sign_in(addr, "t-approver").await;
    let page = http(addr, "GET", "/admin", &[("Cookie", &session)], "").await;
    assert_eq!(page.status, 200);
    let out = http(
        addr,
        "POST",
        "/admin/signout",
        &[("Cookie", &session)],
        &format!("csrf={}", csrf(&page.body)),
    )
    .await;
    assert_eq!(out.status, 303);
    assert!(out.cookies().iter().any(|c| c.starts_with("dealrules_session=;")));
    let again = http(addr, "GET", "/admin", &[("Cookie", &session)], "").await;
    assert_eq!(
        again.header("location"),
        Some("/admin/signin"),
        "the old cookie no longer works"
    );
}

#[tokio::test]
async fn chinese_is_picked_by_accept_language_and_the_switch_overrides() {
    let addr = server().await;
    let session = sign_in(addr, "t-admin").await;
    let zh = http(
        addr,
        "GET",
        "/admin",
        &[("Cookie", &session), ("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")],
        "",
    )
    .await;
    assert!(zh.body.contains(r#"<html lang="zh-CN">"#));
    for (key, en, zh_label) in dealrules_server::console::i18n::LABELS {
        // Labels on the overview: in Chinese, none left in English.
        if zh.body.contains(zh_label) {
            assert!(!zh.body.contains(&format!(">{en}<")), "{key} is also in English");
        }
    }
    for en in [
        "Overview",
        "Policies",
        "Sign out",
        "Active version",
        "Background workers",
    ] {
        assert!(!zh.body.contains(en), "English label `{en}` on the zh-CN overview");
    }
    let switched = http(
        addr,
        "POST",
        "/admin/lang",
        &[("Cookie", &session), ("Accept-Language", "zh-CN")],
        &format!("csrf={}&lang=en&back=%2Fadmin%2Fpolicies", csrf(&zh.body)),
    )
    .await;
    assert_eq!(switched.status, 303);
    assert_eq!(switched.header("location"), Some("/admin/policies"));
    let lang = switched.cookies()[0].split(';').next().unwrap().to_string();
    let en = http(
        addr,
        "GET",
        "/admin",
        &[("Cookie", &format!("{session}; {lang}")), ("Accept-Language", "zh-CN")],
        "",
    )
    .await;
    assert!(en.body.contains(r#"<html lang="en">"#));
    assert!(en.body.contains("Overview"));
}

async fn world_server() -> (std::net::SocketAddr, String) {
    let (state, approval) = common::world::world().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, dealrules_server::routes::app(state)).await });
    (addr, approval)
}

/// The values of `attr="..."` in `html`, entities in URLs undone.
fn attrs(html: &str, attr: &str) -> Vec<String> {
    let needle = format!(" {attr}=\"");
    html.split(needle.as_str())
        .skip(1)
        .map(|v| v.split('"').next().unwrap().replace("&amp;", "&"))
        .collect()
}

/// A form: its action and its fields' names and values (hidden fields,
/// inputs, textareas, selects and the first submit button).
struct FormSeen {
    page: String,
    action: String,
    fields: Vec<(String, String)>,
}

fn forms(page: &str, html: &str) -> Vec<FormSeen> {
    html.split("<form")
        .skip(1)
        .map(|f| f.split("</form>").next().unwrap())
        .filter(|f| f.contains(r#"method="post""#))
        .map(|f| {
            let action = attrs(&format!(" {f}"), "action").into_iter().next().unwrap();
            let mut fields = Vec::new();
            for tag in f.split('<').skip(1) {
                let name = attrs(&format!(" {tag}"), "name").into_iter().next();
                let value = attrs(&format!(" {tag}"), "value")
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                if let Some(name) = name
                    && !fields.iter().any(|(n, _)| n == &name)
                {
                    fields.push((name, value));
                }
            }
            FormSeen {
                page: page.to_string(),
                action,
                fields,
            }
        })
        .collect()
}

/// Every console page an admin reaches by following links from the
/// overview, with its answer.
async fn crawl(addr: std::net::SocketAddr, session: &str) -> Vec<(String, Answer)> {
    let mut queue = vec!["/admin".to_string()];
    let mut seen = std::collections::BTreeSet::new();
    let mut pages = Vec::new();
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) || seen.len() > 400 {
            continue;
        }
        let answer = http(addr, "GET", &path, &[("Cookie", session)], "").await;
        if answer
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
        {
            for href in attrs(&answer.body, "href") {
                if href.starts_with("/admin") && !href.ends_with(".css") && !seen.contains(&href) {
                    queue.push(href);
                }
            }
        }
        pages.push((path, answer));
    }
    pages
}

/// Whether a concrete path is an instance of a route's pattern.
fn instance_of(path: &str, pattern: &str) -> bool {
    let path = path.split('?').next().unwrap();
    let (a, b): (Vec<&str>, Vec<&str>) = (path.split('/').collect(), pattern.split('/').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || y.starts_with('{'))
}

#[tokio::test]
async fn every_page_of_a_working_day_loads_nothing_from_another_origin() {
    let (addr, _) = world_server().await;
    let session = sign_in(addr, "t-admin").await;
    let pages = crawl(addr, &session).await;
    let paths: Vec<&str> = pages.iter().map(|(p, _)| p.as_str()).collect();
    for must in [
        "/admin/approvals",
        "/admin/deals",
        "/admin/deals/d-1001",
        "/admin/runs",
        "/admin/statements",
        "/admin/decisions",
    ] {
        assert!(paths.contains(&must), "{must} is linked: {paths:?}");
    }
    for prefix in ["/admin/runs/run_", "/admin/decisions/", "/admin/statements?rep="] {
        assert!(
            paths.iter().any(|p| p.starts_with(prefix)),
            "a {prefix}... page is linked: {paths:?}"
        );
    }
    for (path, page) in &pages {
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        if !page.header("content-type").unwrap().starts_with("text/html") {
            assert!(path.contains("/export"), "{path}");
            continue;
        }
        let csp = page.header("content-security-policy").unwrap_or_default();
        for directive in ["default-src 'self'", "script-src 'none'", "form-action 'self'"] {
            assert!(csp.contains(directive), "{path}: CSP {csp}");
        }
        for attr in ["src", "href", "action", "srcset", "poster", "data"] {
            for url in attrs(&page.body, attr) {
                assert!(
                    (url.starts_with('/') && !url.starts_with("//")) || url.starts_with('#'),
                    "{path}: {attr}={url}"
                );
            }
        }
        let lower = page.body.to_ascii_lowercase();
        for external in ["http://", "https://", "@import", "url(", "<script", "<iframe"] {
            assert!(!lower.contains(external), "{path} contains {external}");
        }
        assert_eq!(
            page.body.matches(r#"method="post""#).count(),
            page.body.matches(r#"name="csrf""#).count(),
            "{path}: every POST form carries the CSRF token"
        );
    }
}

#[tokio::test]
async fn every_console_route_that_takes_a_post_refuses_one_without_the_csrf_token() {
    let (addr, approval) = world_server().await;
    let session = sign_in(addr, "t-admin").await;
    // The forms the pages show, and the routes the console's router has.
    let mut seen = Vec::new();
    for (path, page) in crawl(addr, &session).await {
        seen.extend(forms(&path, &page.body));
    }
    // The sign-in form is on the one page shown without a session.
    let signin = http(addr, "GET", "/admin/signin", &[], "").await;
    seen.extend(forms("/admin/signin", &signin.body));
    let routes = dealrules_server::console::paths();
    let mut takes_post = Vec::new();
    for pattern in &routes {
        let path = pattern
            .replace("{id}", &approval)
            .replace("{kind}", "x")
            .replace("{name}", "x")
            .replace("{action}", "approve");
        let answer = http(addr, "POST", &path, &[("Cookie", &session)], "").await;
        match answer.status {
            405 => {}
            403 => takes_post.push(*pattern),
            other => panic!("POST {path} without a CSRF token answered {other}: {}", answer.body),
        }
        // A wrong token is refused as well as none.
        let answer = http(addr, "POST", &path, &[("Cookie", &session)], "csrf=0000").await;
        assert!(
            answer.status == 403 || answer.status == 405,
            "{path}: {}",
            answer.status
        );
    }
    assert!(takes_post.len() >= 8, "{takes_post:?}");
    // Every route that takes a POST has a form on some page, and every
    // form posts to such a route.
    for pattern in &takes_post {
        assert!(
            seen.iter().any(|f| instance_of(&f.action, pattern)),
            "no page has a form for {pattern}"
        );
    }
    for form in &seen {
        assert!(
            takes_post.iter().any(|p| instance_of(&form.action, p)),
            "{} posts to {}, which is no console route",
            form.page,
            form.action
        );
        assert!(
            form.fields.iter().any(|(n, _)| n == "csrf"),
            "{}: the form for {} has no CSRF field",
            form.page,
            form.action
        );
        // The form as the page shows it, without its CSRF field: refused.
        let body: Vec<String> = form
            .fields
            .iter()
            .filter(|(n, _)| n != "csrf")
            .map(|(n, v)| format!("{}={}", enc(n), enc(v)))
            .collect();
        let answer = http(addr, "POST", &form.action, &[("Cookie", &session)], &body.join("&")).await;
        assert_eq!(answer.status, 403, "{} -> {}: {}", form.page, form.action, answer.body);
    }
    // Nothing was done: the approval is still pending.
    let inbox = http(addr, "GET", "/admin/approvals", &[("Cookie", &session)], "").await;
    assert!(inbox.body.contains(&approval), "{}", inbox.body);
}

#[tokio::test]
async fn a_rep_reads_their_statement_and_the_page_says_why_not_a_peers() {
    let (addr, _) = world_server().await;
    let ana = sign_in(addr, "t-ana").await;
    let mine = http(
        addr,
        "GET",
        "/admin/statements?rep=ana&period=2026-Q1",
        &[("Cookie", &ana)],
        "",
    )
    .await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert!(mine.body.contains("ae-commission"), "{}", mine.body);
    assert!(mine.body.contains("Credited bookings"), "{}", mine.body);
    let peer = http(
        addr,
        "GET",
        "/admin/statements?rep=ben&period=2026-Q1",
        &[("Cookie", &ana)],
        "",
    )
    .await;
    assert_eq!(peer.status, 403, "{}", peer.body);
    assert!(peer.body.contains(r#"role="alert""#));
    assert!(
        peer.body
            .contains("ana may read their own statements and their reports&#x27;, not ben&#x27;s")
            || peer
                .body
                .contains("ana may read their own statements and their reports', not ben's"),
        "{}",
        peer.body
    );
    // In Chinese, the refusal's heading is in Chinese.
    let zh = http(
        addr,
        "GET",
        "/admin/statements?rep=ben&period=2026-Q1",
        &[("Cookie", &ana), ("Accept-Language", "zh-CN")],
        "",
    )
    .await;
    assert!(zh.body.contains("不允许"), "{}", zh.body);
    // A rep is no admin: the runs page says so instead of listing runs.
    let runs = http(addr, "GET", "/admin/runs", &[("Cookie", &ana)], "").await;
    assert_eq!(runs.status, 403);
    assert!(runs.body.contains("admin role"), "{}", runs.body);
}

#[tokio::test]
async fn an_approver_decides_from_the_inbox_through_the_api_rules() {
    let (addr, approval) = world_server().await;
    // Not u-17's peer: the step is not in their inbox, and posting anyway is refused in words.
    let other = sign_in(addr, "t-u18").await;
    let inbox = http(addr, "GET", "/admin/approvals", &[("Cookie", &other)], "").await;
    assert!(!inbox.body.contains(&approval), "{}", inbox.body);
    let form = format!("csrf={}&decision=approve&comment=ok", csrf(&inbox.body));
    let refused = http(
        addr,
        "POST",
        &format!("/admin/approvals/{approval}"),
        &[("Cookie", &other)],
        &form,
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("is for u-17, not u-18"), "{}", refused.body);

    let manager = sign_in(addr, "t-u17").await;
    let inbox = http(addr, "GET", "/admin/approvals", &[("Cookie", &manager)], "").await;
    assert!(inbox.body.contains(&approval), "{}", inbox.body);
    assert!(
        inbox.body.contains("deal.discount_pct"),
        "the tested values: {}",
        inbox.body
    );
    let form = format!("csrf={}&decision=maybe&comment=", csrf(&inbox.body));
    let bad = http(
        addr,
        "POST",
        &format!("/admin/approvals/{approval}"),
        &[("Cookie", &manager)],
        &form,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains(&format!(r#"id="comment-error-{approval}""#)),
        "next to the form: {}",
        bad.body
    );
    let form = format!("csrf={}&decision=approve&comment=fine%20by%20me", csrf(&inbox.body));
    let done = http(
        addr,
        "POST",
        &format!("/admin/approvals/{approval}"),
        &[("Cookie", &manager)],
        &form,
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let deal = http(addr, "GET", "/admin/deals/d-1001", &[("Cookie", &manager)], "").await;
    assert!(deal.body.contains("fine by me"), "{}", deal.body);
}

// ---- targets and pace, the funnel and the forecast ----

/// A small dated history on the measured tests' pack (Q1 target 240,000:
/// NA's 120,000 split between ana and bo, EMEA's 120,000 for cy; funnel
/// lead, qualified, proposal (SLA 10 days), won, lost):
///
/// | day           | event                                        |
/// |---------------|----------------------------------------------|
/// | Jan 5, 09:00  | d1 (ana, 30,000), d2 (bo, 20,000), d3 (cy, 40,000) created in lead |
/// | Jan 6         | d3 to proposal (and there since)             |
/// | Jan 8         | d2 to qualified                              |
/// | Jan 10        | d1 to qualified                              |
/// | Jan 12        | d1 won                                       |
/// | Jan 13        | d2 lost                                      |
///
/// Seen on February 14 at noon: half of Q1 is gone.
async fn measured_server() -> std::net::SocketAddr {
    use dealrules_server::state::{AppState, Setup};
    let pack = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/measured");
    let dir = tempfile::tempdir().unwrap().keep();
    let store = std::sync::Arc::new(
        dealrules_store::Store::open(&format!("sqlite://{}", dir.join("measured.db").display()))
            .await
            .unwrap(),
    );
    for (t, role) in [("t-admin", "admin"), ("t-viewer", "viewer")] {
        store
            .tokens()
            .add_token(
                &hex::encode(dealrules_server::auth::hash_token(t)),
                role,
                t,
                &[],
                "test",
            )
            .await
            .unwrap();
    }
    for (id, region) in [("ana", "NA"), ("bo", "NA"), ("cy", "EMEA")] {
        let person = dealrules_store::Person {
            id: id.into(),
            name: id.into(),
            role: "ae".into(),
            manager: Some("mia".into()),
            region: Some(region.into()),
            team: None,
            attributes: Default::default(),
            valid_from: dealrules_store::people::BEGINNING.into(),
            valid_to: None,
        };
        store.people().put_person(&person, "test").await.unwrap();
    }
    let (snapshot, activation, errors) = dealrules_server::reload::startup(&store, &pack).await.unwrap();
    assert!(errors.is_none(), "{errors:?}");
    let state = AppState::start(Setup {
        snapshot,
        activation,
        rules_dir: pack,
        store,
        fixed_tokens: Default::default(),
        decision_log: false,
        clock: Default::default(),
        four_eyes: true,
    })
    .await
    .unwrap();
    let set_clock = |at: &str| {
        let want: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
        state.workflow.clock.advance(want - state.workflow.clock.now());
    };
    set_clock("2026-01-05T09:00:00Z");
    for (id, owner, amount) in [("d1", "ana", 30000), ("d2", "bo", 20000), ("d3", "cy", 40000)] {
        let body = format!(
            r#"{{"id": "{id}", "funnel": "b2b", "owner": "{owner}", "fields": {{"amount": {amount}, "close_date": "2026-03-31"}}}}"#
        );
        let (code, _, text) = common::call(&state, "POST", "/v1/deals", Some("t-admin"), &body).await;
        assert_eq!(code, 201, "{text}");
    }
    for (at, id, to) in [
        ("2026-01-06T09:00:00Z", "d3", "proposal"),
        ("2026-01-08T09:00:00Z", "d2", "qualified"),
        ("2026-01-10T09:00:00Z", "d1", "qualified"),
        ("2026-01-12T09:00:00Z", "d1", "won"),
        ("2026-01-13T09:00:00Z", "d2", "lost"),
    ] {
        set_clock(at);
        let body = format!(r#"{{"type": "move", "to": "{to}"}}"#);
        let (code, text) =
            common::call_with(&state, "POST", &format!("/v1/deals/{id}/events"), "t-admin", &[], &body).await;
        assert_eq!(code, 200, "{text}");
    }
    set_clock("2026-02-14T12:00:00Z");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, dealrules_server::routes::app(state)).await });
    addr
}

/// The cells of the table row whose heading cell is `key`, as text.
fn table_row(html: &str, key: &str) -> Vec<String> {
    let start = html
        .find(&format!(r#"<th scope="row">{key}"#))
        .unwrap_or_else(|| panic!("no row {key}: {html}"));
    let row = &html[start..];
    let row = &row[..row.find("</tr>").unwrap()];
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let cell = &cell[cell.find('>').unwrap() + 1..];
            // The cell's text, tags dropped.
            let mut text = String::new();
            let mut in_tag = false;
            for ch in cell.chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.trim().to_string()
        })
        .collect()
}

/// ana won 30,000 of 60,000 (50%, pace 1 at half the quarter: on pace);
/// bo and cy nothing (pace 0: behind, their manager told).
#[tokio::test]
async fn the_targets_page_shows_progress_and_pace_by_hand() {
    let addr = measured_server().await;
    let viewer = sign_in(addr, "t-viewer").await;
    let page = http(
        addr,
        "GET",
        "/admin/targets?name=fy2026&period=2026-Q1&by=rep",
        &[("Cookie", &viewer)],
        "",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let ana = table_row(&page.body, "ana");
    // target, actual, attainment, pace, the bar (a picture), the alert
    assert_eq!(ana[..5], ["60000.00", "30000.00", "50%", "1", ""], "{ana:?}");
    assert_eq!(ana[5], "On pace");
    let bo = table_row(&page.body, "bo");
    assert_eq!(bo[..4], ["60000.00", "0.00", "0%", "0"], "{bo:?}");
    assert_eq!(bo[5], "Behind pace (manager told: mia)");
    assert_eq!(table_row(&page.body, "cy")[..2], ["120000.00", "0.00"]);
    // Half the quarter gone: the elapsed line at half the full bar, ana's bar as long.
    assert!(page.body.contains("<dd>50%</dd>"), "{}", page.body);
    assert!(
        page.body.contains(r#"<rect class="att" x="0" y="3" width="60""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"x1="60""#));
    assert!(
        page.body.contains("<dt>Rows behind pace</dt><dd>2</dd>"),
        "{}",
        page.body
    );
    // By region: NA 120,000 against 30,000.
    let page = http(
        addr,
        "GET",
        "/admin/targets?name=fy2026&period=2026-Q1&by=region",
        &[("Cookie", &viewer)],
        "",
    )
    .await;
    assert_eq!(
        table_row(&page.body, "NA")[..4],
        ["120000.00", "30000.00", "25%", "0.5"]
    );
    // Q3: the mid-year adjustment, with its reason.
    let page = http(
        addr,
        "GET",
        "/admin/targets?name=fy2026&period=2026-Q3&by=region",
        &[("Cookie", &viewer), ("Accept-Language", "zh-CN")],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("本期间内目标已调整"), "{}", page.body);
    assert!(page.body.contains("new region opened"));
    assert_eq!(table_row(&page.body, "NA")[0], "168951.61");
}

#[tokio::test]
async fn the_targets_page_says_what_is_wrong_with_a_period_next_to_the_field() {
    let addr = measured_server().await;
    let viewer = sign_in(addr, "t-viewer").await;
    let bad = http(
        addr,
        "GET",
        "/admin/targets?name=fy2026&period=soon&by=rep",
        &[("Cookie", &viewer)],
        "",
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains(r#"id="tg-error""#), "{}", bad.body);
    assert!(bad.body.contains(r#"aria-invalid="true""#));
    let other_year = http(
        addr,
        "GET",
        "/admin/targets?name=fy2026&period=2025-Q1",
        &[("Cookie", &viewer)],
        "",
    )
    .await;
    assert_eq!(other_year.status, 422);
    assert!(
        other_year.body.contains("are for 2026, not 2025"),
        "{}",
        other_year.body
    );
    let nobody = http(
        addr,
        "GET",
        "/admin/targets?name=nope&period=2026-Q1",
        &[("Cookie", &viewer)],
        "",
    )
    .await;
    assert_eq!(nobody.status, 404);
    // Without a session: the sign-in page, for both pages.
    for path in ["/admin/targets", "/admin/funnel"] {
        let anon = http(addr, "GET", path, &[], "").await;
        assert_eq!(anon.status, 303, "{path}");
        assert_eq!(anon.header("location"), Some("/admin/signin"));
    }
}

/// lead: 3 entered, 3 advanced, days 5, 3, 1 (median 3, p90 5), 1 of 3
/// won. qualified: d1 and d2 entered, d1 advanced (won), d2 lost; days 2
/// and 5 (median 3.5). proposal: d3 open since Jan 6, stalled past its
/// 10-day limit, weighted 40,000 x 0.5 = 20,000, in 2026-Q1's forecast.
#[tokio::test]
async fn the_funnel_page_shows_conversion_days_and_the_forecast_by_hand() {
    let addr = measured_server().await;
    let viewer = sign_in(addr, "t-viewer").await;
    let page = http(addr, "GET", "/admin/funnel?funnel=b2b", &[("Cookie", &viewer)], "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    // entered, advanced, lost, back, to next, to won, median, p90, open, weighted, stalled
    let lead = table_row(&page.body, "lead");
    assert_eq!(lead[..8], ["3", "3", "0", "0", "100%", "33.3%", "3", "5"], "{lead:?}");
    let qualified = table_row(&page.body, "qualified");
    assert_eq!(
        qualified[..8],
        ["2", "1", "1", "0", "50%", "50%", "3.5", "5"],
        "{qualified:?}"
    );
    let proposal = table_row(&page.body, "proposal");
    assert_eq!(proposal[..3], ["1", "0", "0"], "{proposal:?}");
    assert_eq!(proposal[8..10], ["1", "20000.00"], "{proposal:?}");
    assert!(proposal[10].starts_with("1 (time limit 10 days)"), "{proposal:?}");
    let q1 = table_row(&page.body, "2026-Q1");
    assert_eq!(q1[..3], ["1", "40000.00", "20000.00"], "{q1:?}");
    // By owner: a table for each, bo's with d2's loss.
    let page = http(
        addr,
        "GET",
        "/admin/funnel?funnel=b2b&by=owner",
        &[("Cookie", &viewer)],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
    for owner in ["ana", "bo", "cy"] {
        assert!(
            page.body.contains(&format!("Owner: {owner}</h2>")),
            "{owner}: {}",
            page.body
        );
    }
    // A window that is not a time: said next to the fields.
    let bad = http(
        addr,
        "GET",
        "/admin/funnel?funnel=b2b&since=yesterday",
        &[("Cookie", &viewer)],
        "",
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains(r#"id="fn-error""#), "{}", bad.body);
    // The API gives the figures the page shows.
    let api = http(
        addr,
        "GET",
        "/v1/analytics/funnel?funnel=b2b",
        &[("Authorization", "Bearer t-viewer")],
        "",
    )
    .await;
    let api = common::json(&api.body);
    let lead = api["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "lead")
        .unwrap();
    assert_eq!(
        (&lead["entered"], &lead["days_median"]),
        (&serde_json::json!(3), &serde_json::json!("3.00"))
    );
}

/// A rep's statement in Chinese: the engine's explanations are in Chinese
/// in the API's JSON and on the console's page.
#[tokio::test]
async fn a_chinese_statement_explains_its_lines_in_chinese() {
    let (addr, _) = world_server().await;
    let ana = sign_in(addr, "t-ana").await;
    let en = http(
        addr,
        "GET",
        "/admin/statements?rep=ana&period=2026-Q1",
        &[("Cookie", &ana), ("Accept-Language", "en")],
        "",
    )
    .await;
    assert!(en.body.contains("1 deal x "), "{}", en.body);
    let zh = http(
        addr,
        "GET",
        "/admin/statements?rep=ana&period=2026-Q1",
        &[("Cookie", &ana), ("Accept-Language", "zh-CN")],
        "",
    )
    .await;
    assert_eq!(zh.status, 200, "{}", zh.body);
    assert!(zh.body.contains("1 笔交易 x "), "{}", zh.body);
    for english in [" deal x ", " deals x ", "per deal", "capped at", "no credit"] {
        assert!(
            !zh.body.contains(english),
            "`{english}` on the Chinese statement: {}",
            zh.body
        );
    }
    // The API's JSON in Chinese: every line's explanation from the engine.
    let api = http(
        addr,
        "GET",
        "/v1/statements/ana/2026-Q1?locale=zh-CN",
        &[("Authorization", "Bearer t-ana")],
        "",
    )
    .await;
    assert_eq!(api.status, 200, "{}", api.body);
    let api = common::json(&api.body);
    let lines: Vec<&str> = api["statements"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["statement"]["lines"].as_array().unwrap())
        .map(|l| l["explain"].as_str().unwrap())
        .collect();
    assert!(lines.iter().any(|l| l.contains("笔交易")), "{lines:?}");
    // Deal ids (w-1) and the arithmetic's `x` are one letter; a word is English.
    for line in &lines {
        let words: Vec<&str> = line
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() > 1)
            .collect();
        assert!(words.is_empty(), "English left in `{line}`: {words:?}");
    }
}

/// The inbox reads every request's deal in one query: each item still
/// shows its deal's stage, owner and fields.
#[tokio::test]
async fn the_inbox_shows_each_requests_deal() {
    let (addr, approval) = world_server().await;
    let manager = sign_in(addr, "t-u17").await;
    let inbox = http(addr, "GET", "/admin/approvals", &[("Cookie", &manager)], "").await;
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains(&approval));
    for shown in [
        "<dd>proposal</dd>",
        "<dd>r1</dd>",
        "<td><code>name</code></td><td>Acme renewal</td>",
        "<td><code>amount</code></td><td>120000</td>",
    ] {
        assert!(inbox.body.contains(shown), "{shown}: {}", inbox.body);
    }
}

/// The `Location` of a redirect after a form, without its fragment.
fn location(answer: &Answer) -> String {
    answer
        .header("location")
        .unwrap_or_else(|| panic!("a redirect: {} {}", answer.status, answer.body))
        .split('#')
        .next()
        .unwrap()
        .to_string()
}

/// Opens a draft titled `title` as `session`; its page's path.
async fn new_change(addr: std::net::SocketAddr, session: &str, title: &str) -> String {
    let list = http(addr, "GET", "/admin/changes", &[("Cookie", session)], "").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let form = format!("csrf={}&title={}", csrf(&list.body), enc(title));
    let made = http(addr, "POST", "/admin/changes", &[("Cookie", session)], &form).await;
    assert_eq!(made.status, 303, "{}", made.body);
    let path = location(&made);
    assert!(path.starts_with("/admin/changes/chg_"), "{path}");
    path
}

/// The AE plan with its first tier's rate written `rate`.
fn plan_with_rate(rate: &str) -> String {
    let plan = std::fs::read_to_string(common::rules().join("incentives.yaml")).unwrap();
    let changed = plan.replace(
        "- { upto: 1.0, rate: 0.08 }",
        &format!("- {{ upto: 1.0, rate: {rate} }}"),
    );
    assert_ne!(plan, changed);
    changed
}

#[tokio::test]
async fn a_saved_change_shows_its_errors_at_their_lines_and_a_broken_one_cannot_be_submitted() {
    let addr = server().await;
    let admin = sign_in(addr, "t-admin").await;
    let path = new_change(addr, &admin, "Break the SPIFF").await;
    // A file of the base, opened in an editor with its text.
    let opened = http(
        addr,
        "GET",
        &format!("{path}?open=incentives.yaml"),
        &[("Cookie", &admin)],
        "",
    )
    .await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert!(
        opened.body.contains(r#"name="file:incentives.yaml""#),
        "{}",
        opened.body
    );
    assert!(opened.body.contains("rate: 0.08"));
    assert!(
        opened.body.contains(r#"<label for="text-0">"#),
        "the editor is labelled"
    );
    // Saved with the new-logo SPIFF's condition cut short: the error is at line 34, the condition's.
    let plan = std::fs::read_to_string(common::rules().join("incentives.yaml")).unwrap();
    let broken = plan.replace("deal.amount >= 20000'", "deal.amount >='");
    assert_ne!(plan, broken);
    let form = format!(
        "csrf={}&title=Break%20the%20SPIFF&{}={}",
        csrf(&opened.body),
        enc("file:incentives.yaml"),
        enc(&broken)
    );
    let saved = http(addr, "POST", &path, &[("Cookie", &admin)], &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = http(addr, "GET", &path, &[("Cookie", &admin)], "").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"class="bad" id="f0-L34""#),
        "line 34 is marked: {}",
        page.body
    );
    assert!(
        page.body.contains(r##"<a href="#f0-L34">Line 34</a>"##),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"aria-invalid="true""#));
    assert!(page.body.contains("Does not pass"));
    // The diff against the base, per file.
    assert!(page.body.contains(r#"<pre class="diff""#), "{}", page.body);
    assert!(
        page.body.contains("-      when: ") && page.body.contains("+      when: "),
        "{}",
        page.body
    );
    // The submit button is disabled, and the API refuses anyway, in words.
    assert!(page.body.contains(r#"id="act-submit" disabled"#), "{}", page.body);
    let submit = http(
        addr,
        "POST",
        &format!("{path}/submit"),
        &[("Cookie", &admin)],
        &format!("csrf={}&comment=", csrf(&page.body)),
    )
    .await;
    assert_eq!(submit.status, 422, "{}", submit.body);
    assert!(submit.body.contains(r#"id="move-error""#), "{}", submit.body);
    assert!(submit.body.contains("the change does not pass"), "{}", submit.body);
}

#[tokio::test]
async fn change_forms_without_the_csrf_token_are_refused_and_a_viewer_may_only_read() {
    let (addr, _) = world_server().await;
    let admin = sign_in(addr, "t-admin").await;
    let list = http(addr, "GET", "/admin/changes", &[("Cookie", &admin)], "").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains("Reword the AE plan"),
        "the world's draft: {}",
        list.body
    );
    let draft = attrs(&list.body, "href")
        .into_iter()
        .find(|h| h.starts_with("/admin/changes/chg_"))
        .expect("the draft is linked");
    let page = http(addr, "GET", &draft, &[("Cookie", &admin)], "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"name="file:incentives.yaml""#), "{}", page.body);
    assert!(page.body.contains("Passes"), "{}", page.body);
    for (action, body) in [
        (draft.clone(), "title=x".to_string()),
        (format!("{draft}/submit"), "comment=go".to_string()),
        (format!("{draft}/cancel"), "csrf=0000".to_string()),
        (format!("{draft}/impact"), "incentive_periods=2026-Q1".to_string()),
        ("/admin/changes".to_string(), "title=x".to_string()),
        ("/admin/changes/rollback".to_string(), "version=x".to_string()),
    ] {
        let answer = http(addr, "POST", &action, &[("Cookie", &admin)], &body).await;
        assert_eq!(answer.status, 403, "{action}: {}", answer.body);
    }
    let still = http(addr, "GET", &draft, &[("Cookie", &admin)], "").await;
    assert!(
        still.body.contains(r#"aria-current="step">draft<"#),
        "nothing moved: {}",
        still.body
    );

    // A viewer reads the list and the change, and is refused every move by the API's role check.
    let viewer = sign_in(addr, "t-ana").await;
    let list = http(addr, "GET", "/admin/changes", &[("Cookie", &viewer)], "").await;
    assert_eq!(list.status, 200);
    assert!(
        !list.body.contains(r#"method="post" action="/admin/changes""#),
        "no form to open one"
    );
    let page = http(addr, "GET", &draft, &[("Cookie", &viewer)], "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("readonly"), "{}", page.body);
    let token = csrf(&page.body);
    let made = http(
        addr,
        "POST",
        "/admin/changes",
        &[("Cookie", &viewer)],
        &format!("csrf={token}&title=mine"),
    )
    .await;
    assert_eq!(made.status, 403, "{}", made.body);
    assert!(made.body.contains("admin role"), "{}", made.body);
    let cancel = http(
        addr,
        "POST",
        &format!("{draft}/cancel"),
        &[("Cookie", &viewer)],
        &format!("csrf={token}&comment=no"),
    )
    .await;
    assert_eq!(cancel.status, 403, "{}", cancel.body);
    assert!(cancel.body.contains("admin role"), "{}", cancel.body);
}

#[tokio::test]
async fn four_eyes_refuses_the_author_and_a_second_admin_activates_with_the_history_shown() {
    let (addr, _) = world_server().await;
    let admin = sign_in(addr, "t-admin").await;
    let path = new_change(addr, &admin, "Raise the AE top rate").await;
    let page = http(addr, "GET", &path, &[("Cookie", &admin)], "").await;
    let plan = std::fs::read_to_string(common::rules().join("incentives.yaml"))
        .unwrap()
        .replace("- { rate: 0.16 }", "- { rate: 0.18 }");
    let form = format!(
        "csrf={}&{}={}",
        csrf(&page.body),
        enc("file:incentives.yaml"),
        enc(&plan)
    );
    assert_eq!(
        http(addr, "POST", &path, &[("Cookie", &admin)], &form).await.status,
        303
    );
    let page = http(addr, "GET", &path, &[("Cookie", &admin)], "").await;
    assert!(page.body.contains("Passes"), "{}", page.body);
    let token = csrf(&page.body);
    let submitted = http(
        addr,
        "POST",
        &format!("{path}/submit"),
        &[("Cookie", &admin)],
        &format!("csrf={token}&comment=for%20review"),
    )
    .await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let mine = http(
        addr,
        "POST",
        &format!("{path}/approve"),
        &[("Cookie", &admin)],
        &format!("csrf={token}&comment=&activate_at="),
    )
    .await;
    assert_eq!(mine.status, 403, "{}", mine.body);
    assert!(mine.body.contains("four eyes"), "{}", mine.body);

    let controller = sign_in(addr, "t-controller").await;
    let page = http(addr, "GET", &path, &[("Cookie", &controller)], "").await;
    let approved = http(
        addr,
        "POST",
        &format!("{path}/approve"),
        &[("Cookie", &controller)],
        &format!("csrf={}&comment=looks%20right&activate_at=", csrf(&page.body)),
    )
    .await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    let page = http(addr, "GET", &path, &[("Cookie", &controller)], "").await;
    assert!(page.body.contains(r#"aria-current="step">active<"#), "{}", page.body);
    for seen in ["for review", "looks right", "controller", "t-admin"] {
        assert!(page.body.contains(seen), "the history shows {seen}: {}", page.body);
    }
    // Live: the policy page shows the new rate.
    let policy = http(
        addr,
        "GET",
        "/admin/policies/IncentivePlan/ae-commission",
        &[("Cookie", &controller)],
        "",
    )
    .await;
    assert!(policy.body.contains("rate: 0.18"), "{}", policy.body);
}

#[tokio::test]
async fn the_impact_of_a_rate_change_shows_each_reps_delta_and_a_chart() {
    let (addr, _) = world_server().await;
    let admin = sign_in(addr, "t-admin").await;
    let path = new_change(addr, &admin, "AE base rate to 10%").await;
    let page = http(addr, "GET", &path, &[("Cookie", &admin)], "").await;
    let tests = std::fs::read_to_string(common::rules().join("tests/incentives.yaml"))
        .unwrap()
        .replace(r#"total: "67000.00""#, r#"total: "79000.00""#);
    let form = format!(
        "csrf={}&{}={}&{}={}",
        csrf(&page.body),
        enc("file:incentives.yaml"),
        enc(&plan_with_rate("0.10")),
        enc("file:tests/incentives.yaml"),
        enc(&tests)
    );
    assert_eq!(
        http(addr, "POST", &path, &[("Cookie", &admin)], &form).await.status,
        303
    );
    let page = http(addr, "GET", &path, &[("Cookie", &admin)], "").await;
    assert!(page.body.contains("Passes"), "{}", page.body);
    let started = http(
        addr,
        "POST",
        &format!("{path}/impact"),
        &[("Cookie", &admin)],
        &format!(
            "csrf={}&decisions_since=2026-01-01&incentive_periods=2026-Q1",
            csrf(&page.body)
        ),
    )
    .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let job = location(&started);
    assert!(job.contains("?impact=imp_"), "{job}");
    let mut shown = String::new();
    for _ in 0..200 {
        let page = http(addr, "GET", &job, &[("Cookie", &admin)], "").await;
        assert_eq!(page.status, 200);
        if page.body.contains(r#"http-equiv="refresh""#) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        shown = page.body;
        break;
    }
    assert!(shown.contains(r#"<table class="deltas">"#), "{shown}");
    // Credit 210,000 for ana and 40,000 for ben, all below quota: 2 points more.
    assert!(shown.contains(r#"<td>ana</td><td class="num">"#), "{shown}");
    assert!(shown.contains(r#"<td class="num up">4200.00</td>"#), "{shown}");
    assert!(shown.contains(r#"<td class="num up">800.00</td>"#), "{shown}");
    assert!(
        shown.contains(r#"<td class="num up">5000.00</td>"#),
        "the total: {shown}"
    );
    assert!(shown.contains("<svg class=\"chart\""), "{shown}");
    assert_eq!(shown.matches("<rect ").count(), 2, "a bar per rep whose pay changes");
    assert!(shown.contains("Decisions replayed on both packs"));
}
