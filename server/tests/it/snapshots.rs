//! Snapshots and signed heads through the real binary: a start from the newest snapshot, a damaged
//! snapshot falling back, and every kind of tampering with the ledger found at start and by
//! `ledger verify`: cut short, rewritten with recomputed hashes, appended to after a clean stop,
//! an old entry edited in place (found by the audit while the server runs).

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use crate::{
    binary::{run, stderr},
    ledger::{some_activity, stopped_after_activity},
    licensing::{Customer, Vendor, licensed},
};

async fn db(customer: &Customer) -> SqlitePool {
    db_at(Path::new(customer.data_dir())).await
}

/// The store of the data directory `dir`, opened behind the server's back.
pub async fn db_at(dir: &Path) -> SqlitePool {
    let path = dir.join("license-server.db");
    SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

/// `serve` on the data directory, expected to refuse to start: its error output.
async fn refused_start(customer: &Customer, vendor: &Vendor) -> String {
    let key = vendor.public_key();
    let out = run(&[
        "serve",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--vendor-public-key",
        &key,
        "--data-dir",
        customer.data_dir(),
    ])
    .await;
    assert!(!out.status.success(), "the server started");
    stderr(&out)
}

/// `ledger verify`: whether it passed, and what it said.
async fn verify(customer: &Customer) -> (bool, String) {
    let out = run(&["ledger", "verify", "--data-dir", customer.data_dir()]).await;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    (out.status.success(), text)
}

fn chain_hash(prev: &str, seq: i64, at: &str, body: &str) -> String {
    let text = format!("{prev}\n{seq}\n{at}\n{body}\n");
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

pub type Row = (i64, String, String, String, String, String);

/// Edits the body of the ledger's entry at `index` (`from` → `to`) and recomputes every hash
/// from there on, as someone who knows the chain's rule would: the chain still verifies.
pub async fn rewrite(pool: &SqlitePool, index: usize, from: &str, to: &str) {
    let mut ledger = rows(pool).await;
    assert!(ledger[index].3.contains(from), "{:?}", ledger[index]);
    ledger[index].3 = ledger[index].3.replace(from, to);
    for i in index..ledger.len() {
        let prev = ledger[i - 1].5.clone();
        let (seq, at, body) = (ledger[i].0, ledger[i].1.clone(), ledger[i].3.clone());
        ledger[i].4.clone_from(&prev);
        ledger[i].5 = chain_hash(&prev, seq, &at, &body);
        sqlx::query("UPDATE ledger SET body = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4")
            .bind(&ledger[i].3)
            .bind(&ledger[i].4)
            .bind(&ledger[i].5)
            .bind(seq)
            .execute(pool)
            .await
            .unwrap();
    }
}

pub async fn rows(pool: &SqlitePool) -> Vec<Row> {
    sqlx::query_as("SELECT seq, at, kind, body, prev_hash, hash FROM ledger ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The data directory's store files, to put back after each tampering.
fn save(customer: &Customer) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    std::fs::read_dir(customer.data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("license-server.db") || name == "ledger-head.json"
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Puts the saved files back, and removes a WAL or shared-memory file that was not there when
/// they were saved (SQLite would replay the tampered pages it holds).
fn restore(customer: &Customer, saved: &[(std::path::PathBuf, Vec<u8>)]) {
    for suffix in ["-wal", "-shm"] {
        let path = Path::new(customer.data_dir()).join(format!("license-server.db{suffix}"));
        if !saved.iter().any(|(p, _)| *p == path) {
            let _ = std::fs::remove_file(path);
        }
    }
    for (path, bytes) in saved {
        std::fs::write(path, bytes).unwrap();
    }
}

/// What each cartridge's statistic says: product, seats in use, credits used, sessions dropped.
fn statistics(data: &Value) -> Vec<(u64, u64, u64, u64)> {
    data["cartridges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let stat = &c["statistic"];
            (
                c["product_id"].as_u64().unwrap(),
                stat["runcount_in_use"].as_u64().unwrap(),
                stat["used_credits"].as_u64().unwrap(),
                stat["sessions_dropped"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn logged<'a>(log: &'a [Value], message: &str) -> Option<&'a Value> {
    log.iter().find(|e| e["message"].as_str() == Some(message))
}

#[tokio::test]
async fn a_start_loads_the_newest_snapshot_and_a_damaged_snapshot_falls_back_to_genesis() {
    let (vendor, customer) = licensed(&["7:0:Runner:2:0", "8:0:Cruncher:0:500"]).await;
    let server = customer.start(&vendor).await;
    some_activity(&server.license_addr).await;
    let before = statistics(&server.data().await);
    assert!(server.terminate().await);

    // The stop wrote a snapshot at the last entry: the next start replays nothing.
    let server = customer.start(&vendor).await;
    let loaded = logged(&server.startup_log, "ledger verified and replayed").unwrap();
    assert_eq!(loaded["replayed"], 0, "{loaded}");
    assert_eq!(loaded["snapshot"], "6", "{loaded}");
    assert_eq!(statistics(&server.data().await), before);
    assert!(server.terminate().await);

    // A damaged snapshot is skipped with a WARN, and the state is rebuilt from genesis.
    let pool = db(&customer).await;
    let damaged = sqlx::query("UPDATE ledger_snapshots SET body = x'1f8b0800'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(damaged.rows_affected() >= 1);
    pool.close().await;
    // With a snapshot due after 5 entries, the 6 this start replays make one due at once.
    let server = customer
        .start_with(&vendor, &["--snapshot-every", "5"])
        .await;
    let warned = logged(
        &server.startup_log,
        "a snapshot of the ledger's state cannot be used; trying an older one",
    )
    .unwrap_or_else(|| panic!("{:?}", server.startup_log));
    assert_eq!(warned["level"], "WARN");
    assert!(
        warned["why"]
            .as_str()
            .unwrap()
            .contains("does not match the signed checksum"),
        "{warned}"
    );
    let loaded = logged(&server.startup_log, "ledger verified and replayed").unwrap();
    assert_eq!(loaded["snapshot"], "none", "{loaded}");
    assert_eq!(statistics(&server.data().await), before);
    assert!(
        server
            .logged("snapshot of the ledger's state written")
            .await
            .is_some(),
        "no snapshot after a start from genesis"
    );
    assert!(server.terminate().await);
    let (ok, text) = verify(&customer).await;
    assert!(ok, "{text}");
    assert!(text.contains("signed head: entry 6"), "{text}");
}

#[tokio::test]
async fn a_ledger_cut_short_rewritten_or_appended_to_is_refused_at_start_and_by_verify() {
    let (vendor, customer) = stopped_after_activity().await;
    let (ok, text) = verify(&customer).await;
    assert!(ok, "{text}");
    assert!(
        text.contains("6 entries, chain intact")
            && text.contains("signed head: entry 6 (the server stopped cleanly there"),
        "{text}"
    );
    let saved = save(&customer);

    // Cut short by 1 and by 3 entries: the chain that is left is intact, the head is not in it.
    for cut in [1i64, 3] {
        let pool = db(&customer).await;
        sqlx::query("DELETE FROM ledger WHERE seq > ?1")
            .bind(6 - cut)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM ledger_snapshots")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let message = refused_start(&customer, &vendor).await;
        assert!(
            message.contains(&format!(
                "the ledger was cut short: this server signed that it held entry 6, and the \
                 ledger now ends at entry {}",
                6 - cut
            )),
            "{message}"
        );
        let (ok, text) = verify(&customer).await;
        assert!(!ok && text.contains("cut short"), "{text}");
        restore(&customer, &saved);
    }

    // An entry edited and every hash after it recomputed: the chain verifies, the head does not.
    let pool = db(&customer).await;
    rewrite(&pool, 2, "render-7", "render-9").await;
    pool.close().await;
    let (ok, text) = verify(&customer).await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("6 entries, chain intact")
            && text.contains("the ledger was rewritten: entry 6"),
        "{text}"
    );
    let message = refused_start(&customer, &vendor).await;
    assert!(message.contains("the ledger was rewritten"), "{message}");
    restore(&customer, &saved);

    // A release appended with a valid hash after the server stopped cleanly.
    let pool = db(&customer).await;
    let ledger = rows(&pool).await;
    let last = ledger.last().unwrap();
    let body = r#"{"kind":"license_released","license_id":2,"credits_used":0}"#;
    let at = "2026-12-04T10:00:00Z";
    sqlx::query("INSERT INTO ledger VALUES (?1, ?2, 'license_released', ?3, ?4, ?5)")
        .bind(last.0 + 1)
        .bind(at)
        .bind(body)
        .bind(&last.5)
        .bind(chain_hash(&last.5, last.0 + 1, at, body))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let message = refused_start(&customer, &vendor).await;
    assert!(
        message.contains(
            "entries were appended after the server stopped cleanly at entry 6, by something \
             other than the server: license_released"
        ),
        "{message}"
    );
    let (ok, text) = verify(&customer).await;
    assert!(
        !ok && text.contains("appended after the server stopped"),
        "{text}"
    );
    restore(&customer, &saved);

    // What the command line appends while the server is stopped (an install) is not tampering.
    let file = vendor
        .issue(
            "more.lic",
            &customer.server_id,
            &["--product-spec", "9:0:More:1:0"],
        )
        .await;
    customer.install(&vendor, &file).await;
    let server = customer.start(&vendor).await;
    assert!(server.terminate().await);
}

#[tokio::test]
async fn an_old_entry_edited_in_place_is_found_by_the_audit_while_the_server_runs() {
    let (vendor, customer) = stopped_after_activity().await;
    let pool = db(&customer).await;
    sqlx::query("UPDATE ledger SET body = replace(body, 'render-7', 'render-8') WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // The start reads only what follows the snapshot; the audit then reads the rest.
    let server = customer.start(&vendor).await;
    let reason = server.unready().await;
    assert!(
        reason.contains("ledger entry 3 is not valid") && reason.contains("edited"),
        "{reason}"
    );
    let http = reqwest::Client::new();
    let opened = http
        .post(format!("http://{}/v1/sessions", server.license_addr))
        .json(&serde_json::json!({"host": "h", "message": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 503);
    let error: Value = opened.json().await.unwrap();
    assert_eq!(error["error"]["code"], "LEDGER_UNAVAILABLE", "{error}");
    assert!(server.terminate().await);
}
