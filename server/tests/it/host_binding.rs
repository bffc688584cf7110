//! A data directory copied to another machine: the copy gets a server id of its own, and the
//! licenses of the original stop granting there after the grace. The other machine is simulated
//! with a development build's switch (`LICENSE_SERVER_DEV_SIMULATE_HOST`), and the grace shortened
//! to seconds (`LICENSE_SERVER_DEV_MOVE_GRACE_S`); a sealed build honours neither.

use std::time::Duration;

use serde_json::json;

use crate::{
    binary::{ServerProcess, command, finish, start_server_with_env, stderr},
    licensing::licensed,
};

const ELSEWHERE: [(&str, &str); 2] = [
    ("LICENSE_SERVER_DEV_SIMULATE_HOST", "another machine"),
    ("LICENSE_SERVER_DEV_MOVE_GRACE_S", "6"),
];

/// A license request for product 7 on a new session: the HTTP status.
async fn grant(server: &ServerProcess) -> u16 {
    let (id, token) = server.open_session(&json!({"host": "h"})).await;
    reqwest::Client::new()
        .post(format!(
            "http://{}/v1/sessions/{id}/licenses",
            server.license_addr
        ))
        .bearer_auth(token)
        .json(&json!({"request_id": "r", "product_id": 7, "major_version": 0, "wait_s": 0}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_data_dir_copied_to_another_host_gets_its_own_id_and_stops_granting_after_the_grace() {
    let (vendor, customer) = licensed(&["7:0:Tool:2:0"]).await;
    let key = vendor.public_key();
    let trust = ["--vendor-public-key", key.as_str()];
    let original = customer.start_with(&vendor, &[]).await;
    let original_id = original.server_id().await;

    let copy = tempfile::tempdir().unwrap();
    let copied = copy.path().join("data");
    let cp = std::process::Command::new("cp")
        .args(["-a", customer.data_dir()])
        .arg(&copied)
        .status()
        .unwrap();
    assert!(cp.success());
    std::fs::remove_file(copied.join("server.lock")).ok();

    let elsewhere = start_server_with_env(&copied, &trust, &ELSEWHERE).await;
    let status = elsewhere.data().await;
    let server = &status["servers"][0];
    assert_ne!(
        server["server_id"],
        original_id.as_str(),
        "an id of its own"
    );
    assert_eq!(server["moved"]["previous_server_id"], original_id.as_str());
    assert!(server["moved"]["licenses_stop_at"].is_string(), "{server}");
    let warned = elsewhere.startup_log.iter().any(|e| {
        e["level"] == "WARN"
            && e["message"].as_str().is_some_and(|m| {
                m.contains("moved from another machine")
                    && m.contains(&original_id)
                    && m.contains(server["server_id"].as_str().unwrap())
            })
    });
    assert!(warned, "{:?}", elsewhere.startup_log);

    // Within the grace the copy still grants; after it, it no longer does.
    assert_eq!(grant(&elsewhere).await, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !elsewhere.data().await["cartridges"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "still licensed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        grant(&elsewhere).await,
        404,
        "UNKNOWN_PRODUCT: nothing to grant"
    );
    let list = finish({
        let mut c = command(&[
            "license",
            "list",
            "--data-dir",
            copied.to_str().unwrap(),
            "--vendor-public-key",
            &key,
        ]);
        c.envs(ELSEWHERE);
        c
    })
    .await;
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("moved-stopped"),
        "{}{}",
        String::from_utf8_lossy(&list.stdout),
        stderr(&list)
    );

    // The original, on its own machine, is untouched.
    assert_eq!(original.server_id().await, original_id);
    assert_eq!(grant(&original).await, 200);
    assert!(elsewhere.terminate().await);
    assert!(original.terminate().await);
}
