//! A failed ledger write, and the recovery without a restart: changes refused and `/ready` 503
//! while the store refuses writes, `/health` still `ok`, and by itself, once writes succeed,
//! ready again on a state rebuilt from the disk, so a grant that was refused for want of a durable
//! record does not hold a seat.
//!
//! The failure is injected as a full disk answers SQLite: a trigger that makes every insert into
//! the ledger fail with "database or disk is full" (a real full disk, on tmpfs, is in the fault
//! suite, which needs root).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use server::EngineConfig;

use crate::protocol::{Lab, Lic};

/// What the server's store says to SQL from outside, as another process would.
async fn store(lab: &Lab) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(lab.dir.path().join("license-server.db"))
        .busy_timeout(Duration::from_secs(5));
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

async fn get(http: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// `/ready` on both ports, which must agree.
async fn ready(lab: &Lab) -> (StatusCode, Value) {
    let running = lab.running();
    let license = get(&lab.http, format!("http://{}/ready", running.license_addr)).await;
    let api = get(&lab.http, format!("http://{}/ready", running.api_addr)).await;
    assert_eq!(license.0, api.0, "both ports: {} / {}", license.1, api.1);
    license
}

#[tokio::test]
async fn a_failed_ledger_write_refuses_changes_until_writes_succeed_and_the_state_comes_from_the_disk()
 {
    let mut lab = Lab::start(
        &[Lic(200_000_801, None, &["1000:10:Tool:1:0"])],
        EngineConfig::default(),
    )
    .await;
    let first = lab.open(None).await;
    let second = lab.open(None).await;
    assert_eq!(ready(&lab).await.0, StatusCode::OK);

    let db = store(&lab).await;
    sqlx::query(
        "CREATE TRIGGER disk_full BEFORE INSERT ON ledger
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    // The one seat is taken in memory, but its record fails: not granted.
    let (status, answer) = lab.request(first, "job-1", 1000, 10, "all", 0).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "LEDGER_UNAVAILABLE");
    let (status, answer) = ready(&lab).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "LEDGER_UNAVAILABLE");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("database or disk is full"), "{message}");
    let health = get(
        &lab.http,
        format!("http://{}/health", lab.running().license_addr),
    )
    .await;
    assert_eq!(health.0, StatusCode::OK, "the process still answers");
    let (status, _) = lab.request(second, "job-2", 1000, 10, "all", 0).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "nothing taken meanwhile"
    );
    // The status page still answers, from memory.
    assert!(lab.data("").await["sessions"].is_array());

    // Space is freed: the server finds out by itself (first retry after 1 s, then 2 s, ...).
    sqlx::query("DROP TRIGGER disk_full")
        .execute(&db)
        .await
        .unwrap();
    let mut waited = Duration::ZERO;
    while ready(&lab).await.0 != StatusCode::OK {
        assert!(waited < Duration::from_secs(30), "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    // The refused grant holds nothing: the seat is free for the other session.
    lab.grant(second, "job-2", 1000, 10, "all").await;
    let (status, answer) = lab.request(first, "job-1", 1000, 10, "all", 0).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let held = async |lab: &Lab| {
        let cartridge = lab.cartridge("", 1000, 10).await;
        let sessions = lab.data("").await["sessions"].clone();
        let count = |id: u64| {
            sessions
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["session_id"] == id)
                .map(|s| s["licenses"].as_array().unwrap().len())
        };
        (
            cartridge["statistic"]["runcount_in_use"].clone(),
            count(first),
            count(second),
        )
    };
    assert_eq!(held(&lab).await, (1.into(), Some(0), Some(1)));
    // What was acknowledged after the recovery is on disk: a restart shows the same.
    lab.restart().await;
    assert_eq!(held(&lab).await, (1.into(), Some(0), Some(1)));
    lab.stop().await;
}
