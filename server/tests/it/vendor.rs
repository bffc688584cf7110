//! The vendor licensing service (in-process on port 0) and a license server that activates
//! licenses from it through the admin API's `remote/...` endpoints.

use std::{net::SocketAddr, path::Path, time::Duration};

use axum::{Router, routing::post};
use models::{License, Rules};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::{
    Binding, EngineConfig, Identity, KeyPair, RunningVendor, ServerId, TlsFiles, VendorConfig,
    activation, hash_password, license_file,
};
use tempfile::TempDir;
use time::OffsetDateTime;

use crate::protocol::Lab;

const SECRET: &str = "acme-secret-1";

pub struct Vendor {
    running: Option<RunningVendor>,
    dir: TempDir,
    key: std::path::PathBuf,
    token_timeout: Duration,
    /// HTTPS with these files.
    tls: Option<TlsFiles>,
}

impl Vendor {
    /// Stops and starts again on the same catalog and store, on a new port.
    async fn restart(&mut self) {
        self.stop().await;
        self.running = Some(
            server::start_vendor(VendorConfig {
                bind: [127, 0, 0, 1].into(),
                port: 0,
                key: self.key.clone(),
                catalog: self.dir.path().join("catalog.toml"),
                data_dir: self.dir.path().join("vendor-data"),
                token_timeout: self.token_timeout,
                tls: self.tls.clone(),
            })
            .await
            .unwrap(),
        );
    }

    /// The service's `--data-dir`.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("vendor-data")
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.running.as_ref().unwrap().addr)
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
    }
}

/// A vendor service signing with the lab's vendor key (which the lab trusts), with the account
/// `acme` owning ACME-1 (one server) and ACME-2 (two servers); over HTTPS with `tls`.
pub async fn vendor_for(lab: &Lab, token_timeout: Duration, tls: Option<TlsFiles>) -> Vendor {
    let dir = tempfile::tempdir().unwrap();
    let catalog = format!(
        r#"
[[account]]
principal = "acme"
secret_hash = "{hash}"
fullname = "ACME Printing"

[[account.entitlement]]
key = "ACME-1"
serial_number = 300000001
max_users = 10

[[account.entitlement.product]]
product_id = 1000
major_version = 10
product = "callas pdfToolbox CLI"
runcount = 8
credits = 0
postpay = false

[[account.entitlement]]
key = "ACME-2"
serial_number = 300000002
servers = 2

[[account.entitlement.product]]
product_id = 2000
major_version = 0
product = "Cruncher"
runcount = 0
credits = 1000
postpay = true
"#,
        hash = hash_password(SECRET).unwrap()
    );
    let catalog_file = dir.path().join("catalog.toml");
    std::fs::write(&catalog_file, catalog).unwrap();
    let running = server::start_vendor(VendorConfig {
        bind: [127, 0, 0, 1].into(),
        port: 0,
        key: lab.vendor_key_file(),
        catalog: catalog_file,
        data_dir: dir.path().join("vendor-data"),
        token_timeout,
        tls: tls.clone(),
    })
    .await
    .unwrap();
    Vendor {
        running: Some(running),
        dir,
        key: lab.vendor_key_file(),
        token_timeout,
        tls,
    }
}

/// A lab with a vendor service, restarted with `--vendor-url` pointing at it.
pub async fn lab_with_vendor(token_timeout: Duration) -> (Lab, Vendor) {
    let mut lab = Lab::start(&[], EngineConfig::default()).await;
    let vendor = vendor_for(&lab, token_timeout, None).await;
    lab.vendor_url = Some(vendor.url());
    lab.restart().await;
    (lab, vendor)
}

