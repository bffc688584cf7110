//! Removing a license (admin API and CLI), and why two files can never add up one serial
//! number: a duplicate serial is refused, a newer issue of a key replaces it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use server::{EngineConfig, Store};

use crate::{
    binary::{ServerProcess, run, stderr},
    licensing::{Customer, Vendor},
    protocol::{Lab, Lic},
};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn ledger_removals(lab: &Lab) -> Vec<String> {
    let store = Store::open(&lab.dir.path().join("license-server.db"))
        .await
        .unwrap();
    let rows = store.ledger_rows(0, 1000).await.unwrap();
    store.close().await;
    rows.into_iter()
        .filter(|r| r.kind == "license_removed")
        .map(|r| r.body)
        .collect()
}

#[tokio::test]
async fn a_removed_license_stops_granting_while_the_seats_held_from_it_finish() {
    let lab = Lab::start(
        &[
            Lic(1, None, &["7:0:Tool:2:0"]),
            Lic(2, None, &["8:0:Other:1:0"]),
        ],
        EngineConfig::default(),
    )
    .await;
    let token = lab.admin_token().await;
    let remove_key_1 = || {
        lab.admin(
            Method::DELETE,
            "/server/manage/licenses/KEY-1",
            Some(&token),
            None,
        )
    };
    let holder = lab.open(None).await;
    let (license_id, _, _) = lab.grant(holder, "r1", 7, 0, "all").await;

    let (status, body, _) = remove_key_1().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["license"]["key"], "KEY-1");

    // New grants stop at once; the job that holds a seat keeps it until it releases it.
    let newcomer = lab.open(None).await;
    let (status, body) = lab.request(newcomer, "r2", 7, 0, "all", 0).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "UNKNOWN_PRODUCT")
    );
    assert_eq!(lab.heartbeat(holder).await, StatusCode::NO_CONTENT);
    lab.release(holder, license_id).await;
    let products: Vec<u64> = lab.data("").await["cartridges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["product_id"].as_u64().unwrap())
        .collect();
    assert_eq!(products, [8]);

    let (status, body, _) = remove_key_1().await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "LICENSE_KEY_NOT_FOUND")
    );

    // The CLI, against the running server: it notices within a second.
    let data_dir = lab.dir.path().to_str().unwrap().to_owned();
    let public_key = lab.vendor_key_file().with_file_name("vendor.pub");
    let out = run(&[
        "license",
        "remove",
        "KEY-2",
        "--data-dir",
        &data_dir,
        "--vendor-public-key",
        public_key.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("removed license KEY-2 (serial 2)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !lab.data("").await["cartridges"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "still granting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = run(&["license", "remove", "KEY-2", "--data-dir", &data_dir]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no license with the key KEY-2"),
        "{}",
        stderr(&out)
    );

    let removals = ledger_removals(&lab).await;
    assert_eq!(removals.len(), 2, "{removals:?}");
    assert!(
        removals[0].contains("\"by\":\"admin@local\""),
        "{removals:?}"
    );
    assert!(removals[1].contains("\"by\":\"cli:"), "{removals:?}");

    // The history keeps both, with their terms, who removed them, and no later issue.
    let (status, history, _) = lab
        .admin(
            Method::GET,
            "/server/manage/licenses/history",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["complete"], true);
    let issues = history["licenses"].as_array().unwrap();
    assert_eq!(issues.len(), 2, "{history}");
    let issue = |key: &str| issues.iter().find(|i| i["key"] == key).unwrap().clone();
    let (one, two) = (issue("KEY-1"), issue("KEY-2"));
    assert_eq!(one["removed_by"], "admin@local", "{one}");
    assert!(
        two["removed_by"].as_str().unwrap().starts_with("cli:"),
        "{two}"
    );
    assert!(one["removed"].as_str() <= two["removed"].as_str());
    assert_eq!(one["license"]["rules"]["products"][0]["product"], "Tool");
    assert_eq!(two["serial_number"], 2);
    assert!(one.get("replaced_by").is_none());
    lab.stop().await;
}

async fn credits(server: &ServerProcess) -> Value {
    server.data().await["cartridges"][0]["credits"].clone()
}

async fn credits_become(server: &ServerProcess, expected: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while credits(server).await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "credits {} instead of {expected}",
            credits(server).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_files_with_one_serial_never_add_up_and_a_newer_issue_replaces_the_old() {
    let vendor = Vendor::new().await;
    let customer = Customer::new().await;
    let issue = |name: &'static str, key: &'static str, credits: &'static str| {
        let (vendor, id) = (&vendor, customer.server_id.clone());
        async move {
            let spec = format!("7:0:Tool:0:{credits}");
            vendor
                .issue(
                    name,
                    &id,
                    &[
                        "--product-spec",
                        &spec,
                        "--serial",
                        "777",
                        "--license-key",
                        key,
                    ],
                )
                .await
        }
    };
    let first = issue("a.lic", "KEY-A", "100000").await;
    let twin = issue("b.lic", "KEY-B", "100000").await;
    customer.install(&vendor, &first).await;
    let server = customer.start(&vendor).await;
    credits_become(&server, 100_000).await;

    let out = customer
        .cli(&vendor, &["license", "install", twin.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("serial number 777 is already installed, from license KEY-A")
            && stderr(&out).contains("DUPLICATE_SERIAL"),
        "{}",
        stderr(&out)
    );
    let token = server
        .admin_token("admin", &customer.initial_password())
        .await;
    let answer = reqwest::Client::new()
        .post(format!(
            "http://{}/server/manage/license/install",
            server.api_addr
        ))
        .header("X-Ak-Session-Id", &token)
        .body(std::fs::read(&twin).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CONFLICT);
    assert_eq!(
        code(&answer.json::<Value>().await.unwrap()),
        "DUPLICATE_SERIAL"
    );

    // Copied in by hand, the twin is skipped: still 100,000, not 200,000.
    let licenses = std::path::Path::new(customer.data_dir()).join("licenses");
    std::fs::copy(&twin, licenses.join("KEY-B.lic")).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(credits(&server).await, 100_000);

    // A newer issue of KEY-A (issue times are whole seconds) replaces it.
    std::fs::remove_file(licenses.join("KEY-B.lic")).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let topped_up = issue("a2.lic", "KEY-A", "150000").await;
    let out = customer
        .cli(
            &vendor,
            &["license", "install", topped_up.to_str().unwrap()],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("a newer issue of license KEY-A"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    credits_become(&server, 150_000).await;
    let out = customer
        .cli(&vendor, &["license", "install", first.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(1), "the older issue is refused");
    assert!(
        stderr(&out).contains("LICENSE_KEY_CONFLICT"),
        "{}",
        stderr(&out)
    );
    let files: Vec<_> = std::fs::read_dir(&licenses)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".lic"))
        .collect();
    assert_eq!(files, ["KEY-A.lic"]);

    // The history: the newer issue installed, the first one replaced by it.
    let history = server
        .admin_get(&token, "/server/manage/licenses/history")
        .await;
    let issues = history["licenses"].as_array().unwrap();
    assert_eq!(issues.len(), 2, "the twin was never installed: {history}");
    let (newer, older) = (&issues[0], &issues[1]);
    assert_eq!(
        (&newer["key"], &older["key"]),
        (&"KEY-A".into(), &"KEY-A".into())
    );
    assert!(newer.get("removed").is_none(), "{newer}");
    assert_eq!(older["replaced_by"], newer["sha256"], "{history}");
    assert!(older["removed"].is_string());
    assert_eq!(newer["license"]["rules"]["products"][0]["credits"], 150_000);

    // A license keyed `active` is removed at /licenses/active, which is also the active
    // license's address.
    let named_active = vendor
        .issue(
            "active.lic",
            &customer.server_id,
            &[
                "--product-spec",
                "8:0:Other:1:0",
                "--serial",
                "778",
                "--license-key",
                "active",
            ],
        )
        .await;
    let out = customer
        .cli(
            &vendor,
            &["license", "install", named_active.to_str().unwrap()],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let removed = reqwest::Client::new()
        .delete(format!(
            "http://{}/server/manage/licenses/active",
            server.api_addr
        ))
        .header("X-Ak-Session-Id", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::OK);
    let removed: Value = removed.json().await.unwrap();
    assert_eq!(removed["license"]["key"], "active");
    assert!(server.terminate().await);
}
