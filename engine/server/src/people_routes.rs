//! The roster and bulk imports over HTTP: `PUT /v1/people/{id}`,
//! `GET /v1/people`, `POST /v1/people:import`, `POST /v1/deals:import`.
//! Files are CSV, JSONL or XLSX (by content type, else by their first
//! bytes); a file with a bad line is refused whole, every bad line numbered
//! (in a workbook, with its sheet and column). The roster also comes out as
//! XLSX (`GET /v1/people?format=xlsx`) in the shape it is imported in.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use dealrules_model::Kind;
use dealrules_store::{ImportCounts, Person, people::BEGINNING};
use dealrules_workflow::imports::{self, ImportFormat, LineError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Admin, Approver, Caller, Expected, JsonBody, Service};
use crate::state::AppState;

/// Largest import file: a million deals of CSV fit.
pub const MAX_IMPORT_BYTES: usize = 512 << 20;

/// The roster's and the imports' routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    let imports = OpenApiRouter::new()
        .routes(routes!(import_people))
        .routes(routes!(import_deals))
        .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES));
    OpenApiRouter::new()
        .routes(routes!(put_person))
        .routes(routes!(people))
        .merge(imports)
}

/// A person as sent: fields, attributes and the day the version starts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonRequest {
    pub name: Option<String>,
    /// ae, se, manager, partner, ...
    pub role: String,
    pub manager: Option<String>,
    pub region: Option<String>,
    pub team: Option<String>,
    /// What plans read beside the fields: `quota`, `csat`, ...
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// `{"from": "2026-02-15"}`; without it, in force from the beginning.
    pub effective: Option<Effective>,
}

impl Expected for PersonRequest {
    const EXPECTED: &'static str =
        r#"expected {"name", "role", "manager", "region", "team", "attributes", "effective": {"from"}}"#;
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Effective {
    pub from: String,
}

/// Stores a version of a person from `effective.from`: the version in force
/// that day ends, and this one lasts until the next later version.
#[utoipa::path(put, path = "/v1/people/{id}", tag = "people", params(("id" = String, Path)), request_body = PersonRequest,
    responses((status = 200, description = "The version as stored", body = crate::schemas::Person), (status = 400, description = "Not a person")),
    extensions(("x-required-role" = json!("admin"))))]
async fn put_person(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
    JsonBody { value: req, .. }: JsonBody<PersonRequest>,
) -> Result<Json<Person>, ApiError> {
    crate::error::user_id("id", &id)?;
    let mut fields = Map::new();
    fields.insert("id".into(), Value::String(id));
    fields.insert("role".into(), Value::String(req.role));
    for (k, v) in [
        ("name", req.name),
        ("manager", req.manager),
        ("region", req.region),
        ("team", req.team),
    ] {
        if let Some(v) = v {
            fields.insert(k.into(), Value::String(v));
        }
    }
    fields.insert(
        "effective_from".into(),
        Value::String(req.effective.map(|e| e.from).unwrap_or_else(|| BEGINNING.into())),
    );
    fields.insert("attributes".into(), Value::Object(req.attributes));
    let person = imports::person(fields).map_err(ApiError::BadRequest)?;
    Ok(Json(state.store.people().put_person(&person, &who.subject).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeopleQuery {
    /// YYYY-MM-DD; today when left out.
    as_of: Option<String>,
    /// Only people of this role.
    role: Option<String>,
    /// json (the default) or xlsx: a workbook that imports back as the same people.
    format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Roster {
    pub as_of: String,
    #[schema(value_type = Vec<crate::schemas::Person>)]
    pub people: Vec<Person>,
}

/// The roster as of a date, by id.
#[utoipa::path(get, path = "/v1/people", tag = "people", params(PeopleQuery),
    responses((status = 200, description = "The people in force that day (JSON, or XLSX with `format=xlsx`)", content(
        (Roster = "application/json"),
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    )), (status = 400, description = "Not a date, or not a format")),
    extensions(("x-required-role" = json!("approver"))))]
async fn people(
    State(state): State<Arc<AppState>>,
    _caller: Caller<Approver>,
    Query(q): Query<PeopleQuery>,
) -> Result<Response, ApiError> {
    let xlsx = match q.format.as_deref() {
        None | Some("json") => false,
        Some("xlsx") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`{other}` is not a roster format: json or xlsx"
            )));
        }
    };
    let as_of = q.as_of.unwrap_or_else(|| state.clock.text().chars().take(10).collect());
    let people = state.store.people().people_as_of(&as_of, q.role.as_deref()).await?;
    if !xlsx {
        return Ok(Json(Roster { as_of, people }).into_response());
    }
    let bytes = imports::people_xlsx(&people).map_err(ApiError::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, imports::XLSX_CONTENT_TYPE.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"people-{as_of}.xlsx\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct PeopleImported {
    /// Versions stored.
    pub imported: usize,
}

