//! Archived history through the real binary: old entries leave the store for segment files at
//! the next start, `ledger verify` and `ledger export` read through them, a missing segment
//! is reported by `ledger verify` and stops a running server from granting, and `kill -9` while
//! archiving loses nothing.

use std::{path::Path, time::Duration};

use models::SessionStatus;
use serde_json::Value;
use server::{Event, Store};
use time::OffsetDateTime;

use crate::{
    binary::{ServerProcess, run, stderr},
    ledger::{exported_events, stopped_after_activity},
    licensing::licensed,
};

#[tokio::test]
async fn old_entries_move_to_segments_and_a_missing_segment_is_found() {
    let (vendor, customer) = stopped_after_activity().await;
    let before = exported_events(customer.data_dir()).await;
    // The stop wrote a snapshot at the last entry; everything before it is older than 1 s soon.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let server = customer
        .start_with(&vendor, &["--ledger-archive-after", "1s"])
        .await;
    let archived = server
        .logged("ledger entries archived")
        .await
        .expect("entries archived at start");
    assert_eq!(
        (archived["first"].as_u64(), archived["last"].as_u64()),
        (Some(1), Some(5))
    );

    let verified = run(&["ledger", "verify", "--data-dir", customer.data_dir()]).await;
    let text = String::from_utf8_lossy(&verified.stdout).into_owned();
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(
        text.contains("6 entries, chain intact")
            && text.contains("archived: entries 1 to 5 in 1 segments"),
        "{text}"
    );
    // The export is the same as before: half from the segment, half from the store.
    let after: Vec<Value> = exported_events(customer.data_dir()).await;
    assert_eq!(after, before);
    let db = Path::new(customer.data_dir()).join("license-server.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let in_store: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(in_store < 6, "{in_store} entries still in the store");
    assert!(server.terminate().await);

    // Someone removes the segment: verify names it; a server starts (from its snapshot), and the
    // background check of the history stops it from granting.
    let segments = Path::new(customer.data_dir()).join("ledger-archive");
    for file in std::fs::read_dir(&segments).unwrap() {
        std::fs::remove_file(file.unwrap().path()).unwrap();
    }
    let verified = run(&["ledger", "verify", "--data-dir", customer.data_dir()]).await;
    assert!(!verified.status.success());
    assert!(
        stderr(&verified).contains("(ledger entries 1 to 5) is missing"),
        "{}",
        stderr(&verified)
    );
    let server = customer.start(&vendor).await;
    let reason = server.unready().await;
    assert!(reason.contains("is missing"), "{reason}");
    assert!(server.terminate().await);
}

/// Appends `sessions` sessions that opened and finished a year ago, one per millisecond.
async fn year_old_sessions(data_dir: &Path, sessions: u64) {
    let store = Store::open(&data_dir.join("license-server.db"))
        .await
        .unwrap();
    let start = OffsetDateTime::now_utc() - time::Duration::days(365);
    let mut rows = Vec::new();
    for i in 0..sessions {
        let at = start + time::Duration::milliseconds(i64::try_from(i).unwrap());
        let session_id = 1_000 + i;
        rows.push(
            Event::SessionOpened {
                session_id,
                host: format!("farm-{}", i % 97),
                ip_address: [10, 0, 0, 1].into(),
                message: String::new(),
                pool: None,
                user: None,
                token_sha256: None,
                server_id: None,
            }
            .row(at),
        );
        rows.push(
            Event::SessionClosed {
                session_id,
                status: SessionStatus::Finished,
                released: Vec::new(),
                by: None,
            }
            .row(at),
        );
        if rows.len() >= 10_000 {
            store.append_ledger(&rows).await.unwrap();
            rows.clear();
        }
    }
    store.append_ledger(&rows).await.unwrap();
    store.close().await;
}

/// How many "ledger entries archived" lines the server has logged.
fn archived_lines(server: &ServerProcess) -> usize {
    server
        .log()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"ledger entries archived\""))
        .count()
}

/// `ledger verify`: its report, which must be a pass.
async fn verified(data_dir: &str) -> String {
    let out = run(&["ledger", "verify", "--data-dir", data_dir]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn kill_9_while_archiving_loses_no_entry_and_the_chain_still_verifies() {
    let (vendor, customer) = licensed(&["7:0:Runner:2:0"]).await;
    let dir = Path::new(customer.data_dir());
    let server = customer.start(&vendor).await;
    assert!(server.terminate().await);
    // A year of history appended behind the server's back (so its signed head goes too), then
    // one clean run that folds it and stops with a snapshot at its end.
    std::fs::remove_file(dir.join("ledger-head.json")).unwrap();
    let pool = crate::snapshots::db_at(dir).await;
    sqlx::query("DELETE FROM ledger_snapshots")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    year_old_sessions(dir, 75_000).await;
    let server = customer.start(&vendor).await;
    assert!(server.terminate().await);
    // "ledger verified: N entries, chain intact; last hash H": the same after every crash.
    let first_line = |text: String| text.lines().next().unwrap().to_owned();
    let before = first_line(verified(customer.data_dir()).await);
    let count: u64 = before
        .strip_prefix("ledger verified: ")
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{before}"));
    assert!(count > 150_000, "{before}");

    // Killed 30 ms into the archiving, then as the first segment is recorded (its entries still
    // in the store, or being removed from it), then left to finish.
    let archiving = ["--ledger-archive-after", "1s"];
    let server = customer.start_with(&vendor, &archiving).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    server.kill9().await;
    assert_eq!(first_line(verified(customer.data_dir()).await), before);
    let server = customer.start_with(&vendor, &archiving).await;
    for _ in 0..600 {
        if archived_lines(&server) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9().await;
    assert_eq!(first_line(verified(customer.data_dir()).await), before);
    let server = customer.start_with(&vendor, &archiving).await;
    for _ in 0..600 {
        if archived_lines(&server) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.terminate().await);
    let after = verified(customer.data_dir()).await;
    assert_eq!(first_line(after.clone()), before);
    assert!(after.contains("archived: entries 1 to "), "{after}");
    let pool = crate::snapshots::db_at(dir).await;
    let in_store: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(in_store < 1_000, "{in_store} entries still in the store");
}
