//! The API through `app(state)` with `oneshot`: roles per route, problem+json
//! errors, and decide giving what the core gives.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{call, json, rules, rules_as_json, state};
use dealrules_server::auth::{Role, hash_token};
use http_body_util::BodyExt;
use tower::ServiceExt;

const DEAL: &str = r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 30}}"#;

/// Every route, for every role: allowed (the route's own answer) or
/// 401 without a token / 403 below the route's role.
#[tokio::test]
async fn role_table() {
    let s = state().await;
    // Something in the decision log, a token to revoke, the active version.
    call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), DEAL).await;
    s.log.flush().await;
    let logged = json(&call(&s, "GET", "/v1/decisions", Some("t-viewer"), "").await.2)["decisions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let version = s.snapshot.load().version.to_string();
    let doomed = json(
        &call(
            &s,
            "POST",
            "/v1/tokens",
            Some("t-admin"),
            r#"{"role": "viewer", "subject": "u-9"}"#,
        )
        .await
        .2,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pack = rules_as_json(|_, t| t);
    let rollback = format!(r#"{{"version": "{version}"}}"#);
    let several = format!(r#"{{"policies": ["discount-approvals"], "input": {DEAL}}}"#);
    // (method, path, body, weakest role allowed, the allowed answer)
    let routes: Vec<(&str, String, &str, Role, StatusCode)> = vec![
        (
            "POST",
            "/v1/decide/discount-approvals".into(),
            DEAL,
            Role::Service,
            StatusCode::OK,
        ),
        ("POST", "/v1/decide".into(), &several, Role::Service, StatusCode::OK),
        ("GET", "/v1/policies".into(), "", Role::Viewer, StatusCode::OK),
        (
            "GET",
            "/v1/policies/ApprovalPolicy/discount-approvals".into(),
            "",
            Role::Viewer,
            StatusCode::OK,
        ),
        ("GET", "/v1/status".into(), "", Role::Viewer, StatusCode::OK),
        ("GET", "/v1/packs".into(), "", Role::Viewer, StatusCode::OK),
        ("GET", format!("/v1/packs/{version}"), "", Role::Viewer, StatusCode::OK),
        ("POST", "/v1/packs/validate".into(), &pack, Role::Admin, StatusCode::OK),
        ("PUT", "/v1/packs/active".into(), &pack, Role::Admin, StatusCode::OK),
        (
            "POST",
            "/v1/packs/rollback".into(),
            &rollback,
            Role::Admin,
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/decisions?policy=discount-approvals".into(),
            "",
            Role::Viewer,
            StatusCode::OK,
        ),
        (
            "GET",
            format!("/v1/decisions/{logged}"),
            "",
            Role::Viewer,
            StatusCode::OK,
        ),
        (
            "POST",
            format!("/v1/decisions/{logged}/replay"),
            "",
            Role::Viewer,
            StatusCode::OK,
        ),
        ("GET", "/v1/tokens".into(), "", Role::Admin, StatusCode::OK),
        (
            "POST",
            "/v1/tokens".into(),
            r#"{"role": "service", "subject": "crm"}"#,
            Role::Admin,
            StatusCode::CREATED,
        ),
        (
            "DELETE",
            format!("/v1/tokens/{doomed}"),
            "",
            Role::Admin,
            StatusCode::NO_CONTENT,
        ),
    ];
    let tokens = [
        ("t-viewer", Role::Viewer),
        ("t-service", Role::Service),
        ("t-approver", Role::Approver),
        ("t-admin", Role::Admin),
    ];
    for (method, path, body, needed, allowed) in &routes {
        let (code, ctype, _) = call(&s, method, path, None, body).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path} without a token");
        assert_eq!(ctype, "application/problem+json");
        let (code, _, _) = call(&s, method, path, Some("wrong"), body).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path} with a wrong token");
        for (token, role) in tokens {
            let (code, ctype, text) = call(&s, method, path, Some(token), body).await;
            if role >= *needed {
                assert_eq!(code, *allowed, "{method} {path} as {role:?}: {text}");
            } else {
                assert_eq!(
                    (code, ctype.as_str()),
                    (StatusCode::FORBIDDEN, "application/problem+json"),
                    "{method} {path} as {role:?}: {text}"
                );
            }
        }
    }
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(call(&s, "GET", path, None, "").await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn decide_gives_what_the_core_gives() {
    let s = state().await;
    let (code, ctype, body) = call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), DEAL).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(ctype, "application/json");
    let snapshot = dealrules_server::reload::build(&rules()).unwrap();
    let core = snapshot
        .decide_json("discount-approvals", DEAL, "2026-01-01T00:00:00Z")
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::to_value(&core).unwrap()
    );
}

