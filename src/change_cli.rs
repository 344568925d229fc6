//! `dealrules change create|list|show|diff|impact|submit|approve|reject|cancel
//! --server URL`: change requests from a script or a CI job, through the
//! same API the console uses. `create` proposes a folder (a git checkout of
//! the rules) as a change against the server's active pack: files that
//! differ are sent whole, files the folder no longer has are deleted.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::error::{CliError, Result};
use crate::out::{out, outln};

#[derive(Debug, Args)]
pub struct Server {
    /// A running server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "DEALRULES_SERVER")]
    pub server: String,
    /// An admin token (a viewer's for list, show and diff).
    #[arg(long, env = "DEALRULES_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ChangeCommand {
    /// Propose a rules folder as a change against the active pack.
    #[command(
        after_help = "Examples:\n  dealrules change create rules --title \"Raise the EMEA accelerator\" --server http://rules:8080\n  git checkout plan-2027 && dealrules change create rules --title \"$(git log -1 --format=%s)\""
    )]
    Create {
        /// The folder holding the proposed pack.
        #[arg(default_value = "./rules")]
        dir: PathBuf,
        #[arg(long)]
        title: String,
        #[command(flatten)]
        server: Server,
    },
    /// Change requests, newest first (`--state draft|submitted|...`).
    #[command(after_help = "Example:\n  dealrules change list --state submitted")]
    List {
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        server: Server,
    },
    /// A change: state, validation, transitions.
    #[command(after_help = "Example:\n  dealrules change show chg_01J...")]
    Show {
        id: String,
        #[command(flatten)]
        server: Server,
    },
    /// The change's unified diff against its base, per file.
    #[command(after_help = "Example:\n  dealrules change diff chg_01J... | less")]
    Diff {
        id: String,
        #[command(flatten)]
        server: Server,
    },
    /// Measure the change on real history and wait for the result.
    #[command(
        after_help = "Examples:\n  dealrules change impact chg_01J... --periods 2026-Q3,2026-Q4 --decisions-since 2026-10-01\n  dealrules change impact chg_01J... --periods 2026-Q4 --json > impact.json   # for a CI comment"
    )]
    Impact {
        id: String,
        /// Recompute every plan's statements for these periods (comma-separated).
        #[arg(long, value_delimiter = ',')]
        periods: Vec<String>,
        /// Replay the decisions logged on or after this day or time.
        #[arg(long)]
        decisions_since: Option<String>,
        /// ... and before this one.
        #[arg(long)]
        decisions_until: Option<String>,
        #[command(flatten)]
        server: Server,
    },
    /// Submit a draft for approval.
    #[command(after_help = "Example:\n  dealrules change submit chg_01J... --comment \"impact attached in CI\"")]
    Submit {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        server: Server,
    },
    /// Approve a submitted change (another admin than its author, with four eyes on).
    #[command(
        after_help = "Examples:\n  dealrules change approve chg_01J...\n  dealrules change approve chg_01J... --activate-at 2027-01-01T00:00:00Z --comment \"from the new year\""
    )]
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        /// Activate then (RFC 3339) instead of at once.
        #[arg(long)]
        activate_at: Option<String>,
        #[command(flatten)]
        server: Server,
    },
    /// Reject a submitted change.
    #[command(after_help = "Example:\n  dealrules change reject chg_01J... --comment \"rates agreed are 4%\"")]
    Reject {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        server: Server,
    },
    /// Cancel a change that is not active yet.
    #[command(after_help = "Example:\n  dealrules change cancel chg_01J...")]
    Cancel {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        server: Server,
    },
}

pub fn run(command: ChangeCommand) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Serve(format!("cannot start: {e}")))?;
    rt.block_on(change(command))
}

/// One call to the server: its status and JSON answer.
struct Api<'a> {
    server: &'a Server,
    client: Arc<
        hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            http_body_util::Full<hyper::body::Bytes>,
        >,
    >,
}

