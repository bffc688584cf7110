//! The ledger through the binary: verify and export, and a server that refuses a tampered one.

use serde_json::{Value, json};

use crate::{
    binary::{run, stderr},
    licensing::licensed,
};

/// `ledger export --format jsonl`, parsed.
pub async fn exported_events(data_dir: &str) -> Vec<Value> {
    let jsonl = run(&[
        "ledger",
        "export",
        "--format",
        "jsonl",
        "--data-dir",
        data_dir,
    ])
    .await;
    assert!(jsonl.status.success(), "{}", stderr(&jsonl));
    String::from_utf8(jsonl.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Opens a session, takes a runcount and a credit license, releases one and closes.
pub async fn some_activity(license_addr: &str) {
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{license_addr}{path}");
    let opened: Value = http
        .post(url("/v1/sessions"))
        .json(&json!({"host": "render-7", "message": "nightly, \"big\" job"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s = opened["session_id"].as_u64().unwrap();
    let token = opened["session_token"].as_str().unwrap();
    for (request_id, product) in [("a", 7), ("b", 8)] {
        let granted = http
            .post(url(&format!("/v1/sessions/{s}/licenses")))
            .bearer_auth(token)
            .json(&json!({"request_id": request_id, "product_id": product, "major_version": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(granted.status(), 200, "{}", granted.text().await.unwrap());
    }
    let closed = http
        .delete(url(&format!("/v1/sessions/{s}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 200);
}

#[tokio::test]
async fn verify_and_export_read_the_chain_and_a_tampered_ledger_stops_the_server() {
    let (vendor, customer) = licensed(&["7:0:Runner:2:0", "8:0:Cruncher:0:500"]).await;
    let server = customer.start(&vendor).await;
    some_activity(&server.license_addr).await;
    assert!(server.terminate().await);

    let verified = run(&["ledger", "verify", "--data-dir", customer.data_dir()]).await;
    assert!(verified.status.success(), "{}", stderr(&verified));
    let text = String::from_utf8(verified.stdout).unwrap();
    // license_installed, admin_user_changed (the first admin, at start), session_opened,
    // 2 × license_granted, session_closed
    assert!(text.contains("6 entries, chain intact"), "{text}");

    let export = run(&["ledger", "export", "--data-dir", customer.data_dir()]).await;
    assert!(export.status.success(), "{}", stderr(&export));
    let csv = String::from_utf8(export.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("seq,at,kind,session_id,license_id"),
        "{csv}"
    );
    let kinds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "license_installed",
            "admin_user_changed",
            "session_opened",
            "license_granted",
            "license_granted",
            "session_closed",
            "license_released",
            "license_released"
        ],
        "{csv}"
    );
    let credit_release = lines
        .iter()
        .find(|l| l.contains("license_released") && l.contains("Cruncher"))
        .unwrap();
    assert!(credit_release.contains(",credits,"), "{credit_release}");
    let events = exported_events(customer.data_dir()).await;
    assert_eq!(events[2]["event"]["host"], "render-7");
    assert_eq!(events[2]["event"]["message"], "nightly, \"big\" job");

    // Someone edits entry 3 in the database file, carefully keeping the JSON valid.
    let db = std::path::Path::new(customer.data_dir()).join("license-server.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let changed =
        sqlx::query("UPDATE ledger SET body = replace(body, 'render-7', 'render-8') WHERE seq = 3")
            .execute(&pool)
            .await
            .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    // Without snapshots, the start verifies from genesis (with them, the audit finds it while
    // the server runs: see `snapshots`).
    sqlx::query("DELETE FROM ledger_snapshots")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let refused = run(&[
        "serve",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--data-dir",
        customer.data_dir(),
    ])
    .await;
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(message.contains("ledger entry 3 is not valid"), "{message}");
    assert!(message.contains("edited"), "{message}");
    let verify = run(&["ledger", "verify", "--data-dir", customer.data_dir()]).await;
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stderr(&verify).contains("ledger entry 3 is not valid"),
        "{}",
        stderr(&verify)
    );

    // Deleting an entry instead is caught as well.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE ledger SET body = replace(body, 'render-8', 'render-7') WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM ledger WHERE seq = 4")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let verify = run(&["ledger", "verify", "--data-dir", customer.data_dir()]).await;
    assert!(
        stderr(&verify).contains("ledger entry 4 is not valid: missing"),
        "{}",
        stderr(&verify)
    );
}
