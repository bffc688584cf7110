//! The ledger through the binary: verify and export, and a server that refuses a tampered one.

use models::{OpenSession, RequestLicense, RequestType};
use serde_json::{Value, json};
use server::LicenseClient;

use crate::{
    binary::{run, stderr},
    licensing::licensed,
};

/// `ledger export --format jsonl`, parsed.
async fn exported_events(data_dir: &str) -> Vec<Value> {
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
async fn some_activity(license_addr: &str) {
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

/// What a client was told, and must therefore find in the ledger after a crash.
#[derive(Default)]
struct Acknowledged {
    grants: Vec<u64>,
    /// (license_id, credits_used) of credit licenses released.
    debits: Vec<(u64, u64)>,
}

/// Runs full cycles until the server stops answering; records every acknowledged grant and debit.
async fn cycles_until_the_server_dies(license_addr: String, worker: usize) -> Acknowledged {
    let mut client = LicenseClient::new(vec![license_addr]).unwrap();
    let mut seen = Acknowledged::default();
    for n in 0.. {
        let open = OpenSession {
            host: format!("w{worker}"),
            message: String::new(),
            pool: None,
            user: None,
        };
        let Ok(opened) = client.open_session(&open).await else {
            return seen;
        };
        let s = &opened;
        let request = RequestLicense {
            request_id: "r".into(),
            product_id: if n % 2 == 0 { 7 } else { 8 },
            major_version: 0,
            request_type: RequestType::All,
            wait_s: Some(0),
        };
        let Ok(granted) = client.request_license(s, &request).await else {
            return seen;
        };
        seen.grants.push(granted.license_id);
        let Ok(released) = client.release(s, granted.license_id).await else {
            return seen;
        };
        if released.credits_used > 0 {
            seen.debits
                .push((granted.license_id, released.credits_used));
        }
        if client.close(s).await.is_err() {
            return seen;
        }
    }
    seen
}

#[tokio::test]
async fn after_kill_9_under_load_every_acknowledged_grant_and_debit_is_in_the_ledger() {
    let (vendor, customer) = licensed(&["7:0:Runner:1000:0", "8:0:Cruncher:0:0:postpay"]).await;
    let server = customer.start(&vendor).await;
    let workers: Vec<_> = (0..16)
        .map(|w| tokio::spawn(cycles_until_the_server_dies(server.license_addr.clone(), w)))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill9().await;
    let mut seen = Acknowledged::default();
    for worker in workers {
        let w = worker.await.unwrap();
        seen.grants.extend(w.grants);
        seen.debits.extend(w.debits);
    }
    assert!(
        seen.grants.len() > 50,
        "the load ran: {} grants",
        seen.grants.len()
    );
    assert!(!seen.debits.is_empty());

    let verify = run(&["ledger", "verify", "--data-dir", customer.data_dir()]).await;
    assert!(verify.status.success(), "{}", stderr(&verify));
    let mut granted = std::collections::HashMap::new();
    let mut debited = std::collections::HashMap::new();
    for entry in exported_events(customer.data_dir()).await {
        let event = &entry["event"];
        match event["kind"].as_str().unwrap() {
            "license_granted" => {
                granted.insert(
                    event["license_id"].as_u64().unwrap(),
                    event["type"].as_str().unwrap().to_owned(),
                );
            }
            "license_released" => {
                debited.insert(
                    event["license_id"].as_u64().unwrap(),
                    event["credits_used"].as_u64().unwrap(),
                );
            }
            _ => {}
        }
    }
    for license in &seen.grants {
        assert!(
            granted.contains_key(license),
            "acknowledged grant {license} is not in the ledger"
        );
    }
    for (license, credits) in &seen.debits {
        assert_eq!(
            debited.get(license),
            Some(credits),
            "acknowledged debit of license {license}"
        );
    }

    // The restarted server counts exactly what the ledger holds.
    let server = customer.start(&vendor).await;
    let data = server.data().await;
    let cartridge = |id: u64| {
        data["cartridges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["product_id"] == id)
            .unwrap()
            .clone()
    };
    let runcount_grants = granted.values().filter(|t| *t == "runcount").count() as u64;
    let credit_grants = granted.values().filter(|t| *t == "credits").count() as u64;
    assert_eq!(
        cartridge(7)["statistic"]["licenses"]["runcount"],
        runcount_grants
    );
    assert_eq!(
        cartridge(8)["statistic"]["licenses"]["credits"],
        credit_grants
    );
    assert_eq!(
        cartridge(8)["statistic"]["used_credits"],
        debited.values().sum::<u64>()
    );
    assert!(server.terminate().await);
}
