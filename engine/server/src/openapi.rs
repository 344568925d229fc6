//! The OpenAPI document of `/openapi.json`, generated from the handlers
//! themselves (utoipa): the router and the document are built from the same
//! list, so a route cannot be served undocumented. Each operation carries
//! `x-required-role`; the role and problem responses common to all are
//! added here, once. The tests check the role of every operation against
//! real requests and every answer against its documented schema.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// An error, as RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For a pack that was not activated: every problem, as `file:line:col: message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "dealrules",
        description = "Sales policies as rules: decisions, policies, packs and their activations, the decision log, tokens. Errors are application/problem+json.",
        license(name = "Apache-2.0")
    ),
    components(schemas(Problem)),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "decide", description = "Decisions"),
        (name = "policies", description = "The active pack's policies and the reload status"),
        (name = "packs", description = "Validate, activate, list and roll back pack versions"),
        (name = "decision-log", description = "Every decision with its input, result, pack version and time"),
        (name = "tokens", description = "API tokens"),
        (name = "deals", description = "Deals moving through the funnel, the pipeline, notifications"),
        (name = "approvals", description = "Approval requests, decisions, recalls, delegations"),
        (name = "people", description = "The roster: effective-dated people and their managers"),
        (name = "incentives", description = "Incentive runs on stored deals, their lifecycle, statements, payroll export"),
        (name = "targets", description = "Progress against targets on stored deals: attainment, pace, alerts"),
        (name = "analytics", description = "Funnel analytics and the forecast, from the deals' history"),
        (name = "changes", description = "Change requests: drafts validated on save, impact on real history, four-eyes approval, scheduled activation, rollback"),
    )
)]
pub struct ApiDoc;

/// Adds what every operation shares: the bearer scheme, 401/403 where a
/// role is needed, and the problem body of every error response.
pub fn finish(doc: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    doc["components"]["securitySchemes"]["bearer"] = json!({ "type": "http", "scheme": "bearer", "description": "A token from `dealrules token create`, POST /v1/tokens or DEALRULES_ADMIN_TOKEN" });
    let problem = json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for op in item.values_mut() {
                let Some(op) = op.as_object_mut() else { continue };
                let role = op.get("x-required-role").and_then(Value::as_str).map(str::to_string);
                let responses = op.entry("responses").or_insert_with(|| json!({}));
                if let Some(role) = &role {
                    responses["401"] = json!({ "description": "No token, or a token that is not known" });
                    responses["403"] = json!({ "description": format!("The token's role is below {role}") });
                }
                if let Some(map) = responses.as_object_mut() {
                    for (code, response) in map.iter_mut() {
                        if code.as_str() >= "400" && response.get("content").is_none() {
                            response["content"] = problem.clone();
                        }
                    }
                }
                if role.is_some() {
                    op.insert("security".into(), json!([{ "bearer": [] }]));
                }
                // Archives are bytes, not arrays of numbers.
                if let Some(content) = op
                    .get_mut("requestBody")
                    .and_then(|b| b.get_mut("content"))
                    .and_then(Value::as_object_mut)
                {
                    for (media, body) in content.iter_mut() {
                        if !media.ends_with("json") {
                            body["schema"] = json!({ "type": "string", "contentMediaType": media });
                        }
                    }
                }
            }
        }
    }
    exact(&mut doc);
    doc
}