/// `POST /v1/decide`: each policy answers what its own decide answers, in
/// the order asked; an unknown one is an error entry and the others still
/// decide; each is logged and counted as its own decision.
#[tokio::test]
async fn several_policies_decide_as_each_would_alone() {
    let s = state().await;
    const INPUT: &str = r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 60},
        "customer": {"max_terms_days": 45, "credit_limit": 100000}}"#;
    let body =
        format!(r#"{{"policies": ["payment-terms", "no-such-policy", "discount-approvals"], "input": {INPUT}}}"#);
    let (code, ctype, text) = call(&s, "POST", "/v1/decide", Some("t-service"), &body).await;
    assert_eq!((code, ctype.as_str()), (StatusCode::OK, "application/json"), "{text}");
    let answer = json(&text);
    let snapshot = dealrules_server::reload::build(&rules()).unwrap();
    for policy in ["payment-terms", "discount-approvals"] {
        let alone = snapshot.decide_json(policy, INPUT, "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(
            answer["results"][policy],
            serde_json::to_value(&alone).unwrap(),
            "{policy}"
        );
    }
    assert_eq!(answer["results"]["no-such-policy"]["error"]["status"], 404);
    assert!(
        answer["results"]["no-such-policy"]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("no-such-policy"),
        "{text}"
    );
    // In the order asked.
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    assert!(at("payment-terms") < at("no-such-policy") && at("no-such-policy") < at("discount-approvals"));
    // Logged one by one, with the input alone (so each replays on its own).
    s.log.flush().await;
    let logged = json(&call(&s, "GET", "/v1/decisions?limit=10", Some("t-viewer"), "").await.2);
    let logged = logged["decisions"].as_array().unwrap();
    let mut policies: Vec<&str> = logged.iter().map(|d| d["policy"].as_str().unwrap()).collect();
    policies.sort();
    assert_eq!(policies, ["discount-approvals", "no-such-policy", "payment-terms"]);
    for d in logged {
        let id = d["id"].as_str().unwrap();
        let one = json(
            &call(&s, "GET", &format!("/v1/decisions/{id}"), Some("t-viewer"), "")
                .await
                .2,
        );
        assert_eq!(one["input"], json(INPUT), "{one}");
    }
    let (_, _, metrics) = call(&s, "GET", "/metrics", None, "").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("policy=\"payment-terms\"") && l.contains("outcome=\"ok\"") && l.ends_with(" 1")),
        "{metrics}"
    );
    // A policy that cannot decide (payment-terms needs the customer) is a
    // 422 entry; the other still decides.
    let body = format!(r#"{{"policies": ["payment-terms", "discount-approvals"], "input": {DEAL}}}"#);
    let (code, _, text) = call(&s, "POST", "/v1/decide", Some("t-service"), &body).await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let answer = json(&text);
    assert_eq!(answer["results"]["payment-terms"]["error"]["status"], 422, "{text}");
    assert!(text.contains("customer"), "{text}");
    let alone = snapshot
        .decide_json("discount-approvals", DEAL, "2026-01-01T00:00:00Z")
        .unwrap();
    assert_eq!(
        answer["results"]["discount-approvals"],
        serde_json::to_value(&alone).unwrap()
    );
}