impl Lab {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        admin: &str,
        licensing: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.running().api_addr))
            .header("X-Ak-Session-Id", admin);
        if let Some(token) = licensing {
            request = request.header("X-Lic-Session-Id", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn first_admin_token(&self) -> String {
        let password =
            std::fs::read_to_string(self.dir.path().join("initial-admin-password")).unwrap();
        let answer: Value = self
            .http
            .post(format!("http://{}/server/auth", self.running().api_addr))
            .json(&json!({"principal": "admin", "secret": password.trim()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["token"].as_str().unwrap().to_owned()
    }

    /// `PUT /server/manage/license/remote/licenses/{key}`: activate and install.
    pub async fn activate_remote(
        &self,
        key: &str,
        admin: &str,
        licensing: &str,
    ) -> (StatusCode, Value) {
        self.call(
            Method::PUT,
            &format!("/server/manage/license/remote/licenses/{key}"),
            admin,
            Some(licensing),
            None,
        )
        .await
    }

    pub async fn vendor_login(&self, admin: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/server/manage/license/remote/auth",
                admin,
                None,
                Some(json!({"principal": "acme", "secret": SECRET})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

pub fn license_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("licenses"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".lic"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn online_activation_end_to_end_and_reactivation_gives_the_same_license() {
    let (lab, mut vendor) = lab_with_vendor(Duration::from_secs(600)).await;
    let admin = lab.first_admin_token().await;
    let (status, body) = lab
        .call(
            Method::POST,
            "/server/manage/license/remote/auth",
            &admin,
            None,
            Some(json!({"principal": "acme", "secret": SECRET})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], "acme");
    assert_eq!(body["user"]["realm"], "vendor");
    assert_eq!(body["user"]["info"], json!({"fullname": "ACME Printing"}));
    assert_eq!(body["timeout"], 600_000);
    let licensing = body["token"].as_str().unwrap().to_owned();

    let (status, listed) = lab
        .call(
            Method::GET,
            "/server/manage/license/remote/licenses",
            &admin,
            Some(&licensing),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let keys: Vec<&str> = listed["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["ACME-1", "ACME-2"]);
    assert_eq!(listed["licenses"][0]["activations"], json!([]));
    assert_eq!(listed["licenses"][0]["rules"]["products"][0]["runcount"], 8);

    let (status, body) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["license"]["key"], "ACME-1");
    assert_eq!(
        body["license"]["serverId"],
        lab.running().server_id.as_str()
    );
    assert_eq!(body["license"]["rules"]["max_users"], 10);
    // The cartridge shows at once.
    assert_eq!(lab.cartridge("", 1000, 10).await["runcount"], 8);
    let files = license_files(lab.dir.path());
    assert_eq!(files.len(), 1);

    let (_, listed) = lab
        .call(
            Method::GET,
            "/server/manage/license/remote/licenses",
            &admin,
            Some(&licensing),
            None,
        )
        .await;
    assert_eq!(
        listed["licenses"][0]["serverId"],
        lab.running().server_id.as_str()
    );
    assert_eq!(
        listed["licenses"][0]["activations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Again: the very same license, nothing new.
    let (status, again) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["license"], body["license"]);
    assert_eq!(license_files(lab.dir.path()), files);

    let (status, body) = lab.activate_remote("NOPE", &admin, &licensing).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "LICENSE_KEY_NOT_FOUND")
    );

    // Logout ends the licensing token.
    let (status, _) = lab
        .call(
            Method::DELETE,
            "/server/manage/license/remote/auth",
            &admin,
            Some(&licensing),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = lab
        .call(
            Method::GET,
            "/server/manage/license/remote/licenses",
            &admin,
            Some(&licensing),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "LICENSING_SESSION_NOT_FOUND")
    );
    vendor.stop().await;
    lab.stop().await;
}

#[tokio::test]
async fn a_license_activated_on_as_many_servers_as_it_allows_is_refused_and_nothing_installed() {
    let (lab, mut vendor) = lab_with_vendor(Duration::from_secs(600)).await;
    let admin = lab.first_admin_token().await;
    let licensing = lab.vendor_login(&admin).await;
    // Another server takes ACME-1's only place, straight at the vendor.
    let elsewhere = Identity::detect(
        Binding::fixed(ServerId::generate().unwrap()),
        String::new(),
        [127, 0, 0, 1].into(),
        1400,
    );
    let request =
        activation::create(&elsewhere, &KeyPair::generate().unwrap(), None, None).unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/vendor/v1/licenses/ACME-1/activations",
            vendor.url()
        ))
        .header("X-Lic-Session-Id", &licensing)
        .json(&json!({"request": request}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let (status, body) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "ACTIVATION_LIMIT"),
        "{body}"
    );
    assert!(license_files(lab.dir.path()).is_empty());
    // ACME-2 allows two servers.
    let (status, _) = lab.activate_remote("ACME-2", &admin, &licensing).await;
    assert_eq!(status, StatusCode::OK);
    vendor.stop().await;
    lab.stop().await;
}

#[tokio::test]
async fn a_vendor_that_is_down_is_a_500_that_says_so_and_a_denied_login_is_a_401() {
    let (lab, mut vendor) = lab_with_vendor(Duration::from_secs(600)).await;
    let admin = lab.first_admin_token().await;
    let (status, body) = lab
        .call(
            Method::POST,
            "/server/manage/license/remote/auth",
            &admin,
            None,
            Some(json!({"principal": "acme", "secret": "wrong"})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "LOGIN_DENIED")
    );
    let licensing = lab.vendor_login(&admin).await;
    vendor.stop().await;
    let (status, body) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, "VENDOR_UNREACHABLE")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{body}"
    );
    assert!(license_files(lab.dir.path()).is_empty());
    lab.stop().await;
}

#[tokio::test]
async fn licensing_tokens_expire_with_the_vendors() {
    let (lab, mut vendor) = lab_with_vendor(Duration::from_secs(1)).await;
    let admin = lab.first_admin_token().await;
    let licensing = lab.vendor_login(&admin).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = lab
        .call(
            Method::GET,
            "/server/manage/license/remote/licenses",
            &admin,
            Some(&licensing),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "LICENSING_SESSION_NOT_FOUND")
    );
    vendor.stop().await;
    lab.stop().await;
}

/// A vendor impostor that answers every activation with `file`.
async fn fake_vendor(file: String) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/vendor/v1/licenses/{key}/activations",
        post(move || {
            let file = file.clone();
            async move { axum::Json(json!({"license_file": file})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (
        addr,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

#[tokio::test]
async fn a_vendor_answer_for_another_server_by_an_unknown_key_or_garbage_installs_nothing() {
    let mut lab = Lab::start(&[], EngineConfig::default()).await;
    let license = |server_id: String| License {
        key: "FAKE-1".into(),
        server_id,
        rules: Rules {
            serial_number: 1,
            issued: OffsetDateTime::now_utc(),
            expires: None,
            max_users: None,
            products: vec![server::cli::parse_product_spec("7:0:T:100:0").unwrap()],
        },
    };
    let this_server = lab.running().server_id.to_string();
    let answers = [
        (
            license_file::sign(
                &license(ServerId::generate().unwrap().to_string()),
                &lab.key,
            )
            .unwrap(),
            "VENDOR_LICENSE_REFUSED",
            "LICENSE_WRONG_SERVER",
        ),
        (
            license_file::sign(&license(this_server), &KeyPair::generate().unwrap()).unwrap(),
            "VENDOR_LICENSE_REFUSED",
            "LICENSE_UNTRUSTED_KEY",
        ),
    ];
    for (file, code_expected, reason) in answers {
        let (addr, task) = fake_vendor(file).await;
        lab.vendor_url = Some(format!("http://{addr}"));
        lab.restart().await;
        let admin = lab.first_admin_token().await;
        let (status, body) = lab
            .call(
                Method::PUT,
                "/server/manage/license/remote/licenses/FAKE-1",
                &admin,
                Some("any-token"),
                None,
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::INTERNAL_SERVER_ERROR, code_expected),
            "{body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{body}"
        );
        assert!(license_files(lab.dir.path()).is_empty());
        task.abort();
    }
    // Not even JSON.
    let app = Router::new().route(
        "/vendor/v1/licenses/{key}/activations",
        post(|| async { "<html>proxy error</html>" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    lab.vendor_url = Some(format!("http://{}", listener.local_addr().unwrap()));
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    lab.restart().await;
    let admin = lab.first_admin_token().await;
    let (status, body) = lab
        .call(
            Method::PUT,
            "/server/manage/license/remote/licenses/FAKE-1",
            &admin,
            Some("t"),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, "VENDOR_UNREACHABLE"),
        "{body}"
    );
    task.abort();
    lab.stop().await;
}

#[tokio::test]
async fn activations_survive_a_vendor_restart_and_vendor_logins_are_rate_limited() {
    let (mut lab, mut vendor) = lab_with_vendor(Duration::from_secs(600)).await;
    let admin = lab.first_admin_token().await;
    let licensing = lab.vendor_login(&admin).await;
    let (status, first) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(status, StatusCode::OK, "{first}");

    vendor.restart().await;
    lab.vendor_url = Some(vendor.url());
    lab.restart().await;
    let admin = lab.first_admin_token().await;
    let licensing = lab.vendor_login(&admin).await;
    let (_, listed) = lab
        .call(
            Method::GET,
            "/server/manage/license/remote/licenses",
            &admin,
            Some(&licensing),
            None,
        )
        .await;
    assert_eq!(
        listed["licenses"][0]["activations"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{listed}"
    );
    let (status, again) = lab.activate_remote("ACME-1", &admin, &licensing).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["license"], first["license"],
        "the same file as before the restart"
    );

    for _ in 0..5 {
        let (status, _) = lab
            .call(
                Method::POST,
                "/server/manage/license/remote/auth",
                &admin,
                None,
                Some(json!({"principal": "acme", "secret": "wrong"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = lab
        .call(
            Method::POST,
            "/server/manage/license/remote/auth",
            &admin,
            None,
            Some(json!({"principal": "acme", "secret": SECRET})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS"),
        "{body}"
    );
    vendor.stop().await;
    lab.stop().await;
}
