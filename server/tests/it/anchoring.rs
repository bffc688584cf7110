//! Ledger heads anchored at the vendor service: a server reports its head and usage, the vendor
//! keeps them, and a history rewritten or cut short by someone who could defeat the server's own
//! signed head (by removing it) shows at the vendor; offline activation requests carry the head
//! too; strangers' reports are refused.

use std::{path::Path, time::Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::{Binding, Identity, KeyPair, ServerId, ledger_report};
use sqlx::SqlitePool;

use crate::{
    binary::{run, run_vendor, stderr},
    protocol::Lab,
    snapshots::{db_at, rewrite, rows},
    vendor::{Vendor, code, lab_with_vendor},
};

/// What the vendor knows of one server's ledger.
#[derive(Debug, Clone)]
struct Anchored {
    last_seq: i64,
    last_verdict: String,
    finding: Option<String>,
    usage: Value,
}

async fn anchored(vendor: &Vendor, server_id: &str) -> Option<Anchored> {
    let path = vendor.data_dir().join("vendor.db");
    let pool = SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let row: Option<(i64, String, Option<String>, String)> = sqlx::query_as(
        "SELECT last_seq, last_verdict, finding, last_usage FROM ledger_servers
         WHERE server_id = ?1",
    )
    .bind(server_id)
    .fetch_optional(&pool)
    .await
    .unwrap();
    pool.close().await;
    row.map(|(last_seq, last_verdict, finding, usage)| Anchored {
        last_seq,
        last_verdict,
        finding,
        usage: serde_json::from_str(&usage).unwrap(),
    })
}

/// Waits (up to 30 s) until what the vendor knows of the server passes `done`.
async fn anchored_when(
    vendor: &Vendor,
    server_id: &str,
    done: impl Fn(&Anchored) -> bool,
) -> Anchored {
    let mut seen = None;
    for _ in 0..300 {
        seen = anchored(vendor, server_id).await;
        if seen.as_ref().is_some_and(&done) {
            return seen.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the vendor never got there; it has {seen:?}");
}

async fn tail(dir: &Path) -> i64 {
    let pool = db_at(dir).await;
    let last = rows(&pool).await.last().map_or(0, |r| r.0);
    pool.close().await;
    last
}

/// A job: a session that takes one seat of product 1000 and gives it back.
async fn job(lab: &Lab, request_id: &str) {
    let session = lab.open(None).await;
    let (license, ..) = lab.grant(session, request_id, 1000, 10, "runcount").await;
    lab.release(session, license).await;
    lab.close(session).await;
}

/// What root on the customer's machine can do without the server's key: remove the signed head
/// and the snapshots (which carry heads too), so the server starts from genesis on whatever the
/// ledger says.
async fn remove_signed_heads(dir: &Path) {
    std::fs::remove_file(dir.join("ledger-head.json")).unwrap();
    let pool = db_at(dir).await;
    sqlx::query("DELETE FROM ledger_snapshots")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// The index in the ledger of the first entry whose body contains `text`.
async fn index_of(dir: &Path, text: &str) -> usize {
    let pool = db_at(dir).await;
    let index = rows(&pool)
        .await
        .iter()
        .position(|r| r.3.contains(text))
        .unwrap();
    pool.close().await;
    index
}

#[tokio::test]
async fn the_vendor_keeps_each_head_and_finds_a_history_rewritten_or_cut_short() {
    let (mut lab, mut vendor) = lab_with_vendor(Duration::from_secs(600)).await;
    lab.ledger_report_every = Some(Duration::from_millis(200));
    lab.restart().await;
    let server_id = lab.running().server_id.to_string();
    let admin = lab.first_admin_token().await;
    let licensing = lab.vendor_login(&admin).await;
    let (status, body) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    job(&lab, "a").await;
    let at = tail(lab.dir.path()).await;
    let seen = anchored_when(&vendor, &server_id, |a| a.last_seq >= at).await;
    assert!(seen.finding.is_none(), "{seen:?}");
    assert!(
        ["first", "extends", "same"].contains(&seen.last_verdict.as_str()),
        "{seen:?}"
    );
    let usage = &seen.usage[0];
    assert_eq!(
        (
            &usage["product_id"],
            &usage["runcount_grants"],
            &usage["runcount_in_use"]
        ),
        (&json!(1000), &json!(1), &json!(0)),
        "{seen:?}"
    );

    // The server forgets which entries it reported: the vendor asks for the link it needs.
    lab.halt().await;
    std::fs::remove_file(lab.dir.path().join("ledger-reported.json")).unwrap();
    lab.restart().await;
    job(&lab, "b").await;
    let at = tail(lab.dir.path()).await;
    let seen = anchored_when(&vendor, &server_id, |a| a.last_seq >= at).await;
    assert_eq!(seen.last_verdict, "extends", "{seen:?}");
    assert_eq!(seen.usage[0]["runcount_grants"], 2, "{seen:?}");

    // The first job's session, moved to another host, every hash after it recomputed, and the
    // signed heads removed: the server starts, and the vendor sees the rewrite.
    lab.halt().await;
    let index = index_of(lab.dir.path(), "worker-1").await;
    let pool = db_at(lab.dir.path()).await;
    rewrite(&pool, index, "worker-1", "worker-9").await;
    pool.close().await;
    remove_signed_heads(lab.dir.path()).await;
    let verified = run(&[
        "ledger",
        "verify",
        "--data-dir",
        lab.dir.path().to_str().unwrap(),
    ])
    .await;
    let said = String::from_utf8_lossy(&verified.stdout).into_owned();
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(
        said.contains("warning: no signed head found although the ledger has "),
        "{said}"
    );
    lab.restart().await;
    let seen = anchored_when(&vendor, &server_id, |a| a.finding.is_some()).await;
    assert_eq!(seen.last_verdict, "rewritten", "{seen:?}");
    let finding = seen.finding.unwrap();
    assert!(
        finding.starts_with("the ledger's history was rewritten: entry "),
        "{finding}"
    );

    // Cut short by two entries: the head is before the one the vendor kept.
    lab.halt().await;
    let at = tail(lab.dir.path()).await;
    let pool = db_at(lab.dir.path()).await;
    sqlx::query("DELETE FROM ledger WHERE seq > ?1")
        .bind(at - 2)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    remove_signed_heads(lab.dir.path()).await;
    lab.restart().await;
    let seen = anchored_when(&vendor, &server_id, |a| a.last_verdict == "truncated").await;
    assert_eq!(seen.last_seq, at - 2, "{seen:?}");
    assert!(
        seen.finding.as_deref().unwrap().contains("rewritten"),
        "the first finding stays: {seen:?}"
    );
    lab.halt().await;

    // The vendor's list names the server and what was found; one server's list, every head.
    let data_dir = vendor.data_dir();
    let out = run_vendor(&["ledger-heads", "--data-dir", data_dir.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.contains(&server_id)
            && listed.contains("CHANGED (found ")
            && listed.contains("the ledger's history was rewritten: entry "),
        "{listed}"
    );
    let out = run_vendor(&[
        "ledger-heads",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--server-id",
        &server_id,
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let heads = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "extends  via report",
        "rewritten  via report",
        "truncated  via report: the ledger was cut short: it ends at entry ",
        "product 1000 v10  runcount grants ",
    ] {
        assert!(heads.contains(expected), "{expected}: {heads}");
    }
    vendor.stop().await;
}

/// A ledger report signed by `key` for `server_id`.
fn report(server_id: ServerId, key: &KeyPair, seq: u64) -> String {
    let identity = Identity::detect(
        Binding::fixed(server_id),
        String::new(),
        [127, 0, 0, 1].into(),
        1400,
    );
    ledger_report::create(
        &identity,
        key,
        ledger_report::LedgerSummary {
            seq,
            hash: "0".repeat(64),
            links: Vec::new(),
            usage: Vec::new(),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn offline_requests_carry_the_head_and_strangers_reports_are_refused() {
    let (mut lab, mut vendor) = lab_with_vendor(Duration::from_secs(600)).await;
    let server_id = lab.running().server_id.to_string();
    let admin = lab.first_admin_token().await;
    let licensing = lab.vendor_login(&admin).await;
    let (status, body) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data_dir = vendor.data_dir();
    let request_dir = tempfile::tempdir().unwrap();

    // Each offline request carries the head; the vendor records it as `issue` reads it.
    let mut said = Vec::new();
    for (round, request_id) in ["a", "b", "c"].into_iter().enumerate() {
        if round == 2 {
            lab.halt().await;
            let index = index_of(lab.dir.path(), "worker-1").await;
            let pool = db_at(lab.dir.path()).await;
            rewrite(&pool, index, "worker-1", "worker-2").await;
            pool.close().await;
            remove_signed_heads(lab.dir.path()).await;
            lab.restart().await;
        } else {
            job(&lab, request_id).await;
        }
        // The file as downloaded: the signature covers its bytes.
        let response = lab
            .http
            .get(format!(
                "http://{}/server/manage/license/create",
                lab.running().api_addr
            ))
            .header("X-Ak-Session-Id", &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        let request: Value = serde_json::from_str(&text).unwrap();
        let head = &request["request"]["ledger"];
        assert_eq!(head["seq"], tail(lab.dir.path()).await, "{request}");
        let file = request_dir.path().join(format!("request-{round}.json"));
        std::fs::write(&file, text).unwrap();
        let out = run_vendor(&[
            "issue",
            "--key",
            lab.vendor_key_file().to_str().unwrap(),
            "--request",
            file.to_str().unwrap(),
            "--vendor-data-dir",
            data_dir.to_str().unwrap(),
            "--product-spec",
            "1000:10:callas pdfToolbox CLI:8:0",
            "--out",
            request_dir.path().join("issued.lic").to_str().unwrap(),
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        said.push(stderr(&out));
    }
    assert!(said[0].contains(": extends: "), "{}", said[0]);
    assert!(said[1].contains(": extends: "), "{}", said[1]);
    assert!(
        said[2].contains("WARNING: ledger head of server ")
            && said[2].contains(": rewritten: the ledger's history was rewritten: entry "),
        "{}",
        said[2]
    );
    let seen = anchored(&vendor, &server_id).await.unwrap();
    assert_eq!(seen.last_verdict, "rewritten");

    // Reports from a stranger, signed by another key, or not a report at all.
    let post = |body: Value| {
        let url = format!("{}/vendor/v1/ledger-reports", vendor.url());
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let stranger = KeyPair::generate().unwrap();
    let (status, body) =
        post(json!({"report": report(ServerId::generate().unwrap(), &stranger, 5)})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "SERVER_UNKNOWN"),
        "{body}"
    );
    let ours = ServerId::parse(server_id.clone()).unwrap();
    let (status, body) = post(json!({"report": report(ours, &stranger, 5)})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "SERVER_KEY_MISMATCH"),
        "{body}"
    );
    let (status, body) = post(json!({"report": "{\"format\": \"something else\"}"})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "LEDGER_REPORT_INVALID"),
        "{body}"
    );
    assert_eq!(
        anchored(&vendor, &server_id).await.unwrap().last_seq,
        seen.last_seq
    );
    lab.halt().await;
    vendor.stop().await;
}