/// What the server checks, said in the document: enums, formats, lengths
/// and patterns the handlers enforce beyond the Rust types, so generated
/// clients and validators (and Schemathesis, in CI) agree with the server.
/// Each entry is checked by `scripts/schemathesis` against the real server.
fn exact(doc: &mut Value) {
    let id = json!({ "type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S" });
    let when =
        json!({ "anyOf": [{ "type": "string", "format": "date-time" }, { "type": "string", "format": "date" }] });
    let version = json!({ "type": "string", "pattern": "^\\s*(sha256:)?[0-9a-fA-F]{6,}\\s*$" });
    let title = json!({ "type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S" });
    let nullable = |schema: &Value| {
        let mut s = schema.clone();
        s["type"] = json!(["string", "null"]);
        s
    };
    let comment = json!({ "type": ["string", "null"], "maxLength": 2000 });
    // A change's files: path -> whole new text, or null to delete it.
    let change_files = json!({
        "type": "object",
        "maxProperties": 10000,
        "propertyNames": { "pattern": "^[^/\\\\:\\u0000.][^\\\\:\\u0000]{0,511}$" },
        "additionalProperties": { "type": ["string", "null"] },
        "description": "path -> the file's whole new text; null deletes it"
    });
    let params: &[(&str, &str, &str, Value)] = &[
        (
            "/v1/approvals",
            "get",
            "state",
            json!({ "type": "string", "enum": dealrules_store::ApprovalState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>() }),
        ),
        (
            "/v1/pipeline",
            "get",
            "by",
            json!({ "type": "string", "enum": ["stage", "owner", "period"] }),
        ),
        (
            "/v1/deals",
            "get",
            "limit",
            json!({ "type": "integer", "minimum": 0, "maximum": 4294967295u64, "description": "At most this many (default 50); 0 and more than 1000 are taken as 1 and 1000" }),
        ),
        (
            "/v1/people",
            "get",
            "format",
            json!({ "type": "string", "enum": ["json", "xlsx"], "description": "json (the default) or xlsx, the import's shape" }),
        ),
        ("/v1/decisions", "get", "since", when.clone()),
        ("/v1/decisions", "get", "until", when.clone()),
        (
            "/v1/decisions",
            "get",
            "limit",
            json!({ "type": "integer", "minimum": 0, "maximum": 4294967295u64, "description": "At most this many (default 100); 0 and more than 1000 are taken as 1 and 1000" }),
        ),
        ("/v1/packs/{version}", "get", "version", version.clone()),
        (
            "/v1/incentives/runs",
            "get",
            "state",
            json!({ "type": "string", "enum": ["running", "draft", "approved", "published", "locked", "failed", "replaced"] }),
        ),
        (
            "/v1/people",
            "get",
            "as_of",
            json!({ "type": "string", "format": "date", "description": "YYYY-MM-DD; today when left out." }),
        ),
        (
            "/v1/statements/{rep}/{period}",
            "get",
            "period",
            json!({ "type": "string", "pattern": "^[0-9]{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$", "description": "2026, 2026-Q1 or 2026-03" }),
        ),
        (
            "/v1/statements/{rep}/{period}",
            "get",
            "format",
            json!({ "type": "string", "enum": ["json", "html", "md", "csv", "xlsx"] }),
        ),
        (
            "/v1/statements/{rep}/{period}",
            "get",
            "locale",
            json!({ "type": "string", "enum": ["en", "zh-CN"] }),
        ),
        (
            "/v1/incentives/runs/{id}/export",
            "get",
            "format",
            json!({ "type": "string", "enum": ["csv", "xlsx"] }),
        ),
        (
            "/v1/targets/{name}/progress",
            "get",
            "period",
            json!({ "type": "string", "pattern": "^[0-9]{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$", "description": "2026, 2026-Q1 or 2026-03, in the targets' year" }),
        ),
        (
            "/v1/targets/{name}/progress",
            "get",
            "by",
            json!({ "type": "string", "enum": dealrules_core::measure::progress::ProgressBy::ALL }),
        ),
        ("/v1/analytics/funnel", "get", "since", when.clone()),
        ("/v1/analytics/funnel", "get", "until", when.clone()),
        (
            "/v1/analytics/funnel",
            "get",
            "by",
            json!({ "type": "string", "enum": dealrules_workflow::measured::FunnelBy::ALL }),
        ),
        ("/v1/analytics/forecast", "get", "since", when.clone()),
        ("/v1/analytics/forecast", "get", "until", when.clone()),
        (
            "/v1/deals/{id}/events",
            "post",
            "Idempotency-Key",
            json!({ "type": "string", "minLength": 1, "maxLength": 200 }),
        ),
        (
            "/v1/changes",
            "get",
            "state",
            json!({ "type": "string", "enum": dealrules_store::ChangeState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>() }),
        ),
    ];
    for (path, method, name, schema) in params {
        if let Some(list) = doc["paths"][*path][*method]["parameters"].as_array_mut() {
            for p in list.iter_mut().filter(|p| p["name"] == *name) {
                p["schema"] = schema.clone();
            }
        }
    }
    let fields: &[(&str, &str, Value)] = &[
        (
            "DecideSeveral",
            "policies",
            json!({ "type": "array", "items": { "type": "string" }, "minItems": 1, "maxItems": 64, "uniqueItems": true }),
        ),
        ("NewDeal", "id", id.clone()),
        ("NewDeal", "funnel", json!({ "type": "string", "minLength": 1 })),
        ("NewDeal", "owner", json!({ "type": "string" })),
        (
            "ApprovalDecisionRequest",
            "decision",
            json!({ "type": "string", "enum": ["approve", "reject"] }),
        ),
        ("NewDelegation", "to", id.clone()),
        (
            "NewDelegation",
            "from",
            json!({ "type": ["string", "null"], "minLength": 1, "maxLength": 200, "pattern": "\\S" }),
        ),
        (
            "NewDelegation",
            "starts",
            json!({ "type": "string", "format": "date", "description": "First day, YYYY-MM-DD." }),
        ),
        (
            "NewDelegation",
            "ends",
            json!({ "type": "string", "format": "date", "description": "Last day, YYYY-MM-DD, on or after `starts`." }),
        ),
        ("RollbackRequest", "version", version.clone()),
        (
            "NewToken",
            "role",
            json!({ "type": "string", "enum": ["viewer", "service", "approver", "admin"] }),
        ),
        ("NewToken", "subject", id.clone()),
        ("PersonRequest", "role", id),
        (
            "Effective",
            "from",
            json!({ "anyOf": [{ "type": "string", "format": "date" }, { "type": "string", "maxLength": 0 }], "description": "First day in force, YYYY-MM-DD (empty: from the beginning)." }),
        ),
        ("NewChange", "title", title.clone()),
        ("EditChange", "title", nullable(&title)),
        ("RollbackChange", "title", nullable(&title)),
        ("RollbackChange", "version", version.clone()),
        ("MoveRequest", "comment", comment.clone()),
        ("ApproveRequest", "comment", comment.clone()),
        (
            "ApproveRequest",
            "activate_at",
            json!({ "type": ["string", "null"], "format": "date-time", "description": "When it activates (RFC 3339); left out or past, at once." }),
        ),
        ("RollbackChange", "comment", comment),
        ("NewChange", "files", change_files.clone()),
        ("EditChange", "files", change_files),
        (
            "ImpactRequest",
            "decisions_since",
            json!({ "anyOf": [{ "type": "string", "format": "date-time" }, { "type": "string", "format": "date" }, { "type": "null" }] }),
        ),
        (
            "ImpactRequest",
            "decisions_until",
            json!({ "anyOf": [{ "type": "string", "format": "date-time" }, { "type": "string", "format": "date" }, { "type": "null" }] }),
        ),
        (
            "ImpactRequest",
            "incentive_periods",
            json!({ "type": "array", "maxItems": 24, "items": { "type": "string", "pattern": "^[0-9]{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$" }, "description": "2026, 2026-Q1 or 2026-03 each" }),
        ),
        (
            "ImpactRequest",
            "examples",
            json!({ "type": ["integer", "null"], "minimum": 0, "maximum": 10000, "description": "List at most this many of each (default 100)." }),
        ),
        (
            "RunRequest",
            "period",
            json!({ "type": "string", "pattern": "^[0-9]{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$", "description": "2026, 2026-Q1 or 2026-03" }),
        ),
        (
            "PlansRunRequest",
            "period",
            json!({ "type": "string", "pattern": "^[0-9]{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$", "description": "2026, 2026-Q1 or 2026-03" }),
        ),
        (
            "PlansRunRequest",
            "plans",
            json!({ "type": "array", "minItems": 1, "maxItems": 50, "uniqueItems": true, "items": { "type": "string", "minLength": 1 } }),
        ),
    ];
    for (schema, field, value) in fields {
        let props = &mut doc["components"]["schemas"][*schema]["properties"];
        if props.get(*field).is_some() {
            let description = props[*field].get("description").cloned();
            props[*field] = value.clone();
            if let (Some(d), None) = (description, value.get("description")) {
                props[*field]["description"] = d;
            }
        }
    }
    // A pack as JSON: path -> the file's text, at least one file; paths are
    // relative (no leading `/`, no `\\`, `:` or NUL), 512 bytes at most.
    let pack = json!({
        "type": "object",
        "minProperties": 1,
        "maxProperties": 10000,
        "propertyNames": { "pattern": "^[^/\\\\:\\u0000.][^\\\\:\\u0000]{0,511}$" },
        "additionalProperties": { "type": "string" },
        "example": { "approvals.yaml": "apiVersion: dealrules/v1\nkind: ApprovalPolicy\n..." }
    });
    // An import sends at least one byte (an empty body is refused).
    for path in ["/v1/people:import", "/v1/deals:import"] {
        let body = doc.pointer_mut(&format!(
            "/paths/{}/post/requestBody/content/text~1csv",
            path.replace('/', "~1")
        ));
        if let Some(body) = body.and_then(Value::as_object_mut) {
            body.insert("schema".into(), json!({ "type": "string", "minLength": 1 }));
        }
    }
    // Moves of a change take an optional body (a comment; the impact's
    // scope), and answer 400 when one is sent that is not that.
    for (path, method) in [
        ("/v1/changes/{id}", "put"),
        ("/v1/changes/{id}/submit", "post"),
        ("/v1/changes/{id}/reject", "post"),
        ("/v1/changes/{id}/cancel", "post"),
        ("/v1/changes/{id}/impact", "post"),
    ] {
        let op = &mut doc["paths"][path][method];
        if op.is_object() {
            op["requestBody"]["required"] = json!(false);
            if op["responses"].get("400").is_none() {
                op["responses"]["400"] = json!({ "description": "A body that is not the move's JSON" });
            }
        }
    }
    // A page's `limit` is taken up to the page size, like the log's.
    let op = &mut doc["paths"]["/v1/deals"]["get"];
    if op.is_object() && op["responses"].get("400").is_none() {
        op["responses"]["400"] = json!({ "description": "A query that is not a page (a limit that is not a number)" });
    }
    for (path, method) in [("/v1/packs/active", "put"), ("/v1/packs/validate", "post")] {
        let body = doc.pointer_mut(&format!(
            "/paths/{}/{method}/requestBody/content/application~1json",
            path.replace('/', "~1")
        ));
        if let Some(body) = body.and_then(Value::as_object_mut) {
            body.insert("schema".into(), pack.clone());
            body.remove("example");
        }
    }
}
