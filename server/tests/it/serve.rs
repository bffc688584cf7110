//! The whole server, started in-process on free ports.

use std::path::Path;

use server::{Running, ServeConfig};

async fn start(data_dir: &Path) -> Running {
    start_with(data_dir, server::ConnectionLimits::default()).await
}

/// The server with its own connection limits.
pub async fn start_with(data_dir: &Path, connections: server::ConnectionLimits) -> Running {
    server::start(ServeConfig {
        serial_number: "42".into(),
        connections,
        ..ServeConfig::local(data_dir.to_owned())
    })
    .await
    .unwrap()
}

async fn data_json(running: &Running) -> serde_json::Value {
    reqwest::get(format!("http://{}/status/data.json", running.api_addr))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn both_ports_answer_over_tcp_and_the_record_names_the_license_port() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    assert_ne!(running.license_addr, running.api_addr);

    let data = data_json(&running).await;
    let server = &data["servers"][0];
    assert_eq!(server["port"], running.license_addr.port());
    assert_eq!(
        server["ip_address"], "127.0.0.1",
        "bound to one address: that address"
    );
    assert_eq!(server["serial_number"], "42");

    let health: serde_json::Value = reqwest::get(format!("http://{}/health", running.license_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["server_id"], running.server_id.as_str());

    let api_addr = running.api_addr;
    running.stop().await.unwrap();
    assert!(
        reqwest::get(format!("http://{api_addr}/health"))
            .await
            .is_err(),
        "a stopped server no longer answers"
    );
}

#[tokio::test]
async fn the_server_id_survives_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path()).await;
    let id = data_json(&first).await["servers"][0]["server_id"].clone();
    first.stop().await.unwrap();

    let second = start(dir.path()).await;
    assert_eq!(data_json(&second).await["servers"][0]["server_id"], id);
    second.stop().await.unwrap();

    let other_dir = tempfile::tempdir().unwrap();
    let other = start(other_dir.path()).await;
    assert_ne!(
        data_json(&other).await["servers"][0]["server_id"],
        id,
        "ids are per data dir"
    );
    other.stop().await.unwrap();
}

#[tokio::test]
async fn a_data_dir_in_use_by_a_running_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path()).await;
    let err = server::start(ServeConfig::local(dir.path().to_owned()))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("in use by another running license server"),
        "{err}"
    );
    first.stop().await.unwrap();
}
