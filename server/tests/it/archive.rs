//! Archived history through the real binary: old entries leave the store for segment files at
//! the next start, `ledger verify` and `ledger export` read through them, and a missing segment
//! is reported by `ledger verify` and stops a running server from granting.

use std::{path::Path, time::Duration};

use serde_json::Value;

use crate::{
    binary::{run, stderr},
    ledger::{exported_events, stopped_after_activity},
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
