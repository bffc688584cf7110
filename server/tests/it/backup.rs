//! `license-server backup` and `restore`: a backup taken under load restores to a ledger that
//! verifies and is the source's up to the backup; a quiet one to a server with the same
//! cartridges; a damaged archive restores nothing.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use reqwest::StatusCode;
use server::ServeConfig;

use crate::{
    binary::{run, stderr, stdout},
    ledger::exported_events,
    protocol::{Lab, Lic, quick},
};

async fn backup(data_dir: &Path, to: &Path) {
    let output = run(&[
        "backup",
        "--to",
        to.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ])
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("backup written"),
        "{}",
        stdout(&output)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(to).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "it holds the server key");
    }
}

async fn restore(from: &Path, data_dir: &Path) -> std::process::Output {
    run(&[
        "restore",
        "--from",
        from.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ])
    .await
}

async fn cartridges(api: std::net::SocketAddr) -> serde_json::Value {
    let data: serde_json::Value = reqwest::get(format!("http://{api}/status/data.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data["cartridges"].clone()
}

#[tokio::test]
async fn a_backup_under_load_restores_whole_and_a_damaged_one_restores_nothing() {
    let lab = Arc::new(
        Lab::start(
            &[Lic(1, None, &["7:0:Seven:4:0", "8:0:Eight:0:100000"])],
            quick(),
        )
        .await,
    );
    let source = lab.dir.path().to_owned();
    let work = tempfile::tempdir().unwrap();

    // Four clients cycling sessions, seats and credits while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..4 {
        let (lab, stop) = (lab.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut cycles = 0;
            while !stop.load(Ordering::SeqCst) {
                let s = lab.open(None).await;
                let (product, kind) = if cycles % 2 == 0 {
                    (7, "runcount")
                } else {
                    (8, "credits")
                };
                let (status, answer) = lab
                    .request(s, &format!("r{i}-{cycles}"), product, 0, kind, 5)
                    .await;
                assert_eq!(status, StatusCode::OK, "{answer}");
                lab.release(s, answer["license_id"].as_u64().unwrap()).await;
                lab.close(s).await;
                cycles += 1;
            }
            cycles
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = exported_events(source.to_str().unwrap()).await.len();
    let busy = work.path().join("busy.tar.gz");
    backup(&source, &busy).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut cycles = 0;
    for client in clients {
        cycles += client.await.unwrap();
    }
    assert!(cycles >= 8, "the load ran: {cycles} cycles");

    // Restored: the ledger verifies, and it is the source's up to the backup's instant.
    let restored = work.path().join("restored");
    let output = restore(&busy, &restored).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("chain intact"),
        "{}",
        stdout(&output)
    );
    let verify = run(&["ledger", "verify", "--data-dir", restored.to_str().unwrap()]).await;
    assert!(verify.status.success(), "{}", stderr(&verify));
    let copy = exported_events(restored.to_str().unwrap()).await;
    let all = exported_events(source.to_str().unwrap()).await;
    assert!(
        copy.len() >= before && copy.len() < all.len(),
        "{before} entries before the backup, {} in it, {} at the end",
        copy.len(),
        all.len()
    );
    assert_eq!(
        copy[..],
        all[..copy.len()],
        "the same entries, hashes and all"
    );

    // Restoring onto a directory that holds something is refused.
    let output = restore(&busy, &restored).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("is not empty"),
        "{}",
        stderr(&output)
    );

    // A quiet server's backup starts as a server with the same id and the same cartridges.
    let quiet = work.path().join("quiet.tar.gz");
    backup(&source, &quiet).await;
    let again = work.path().join("again");
    let output = restore(&quiet, &again).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let started = server::start(ServeConfig {
        vendor_public_keys: vec![lab.vendor_key_file().with_file_name("vendor.pub")],
        engine: quick(),
        ..ServeConfig::local(again.clone())
    })
    .await
    .unwrap();
    assert_eq!(started.server_id, lab.running().server_id);
    let original = cartridges(lab.running().api_addr).await;
    assert_eq!(original[0]["statistic"]["runcount_in_use"], 0);
    assert_eq!(cartridges(started.api_addr).await, original);
    started.stop().await.unwrap();

    // Damaged archives: cut short, or a byte changed inside; nothing is left behind.
    let bytes = std::fs::read(&quiet).unwrap();
    let cut = work.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let mut flipped_bytes = bytes.clone();
    let middle = bytes.len() / 2;
    flipped_bytes[middle] ^= 0x55;
    let flipped = work.path().join("flipped.tar.gz");
    std::fs::write(&flipped, &flipped_bytes).unwrap();
    let not_gzip = work.path().join("notes.txt");
    std::fs::write(&not_gzip, "not a backup").unwrap();
    for damaged in [&cut, &flipped, &not_gzip] {
        let target = work.path().join("never");
        let output = restore(damaged, &target).await;
        assert!(!output.status.success(), "{} restored", damaged.display());
        assert!(
            stderr(&output).contains("is not a usable backup"),
            "{}",
            stderr(&output)
        );
        assert!(
            !target.exists(),
            "nothing restored from {}",
            damaged.display()
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    Arc::try_unwrap(lab).ok().unwrap().stop().await;
}
