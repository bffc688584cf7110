//! No secret in any log line: the server at `trace` (everything any crate would say) and the CLI,
//! through every path that handles one: the first start, logins right and wrong, admin tokens,
//! session tokens right and wrong, `client run`, `user passwd`.

use std::{collections::HashSet, process::Stdio, time::Duration};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::{
    binary::{command, run, start_server_logging, stderr},
    licensing::licensed,
};

/// Every run of exactly 64 hex digits in `line` (a session token's form).
fn hex64(line: &str) -> Vec<&str> {
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    let mut start = 0;
    for end in 0..=bytes.len() {
        if end == bytes.len() || !bytes[end].is_ascii_hexdigit() {
            if end - start == 64 {
                found.push(&line[start..end]);
            }
            start = end + 1;
        }
    }
    found
}

#[tokio::test]
async fn no_password_or_token_reaches_any_log_line() {
    let (vendor, customer) = licensed(&["7:0:Tool:2:0"]).await;
    let key = vendor.public_key();
    let server = start_server_logging(
        customer.data_dir().as_ref(),
        &["--vendor-public-key", &key],
        Some("trace"),
    )
    .await;
    let log = server.log();
    let http = reqwest::Client::new();
    let api = |path: &str| format!("http://{}{path}", server.api_addr);
    let lic = |path: &str| format!("http://{}{path}", server.license_addr);
    let mut secrets = Vec::new();
    let mut cli_output = Vec::new();

    let password = customer.initial_password();
    let near_miss = format!("{password}x");
    let login = |secret: String| {
        let request = http
            .post(api("/server/auth"))
            .json(&json!({"principal": "admin", "secret": secret}));
        async move { request.send().await.unwrap() }
    };
    assert_eq!(login(near_miss.clone()).await.status(), 401);
    let answer: Value = login(password.clone()).await.json().await.unwrap();
    let admin_token = answer["token"].as_str().unwrap().to_owned();
    let users = http
        .get(api("/server/manage/license/users"))
        .header("X-Ak-Session-Id", &admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    secrets.extend([password, near_miss, admin_token]);

    let (id, token) = server.open_session(&json!({"host": "h"})).await;
    let someone_elses = "ab".repeat(32);
    let granted: Value = http
        .post(lic(&format!("/v1/sessions/{id}/licenses")))
        .bearer_auth(&token)
        .json(&json!({"request_id": "r", "product_id": 7, "major_version": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let license_id = granted["license_id"].as_u64().unwrap();
    for (path, bearer, expected) in [
        (format!("/v1/sessions/{id}/heartbeat"), &someone_elses, 403),
        (format!("/v1/sessions/{id}/heartbeat"), &token, 204),
        (
            format!("/v1/sessions/{id}/licenses/{license_id}"),
            &token,
            200,
        ),
    ] {
        let method = if path.ends_with("heartbeat") {
            reqwest::Method::POST
        } else {
            reqwest::Method::DELETE
        };
        let answer = http
            .request(method, lic(&path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), expected, "{path}");
    }
    secrets.extend([token, someone_elses]);

    // The client logs at trace too: its session token must not show either.
    let out = command(&[
        "client",
        "run",
        "--server",
        &server.license_addr,
        "--product-id",
        "7",
        "--major-version",
        "0",
        "--",
        "true",
    ])
    .env("RUST_LOG", "trace")
    .output()
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    cli_output.push(stderr(&out));

    let new_password = "a new password, typed once 4711".to_owned();
    let mut passwd = command(&[
        "user",
        "passwd",
        "--principal",
        "admin",
        "--data-dir",
        customer.data_dir(),
    ]);
    let mut child = passwd
        .env("RUST_LOG", "trace")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{new_password}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    cli_output.push(stderr(&out));
    cli_output.push(String::from_utf8_lossy(&out.stdout).into_owned());
    let answer = login(new_password.clone()).await;
    assert_eq!(answer.status(), 200, "the new password works");
    let second_token = answer.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.extend([new_password, second_token]);

    assert!(server.terminate().await);
    // The session tokens nobody here saw (client run's) are known by their hashes.
    let export = run(&[
        "ledger",
        "export",
        "--format",
        "jsonl",
        "--data-dir",
        customer.data_dir(),
    ])
    .await;
    assert!(export.status.success(), "{}", stderr(&export));
    let hashes: HashSet<String> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            entry["event"]["token_sha256"].as_str().map(str::to_owned)
        })
        .collect();
    assert_eq!(hashes.len(), 2, "two sessions, two tokens");

    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines: Vec<String> = log.lock().unwrap().clone();
    // The test proves something only if the server did talk at trace (and about the requests).
    let verbose = |level: &str| {
        lines
            .iter()
            .filter(|l| l.contains(&format!("\"level\":\"{level}\"")))
            .count()
    };
    eprintln!(
        "{} lines, {} DEBUG, {} TRACE",
        lines.len(),
        verbose("DEBUG"),
        verbose("TRACE")
    );
    assert!(
        verbose("DEBUG") + verbose("TRACE") > 20,
        "the server logged at trace: {lines:#?}"
    );
    let everything = lines.iter().chain(cli_output.iter());
    for line in everything {
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "a secret in: {line}");
        }
        for candidate in hex64(line) {
            let hash = sha2_hex(candidate);
            assert!(!hashes.contains(&hash), "a session token in: {line}");
        }
    }
}

fn sha2_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
