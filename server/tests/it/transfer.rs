//! A transfer: a license activated for one server is deactivated at the vendor (by the account,
//! through a license server's admin API, or offline with the server's signed receipt) and
//! activated for another, e.g. after a data directory moved to a new machine and got a new id.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use server::{Binding, Identity, KeyPair, ServerId, activation, receipt, server_document};

use crate::{
    binary::{run, run_vendor, stderr},
    vendor::{code, lab_with_vendor, license_files},
};

#[tokio::test]
async fn a_license_deactivated_for_one_server_can_be_activated_for_another() {
    let (lab, mut vendor) = lab_with_vendor(Duration::from_secs(600)).await;
    let admin = lab.first_admin_token().await;
    let licensing = lab.vendor_login(&admin).await;
    // ACME-1 (one server) is activated for the machine this data directory came from.
    let old_id = ServerId::generate().unwrap();
    let old = Identity::detect(
        Binding::fixed(old_id.clone()),
        String::new(),
        [127, 0, 0, 1].into(),
        1400,
    );
    let request = activation::create(&old, &KeyPair::generate().unwrap(), None, None).unwrap();
    let activated = reqwest::Client::new()
        .post(format!(
            "{}/vendor/v1/licenses/ACME-1/activations",
            vendor.url()
        ))
        .header("X-Lic-Session-Id", &licensing)
        .json(&json!({"request": request}))
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), StatusCode::OK);
    let activate_here = async || lab.activate_remote("ACME-1", &admin, &licensing).await;
    let (status, body) = activate_here().await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "ACTIVATION_LIMIT")
    );

    let deactivate = async |server_id: &str| {
        lab.call(
            Method::DELETE,
            &format!("/server/manage/license/remote/licenses/ACME-1/activations/{server_id}"),
            &admin,
            Some(&licensing),
            None,
        )
        .await
    };
    let (status, body) = deactivate(old_id.as_str()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["serverId"].as_str(), body["removed_here"].as_bool()),
        (Some(old_id.as_str()), Some(false)),
        "not this server's: nothing removed here"
    );
    let (status, body) = deactivate(old_id.as_str()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "ACTIVATION_NOT_FOUND")
    );

    // The place is free: this server activates it, and installs it.
    let (status, body) = activate_here().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(license_files(lab.dir.path()).len(), 1);

    // Deactivating this server's own activation removes its copy too.
    let here = lab.running().server_id.to_string();
    let (status, body) = deactivate(&here).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["removed_here"], true);
    assert!(license_files(lab.dir.path()).is_empty());
    let (_, listed) = lab
        .call(
            Method::GET,
            "/server/manage/license/remote/licenses",
            &admin,
            Some(&licensing),
            None,
        )
        .await;
    let acme1 = listed["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "ACME-1")
        .unwrap()
        .clone();
    assert_eq!(acme1["activations"], json!([]));

    let (status, body) = lab
        .call(
            Method::DELETE,
            "/server/manage/license/remote/licenses/NOT-MINE/activations/AB",
            &admin,
            Some(&licensing),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "LICENSE_KEY_NOT_FOUND")
    );
    vendor.stop().await;
    lab.stop().await;
}

#[tokio::test]
async fn offline_a_signed_receipt_frees_the_activation_and_a_forged_one_does_not() {
    let (lab, mut vendor) = lab_with_vendor(Duration::from_secs(600)).await;
    let admin = lab.first_admin_token().await;
    let licensing = lab.vendor_login(&admin).await;
    let (status, body) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The server gives it back without the vendor: removed here, and a receipt on disk.
    let data_dir = lab.dir.path().to_str().unwrap().to_owned();
    let public_key = lab.vendor_key_file().with_file_name("vendor.pub");
    let receipt_file = lab.dir.path().join("receipt.json");
    let out = run(&[
        "license",
        "deactivate",
        "ACME-1",
        "--out",
        receipt_file.to_str().unwrap(),
        "--data-dir",
        &data_dir,
        "--vendor-public-key",
        public_key.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(license_files(lab.dir.path()).is_empty());
    let text = std::fs::read_to_string(&receipt_file).unwrap();
    // Again: nothing is installed, so no receipt either.
    let second = lab.dir.path().join("second.json");
    let out = run(&[
        "license",
        "deactivate",
        "ACME-1",
        "--out",
        second.to_str().unwrap(),
        "--data-dir",
        &data_dir,
        "--vendor-public-key",
        public_key.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no license with the key ACME-1"),
        "{}",
        stderr(&out)
    );
    assert!(!second.exists());

    // The vendor's tool reads it.
    let checked = run_vendor(&["check-receipt", receipt_file.to_str().unwrap()]).await;
    let said = String::from_utf8_lossy(&checked.stdout).into_owned();
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert!(said.contains("gave back license ACME-1"), "{said}");
    let tampered = lab.dir.path().join("tampered.json");
    std::fs::write(&tampered, text.replace("ACME-1", "ACME-2")).unwrap();
    let refused = run_vendor(&["check-receipt", tampered.to_str().unwrap()]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("signature is not valid"),
        "{}",
        stderr(&refused)
    );

    let post = async |receipt: &str| {
        let response = reqwest::Client::new()
            .post(format!("{}/vendor/v1/deactivations", vendor.url()))
            .header("X-Lic-Session-Id", &licensing)
            .json(&json!({ "receipt": receipt }))
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json::<serde_json::Value>().await.unwrap(),
        )
    };
    // Someone who knows the server id but not its key signs a receipt of their own.
    let (parsed, _) = receipt::verify(text.as_bytes()).unwrap();
    let forged =
        server_document::sign(&receipt::KIND, &parsed, &KeyPair::generate().unwrap()).unwrap();
    let (status, body) = post(&forged).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "RECEIPT_KEY_MISMATCH")
    );
    let (status, body) = post(&text.replace("ACME-1", "ACME-2")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "DEACTIVATION_RECEIPT_INVALID")
    );

    let (status, body) = post(&text).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key"], "ACME-1");
    let (status, body) = post(&text).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "ACTIVATION_NOT_FOUND")
    );
    // Free again: this server (or another) can activate it.
    let (status, _) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(status, StatusCode::OK);
    vendor.stop().await;
    lab.stop().await;
}
