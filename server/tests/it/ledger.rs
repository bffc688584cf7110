//! The ledger through the binary: verify and export, and a server that refuses a tampered one.

use serde_json::{Value, json};

use crate::{
    binary::{run, stderr},
    licensing::{Customer, Vendor, licensed},
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

/// A licensed data directory (product 7: 2 seats, product 8: 500 credits) whose server ran
/// [`some_activity`] and stopped cleanly: a ledger of 6 entries.
pub async fn stopped_after_activity() -> (Vendor, Customer) {
    let (vendor, customer) = licensed(&["7:0:Runner:2:0", "8:0:Cruncher:0:500"]).await;
    let server = customer.start(&vendor).await;
    some_activity(&server.license_addr).await;
    assert!(server.terminate().await);
    (vendor, customer)
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

#[tokio::test]
async fn an_export_takes_a_time_range_and_kinds_and_is_a_download_for_administrators() {
    let (vendor, customer) = licensed(&["7:0:Runner:2:0", "8:0:Cruncher:0:500"]).await;
    let server = customer.start(&vendor).await;
    some_activity(&server.license_addr).await;
    let all = exported_events(customer.data_dir()).await;
    let first_session_at = all[2]["at"].as_str().unwrap().to_owned();

    // Releases only, as billing wants them: the session_closed entry's releases are rows.
    let releases = run(&[
        "ledger",
        "export",
        "--kind",
        "license_released",
        "--since",
        &first_session_at,
        "--data-dir",
        customer.data_dir(),
    ])
    .await;
    assert!(releases.status.success(), "{}", stderr(&releases));
    let csv = String::from_utf8(releases.stdout).unwrap();
    let kinds: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(kinds, ["license_released", "license_released"], "{csv}");
    // Nothing before the first entry's day, nothing after the last entry.
    let until_day = run(&[
        "ledger",
        "export",
        "--until",
        "2026-01-01",
        "--data-dir",
        customer.data_dir(),
    ])
    .await;
    assert_eq!(
        String::from_utf8(until_day.stdout).unwrap().lines().count(),
        1
    );
    let wrong = run(&[
        "ledger",
        "export",
        "--kind",
        "grants",
        "--data-dir",
        customer.data_dir(),
    ])
    .await;
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("not a kind of ledger entry"),
        "{}",
        stderr(&wrong)
    );

    // The same over the admin API, for someone with VIEW.
    let url = format!("http://{}/server/manage/ledger/export", server.api_addr);
    let http = reqwest::Client::new();
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let token = server
        .admin_token("admin", &customer.initial_password())
        .await;
    let download = http
        .get(format!(
            "{url}?format=jsonl&kind=session_opened,session_closed"
        ))
        .header("X-Ak-Session-Id", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "application/x-ndjson");
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename=\"ledger.jsonl\""
    );
    let lines: Vec<Value> = download
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l["event"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["session_opened", "session_closed"]);
    let csv = http
        .get(&url)
        .header("X-Ak-Session-Id", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 9, "{csv}");
    let bad = http
        .get(format!("{url}?since=yesterday"))
        .header("X-Ak-Session-Id", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert_eq!(error["error"]["code"], "INVALID_QUERY");
    assert!(server.terminate().await);
}