impl<'a> Api<'a> {
    fn new(server: &'a Server) -> Api<'a> {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        Api {
            server,
            client: Arc::new(client),
        }
    }

    /// The answer when it is a success; a problem's detail (and, for a
    /// change that does not pass, its errors) otherwise.
    async fn call(&self, method: hyper::Method, path: &str, body: Option<Value>) -> Result<Value> {
        use http_body_util::{BodyExt, Full};
        let url = format!("{}{path}", self.server.server.trim_end_matches('/'));
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.server.token))
            .body(Full::new(hyper::body::Bytes::from(bytes)))
            .map_err(|e| CliError::Flag {
                flag: "server",
                message: format!("bad server URL `{url}`: {e}"),
            })?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| CliError::Store(format!("cannot reach {url}: {e}")))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CliError::Store(format!("reading the answer of {url}: {e}")))?
            .to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
        if status.is_success() {
            return Ok(answer);
        }
        let mut message = format!(
            "{url} answered {status}: {}",
            answer.get("detail").and_then(Value::as_str).unwrap_or("")
        );
        for e in answer.get("errors").and_then(Value::as_array).into_iter().flatten() {
            message.push_str(&format!(
                "\n  {}",
                e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())
            ));
        }
        Err(CliError::Store(message))
    }
}

/// The files of a folder as the server lists a stored version's: path ->
/// `{"text": ...}` or `{"base64": ...}`.
fn folder_files(dir: &Path) -> Result<Value> {
    let source = dealrules_model::PackSource::from_dir(dir).map_err(|e| CliError::Read {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let listing: Value = serde_json::from_str(&dealrules_store::pack_to_json(&source)).map_err(CliError::Print)?;
    Ok(listing["files"].clone())
}

/// What the folder changes in the active pack: every text file that
/// differs, whole, and `null` for each file the folder no longer has. A
/// changed binary file (a plugin module) cannot travel in a change
/// request: it is refused by name.
fn changed_files(dir: &Value, active: &Value) -> Result<BTreeMap<String, Value>> {
    let (dir, active) = (
        dir.as_object().cloned().unwrap_or_default(),
        active.as_object().cloned().unwrap_or_default(),
    );
    let mut files = BTreeMap::new();
    for (path, entry) in &dir {
        if active.get(path) == Some(entry) {
            continue;
        }
        match entry.get("text") {
            Some(text) => {
                files.insert(path.clone(), text.clone());
            }
            None => {
                return Err(CliError::Flag {
                    flag: "dir",
                    message: format!(
                        "{path} is not text and differs from the active pack: a change request carries text files; \
                         upload a pack with the new module (PUT /v1/packs/active) instead"
                    ),
                });
            }
        }
    }
    for path in active.keys() {
        if !dir.contains_key(path) {
            files.insert(path.clone(), Value::Null);
        }
    }
    Ok(files)
}

fn summary(change: &Value) -> Result<()> {
    let s = |k: &str| change.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    outln!("{}  {}  [{}]  by {}", s("id"), s("title"), s("state"), s("author"))?;
    outln!("  base {}  active {}", s("base_version"), s("active_version"))?;
    if let Some(diff) = change.get("diff").and_then(Value::as_array) {
        for f in diff {
            outln!(
                "  {:<9} {}",
                f.get("status").and_then(Value::as_str).unwrap_or(""),
                f.get("path").and_then(Value::as_str).unwrap_or("")
            )?;
        }
    }
    let v = &change["validation"];
    outln!(
        "  {}: tests {} passed, {} failed",
        if v["valid"] == json!(true) {
            "passes"
        } else {
            "does not pass"
        },
        v["tests"]["passed"],
        v["tests"]["failed"]
    )?;
    for e in v["errors"].as_array().into_iter().flatten() {
        outln!("  {}", e.as_str().unwrap_or(""))?;
    }
    for c in change["conflicts"].as_array().into_iter().flatten() {
        outln!(
            "  conflict: {} changed in the active pack since the base",
            c.as_str().unwrap_or("")
        )?;
    }
    for t in change["transitions"].as_array().into_iter().flatten() {
        outln!("  {}", transition(t))?;
    }
    Ok(())
}

fn transition(t: &Value) -> String {
    let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let comment = s("comment");
    format!(
        "{} {} -> {} by {}{}",
        s("at"),
        s("from"),
        s("to"),
        s("by"),
        if comment.is_empty() {
            String::new()
        } else {
            format!(": {comment}")
        }
    )
}

/// A change that does not pass exits 1, so a CI job fails on it.
fn passes(change: &Value) -> ExitCode {
    if change["validation"]["valid"] == json!(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_json(v: &Value) -> Result<ExitCode> {
    let text = serde_json::to_string_pretty(v).map_err(CliError::Print)?;
    outln!("{text}")?;
    Ok(ExitCode::SUCCESS)
}

fn path_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32 & 0xff)
            }
        })
        .collect()
}