/// A request that is malformed as a whole is one 400 problem, naming what
/// is wrong; nothing is decided or logged.
#[tokio::test]
async fn several_policies_refuse_malformed_requests() {
    let s = state().await;
    let cases = [
        ("{not json", "the request must be"),
        ("[1]", "must be a JSON object"),
        (r#"{"input": {}}"#, "needs `policies`"),
        (r#"{"policies": ["payment-terms"]}"#, "needs `input`"),
        (r#"{"policies": [], "input": {}}"#, "at least one policy"),
        (r#"{"policies": ["a", "a"], "input": {}}"#, "named twice"),
        (r#"{"policies": ["a"], "input": [1]}"#, "input must be a JSON object"),
        (r#"{"policies": ["a"], "input": {}, "extra": 1}"#, "unknown field"),
        (r#"{"policies": "a", "input": {}}"#, "policies"),
    ];
    for (body, says) in cases {
        let (code, ctype, text) = call(&s, "POST", "/v1/decide", Some("t-service"), body).await;
        assert_eq!(
            (code, ctype.as_str()),
            (StatusCode::BAD_REQUEST, "application/problem+json"),
            "{body}: {text}"
        );
        assert!(json(&text)["detail"].as_str().unwrap().contains(says), "{body}: {text}");
    }
    let many: Vec<String> = (0..65).map(|i| format!("\"p{i}\"")).collect();
    let body = format!(r#"{{"policies": [{}], "input": {{}}}}"#, many.join(","));
    let (code, _, text) = call(&s, "POST", "/v1/decide", Some("t-service"), &body).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("at most 64"), "{text}");
    s.log.flush().await;
    let logged = json(&call(&s, "GET", "/v1/decisions", Some("t-viewer"), "").await.2);
    assert_eq!(logged["decisions"].as_array().unwrap().len(), 0, "{logged}");
}

#[tokio::test]
async fn errors_are_problem_json() {
    let s = state().await;
    let cases = [
        ("/v1/decide/discount-approvals", "{not json", StatusCode::BAD_REQUEST),
        ("/v1/decide/discount-approvals", "[1, 2]", StatusCode::BAD_REQUEST),
        ("/v1/decide/no-such-policy", "{}", StatusCode::NOT_FOUND),
        (
            "/v1/decide/discount-approvals",
            r#"{"deal": {"amount": 1}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, body, want) in cases {
        let (code, ctype, text) = call(&s, "POST", path, Some("t-service"), body).await;
        assert_eq!(code, want, "{path} {body}: {text}");
        assert_eq!(ctype, "application/problem+json");
        let p: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(p["status"], want.as_u16());
        assert!(
            p["title"].is_string() && p["detail"].is_string() && p["type"].is_string(),
            "{p}"
        );
    }
    let (code, ctype, _) = call(&s, "GET", "/v1/nothing-here", Some("t-admin"), "").await;
    assert_eq!(
        (code, ctype.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
}

#[tokio::test]
async fn bodies_are_capped() {
    let s = state().await;
    let big = format!(
        r#"{{"deal": {{"pad": "{}"}}}}"#,
        "x".repeat(dealrules_server::routes::MAX_BODY_BYTES + 10)
    );
    let (code, _, _) = call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), &big).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn policies_and_status() {
    let s = state().await;
    let (_, _, body) = call(&s, "GET", "/v1/policies", Some("t-viewer"), "").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["policies"].as_array().unwrap().len(), 9);
    let (code, _, body) = call(&s, "GET", "/v1/policies/Funnel/b2b", Some("t-viewer"), "").await;
    assert_eq!(code, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["source"].as_str().unwrap().contains("kind: Funnel"));
    assert_eq!(v["summary"]["initial"], "lead");
    let (_, _, body) = call(
        &s,
        "GET",
        "/v1/policies/ApprovalPolicy/discount-approvals",
        Some("t-viewer"),
        "",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["summary"]["reads_input_through_slots"], true);
    assert_eq!(v["summary"]["rules"][0]["compiled"], true);
    let (code, _, _) = call(&s, "GET", "/v1/policies/Funnel/nope", Some("t-viewer"), "").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, _, body) = call(&s, "GET", "/v1/status", Some("t-viewer"), "").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["version"].as_str().unwrap().starts_with("sha256:"));
    assert!(v["last_reload_errors"].is_null());
}

#[tokio::test]
async fn metrics_count_decisions_by_policy_and_outcome() {
    let s = state().await;
    call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), DEAL).await;
    call(
        &s,
        "POST",
        "/v1/decide/discount-approvals",
        Some("t-service"),
        r#"{"deal": {}}"#,
    )
    .await;
    call(&s, "POST", "/v1/decide/made-up-1", Some("t-service"), "{}").await;
    call(&s, "POST", "/v1/decide/made-up-2", Some("t-service"), "{}").await;
    let (code, _, text) = call(&s, "GET", "/metrics", None, "").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        text.contains(r#"dealrules_decisions_total{policy="discount-approvals",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"dealrules_decisions_total{policy="discount-approvals",outcome="rejected"} 1"#),
        "{text}"
    );
    // unknown names share one series, so a client cannot grow the metrics
    assert!(
        text.contains(r#"dealrules_decisions_total{policy="(unknown)",outcome="rejected"} 2"#),
        "{text}"
    );
    assert!(text.contains("dealrules_decision_seconds_bucket"), "{text}");
    assert!(!text.contains("made-up"), "{text}");
}

/// Raises the auto-approval limit to 15% (the pack's tests kept true).
fn raise_auto_limit(path: &str, text: String) -> String {
    match path {
        "approvals.yaml" => text.replace(
            "deal.discount_pct <= 10 && deal.amount <= 50000",
            "deal.discount_pct <= 15 && deal.amount <= 50000",
        ),
        "tests/approvals.yaml" => text.replace("discount_pct: 10.5, region: NA", "discount_pct: 15.5, region: NA"),
        _ => text,
    }
}

const SMALL_DEAL: &str = r#"{"deal": {"amount": 40000, "discount_pct": 12, "region": "NA", "payment_terms_days": 30}}"#;

#[tokio::test]
async fn packs_are_validated_activated_listed_and_rolled_back() {
    let s = state().await;
    let first = s.snapshot.load().version.to_string();
    let before = json(
        &call(
            &s,
            "POST",
            "/v1/decide/discount-approvals",
            Some("t-service"),
            SMALL_DEAL,
        )
        .await
        .2,
    );
    assert_eq!(before["level"], "manager");

    // Validate: a good pack and a broken one, neither activated.
    let good = rules_as_json(raise_auto_limit);
    let (code, _, text) = call(&s, "POST", "/v1/packs/validate", Some("t-admin"), &good).await;
    assert_eq!(code, StatusCode::OK);
    let v = json(&text);
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["tests_passed"].as_u64().unwrap() >= 39, "{v}");
    let broken = rules_as_json(|p, t| {
        if p == "approvals.yaml" {
            t.replace("level: manager }", "level: manger }")
        } else {
            t
        }
    });
    let v = json(&call(&s, "POST", "/v1/packs/validate", Some("t-admin"), &broken).await.2);
    assert_eq!(v["valid"], false);
    let errors = v["errors"].to_string();
    assert!(
        errors.contains("approvals.yaml:") && errors.contains("did you mean `manager`"),
        "{errors}"
    );
    assert_eq!(*s.snapshot.load().version, first, "validating activates nothing");

    // A broken upload is refused with every error; the old pack serves on.
    let (code, ctype, text) = call(&s, "PUT", "/v1/packs/active", Some("t-admin"), &broken).await;
    assert_eq!(
        (code, ctype.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json"),
        "{text}"
    );
    let problem = json(&text);
    assert!(
        problem["errors"][0].as_str().unwrap().starts_with("approvals.yaml:"),
        "{problem}"
    );
    assert_eq!(*s.snapshot.load().version, first);
    let status = json(&call(&s, "GET", "/v1/status", Some("t-viewer"), "").await.2);
    assert!(
        status["last_reload_errors"].to_string().contains("approvals.yaml:"),
        "{status}"
    );

    // A good upload goes live, recorded with who and why.
    let (code, _, text) = call(
        &s,
        "PUT",
        "/v1/packs/active?comment=raise%20auto%20limit",
        Some("t-admin"),
        &good,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let act = json(&text)["activation"].clone();
    assert_eq!(
        (
            act["activated_by"].as_str(),
            act["source"].as_str(),
            act["comment"].as_str()
        ),
        (Some("t-admin"), Some("upload"), Some("raise auto limit"))
    );
    let second = act["version"].as_str().unwrap().to_string();
    let after = json(
        &call(
            &s,
            "POST",
            "/v1/decide/discount-approvals",
            Some("t-service"),
            SMALL_DEAL,
        )
        .await
        .2,
    );
    assert_eq!(
        (after["level"].as_str(), after["version"].as_str()),
        (Some("auto"), Some(second.as_str()))
    );
    let status = json(&call(&s, "GET", "/v1/status", Some("t-viewer"), "").await.2);
    assert_eq!(
        (status["source"].as_str(), status["version"].as_str()),
        (Some("upload"), Some(second.as_str()))
    );
    assert!(status["last_reload_errors"].is_null());

    // Uploading it again changes nothing.
    let v = json(&call(&s, "PUT", "/v1/packs/active", Some("t-admin"), &good).await.2);
    assert_eq!(v["activated"], false);

    // Rollback by a prefix of the old version.
    let prefix = &first["sha256:".len().."sha256:".len() + 8];
    let (code, _, text) = call(
        &s,
        "POST",
        "/v1/packs/rollback",
        Some("t-admin"),
        &format!(r#"{{"version": "{prefix}", "comment": "too generous"}}"#),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_eq!(json(&text)["activation"]["source"], "rollback");
    assert_eq!(
        json(
            &call(
                &s,
                "POST",
                "/v1/decide/discount-approvals",
                Some("t-service"),
                SMALL_DEAL
            )
            .await
            .2
        )["level"],
        "manager"
    );
    let (code, _, _) = call(
        &s,
        "POST",
        "/v1/packs/rollback",
        Some("t-admin"),
        r#"{"version": "sha256:ffffffffffff"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _, _) = call(&s, "POST", "/v1/packs/rollback", Some("t-admin"), r#"{"version": "x"}"#).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    // The history: directory, upload, rollback; two versions stored whole.
    let packs = json(&call(&s, "GET", "/v1/packs", Some("t-viewer"), "").await.2);
    let sources: Vec<&str> = packs["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["rollback", "upload", "directory"]);
    assert_eq!(packs["versions"].as_array().unwrap().len(), 2);
    assert_eq!(packs["active"]["version"], first.as_str());
    let files = json(
        &call(&s, "GET", &format!("/v1/packs/{second}"), Some("t-viewer"), "")
            .await
            .2,
    );
    assert!(
        files["files"]["approvals.yaml"]["text"]
            .as_str()
            .unwrap()
            .contains("deal.discount_pct <= 15")
    );
}

#[tokio::test]
async fn archives_upload_like_folders_and_hostile_ones_are_refused() {
    let s = state().await;
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    builder.append_dir_all("rules", rules()).unwrap();
    let body = builder.into_inner().unwrap().finish().unwrap();
    let res = dealrules_server::routes::app(s.clone())
        .oneshot(
            Request::builder()
                .method("POST")
                .uri("/v1/packs/validate")
                .header("authorization", "Bearer t-admin")
                .header("content-type", "application/gzip")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    // The same files as the folder: the same version.
    assert_eq!(
        (v["valid"].as_bool(), v["version"].as_str()),
        (Some(true), Some(&*s.snapshot.load().version))
    );

    let (code, ctype, text) = call(
        &s,
        "PUT",
        "/v1/packs/active",
        Some("t-admin"),
        r#"{"../../etc/passwd": "x"}"#,
    )
    .await;
    assert_eq!(
        (code, ctype.as_str()),
        (StatusCode::BAD_REQUEST, "application/problem+json"),
        "{text}"
    );
    let big = "x".repeat(dealrules_server::upload::MAX_UPLOAD_BYTES + 1);
    assert_eq!(
        call(&s, "POST", "/v1/packs/validate", Some("t-admin"), &big).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn every_decision_is_logged_and_replays_exactly_on_its_own_pack() {
    let s = state().await;
    let first = s.snapshot.load().version.to_string();
    for _ in 0..3 {
        call(
            &s,
            "POST",
            "/v1/decide/discount-approvals",
            Some("t-service"),
            SMALL_DEAL,
        )
        .await;
    }
    call(&s, "POST", "/v1/decide/payment-terms", Some("t-service"), DEAL).await;
    call(
        &s,
        "POST",
        "/v1/decide/discount-approvals",
        Some("t-service"),
        r#"{"deal": {"amount": 1}}"#,
    )
    .await;
    // A new pack decides the same deal differently.
    assert_eq!(
        call(
            &s,
            "PUT",
            "/v1/packs/active",
            Some("t-admin"),
            &rules_as_json(raise_auto_limit)
        )
        .await
        .0,
        StatusCode::OK
    );
    call(
        &s,
        "POST",
        "/v1/decide/discount-approvals",
        Some("t-service"),
        SMALL_DEAL,
    )
    .await;
    s.log.flush().await;

    let all = json(
        &call(
            &s,
            "GET",
            "/v1/decisions?policy=discount-approvals",
            Some("t-viewer"),
            "",
        )
        .await
        .2,
    );
    let list = all["decisions"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert_eq!(list[0]["input"], json(SMALL_DEAL), "the input as sent");
    assert_eq!(
        (
            list[0]["version"].as_str(),
            list[0]["result"]["level"].as_str(),
            list[0]["subject"].as_str()
        ),
        (Some(first.as_str()), Some("manager"), Some("t-service"))
    );
    assert_eq!(list[3]["outcome"], "error");
    assert!(
        list[3]["result"]["error"].as_str().unwrap().contains("discount_pct"),
        "{}",
        list[3]
    );
    assert_eq!(list[4]["result"]["level"], "auto");
    // Paging and time windows.
    let page = json(&call(&s, "GET", "/v1/decisions?limit=2", Some("t-viewer"), "").await.2);
    assert_eq!(page["decisions"].as_array().unwrap().len(), 2);
    let next = page["next_after"].as_str().unwrap();
    let rest = json(
        &call(
            &s,
            "GET",
            &format!("/v1/decisions?after={next}&limit=100"),
            Some("t-viewer"),
            "",
        )
        .await
        .2,
    );
    assert_eq!(rest["decisions"].as_array().unwrap().len(), 4);
    assert!(rest["next_after"].is_null());
    assert_eq!(
        json(
            &call(&s, "GET", "/v1/decisions?since=2999-01-01", Some("t-viewer"), "")
                .await
                .2
        )["decisions"],
        serde_json::json!([])
    );
    let (code, ctype, _) = call(&s, "GET", "/v1/decisions?since=yesterday", Some("t-viewer"), "").await;
    assert_eq!(
        (code, ctype.as_str()),
        (StatusCode::BAD_REQUEST, "application/problem+json")
    );

    // The old decision replays on the old pack, not the active one.
    let old = list[0]["id"].as_str().unwrap();
    let r = json(
        &call(&s, "POST", &format!("/v1/decisions/{old}/replay"), Some("t-viewer"), "")
            .await
            .2,
    );
    assert_eq!(
        (r["same"].as_bool(), r["version"].as_str()),
        (Some(true), Some(first.as_str())),
        "{r}"
    );
    assert_eq!(r["replayed"]["level"], "manager");
    let failed = list[3]["id"].as_str().unwrap();
    assert_eq!(
        json(
            &call(
                &s,
                "POST",
                &format!("/v1/decisions/{failed}/replay"),
                Some("t-viewer"),
                ""
            )
            .await
            .2
        )["same"],
        true
    );
    assert_eq!(
        call(&s, "POST", "/v1/decisions/nope/replay", Some("t-viewer"), "")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn tokens_made_through_the_api_work_until_revoked() {
    let s = state().await;
    let (code, _, text) = call(
        &s,
        "POST",
        "/v1/tokens",
        Some("t-admin"),
        r#"{"role": "service", "subject": "crm", "groups": ["team:emea"]}"#,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{text}");
    let made = json(&text);
    let token = made["token"].as_str().unwrap();
    assert!(token.starts_with("drt_"));
    assert_eq!(
        call(&s, "POST", "/v1/decide/discount-approvals", Some(token), DEAL)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&s, "GET", "/v1/tokens", Some(token), "").await.0,
        StatusCode::FORBIDDEN
    );
    // Listed without the token or its hash.
    let list = call(&s, "GET", "/v1/tokens", Some("t-admin"), "").await.2;
    assert!(
        list.contains("\"crm\"") && !list.contains(token) && !list.contains(&hex::encode(hash_token(token))),
        "{list}"
    );
    assert_eq!(
        call(
            &s,
            "DELETE",
            &format!("/v1/tokens/{}", made["id"].as_str().unwrap()),
            Some("t-admin"),
            ""
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&s, "POST", "/v1/decide/discount-approvals", Some(token), DEAL)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    for bad in [
        r#"{"role": "king", "subject": "x"}"#,
        r#"{"role": "viewer", "subject": " "}"#,
        "nope",
    ] {
        assert_eq!(
            call(&s, "POST", "/v1/tokens", Some("t-admin"), bad).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_token_made_by_the_cli_on_the_same_store_is_accepted() {
    let s = state().await;
    // What `dealrules token create` does, straight on the store.
    s.store
        .tokens()
        .add_token(&hex::encode(hash_token("drt_from_cli")), "viewer", "u-5", &[], "cli")
        .await
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        call(&s, "GET", "/v1/status", Some("drt_from_cli"), "").await.0,
        StatusCode::OK
    );
}
