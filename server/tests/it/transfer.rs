//! A transfer: a license activated for one server is deactivated at the vendor (by the account,
//! through a license server's admin API) and activated for another, e.g. after a data directory
//! moved to a new machine and got a new server id.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use server::{Binding, Identity, KeyPair, ServerId, activation};

use crate::vendor::{code, lab_with_vendor, license_files};

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
    let request = activation::create(&old, &KeyPair::generate().unwrap()).unwrap();
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
    let activate_here = async || {
        lab.call(
            Method::PUT,
            "/server/manage/license/remote/licenses/ACME-1",
            &admin,
            Some(&licensing),
            None,
        )
        .await
    };
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
