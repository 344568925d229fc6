//! The same store tests on SQLite (a real file) and on PostgreSQL when
//! `DEALRULES_TEST_POSTGRES` names a server (`.ci/run` starts one).

use std::future::Future;
use std::sync::Arc;

use dealrules_model::PackSource;
use dealrules_store::{DecisionQuery, DecisionRecord, Store, StoreError, scratch};

/// Runs `test` on a fresh SQLite file, then on a fresh PostgreSQL database.
async fn on_every_backend<F, Fut>(name: &str, test: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    test(format!("sqlite://{}", dir.path().join("dealrules.db").display())).await;
    match scratch::postgres_server() {
        Some(server) => {
            let url = scratch::create_postgres_database(&server, name).await.unwrap();
            test(url.clone()).await;
            scratch::drop_postgres_database(&url).await.unwrap();
        }
        None => eprintln!("{name}: PostgreSQL skipped ({} is not set)", scratch::POSTGRES_ENV),
    }
}

#[tokio::test]
async fn the_sqlite_file_is_created_and_reopening_keeps_everything() {
    on_every_backend("reopen", |url| async move {
        let store = Store::open(&url).await.unwrap();
        store
            .tokens()
            .add_token("ab".repeat(32).as_str(), "admin", "admin", &[], "test")
            .await
            .unwrap();
        store.close().await;
        // Opening again applies no migration twice and loses nothing.
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.tokens().tokens().await.unwrap().len(), 1);
        store.ping().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_database_that_is_not_there_is_a_clear_error() {
    let err = Store::open("mysql://localhost/x").await.err().unwrap();
    assert!(
        err.to_string().contains("must start with sqlite: or postgres://"),
        "{err}"
    );
    let err = Store::open("sqlite:///nonexistent-dir/sub/dealrules.db")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    let err = Store::open("postgres://u:secret@127.0.0.1:1/x").await.err().unwrap();
    assert!(!err.to_string().contains("secret"), "the password leaked: {err}");
}

#[tokio::test]
async fn tokens_are_listed_until_revoked() {
    on_every_backend("tokens", |url| async move {
        let store = Store::open(&url).await.unwrap();
        let groups = vec!["role:sales-director".to_string()];
        let a = store
            .tokens()
            .add_token(&"11".repeat(32), "approver", "u-42", &groups, "admin")
            .await
            .unwrap();
        let b = store
            .tokens()
            .add_token(&"22".repeat(32), "viewer", "u-7", &[], "admin")
            .await
            .unwrap();
        let live = store.tokens().tokens().await.unwrap();
        assert_eq!(
            live.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            [a.id.as_str(), b.id.as_str()]
        );
        assert_eq!(live[0].groups, groups);
        assert_eq!(live[0].token_hash, "11".repeat(32));
        assert!(store.tokens().revoke_token(&a.id).await.unwrap());
        assert!(!store.tokens().revoke_token(&a.id).await.unwrap(), "revoking twice");
        assert_eq!(store.tokens().tokens().await.unwrap(), vec![b]);
        // The same hash cannot be stored twice.
        assert!(
            store
                .tokens()
                .add_token(&"22".repeat(32), "admin", "x", &[], "admin")
                .await
                .is_err()
        );
    })
    .await;
}

fn pack(text: &str) -> PackSource {
    let mut p = PackSource::from_texts([("policies/a.yaml", text), ("tests/a.yaml", "tests: []\n")]);
    p.files
        .insert("plugins/fx.wasm".into(), vec![0, 0x61, 0x73, 0x6d, 0xff, 0x00]);
    p
}

#[tokio::test]
async fn packs_are_stored_whole_and_activations_remember_who_and_when() {
    on_every_backend("packs", |url| async move {
        let store = Store::open(&url).await.unwrap();
        let v1 = pack("one: 1\n");
        let v2 = pack("two: 2\n");
        let a1 = store
            .packs()
            .activate(&v1, "directory", "directory", None)
            .await
            .unwrap();
        let a2 = store
            .packs()
            .activate(&v2, "u-1", "upload", Some("raise the floor"))
            .await
            .unwrap();
        let a3 = store.packs().activate(&v1, "u-1", "rollback", None).await.unwrap();
        assert_eq!(a1.version, v1.version());
        assert_eq!(
            store.packs().pack(&v1.version()).await.unwrap().unwrap(),
            v1,
            "binary files survive"
        );
        assert_eq!(store.packs().pack(&v2.version()).await.unwrap().unwrap(), v2);
        assert!(store.packs().pack("sha256:000000000000").await.unwrap().is_none());
        // Two versions stored, three activations, newest first.
        assert_eq!(store.packs().packs().await.unwrap().len(), 2);
        let acts = store.packs().activations(10).await.unwrap();
        assert_eq!(
            acts.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
            [a3.id.clone(), a2.id.clone(), a1.id.clone()]
        );
        assert_eq!(acts[1].comment.as_deref(), Some("raise the floor"));
        assert_eq!(acts[1].activated_by, "u-1");
        assert_eq!(store.packs().latest_activation(None).await.unwrap().unwrap(), a3);
        assert_eq!(
            store
                .packs()
                .latest_activation(Some("directory"))
                .await
                .unwrap()
                .unwrap(),
            a1
        );
        // Versions by prefix.
        let v = v2.version();
        assert_eq!(store.packs().resolve_version(&v).await.unwrap(), Some(v.clone()));
        assert_eq!(
            store.packs().resolve_version(&v["sha256:".len()..14]).await.unwrap(),
            Some(v.clone())
        );
        assert!(store.packs().resolve_version("abc").await.is_err(), "too short");
        assert!(store.packs().resolve_version("sha256:zzzzzz").await.is_err(), "not hex");
        assert_eq!(
            store
                .packs()
                .resolve_version("ffffff")
                .await
                .unwrap()
                .filter(|x| x != &v && x != &v1.version()),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn two_nodes_on_one_database_see_each_others_activations() {
    on_every_backend("two_nodes", |url| async move {
        let a = Store::open(&url).await.unwrap();
        let b = Store::open(&url).await.unwrap();
        let act = a
            .packs()
            .activate(&pack("x: 1\n"), "u-1", "upload", None)
            .await
            .unwrap();
        assert_eq!(b.packs().latest_activation(None).await.unwrap().unwrap(), act);
        assert_eq!(b.packs().pack(&act.version).await.unwrap().unwrap(), pack("x: 1\n"));
    })
    .await;
}

fn record(store: &Store, at: &str, policy: &str, n: usize) -> DecisionRecord {
    DecisionRecord::new(
        store,
        at,
        policy,
        "sha256:0123456789ab",
        if n.is_multiple_of(10) { "error" } else { "ok" },
        "crm",
        &format!("{{\"n\":{n}}}"),
        &format!("{{\"outcome\":\"approved\",\"n\":{n}}}"),
    )
}

#[tokio::test]
async fn the_decision_log_is_written_in_batches_and_read_by_policy_and_time() {
    on_every_backend("decision_log", |url| async move {
        let store = Arc::new(Store::open(&url).await.unwrap());
        let mut batch = Vec::new();
        for n in 0..1_000 {
            let day = 1 + n % 30;
            let policy = if n % 2 == 0 {
                "discount-approvals"
            } else {
                "payment-terms"
            };
            batch.push(record(
                &store,
                &format!("2026-11-{day:02}T09:00:00.{:03}Z", n % 1000),
                policy,
                n,
            ));
        }
        store.decisions().log_decisions(&batch).await.unwrap();
        assert_eq!(store.decisions().count_decisions().await.unwrap(), 1_000);

        // By policy and a time window.
        let q = DecisionQuery {
            policy: Some("discount-approvals".into()),
            since: Some("2026-11-10".into()),
            until: Some("2026-11-20".into()),
            limit: 1000,
            ..Default::default()
        };
        let found = store.decisions().decisions(&q).await.unwrap();
        let expected = batch
            .iter()
            .filter(|r| {
                r.policy == "discount-approvals"
                    && r.decided_at.as_str() >= "2026-11-10"
                    && r.decided_at.as_str() < "2026-11-20"
            })
            .count();
        assert_eq!(found.len(), expected);
        assert!(found.iter().all(|r| r.policy == "discount-approvals"));

        // Pages follow one another with `after`, in id order, without gaps.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .decisions()
                .decisions(&DecisionQuery {
                    after: after.clone(),
                    limit: 300,
                    ..Default::default()
                })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|r| r.id.clone());
            seen.extend(page);
        }
        assert_eq!(seen, batch, "every record, in the order written, byte for byte");
        assert_eq!(
            store.decisions().decision(&batch[7].id).await.unwrap().unwrap(),
            batch[7]
        );

        // Retention.
        let pruned = store.decisions().prune_decisions("2026-11-16T00:00:00Z").await.unwrap();
        assert_eq!(
            pruned as usize,
            batch.iter().filter(|r| r.decided_at.as_str() < "2026-11-16").count()
        );
        assert_eq!(
            store.decisions().count_decisions().await.unwrap() as u64,
            1_000 - pruned
        );
        assert!(
            store
                .decisions()
                .decisions(&DecisionQuery {
                    since: Some("last week".into()),
                    ..Default::default()
                })
                .await
                .is_err()
        );
    })
    .await;
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("d.db").display()))
        .await
        .unwrap();
    use sqlx::Row;
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let sync: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!((mode.as_str(), sync), ("wal", 2), "WAL and FULL (2)");
}

/// Regression: two PostgreSQL nodes opening an unsummarized database at
/// once both rebuilt the funnel summaries, deleting each other's rows and
/// inserting the same visits twice. Now one builds while the others wait
/// on its advisory lock, then find the build done.
#[tokio::test]
async fn nodes_opening_an_unsummarized_database_at_once_build_its_summaries_once() {
    let Some(server) = scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", scratch::POSTGRES_ENV);
        return;
    };
    let url = scratch::create_postgres_database(&server, "summary_once")
        .await
        .unwrap();
    let deals = 3000;
    {
        // Deals and their history written outside the store, and the
        // database marked as never summarized (as before migration 0010).
        let store = Store::open(&url).await.unwrap();
        let pool = store.pool();
        for start in (0..deals).step_by(500) {
            let mut d = String::from(
                "INSERT INTO deals (id, funnel, owner, stage, fields, context, stage_entered_at, created_at, updated_at, revision) VALUES ",
            );
            let mut h =
                String::from("INSERT INTO deal_history (id, deal_id, at, type, detail, version, actor) VALUES ");
            for i in start..start + 500 {
                let sep = if i == start { "" } else { "," };
                d.push_str(&format!(
                    "{sep}('d{i:05}', 'b2b', 'ana', 'qualified', '{{\"amount\": 10}}', '{{}}', '2026-01-02T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', 2)"
                ));
                h.push_str(&format!(
                    "{sep}('h{i:05}a', 'd{i:05}', '2026-01-01T00:00:00.000Z', 'created', '{{\"stage\": \"lead\"}}', 'v1', 't'), \
                     ('h{i:05}b', 'd{i:05}', '2026-01-02T00:00:00.000Z', 'move', '{{\"from\": \"lead\", \"to\": \"qualified\"}}', 'v1', 't')"
                ));
            }
            sqlx::query(sqlx::AssertSqlSafe(d)).execute(pool).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(h)).execute(pool).await.unwrap();
        }
        sqlx::query("DELETE FROM summary_builds").execute(pool).await.unwrap();
        store.close().await;
    }
    let (a, b, c) = tokio::join!(Store::open(&url), Store::open(&url), Store::open(&url));
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let count = |sql: &'static str| {
        let pool = a.pool().clone();
        async move {
            use sqlx::Row;
            sqlx::query(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .try_get::<i64, _>(0)
                .unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM deal_facts").await, deals as i64);
    assert_eq!(count("SELECT COUNT(*) FROM stage_visits").await, 2 * deals as i64);
    assert_eq!(
        count("SELECT CAST(SUM(n) AS BIGINT) FROM visit_counts").await,
        2 * deals as i64,
        "each visit counted once"
    );
    assert_eq!(count("SELECT COUNT(*) FROM summary_builds").await, 1);
    for s in [a, b, c] {
        s.close().await;
    }
    scratch::drop_postgres_database(&url).await.unwrap();
}

/// Kept credits: a fill is found by its targets, period and credit basis
/// whichever pack version asks; its credits go in as JSON batches and come
/// back added up exactly (integers summed by the database, a credit too
/// large for a BIGINT added up here); making a fill drops those no active
/// Targets document reads.
#[tokio::test]
async fn kept_credits_are_stored_summed_and_found_by_basis() {
    use dealrules_store::credits::{CreditRow, FillKey, FillState};
    use rust_decimal::Decimal;
    on_every_backend("kept_credits_store", |url| async move {
        let store = Store::open(&url).await.unwrap();
        let analytics = store.analytics();
        let key = |basis| FillKey {
            basis,
            targets: "fy2026",
            period: "2026-Q1",
            first_day: "2026-01-01",
            last_day: "2026-03-31",
        };
        let live = |basis: &str| vec![("fy2026".to_string(), basis.to_string())];
        let fill = analytics.credit_fill(&key("b1"), "v1", &live("b1")).await.unwrap();
        assert_eq!(fill.state, FillState::Filling);
        let row = |deal: &str, rep: &str, credit: &str, day: &str, product: Option<&str>| CreditRow {
            deal_id: deal.into(),
            rep: rep.into(),
            credit: credit.parse().unwrap(),
            closed_on: day.into(),
            product: product.map(str::to_string),
            channel: None,
        };
        // More rows than one statement takes, so the batches are exercised.
        let mut rows: Vec<CreditRow> = (0..12_000)
            .map(|i| row(&format!("d{i:05}"), "ana", "0.01", "2026-02-01", None))
            .collect();
        rows.push(row(
            "big",
            "bo",
            "1234567890123456789012345.5",
            "2026-02-01",
            Some("cloud"),
        ));
        rows.push(row("big2", "bo", "0.5", "2026-02-01", Some("cloud")));
        rows.push(row("neg", "bo", "-7", "2026-03-02", None));
        let mut tx = store.begin_write().await.unwrap();
        assert_eq!(
            analytics.lock_credit_fill(&mut tx, &fill.id).await.unwrap(),
            Some(FillState::Filling)
        );
        analytics.fill_credits(&mut tx, &fill.id, &rows).await.unwrap();
        tx.commit().await.unwrap();
        let summed = analytics.summed_credits(&fill.id).await.unwrap();
        let sum = |rep: &str, day: &str| {
            summed
                .iter()
                .find(|s| s.rep == rep && s.closed_on == day)
                .map(|s| s.credit)
                .unwrap()
        };
        assert_eq!(sum("ana", "2026-02-01"), Decimal::new(12_000, 2));
        assert_eq!(
            sum("bo", "2026-02-01"),
            "1234567890123456789012346".parse::<Decimal>().unwrap()
        );
        assert_eq!(sum("bo", "2026-03-02"), Decimal::from(-7));
        assert_eq!(summed.len(), 3);
        assert_eq!(summed[1].product.as_deref(), Some("cloud"));
        // Another pack version with the same basis finds it, ready.
        let again = analytics.credit_fill(&key("b1"), "v2", &live("b1")).await.unwrap();
        assert_eq!((again.id.as_str(), again.state), (fill.id.as_str(), FillState::Ready));
        // One with another basis makes its own and drops the first.
        let other = analytics.credit_fill(&key("b2"), "v3", &live("b2")).await.unwrap();
        assert_ne!(other.id, fill.id);
        assert_eq!(other.state, FillState::Filling);
        assert!(analytics.find_credit_fill(&key("b1")).await.unwrap().is_none());
        assert_eq!(analytics.credit_fill_state(&fill.id).await.unwrap(), None);
        // Its credits go after, a few thousand to a transaction (more
        // rows here than one takes), and only the dropped fill's.
        let mut tx = store.begin_write().await.unwrap();
        analytics.lock_credit_fill(&mut tx, &other.id).await.unwrap();
        analytics.fill_credits(&mut tx, &other.id, &rows[..2]).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(analytics.summed_credits(&fill.id).await.unwrap().len(), 3);
        assert_eq!(analytics.clear_dropped_fills().await.unwrap(), 12_003);
        assert!(analytics.summed_credits(&fill.id).await.unwrap().is_empty());
        assert_eq!(analytics.summed_credits(&other.id).await.unwrap().len(), 1);
        assert_eq!(analytics.clear_dropped_fills().await.unwrap(), 0);
        store.close().await;
    })
    .await;
}

/// What crediting reads of a period's deals, a few thousand to a
/// statement as one JSON array the database builds: every deal closed or
/// cancelled in the period, once, in id order, across the statements'
/// boundary, with its fields exactly as stored (a decimal's trailing zero,
/// a number past 64 bits, Chinese text, escapes, nesting).
#[tokio::test]
async fn a_periods_deals_are_read_whole_and_exact_for_crediting() {
    use dealrules_store::Deal;
    use serde_json::json;
    on_every_backend("deals_to_credit", |url| async move {
        let store = Store::open(&url).await.unwrap();
        let deal = |i: usize, stage: &str, fields: serde_json::Value| Deal {
            id: format!("d{i:05}"),
            funnel: "b2b".into(),
            owner: format!("rep{}", i % 7),
            stage: stage.into(),
            fields,
            context: json!({"rep": {"region": "华东"}}),
            stage_entered_at: "2026-02-03T04:05:06.789Z".into(),
            created_at: "2026-01-02T00:00:00.000Z".into(),
            updated_at: "2026-02-03T04:05:06.789Z".into(),
            revision: 1,
        };
        // 5,003 won in February (more than one statement reads), one lost
        // in March, one won in April (outside Q1), one open.
        let mut deals: Vec<Deal> = (0..5003)
            .map(|i| deal(i, "won", json!({"amount": 1000 + i, "closed_at": "2026-02-10"})))
            .collect();
        let exact: serde_json::Value = serde_json::from_str(
            r#"{"amount": 1234.50, "big": 123456789012345678901234567890, "customer": "上海某某科技有限公司",
                "note": "a \"quoted\" line\nand a tab\t\\ \u00e9", "lines": [{"sku": "A-1", "qty": 2}],
                "closed_at": "2026-03-31"}"#,
        )
        .unwrap();
        deals.push(deal(7001, "won", exact));
        // Won in December, cancelled in March: Q1 reads it (a clawback).
        deals.push(deal(
            7002,
            "won",
            json!({"amount": 5, "closed_at": "2025-12-20", "cancelled_at": "2026-03-01"}),
        ));
        deals.push(deal(7003, "won", json!({"amount": 5, "closed_at": "2026-04-01"})));
        deals.push(deal(7004, "proposal", json!({"amount": 5})));
        store
            .deals()
            .import_deals(&deals, "sha256:test", "test", "2026-03-31T00:00:00.000Z", &|_| {
                Vec::new()
            })
            .await
            .unwrap();
        let read = store
            .analytics()
            .deals_closed_or_cancelled_between("2026-01-01", "2026-03-31")
            .await
            .unwrap();
        let want: Vec<&Deal> = deals[..5005].iter().collect();
        assert_eq!(read.len(), want.len());
        for (got, want) in read.iter().zip(&want) {
            assert_eq!(
                (
                    &got.id,
                    &got.funnel,
                    &got.owner,
                    &got.stage,
                    &got.fields,
                    &got.stage_entered_at
                ),
                (
                    &want.id,
                    &want.funnel,
                    &want.owner,
                    &want.stage,
                    &want.fields,
                    &want.stage_entered_at
                )
            );
        }
        let exact = read.iter().find(|d| d.id == "d07001").unwrap();
        assert_eq!(exact.fields["amount"].to_string(), "1234.50");
        assert_eq!(exact.fields["big"].to_string(), "123456789012345678901234567890");
        // The same read by id, as the marked deals are credited again.
        let mut conn = store.analytics().read_connection().await.unwrap();
        let ids = ["d07001", "d00000", "nope", "d07004"];
        let by_id = store.analytics().deals_in(&mut conn, &ids).await.unwrap();
        let got: Vec<&str> = by_id.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(got, ["d00000", "d07001", "d07004"]);
        assert_eq!(by_id[1].fields, deals[5003].fields);
        drop(conn);
        store.close().await;
    })
    .await;
}
