//! `/openapi.json` is kept true: every documented operation is called for
//! real, its documented role is checked against every role, and every
//! answer's status and body are checked against what the document says.

mod common;

use axum::http::StatusCode;
use common::{call, json, rules_as_json, state};
use serde_json::Value;

const DEAL: &str = r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 30}}"#;
const ROLES: [(&str, &str); 4] = [
    ("t-viewer", "viewer"),
    ("t-service", "service"),
    ("t-approver", "approver"),
    ("t-admin", "admin"),
];

fn rank(role: &str) -> usize {
    ROLES
        .iter()
        .position(|(_, r)| *r == role)
        .unwrap_or_else(|| panic!("unknown role {role}"))
}

/// Checks `body` against the schema the document gives for `status`.
fn check_body(doc: &Value, method: &str, path: &str, status: StatusCode, ctype: &str, body: &str) {
    let op = &doc["paths"][path][method.to_lowercase()];
    let code = status.as_u16().to_string();
    let response = &op["responses"][&code];
    assert!(
        response.is_object(),
        "{method} {path} answered {code}, which the document does not list: {body}"
    );
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        assert!(
            body.is_empty(),
            "{method} {path} {code}: documented without a body, got {body}"
        );
        return;
    };
    let media = ctype.split(';').next().unwrap_or("").trim();
    let schema = &content.get(media).unwrap_or_else(|| {
        panic!(
            "{method} {path} {code}: {media} is not documented ({:?})",
            content.keys().collect::<Vec<_>>()
        )
    })["schema"];
    if !media.ends_with("json") {
        return;
    }
    // The schema with the document's components beside it, so its $refs resolve.
    let mut root = serde_json::json!({ "allOf": [schema], "components": doc["components"] });
    root["$schema"] = Value::String("https://json-schema.org/draft/2020-12/schema".into());
    let validator = jsonschema::options()
        .build(&root)
        .unwrap_or_else(|e| panic!("{method} {path} {code}: the documented schema does not build: {e}"));
    let instance: Value = serde_json::from_str(body).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {code} does not match its schema {schema}:\n{}\n{body}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented_for_every_role() {
    let s = state().await;
    let (code, ctype, text) = call(&s, "GET", "/openapi.json", None, "").await;
    assert_eq!((code, ctype.as_str()), (StatusCode::OK, "application/json"));
    let doc = json(&text);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    // Things for the samples to point at.
    call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), DEAL).await;
    s.log.flush().await;
    let logged = json(&call(&s, "GET", "/v1/decisions", Some("t-viewer"), "").await.2)["decisions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let version = s.snapshot.load().version.to_string();
    let pack = rules_as_json(|_, t| t);
    let broken = rules_as_json(|p, t| {
        if p == "approvals.yaml" {
            t.replace("level: manager }", "level: manger }")
        } else {
            t
        }
    });
    let rollback = format!(r#"{{"version": "{version}"}}"#);

    // One or more sample requests per documented operation (path template,
    // method) -> [(concrete path, body)]. Every sample is also sent with a
    // problem it should report, where one is cheap to make.
    let mut samples: Vec<(&str, &str, String, String)> = vec![
        ("/healthz", "GET", "/healthz".into(), String::new()),
        ("/readyz", "GET", "/readyz".into(), String::new()),
        ("/metrics", "GET", "/metrics".into(), String::new()),
        (
            "/v1/decide/{policy}",
            "POST",
            "/v1/decide/discount-approvals".into(),
            DEAL.into(),
        ),
        (
            "/v1/decide/{policy}",
            "POST",
            "/v1/decide/no-such-policy".into(),
            DEAL.into(),
        ),
        (
            "/v1/decide/{policy}",
            "POST",
            "/v1/decide/discount-approvals".into(),
            "{oops".into(),
        ),
        (
            "/v1/decide/{policy}",
            "POST",
            "/v1/decide/discount-approvals".into(),
            r#"{"deal": {"amount": 1}}"#.into(),
        ),
        (
            "/v1/decide",
            "POST",
            "/v1/decide".into(),
            format!(r#"{{"policies": ["discount-approvals", "no-such-policy"], "input": {DEAL}}}"#),
        ),
        (
            "/v1/decide",
            "POST",
            "/v1/decide".into(),
            r#"{"policies": [], "input": {}}"#.into(),
        ),
        ("/v1/policies", "GET", "/v1/policies".into(), String::new()),
        (
            "/v1/policies/{kind}/{name}",
            "GET",
            "/v1/policies/Funnel/b2b".into(),
            String::new(),
        ),
        (
            "/v1/policies/{kind}/{name}",
            "GET",
            "/v1/policies/Funnel/nope".into(),
            String::new(),
        ),
        ("/v1/status", "GET", "/v1/status".into(), String::new()),
        ("/v1/packs", "GET", "/v1/packs".into(), String::new()),
        (
            "/v1/packs/{version}",
            "GET",
            format!("/v1/packs/{version}"),
            String::new(),
        ),
        (
            "/v1/packs/{version}",
            "GET",
            "/v1/packs/sha256:ffffffffffff".into(),
            String::new(),
        ),
        ("/v1/packs/validate", "POST", "/v1/packs/validate".into(), pack.clone()),
        (
            "/v1/packs/validate",
            "POST",
            "/v1/packs/validate".into(),
            broken.clone(),
        ),
        (
            "/v1/packs/validate",
            "POST",
            "/v1/packs/validate".into(),
            r#"{"../x": "y"}"#.into(),
        ),
        ("/v1/packs/active", "PUT", "/v1/packs/active".into(), pack.clone()),
        ("/v1/packs/active", "PUT", "/v1/packs/active".into(), broken.clone()),
        (
            "/v1/packs/rollback",
            "POST",
            "/v1/packs/rollback".into(),
            rollback.clone(),
        ),
        (
            "/v1/packs/rollback",
            "POST",
            "/v1/packs/rollback".into(),
            r#"{"version": "sha256:ffffffffffff"}"#.into(),
        ),
        (
            "/v1/decisions",
            "GET",
            "/v1/decisions?policy=discount-approvals&since=2020-01-01".into(),
            String::new(),
        ),
        ("/v1/decisions", "GET", "/v1/decisions?since=soon".into(), String::new()),
        (
            "/v1/decisions/{id}",
            "GET",
            format!("/v1/decisions/{logged}"),
            String::new(),
        ),
        ("/v1/decisions/{id}", "GET", "/v1/decisions/nope".into(), String::new()),
        (
            "/v1/decisions/{id}/replay",
            "POST",
            format!("/v1/decisions/{logged}/replay"),
            String::new(),
        ),
        ("/v1/tokens", "GET", "/v1/tokens".into(), String::new()),
        (
            "/v1/tokens",
            "POST",
            "/v1/tokens".into(),
            r#"{"role": "viewer", "subject": "u-1"}"#.into(),
        ),
        (
            "/v1/tokens",
            "POST",
            "/v1/tokens".into(),
            r#"{"role": "emperor", "subject": "u-1"}"#.into(),
        ),
        ("/v1/tokens/{id}", "DELETE", "/v1/tokens/tok_nope".into(), String::new()),
    ];
    // The workflow: a deal in proposal with the manager's step pending
    // (approver t-approver), and another to recall.
    let deal = |id: &str| {
        format!(
            r#"{{"id": "{id}", "funnel": "b2b", "owner": "r1", "fields": {{"amount": 120000, "close_date": "2026-12-15", "contact_email": "a@b.example", "discount_pct": 15, "payment_terms_days": 30}}, "context": {{"rep": {{"manager": "t-approver"}}}}}}"#
        )
    };
    let mut pending = Vec::new();
    for id in ["d-1", "d-2"] {
        call(&s, "POST", "/v1/deals", Some("t-service"), &deal(id)).await;
        for to in ["qualified", "proposal"] {
            let (code, _, text) = call(
                &s,
                "POST",
                &format!("/v1/deals/{id}/events"),
                Some("t-service"),
                &format!(r#"{{"type": "move", "to": "{to}"}}"#),
            )
            .await;
            assert_eq!(code, StatusCode::OK, "{text}");
        }
        let a = json(
            &call(&s, "GET", &format!("/v1/approvals?deal={id}"), Some("t-viewer"), "")
                .await
                .2,
        )["approvals"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        pending.push(a);
    }
    samples.extend([
        ("/v1/deals", "POST", "/v1/deals".to_string(), deal("d-3")),
        ("/v1/deals", "POST", "/v1/deals".into(), deal("d-1")),
        (
            "/v1/deals",
            "POST",
            "/v1/deals".into(),
            r#"{"id": "d-9", "funnel": "nope", "owner": "r1"}"#.into(),
        ),
        ("/v1/deals/{id}", "GET", "/v1/deals/d-1".into(), String::new()),
        ("/v1/deals/{id}", "GET", "/v1/deals/nope".into(), String::new()),
        (
            "/v1/deals/{id}/events",
            "POST",
            "/v1/deals/d-1/events".into(),
            r#"{"type": "update", "fields": {"next_step": "call"}}"#.into(),
        ),
        (
            "/v1/deals/{id}/events",
            "POST",
            "/v1/deals/d-1/events".into(),
            r#"{"type": "move", "to": "negotiation"}"#.into(),
        ),
        (
            "/v1/deals/{id}/events",
            "POST",
            "/v1/deals/d-1/events".into(),
            r#"{"type": "dance"}"#.into(),
        ),
        (
            "/v1/approvals",
            "GET",
            "/v1/approvals?state=pending".into(),
            String::new(),
        ),
        (
            "/v1/approvals",
            "GET",
            "/v1/approvals?state=maybe".into(),
            String::new(),
        ),
        ("/v1/approvals", "GET", "/v1/approvals?mine=true".into(), String::new()),
        ("/v1/deals", "GET", "/v1/deals?limit=1".into(), String::new()),
        (
            "/v1/deals",
            "GET",
            "/v1/deals?after=d-1&limit=5000".into(),
            String::new(),
        ),
        (
            "/v1/approvals/{id}/decision",
            "POST",
            format!("/v1/approvals/{}/decision", pending[0]),
            r#"{"decision": "approve", "comment": "ok"}"#.into(),
        ),
        (
            "/v1/approvals/{id}/decision",
            "POST",
            format!("/v1/approvals/{}/decision", pending[0]),
            r#"{"decision": "approve"}"#.into(),
        ),
        (
            "/v1/approvals/{id}/recall",
            "POST",
            format!("/v1/approvals/{}/recall", pending[1]),
            String::new(),
        ),
        (
            "/v1/approvals/{id}/recall",
            "POST",
            "/v1/approvals/apr_nope/recall".into(),
            String::new(),
        ),
        (
            "/v1/delegations",
            "POST",
            "/v1/delegations".into(),
            r#"{"to": "u-2", "starts": "2026-12-01", "ends": "2026-12-24"}"#.into(),
        ),
        (
            "/v1/delegations",
            "POST",
            "/v1/delegations".into(),
            r#"{"to": "u-2", "starts": "2026-12-24", "ends": "2026-12-01"}"#.into(),
        ),
        ("/v1/pipeline", "GET", "/v1/pipeline?by=owner".into(), String::new()),
        ("/v1/pipeline", "GET", "/v1/pipeline?by=mood".into(), String::new()),
        (
            "/v1/targets/{name}/progress",
            "GET",
            "/v1/targets/fy2026/progress?period=2026-Q1&by=region".into(),
            String::new(),
        ),
        (
            "/v1/targets/{name}/progress",
            "GET",
            "/v1/targets/fy2026/progress?period=2026-Q9".into(),
            String::new(),
        ),
        (
            "/v1/targets/{name}/progress",
            "GET",
            "/v1/targets/nope/progress?period=2026-Q1".into(),
            String::new(),
        ),
        (
            "/v1/analytics/funnel",
            "GET",
            "/v1/analytics/funnel?funnel=b2b&since=2026-01-01&by=owner".into(),
            String::new(),
        ),
        (
            "/v1/analytics/funnel",
            "GET",
            "/v1/analytics/funnel?funnel=b2b&by=mood".into(),
            String::new(),
        ),
        (
            "/v1/analytics/forecast",
            "GET",
            "/v1/analytics/forecast?funnel=b2b".into(),
            String::new(),
        ),
        (
            "/v1/analytics/forecast",
            "GET",
            "/v1/analytics/forecast?funnel=nope".into(),
            String::new(),
        ),
        ("/v1/outbox", "GET", "/v1/outbox?deal=d-1".into(), String::new()),
    ]);
    // The roster, imports and incentive runs (the default pack has no
    // IncentivePlan: runs are refused or not found).
    samples.extend([
        (
            "/v1/people/{id}",
            "PUT",
            "/v1/people/t-viewer".to_string(),
            r#"{"name": "Vi", "role": "ae", "manager": "t-approver", "attributes": {"quota": 100000}, "effective": {"from": "2026-01-01"}}"#.to_string(),
        ),
        ("/v1/people/{id}", "PUT", "/v1/people/t-viewer".into(), r#"{"role": 5}"#.into()),
        ("/v1/people", "GET", "/v1/people?as_of=2026-02-01&role=ae".into(), String::new()),
        ("/v1/people", "GET", "/v1/people?as_of=soon".into(), String::new()),
        (
            "/v1/people:import",
            "POST",
            "/v1/people:import".into(),
            "id,name,role,manager\nt-approver,Ap,manager,\n".into(),
        ),
        ("/v1/people:import", "POST", "/v1/people:import".into(), "id,name\nx,X\n".into()),
        (
            "/v1/deals:import",
            "POST",
            "/v1/deals:import".into(),
            "id,owner,stage,amount,closed_at\ni-1,t-viewer,won,1000,2026-01-15\n".into(),
        ),
        ("/v1/deals:import", "POST", "/v1/deals:import".into(), "id,owner\ni-2,\n".into()),
        (
            "/v1/incentives/{plan}/runs",
            "POST",
            "/v1/incentives/no-plan/runs".into(),
            r#"{"period": "2026-Q1"}"#.into(),
        ),
        (
            "/v1/incentives/{plan}/runs",
            "POST",
            "/v1/incentives/discount-approvals/runs".into(),
            r#"{"period": "2026-Q1"}"#.into(),
        ),
        (
            "/v1/incentives/runs",
            "POST",
            "/v1/incentives/runs".into(),
            r#"{"period": "2026-Q1", "plans": ["no-plan"]}"#.into(),
        ),
        (
            "/v1/incentives/runs",
            "POST",
            "/v1/incentives/runs".into(),
            r#"{"period": "2026-Q1", "plans": ["discount-approvals"]}"#.into(),
        ),
        (
            "/v1/incentives/runs",
            "POST",
            "/v1/incentives/runs".into(),
            r#"{"period": "2026-Q1", "plans": []}"#.into(),
        ),
        ("/v1/incentives/runs", "GET", "/v1/incentives/runs?state=draft".into(), String::new()),
        ("/v1/incentives/runs", "GET", "/v1/incentives/runs?state=soon".into(), String::new()),
        ("/v1/incentives/runs/{id}", "GET", "/v1/incentives/runs/run_nope".into(), String::new()),
        ("/v1/incentives/runs/{id}/approve", "POST", "/v1/incentives/runs/run_nope/approve".into(), String::new()),
        ("/v1/incentives/runs/{id}/publish", "POST", "/v1/incentives/runs/run_nope/publish".into(), String::new()),
        ("/v1/incentives/runs/{id}/lock", "POST", "/v1/incentives/runs/run_nope/lock".into(), String::new()),
        (
            "/v1/incentives/runs/{id}/export",
            "GET",
            "/v1/incentives/runs/run_nope/export?format=csv".into(),
            String::new(),
        ),
        ("/v1/statements/{rep}/{period}", "GET", "/v1/statements/t-viewer/2026-Q1".into(), String::new()),
        ("/v1/statements/{rep}/{period}", "GET", "/v1/statements/t-viewer/Q9".into(), String::new()),
    ]);

    // Change requests: one per sample that moves one, so each sample sees
    // the state it needs; an impact job to read back.
    let edit = serde_json::json!({ "approvals.yaml": format!("{}\n# reviewed\n", String::from_utf8(s.store.packs().pack(&version).await.unwrap().unwrap().files["approvals.yaml"].clone()).unwrap()) });
    let new_change = serde_json::json!({ "title": "Note the review", "files": edit }).to_string();
    let other = serde_json::json!({ "title": "Note the funnel's review", "files": { "funnel.yaml": format!("{}\n# reviewed\n", String::from_utf8(s.store.packs().pack(&version).await.unwrap().unwrap().files["funnel.yaml"].clone()).unwrap()) } }).to_string();
    s.store
        .tokens()
        .add_token(
            &hex::encode(dealrules_server::auth::hash_token("t-admin2")),
            "admin",
            "t-admin2",
            &[],
            "test",
        )
        .await
        .unwrap();
    s.tokens.refresh(&s.store.tokens()).await.unwrap();
    // 0 draft, 1 draft, 2 draft, 3 submitted by another admin, 4 draft of
    // another file (for impact), 5 submitted.
    let mut change = Vec::new();
    for (author, submit, body) in [
        ("t-admin", false, &new_change),
        ("t-admin", false, &new_change),
        ("t-admin", false, &new_change),
        ("t-admin2", true, &new_change),
        ("t-admin", false, &other),
        ("t-admin", true, &new_change),
    ] {
        let id = json(&call(&s, "POST", "/v1/changes", Some(author), body).await.2)["id"]
            .as_str()
            .unwrap()
            .to_string();
        if submit {
            call(&s, "POST", &format!("/v1/changes/{id}/submit"), Some(author), "").await;
        }
        change.push(id);
    }
    let job = json(
        &call(
            &s,
            "POST",
            &format!("/v1/changes/{}/impact", change[4]),
            Some("t-admin"),
            "",
        )
        .await
        .2,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    samples.extend([
        ("/v1/changes", "POST", "/v1/changes".to_string(), new_change.clone()),
        ("/v1/changes", "POST", "/v1/changes".into(), r#"{"title": ""}"#.into()),
        ("/v1/changes", "GET", "/v1/changes?state=draft".into(), String::new()),
        ("/v1/changes", "GET", "/v1/changes?state=soon".into(), String::new()),
        (
            "/v1/changes/{id}",
            "GET",
            format!("/v1/changes/{}", change[0]),
            String::new(),
        ),
        ("/v1/changes/{id}", "GET", "/v1/changes/chg_nope".into(), String::new()),
        (
            "/v1/changes/{id}",
            "PUT",
            format!("/v1/changes/{}", change[0]),
            r#"{"title": "Renamed"}"#.into(),
        ),
        (
            "/v1/changes/{id}",
            "PUT",
            format!("/v1/changes/{}", change[0]),
            r#"{"files": 3}"#.into(),
        ),
        (
            "/v1/changes/{id}/submit",
            "POST",
            format!("/v1/changes/{}/submit", change[1]),
            r#"{"comment": "ready"}"#.into(),
        ),
        (
            "/v1/changes/{id}/submit",
            "POST",
            "/v1/changes/chg_nope/submit".into(),
            String::new(),
        ),
        (
            "/v1/changes/{id}/approve",
            "POST",
            format!("/v1/changes/{}/approve", change[2]),
            String::new(),
        ),
        (
            "/v1/changes/{id}/approve",
            "POST",
            format!("/v1/changes/{}/approve", change[3]),
            String::new(),
        ),
        (
            "/v1/changes/{id}/approve",
            "POST",
            format!("/v1/changes/{}/approve", change[3]),
            r#"{"activate_at": "soon"}"#.into(),
        ),
        (
            "/v1/changes/{id}/reject",
            "POST",
            format!("/v1/changes/{}/reject", change[3]),
            r#"{"comment": "no"}"#.into(),
        ),
        (
            "/v1/changes/{id}/reject",
            "POST",
            "/v1/changes/chg_nope/reject".into(),
            String::new(),
        ),
        (
            "/v1/changes/{id}/cancel",
            "POST",
            format!("/v1/changes/{}/cancel", change[2]),
            String::new(),
        ),
        (
            "/v1/changes/{id}/cancel",
            "POST",
            format!("/v1/changes/{}/cancel", change[2]),
            String::new(),
        ),
        (
            "/v1/changes/rollback",
            "POST",
            "/v1/changes/rollback".into(),
            rollback.clone(),
        ),
        (
            "/v1/changes/rollback",
            "POST",
            "/v1/changes/rollback".into(),
            r#"{"version": "zz"}"#.into(),
        ),
        (
            "/v1/changes/{id}/impact",
            "POST",
            format!("/v1/changes/{}/impact", change[4]),
            r#"{"incentive_periods": ["2026-Q1"]}"#.into(),
        ),
        (
            "/v1/changes/{id}/impact",
            "POST",
            format!("/v1/changes/{}/impact", change[4]),
            r#"{"examples": "x"}"#.into(),
        ),
        (
            "/v1/changes/{id}/impact/{job}",
            "GET",
            format!("/v1/changes/{}/impact/{job}", change[4]),
            String::new(),
        ),
        (
            "/v1/changes/{id}/impact/{job}",
            "GET",
            format!("/v1/changes/{}/impact/imp_nope", change[4]),
            String::new(),
        ),
    ]);

    // A real revocation last, so the 204 is seen too.
    let victim = json(
        &call(
            &s,
            "POST",
            "/v1/tokens",
            Some("t-admin"),
            r#"{"role": "viewer", "subject": "u-2"}"#,
        )
        .await
        .2,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    samples.push((
        "/v1/tokens/{id}",
        "DELETE",
        format!("/v1/tokens/{victim}"),
        String::new(),
    ));

    // Every documented operation has a sample, and every sample is documented.
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((path.clone(), method.to_uppercase()));
        }
    }
    for (path, method) in &documented {
        assert!(
            samples.iter().any(|(p, m, _, _)| p == path && m == method),
            "{method} {path} is documented but not tested here"
        );
    }
    for (p, m, _, _) in &samples {
        assert!(
            documented.iter().any(|(path, method)| path == p && method == m),
            "{m} {p} is not in /openapi.json"
        );
    }
    assert!(documented.len() >= 18, "{documented:?}");

    for (template, method, path, body) in &samples {
        let op = &doc["paths"][template][method.to_lowercase()];
        match op.get("x-required-role").and_then(Value::as_str) {
            None => {
                let (code, ctype, text) = call(&s, method, path, None, body).await;
                check_body(&doc, method, template, code, &ctype, &text);
            }
            Some(role) => {
                assert_eq!(
                    op["security"],
                    serde_json::json!([{ "bearer": [] }]),
                    "{method} {template}"
                );
                let (code, ctype, text) = call(&s, method, path, None, body).await;
                assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path} without a token");
                check_body(&doc, method, template, code, &ctype, &text);
                // Weaker roles are refused; the documented role and above get the route's own answer.
                for (token, r) in ROLES {
                    if rank(r) < rank(role) {
                        let (code, ctype, text) = call(&s, method, path, Some(token), body).await;
                        assert_eq!(code, StatusCode::FORBIDDEN, "{method} {path} as {r}: {text}");
                        check_body(&doc, method, template, code, &ctype, &text);
                    }
                }
                let (code, ctype, text) = call(&s, method, path, Some(ROLES[rank(role)].0), body).await;
                assert!(
                    code != StatusCode::UNAUTHORIZED && code != StatusCode::FORBIDDEN,
                    "{method} {path} as {role}: {code} {text}"
                );
                check_body(&doc, method, template, code, &ctype, &text);
            }
        }
    }
}

#[test]
fn the_document_names_its_schemas() {
    let (_, doc) = dealrules_server::routes::api();
    let doc = dealrules_server::openapi::finish(doc);
    if std::env::var("DUMP_OPENAPI").is_ok() {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap());
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Problem",
        "ReloadStatus",
        "Validation",
        "ActivationAnswer",
        "PackList",
        "LoggedDecision",
        "DecisionPage",
        "Replay",
        "TokenRecord",
        "CreatedToken",
    ] {
        assert!(
            schemas.contains_key(name),
            "{name} missing: {:?}",
            schemas.keys().collect::<Vec<_>>()
        );
    }
    // A schema that says nothing would pass any body: these must constrain.
    assert!(
        schemas["ReloadStatus"]["required"].as_array().unwrap().len() >= 8,
        "{}",
        schemas["ReloadStatus"]
    );
    assert_eq!(
        doc["paths"]["/v1/decide/{policy}"]["post"]["x-required-role"],
        "service"
    );
}