/// A file refused whole: problem details with every bad line.
#[derive(Serialize, ToSchema)]
pub struct ImportRefused {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub errors: Vec<BadLine>,
}

/// A bad line of an import file (the CSV header is line 1).
#[derive(Serialize, ToSchema)]
pub struct BadLine {
    /// The line; in a workbook, the row as the spreadsheet numbers it.
    pub line: u64,
    pub message: String,
    /// In a workbook: the sheet read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// In a workbook: the column the message is about, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

fn refused(errors: Vec<LineError>, what: &str) -> ApiError {
    let mut extra = Map::new();
    for k in ["created", "updated", "unchanged"] {
        extra.insert(k.into(), Value::from(0));
    }
    extra.insert(
        "errors".into(),
        serde_json::to_value(&errors).unwrap_or_else(|_| Value::Array(vec![])),
    );
    ApiError::UnprocessableWith {
        detail: format!(
            "the {what} file has {} bad line(s){}; nothing was imported",
            errors.len(),
            if errors.len() >= imports::MAX_ERRORS {
                " (the first ones)"
            } else {
                ""
            }
        ),
        extra,
    }
}

fn format_of(headers: &HeaderMap, body: &[u8]) -> ImportFormat {
    ImportFormat::detect(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), body)
}

/// Imports people (XLSX, or CSV with a header `id,name,role,manager,region,team,
/// effective_from,...`, or JSONL): every line a version; other columns are
/// attributes. All or nothing.
#[utoipa::path(post, path = "/v1/people:import", tag = "people",
    request_body(content = String, content_type = "text/csv", description = "CSV, JSONL (application/x-ndjson) or XLSX (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)"),
    responses((status = 200, description = "Imported", body = PeopleImported), (status = 422, description = "Bad lines, each with its number in `errors`; nothing imported", body = ImportRefused, content_type = "application/problem+json")),
    extensions(("x-required-role" = json!("admin"))))]
async fn import_people(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PeopleImported>, ApiError> {
    let people = imports::people(&body, format_of(&headers, &body)).map_err(|e| refused(e, "people"))?;
    let imported = state.store.people().import_people(&people, &who.subject).await?;
    tracing::info!(imported, by = %who.subject, "people imported");
    Ok(Json(PeopleImported { imported }))
}

#[derive(Serialize, ToSchema)]
pub struct DealsImported {
    #[serde(flatten)]
    #[schema(value_type = crate::schemas::ImportCounts)]
    pub counts: ImportCounts,
    /// Always empty here: a file with errors is refused (422) whole.
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<Value>,
}

/// The funnel of imported deals that name none: the active pack's only
/// funnel, else `imported`.
pub fn default_funnel(snapshot: &dealrules_core::Snapshot) -> String {
    let funnels: Vec<String> = snapshot
        .policies()
        .into_iter()
        .filter(|p| p.kind == Kind::Funnel)
        .map(|p| p.name)
        .collect();
    match funnels.as_slice() {
        [one] => one.clone(),
        _ => "imported".into(),
    }
}

/// Imports deals (CSV, JSONL or XLSX: `id, owner, stage, funnel, amount,
/// closed_at, splits, ...`), idempotent by id: new deals are created,
/// changed ones updated, the rest left. All or nothing.
#[utoipa::path(post, path = "/v1/deals:import", tag = "deals",
    request_body(content = String, content_type = "text/csv", description = "CSV, JSONL (application/x-ndjson) or XLSX (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)"),
    responses((status = 200, description = "What the import did", body = DealsImported), (status = 422, description = "Bad lines, each with its number in `errors`; nothing imported", body = ImportRefused, content_type = "application/problem+json")),
    extensions(("x-required-role" = json!("service"))))]
async fn import_deals(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Service>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DealsImported>, ApiError> {
    let snapshot = state.snapshot.load_full();
    let at = state.clock.text();
    let funnel = default_funnel(&snapshot);
    let format = format_of(&headers, &body);
    let deals = state
        .long_work
        .run(move || imports::deals(&body, format, &funnel, &at))
        .await?
        .map_err(|e| refused(e, "deals"))?;
    let now = state.clock.now();
    let store = state.store.clone();
    let timers =
        |d: &dealrules_store::Deal| dealrules_workflow::timers::stage_timers(&snapshot, d, now, &|| store.new_id());
    let counts = state
        .store
        .deals()
        .import_deals(&deals, &snapshot.version, &who.subject, &state.clock.text(), &timers)
        .await?;
    tracing::info!(created = counts.created, updated = counts.updated, unchanged = counts.unchanged, by = %who.subject, "deals imported");
    Ok(Json(DealsImported { counts, errors: vec![] }))
}
