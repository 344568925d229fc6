//! Background work shows in `/v1/status`, and stops on shutdown.

mod common;

use axum::http::StatusCode;
use common::{call, state};

#[tokio::test]
async fn the_status_lists_every_worker_with_its_state() {
    let s = state().await;
    dealrules_server::workers::timers(s.clone(), std::time::Duration::from_millis(50));
    let (code, _, text) = call(&s, "GET", "/v1/status", Some("t-viewer"), "").await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    let workers = status["workers"].as_array().unwrap();
    let names: Vec<&str> = workers.iter().filter_map(|w| w["name"].as_str()).collect();
    assert_eq!(names, ["decision-log", "activation", "timers"], "{text}");
    for w in workers {
        assert_eq!(w["state"], "running", "{w}");
        assert_eq!(w["restarts"], 0, "{w}");
        assert!(w["last_error"].is_null(), "{w}");
    }
    // Shutdown stops them all, the decision log written first.
    s.log.flush().await;
    s.workers.shutdown().await;
    assert!(
        s.workers
            .status()
            .iter()
            .all(|w| w.state == dealrules_server::supervisor::WorkerState::Stopped)
    );
}