async fn change(command: ChangeCommand) -> Result<ExitCode> {
    use hyper::Method;
    match command {
        ChangeCommand::Create { dir, title, server } => {
            let api = Api::new(&server);
            let local = folder_files(&dir)?;
            let status = api.call(Method::GET, "/v1/status", None).await?;
            let version = status["version"].as_str().unwrap_or_default().to_string();
            let active = api
                .call(Method::GET, &format!("/v1/packs/{}", path_id(&version)), None)
                .await?;
            let files = changed_files(&local, &active["files"])?;
            if files.is_empty() {
                eprintln!("{} is the active pack ({version}): nothing to propose", dir.display());
                return Ok(ExitCode::from(1));
            }
            let created = api
                .call(
                    Method::POST,
                    "/v1/changes",
                    Some(json!({ "title": title, "files": files })),
                )
                .await?;
            if server.json {
                print_json(&created)?;
            } else {
                summary(&created)?;
            }
            Ok(passes(&created))
        }
        ChangeCommand::List { state, server } => {
            let api = Api::new(&server);
            let path = match &state {
                Some(s) => format!("/v1/changes?state={}", path_id(s)),
                None => "/v1/changes".into(),
            };
            let list = api.call(Method::GET, &path, None).await?;
            if server.json {
                return print_json(&list);
            }
            for c in list["changes"].as_array().into_iter().flatten() {
                let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                outln!(
                    "{}  {:<10} {:<12} {}  {}",
                    s("id"),
                    s("state"),
                    s("author"),
                    s("updated_at"),
                    s("title")
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ChangeCommand::Show { id, server } => {
            let change = Api::new(&server)
                .call(Method::GET, &format!("/v1/changes/{}", path_id(&id)), None)
                .await?;
            if server.json {
                return print_json(&change);
            }
            summary(&change)?;
            Ok(ExitCode::SUCCESS)
        }
        ChangeCommand::Diff { id, server } => {
            let change = Api::new(&server)
                .call(Method::GET, &format!("/v1/changes/{}", path_id(&id)), None)
                .await?;
            if server.json {
                return print_json(&change["diff"]);
            }
            for f in change["diff"].as_array().into_iter().flatten() {
                out!("{}", f["diff"].as_str().unwrap_or(""))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ChangeCommand::Impact {
            id,
            periods,
            decisions_since,
            decisions_until,
            server,
        } => {
            let api = Api::new(&server);
            let mut request = json!({ "incentive_periods": periods });
            if let Some(s) = decisions_since {
                request["decisions_since"] = json!(s);
            }
            if let Some(u) = decisions_until {
                request["decisions_until"] = json!(u);
            }
            let job = api
                .call(
                    Method::POST,
                    &format!("/v1/changes/{}/impact", path_id(&id)),
                    Some(request),
                )
                .await?;
            let job_path = format!(
                "/v1/changes/{}/impact/{}",
                path_id(&id),
                path_id(job["id"].as_str().unwrap_or_default())
            );
            let bar = std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
                bar
            });
            let done = loop {
                let job = api.call(Method::GET, &job_path, None).await?;
                if job["state"] != json!("running") {
                    break job;
                }
                if let Some(bar) = &bar {
                    let p = &job["progress"];
                    bar.set_message(format!(
                        "{}: {}/{} decisions, {}/{} plan periods, {} deals",
                        p["phase"].as_str().unwrap_or(""),
                        p["decisions_replayed"],
                        p["decisions_total"],
                        p["incentives_done"],
                        p["incentives_total"],
                        p["deals_checked"]
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            };
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if done["state"] != json!("done") {
                return Err(CliError::Store(format!(
                    "the impact job failed: {}",
                    done["error"].as_str().unwrap_or("")
                )));
            }
            if server.json {
                return print_json(&done["result"]);
            }
            impact_summary(&done["result"])?;
            Ok(ExitCode::SUCCESS)
        }
        ChangeCommand::Submit { id, comment, server } => {
            moved(&server, &id, "submit", json!({ "comment": comment })).await
        }
        ChangeCommand::Approve {
            id,
            comment,
            activate_at,
            server,
        } => {
            moved(
                &server,
                &id,
                "approve",
                json!({ "comment": comment, "activate_at": activate_at }),
            )
            .await
        }
        ChangeCommand::Reject { id, comment, server } => {
            moved(&server, &id, "reject", json!({ "comment": comment })).await
        }
        ChangeCommand::Cancel { id, comment, server } => {
            moved(&server, &id, "cancel", json!({ "comment": comment })).await
        }
    }
}

async fn moved(server: &Server, id: &str, action: &str, body: Value) -> Result<ExitCode> {
    let body = Value::Object(
        body.as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let change = Api::new(server)
        .call(
            hyper::Method::POST,
            &format!("/v1/changes/{}/{action}", path_id(id)),
            Some(body),
        )
        .await?;
    if server.json {
        return print_json(&change);
    }
    summary(&change)?;
    Ok(ExitCode::SUCCESS)
}

/// The impact as a CI comment would want it: totals per plan and period,
/// every rep whose pay changes, decisions that flip by policy, funnel effects.
fn impact_summary(result: &Value) -> Result<()> {
    let d = &result["decisions"];
    outln!("decisions: {} replayed, {} would change", d["replayed"], d["changed"])?;
    for p in d["by_policy"].as_array().into_iter().flatten() {
        outln!(
            "  {}: {} of {}",
            p["policy"].as_str().unwrap_or(""),
            p["changed"],
            p["replayed"]
        )?;
    }
    for plan in result["incentives"].as_array().into_iter().flatten() {
        let s = |k: &str| {
            plan[k]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| plan[k].to_string())
        };
        outln!(
            "{} {}: {} -> {} {} ({} {}), {} of {} reps paid differently",
            s("plan"),
            s("period"),
            s("total_before"),
            s("total_after"),
            s("currency"),
            if s("delta").starts_with('-') { "" } else { "+" },
            s("delta"),
            s("reps_changed"),
            s("reps")
        )?;
        for r in plan["by_rep"].as_array().into_iter().flatten() {
            let delta = r["delta"].as_str().unwrap_or("0");
            if delta.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
                continue;
            }
            outln!(
                "  {:<16} {:>14} -> {:>14}  {}{}",
                r["rep"].as_str().unwrap_or(""),
                r["before"].as_str().unwrap_or(""),
                r["after"].as_str().unwrap_or(""),
                if delta.starts_with('-') { "" } else { "+" },
                delta
            )?;
        }
    }
    let f = &result["funnels"];
    outln!(
        "funnels: {} open deals checked, {} moves refused, {} timers cancelled",
        f["open_deals"],
        f["refused"],
        f["cancelled"]
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_proposes_what_differs_and_deletes_what_it_lacks() {
        let dir = json!({
            "rules/plan.yaml": {"text": "rate: 0.05\n"},
            "rules/same.yaml": {"text": "x: 1\n"},
            "rules/new.yaml": {"text": "y: 2\n"},
            "rules/fx.wasm": {"base64": "AGFzbQ=="},
        });
        let active = json!({
            "rules/plan.yaml": {"text": "rate: 0.04\n"},
            "rules/same.yaml": {"text": "x: 1\n"},
            "rules/gone.yaml": {"text": "z: 3\n"},
            "rules/fx.wasm": {"base64": "AGFzbQ=="},
        });
        let files = changed_files(&dir, &active).unwrap();
        assert_eq!(
            files,
            [
                ("rules/gone.yaml", Value::Null),
                ("rules/new.yaml", json!("y: 2\n")),
                ("rules/plan.yaml", json!("rate: 0.05\n")),
            ]
            .map(|(k, v)| (k.to_string(), v))
            .into_iter()
            .collect()
        );
        let changed_module = json!({"rules/fx.wasm": {"base64": "AGFzbQE="}});
        let err = changed_files(&changed_module, &active).unwrap_err();
        assert!(err.to_string().contains("rules/fx.wasm is not text"), "{err}");
    }
}
