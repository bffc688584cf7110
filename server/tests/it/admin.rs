//! The licensing admin API over TCP: logins and tokens, permissions, local licenses, offline
//! activation requests, licensed users, force-release. Against a whole server in-process.

use std::{collections::BTreeMap, path::Path, time::Duration};

use models::{License, Rules};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::{
    AdminUserRow, EngineConfig, Event, Store, activation, cli::parse_product_spec, hash_password,
    license_file,
};
use time::OffsetDateTime;

use crate::protocol::{Lab, Lic};

impl Lab {
    fn api(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().api_addr)
    }

    /// Calls the admin API with `token` (if any); returns status and JSON body.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.http.request(method, self.api(path));
        if let Some(token) = token {
            request = request.header("X-Ak-Session-Id", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }

    async fn login(&self, principal: &str, secret: &str) -> (StatusCode, Value) {
        let (status, body, _) = self
            .admin(
                Method::POST,
                "/server/auth",
                None,
                Some(json!({"principal": principal, "secret": secret})),
            )
            .await;
        (status, body)
    }

    /// The first administrator's password, as the first start wrote it.
    fn initial_password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("initial-admin-password"))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub async fn admin_token(&self) -> String {
        let (status, body) = self.login("admin", &self.initial_password()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Adds an administrator the way `user add` does (a second handle on the store).
    async fn add_user(&self, principal: &str, password: &str, role: &str, scope: Option<&str>) {
        let store = Store::open(&self.dir.path().join("license-server.db"))
            .await
            .unwrap();
        let event = Event::AdminUserChanged {
            principal: principal.into(),
            change: "added".into(),
            role: Some(role.into()),
            by: "test".into(),
        };
        let user = AdminUserRow {
            principal: principal.into(),
            password_hash: hash_password(password).unwrap(),
            role: role.into(),
            scope: scope.map(str::to_owned),
        };
        assert!(
            store
                .add_admin_user(&user, event.row(OffsetDateTime::now_utc()))
                .await
                .unwrap()
        );
        store.close().await;
    }

    /// A token of `principal` that was last used two hours ago (stored the way a login stores
    /// it), so it is past the idle timeout.
    async fn expired_token(&self, principal: &str) -> String {
        use sha2::Digest;
        let token = uuid::Uuid::from_bytes(rand_bytes()).to_string();
        let hash: String = sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let long_ago = OffsetDateTime::now_utc() - time::Duration::hours(2);
        let store = Store::open(&self.dir.path().join("license-server.db"))
            .await
            .unwrap();
        store
            .insert_token(&server::TokenRow {
                token_hash: hash,
                principal: principal.into(),
                realm: "local".into(),
                created: long_ago,
                last_used: long_ago,
            })
            .await
            .unwrap();
        store.close().await;
        token
    }

    async fn token_of(&self, principal: &str, password: &str) -> String {
        let (status, body) = self.login(principal, password).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// A license file signed by the lab's vendor for this server.
    fn license_file(&self, key: &str, serial: u64, specs: &[&str]) -> String {
        let license = License {
            key: key.into(),
            server_id: self.running().server_id.to_string(),
            rules: Rules {
                serial_number: serial,
                // Fixed: two files made by this helper for one key are the same issue.
                issued: time::macros::datetime!(2026-01-01 00:00 UTC),
                expires: None,
                max_users: None,
                products: specs
                    .iter()
                    .map(|s| parse_product_spec(s).unwrap())
                    .collect(),
            },
        };
        license_file::sign(&license, &self.key).unwrap()
    }

    async fn install(&self, token: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.api("/server/manage/license/install"))
            .header("X-Ak-Session-Id", token)
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

fn rand_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// The licenses directory: file names and bytes.
fn licenses_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("licenses"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_first_start_creates_an_admin_whose_password_is_in_a_private_file() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], EngineConfig::default()).await;
    let file = lab.dir.path().join("initial-admin-password");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let password = lab.initial_password();
    assert!(password.len() >= 20, "{password}");
    let (status, body) = lab.login("admin", &password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(uuid::Uuid::parse_str(body["token"].as_str().unwrap()).is_ok());
    assert_eq!(body["timeout"], 1_800_000);
    assert_eq!(
        body["user"],
        json!({"id": "admin", "realm": "local", "info": {}})
    );
    assert_eq!(
        body["permissions"],
        json!(["server.VIEW_LICENSE", "server.EDIT_LICENSE"])
    );
    assert_eq!(body["status"]["server-version"], server::VERSION);
    assert_eq!(body["properties"], json!({}));

    // Wrong password and unknown principal: the same answer.
    let (status, wrong) = lab.login("admin", "not-the-password").await;
    let (status2, unknown) = lab.login("nobody", "not-the-password").await;
    assert_eq!(
        (status, status2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(wrong, unknown);
    lab.stop().await;
}

#[tokio::test]
async fn every_endpoint_wants_a_token_and_edit_calls_want_edit_permission() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], EngineConfig::default()).await;
    lab.add_user("watcher", "watcher-password", "viewer", None)
        .await;
    lab.add_user("other", "other-password", "admin", Some("another-app"))
        .await;
    let admin = lab.admin_token().await;
    let viewer = lab.token_of("watcher", "watcher-password").await;
    let scoped = lab.token_of("other", "other-password").await;
    let calls: &[(Method, &str, bool)] = &[
        (Method::GET, "/server/manage/licenses/active", false),
        (Method::GET, "/server/manage/licenses", false),
        (Method::GET, "/server/manage/license/users", false),
        (Method::POST, "/server/manage/license/install", true),
        (Method::GET, "/server/manage/license/create", true),
        (Method::DELETE, "/server/manage/license/users", true),
        (
            Method::DELETE,
            "/server/manage/license/users/local/nobody",
            true,
        ),
        (Method::DELETE, "/server/manage/sessions/999", true),
        (Method::DELETE, "/server/manage/licenses/NO-SUCH-KEY", true),
    ];
    for (method, path, edit) in calls {
        let (status, body, _) = lab.admin(method.clone(), path, None, None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            "{method} {path}"
        );
        let forged = "6f1c1a0e-9d2b-4c47-8d6c-1b2a3c4d5e6f";
        let (status, _, _) = lab.admin(method.clone(), path, Some(forged), None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a made-up token"
        );
        let expired = lab.expired_token("admin").await;
        let (status, body, _) = lab.admin(method.clone(), path, Some(&expired), None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "SESSION_EXPIRED"),
            "{method} {path}"
        );
        let (status, body, _) = lab.admin(method.clone(), path, Some(&viewer), None).await;
        if *edit {
            assert_eq!(
                (status, code(&body)),
                (StatusCode::FORBIDDEN, "FORBIDDEN"),
                "{method} {path}"
            );
        } else {
            assert!(
                status.is_success(),
                "viewer {method} {path}: {status} {body}"
            );
        }
        let (status, _, _) = lab.admin(method.clone(), path, Some(&scoped), None).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "a user of another scope: {method} {path}"
        );
        let (status, body, headers) = lab.admin(method.clone(), path, Some(&admin), None).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert_ne!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(headers["cache-control"], "no-store", "{method} {path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    lab.stop().await;
}

#[tokio::test]
async fn tokens_expire_when_idle_survive_a_restart_and_end_at_logout() {
    let mut lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], EngineConfig::default()).await;
    let token = lab.admin_token().await;
    lab.restart().await;
    let (status, body, _) = lab
        .admin(Method::GET, "/server/manage/licenses", Some(&token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the token survived the restart: {body}"
    );

    let (status, _, _) = lab
        .admin(Method::DELETE, "/server/auth", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = lab
        .admin(Method::GET, "/server/manage/licenses", Some(&token), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
    );

    lab.admin_idle = Duration::from_secs(1);
    lab.restart().await;
    let token = lab.admin_token().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body, _) = lab
        .admin(Method::GET, "/server/manage/licenses", Some(&token), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "SESSION_EXPIRED"),
        "{body}"
    );
    lab.stop().await;
}

#[tokio::test]
async fn five_failed_logins_a_minute_lock_their_address_out_even_with_the_right_password_but_not_the_administrator()
 {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], EngineConfig::default()).await;
    for _ in 0..5 {
        assert_eq!(
            lab.login("admin", "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, body, headers) = lab
        .admin(
            Method::POST,
            "/server/auth",
            None,
            Some(json!({"principal": "admin", "secret": lab.initial_password()})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS")
    );
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The administrator, at another address, is not locked out by a stranger's guesses.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let answer = elsewhere
        .post(lab.api("/server/auth"))
        .json(&json!({"principal": "admin", "secret": lab.initial_password()}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    lab.stop().await;
}

#[tokio::test]
async fn a_flood_of_concurrent_wrong_logins_is_refused_after_five_checks() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], EngineConfig::default()).await;
    let url = lab.api("/server/auth");
    let attempts: Vec<_> = (0..40)
        .map(|i| {
            let (http, url) = (lab.http.clone(), url.clone());
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({"principal": "admin", "secret": format!("guess-{i}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut checked = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}"),
        }
    }
    // Each attempt counts before its hash is checked: the other 35 were refused without one.
    assert!((1..=5).contains(&checked), "{checked} passwords checked");
    lab.stop().await;
}

#[tokio::test]
async fn licenses_install_list_and_the_active_one_and_refused_files_change_nothing() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], EngineConfig::default()).await;
    let token = lab.admin_token().await;
    let (status, body, _) = lab
        .admin(
            Method::GET,
            "/server/manage/licenses/active",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["license"]["key"], "KEY-1");

    let before = licenses_dir(lab.dir.path());
    let good = lab.license_file("NEW-1", 2, &["8:0:Extra:4:0"]);
    let tampered = good.replace("\"runcount\": 4", "\"runcount\": 40");
    let (status, body) = lab.install(&token, tampered).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "LICENSE_BAD_SIGNATURE"),
        "{body}"
    );
    // A picture or a note sent by mistake is named for what it is, not for what a JSON parser
    // expected.
    for not_one in [
        b"not a license".to_vec(),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
    ] {
        let (status, body) = lab.install(&token, not_one).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "LICENSE_MALFORMED")
        );
        assert_eq!(
            body["error"]["message"],
            "this is not a license file (expected a JSON document starting with {)"
        );
    }
    let (status, body) = lab.install(&token, vec![b'x'; 2 * 1024 * 1024]).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
    );
    assert_eq!(licenses_dir(lab.dir.path()), before, "nothing written");

    let (status, body) = lab.install(&token, good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["license"]["key"], "NEW-1");
    assert_eq!(body["already_installed"], false);
    // The same file again changes nothing, and the answer says so.
    let (status, body) = lab.install(&token, good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["already_installed"], true);
    // The cartridge shows at once, not at the next poll.
    let data: Value = lab
        .http
        .get(lab.api("/status/data.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        data["cartridges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["product_id"] == 8),
        "{data}"
    );
    let (_, active, _) = lab
        .admin(
            Method::GET,
            "/server/manage/licenses/active",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(active["license"]["key"], "NEW-1", "the one installed last");
    let (_, all, _) = lab
        .admin(Method::GET, "/server/manage/licenses", Some(&token), None)
        .await;
    let keys: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["KEY-1", "NEW-1"]);
    assert!(all[0]["serverId"].is_string() && all[0]["rules"]["products"].is_array());

    let conflicting = lab.license_file("NEW-1", 2, &["8:0:Extra:5:0"]);
    let (status, body) = lab.install(&token, conflicting).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "LICENSE_KEY_CONFLICT")
    );

    let export = server::verify_ledger(
        &Store::open(&lab.dir.path().join("license-server.db"))
            .await
            .unwrap(),
        |_| {},
    )
    .await;
    assert!(export.is_ok());
    lab.stop().await;
}

#[tokio::test]
async fn without_a_license_the_license_calls_say_so() {
    let lab = Lab::start(&[], EngineConfig::default()).await;
    let token = lab.admin_token().await;
    for (method, path) in [
        (Method::GET, "/server/manage/licenses/active"),
        (Method::GET, "/server/manage/license/users"),
        (Method::DELETE, "/server/manage/license/users"),
    ] {
        let (status, body, _) = lab.admin(method.clone(), path, Some(&token), None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::NOT_FOUND, "LICENSE_KEY_NOT_FOUND"),
            "{method} {path}"
        );
    }
    let (status, body, _) = lab
        .admin(Method::GET, "/server/manage/licenses", Some(&token), None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    lab.stop().await;
}

#[tokio::test]
async fn an_offline_activation_request_is_signed_by_this_server_and_downloads_as_a_file() {
    let lab = Lab::start(&[], EngineConfig::default()).await;
    let token = lab.admin_token().await;
    let response = lab
        .http
        .get(lab.api("/server/manage/license/create"))
        .header("X-Ak-Session-Id", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"activation-request-"),
        "{disposition}"
    );
    let text = response.text().await.unwrap();
    let (request, key) = activation::verify(text.as_bytes()).unwrap();
    assert_eq!(request.server_id, lab.running().server_id.as_str());
    // The same server key every time, across restarts.
    let again = lab
        .http
        .get(lab.api("/server/manage/license/create"))
        .header("X-Ak-Session-Id", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (second, key2) = activation::verify(again.as_bytes()).unwrap();
    assert_eq!(key, key2);
    assert_ne!(request.nonce, second.nonce);
    lab.stop().await;
}

#[tokio::test]
async fn licensed_users_are_counted_capped_and_cleared() {
    let lab = Lab::start_full(
        &[Lic(1, None, &["7:0:T:5:0"])],
        EngineConfig::default(),
        Some(2),
    )
    .await;
    let token = lab.admin_token().await; // administrators are not licensed users
    let open_as = |principal: &'static str| {
        let body = json!({"host": "h", "user": {"realm": "AD", "principal": principal}});
        lab.send(Method::POST, "/v1/sessions", Some(body))
    };
    assert_eq!(open_as("joe").await.0, StatusCode::CREATED);
    assert_eq!(
        open_as("joe").await.0,
        StatusCode::CREATED,
        "a known user is no new user"
    );
    assert_eq!(open_as("kim").await.0, StatusCode::CREATED);
    let (status, body) = open_as("ann").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "LICENSE_USER_LIMIT"),
        "{body}"
    );
    // Anonymous clients filled the limit; an administrator still logs in, new or not.
    lab.add_user("second", "second-password", "admin", None)
        .await;
    let (status, body) = lab.login("second", "second-password").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        lab.login("admin", &lab.initial_password()).await.0,
        StatusCode::OK
    );

    let (_, users, _) = lab
        .admin(
            Method::GET,
            "/server/manage/license/users",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(users["license"]["numAuthenticatedUsers"], 2);
    let list = users["license"]["authenticatedUsers"].as_array().unwrap();
    let mut names: Vec<(&str, &str)> = list
        .iter()
        .map(|u| {
            (
                u["realm"].as_str().unwrap(),
                u["principal"].as_str().unwrap(),
            )
        })
        .collect();
    names.sort_unstable();
    assert_eq!(names, [("AD", "joe"), ("AD", "kim")]);
    let date = list[0]["lastAccessDate"].as_str().unwrap();
    let fraction = date.split('.').nth(1).unwrap_or("Z");
    assert!(fraction.len() <= 4, "milliseconds at most: {date}");
    assert!(
        time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).is_ok(),
        "{date}"
    );

    let (status, body, _) = lab
        .admin(
            Method::DELETE,
            "/server/manage/license/users/AD/joe",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"license": {"numAuthenticatedUsers": 1}})
        )
    );
    let (status, body, _) = lab
        .admin(
            Method::DELETE,
            "/server/manage/license/users/AD/joe",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "LICENSE_USER_NOT_FOUND")
    );
    assert_eq!(
        open_as("ann").await.0,
        StatusCode::CREATED,
        "a place is free again"
    );

    let (status, body, _) = lab
        .admin(
            Method::DELETE,
            "/server/manage/license/users",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"license": {"numAuthenticatedUsers": 0}})
        )
    );
    // The administrator stays logged in.
    let (status, _, _) = lab
        .admin(
            Method::GET,
            "/server/manage/license/users",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    lab.stop().await;
}

#[tokio::test]
async fn an_administrator_can_force_release_a_session_and_the_ledger_says_who() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], EngineConfig::default()).await;
    let token = lab.admin_token().await;
    let session = lab.open(None).await;
    lab.grant(session, "r", 7, 0, "all").await;
    let (status, body, _) = lab
        .admin(
            Method::DELETE,
            &format!("/server/manage/sessions/{session}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Not "finished": the job did not end, its license was taken away.
    assert_eq!(body["status"], "dropped");
    assert_eq!(
        lab.cartridge("", 7, 0).await["statistic"]["runcount_in_use"],
        0
    );
    // Twice: the second administrator hears that it had already ended.
    let (status, body, _) = lab
        .admin(
            Method::DELETE,
            &format!("/server/manage/sessions/{session}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "SESSION_ENDED")
    );
    let (status, body, _) = lab
        .admin(
            Method::DELETE,
            "/server/manage/sessions/424242",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "UNKNOWN_SESSION")
    );

    let store = Store::open(&lab.dir.path().join("license-server.db"))
        .await
        .unwrap();
    let mut closed_by = Vec::new();
    server::verify_ledger(&store, |entry| {
        if let Event::SessionClosed { by, .. } = &entry.event {
            closed_by.push(by.clone());
        }
    })
    .await
    .unwrap();
    assert_eq!(closed_by, [Some("admin@local".to_owned())]);
    lab.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_json_errors_not_500s() {
    let lab = Lab::start(&[], EngineConfig::default()).await;
    let post = |content_type: &'static str, body: &'static str| {
        lab.http
            .post(lab.api("/server/auth"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (content_type, body, status) in [
        ("application/json", "{not json", StatusCode::BAD_REQUEST),
        ("text/plain", "{}", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            "application/json",
            "{\"secret\": \"x\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let response = post(content_type, body).await.unwrap();
        assert_eq!(response.status(), status, "{content_type} {body}");
        let json: Value = response.json().await.unwrap();
        assert!(json["error"]["code"].is_string(), "{json}");
    }
    let (status, body, _) = lab
        .admin(Method::GET, "/server/no/such/path", None, None)
        .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    lab.stop().await;
}

/// Runs `license-server user ARGS --data-dir DIR` with `stdin` as its standard input.
async fn user_cli(lab: &Lab, args: &[&str], stdin: &str) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let data_dir = lab.dir.path().to_str().unwrap().to_owned();
    let all: Vec<&str> = ["user"]
        .into_iter()
        .chain(args.iter().copied())
        .chain(["--data-dir", &data_dir])
        .collect();
    let mut child = crate::binary::command(&all)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

#[tokio::test]
async fn the_user_commands_add_change_and_remove_administrators_of_a_running_server() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], EngineConfig::default()).await;
    let added = user_cli(
        &lab,
        &["add", "--principal", "ops", "--role", "viewer"],
        "ops-password-1\n",
    )
    .await;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(String::from_utf8_lossy(&added.stdout).contains("server.VIEW_LICENSE"));
    let token = lab.token_of("ops", "ops-password-1").await;
    let (status, _, _) = lab
        .admin(Method::GET, "/server/manage/licenses", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let twice = user_cli(
        &lab,
        &["add", "--principal", "ops", "--role", "admin"],
        "ops-password-2\n",
    )
    .await;
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("exists already"));
    let short = user_cli(
        &lab,
        &["add", "--principal", "x", "--role", "admin"],
        "short\n",
    )
    .await;
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));

    let list = user_cli(&lab, &["list"], "").await;
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.contains("admin  admin") && text.contains("ops  viewer"),
        "{text}"
    );

    let changed = user_cli(&lab, &["passwd", "--principal", "ops"], "ops-password-2\n").await;
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let (status, _, _) = lab
        .admin(Method::GET, "/server/manage/licenses", Some(&token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a new password ends the old tokens"
    );
    assert_eq!(
        lab.login("ops", "ops-password-1").await.0,
        StatusCode::UNAUTHORIZED
    );
    let token = lab.token_of("ops", "ops-password-2").await;

    let removed = user_cli(&lab, &["remove", "--principal", "ops"], "").await;
    assert!(removed.status.success());
    let (status, _, _) = lab
        .admin(Method::GET, "/server/manage/licenses", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The first password's file stays until that password is changed, then it is deleted.
    let initial = lab.dir.path().join("initial-admin-password");
    assert!(initial.exists(), "another user's change keeps it");
    let changed = user_cli(
        &lab,
        &["passwd", "--principal", "admin"],
        "admin-password-2\n",
    )
    .await;
    assert!(changed.status.success());
    assert!(
        String::from_utf8_lossy(&changed.stdout).contains("deleted"),
        "{}",
        String::from_utf8_lossy(&changed.stdout)
    );
    assert!(
        !initial.exists(),
        "a stale password is not left lying around"
    );
    assert_eq!(
        lab.login("admin", "admin-password-2").await.0,
        StatusCode::OK
    );
    lab.stop().await;
}

#[tokio::test]
async fn the_offline_round_trip_request_issue_install_works_and_a_tampered_request_is_refused() {
    let lab = Lab::start(&[], EngineConfig::default()).await;
    let token = lab.admin_token().await;
    let request = lab
        .http
        .get(lab.api("/server/manage/license/create"))
        .header("X-Ak-Session-Id", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let carried = tempfile::tempdir().unwrap();
    let request_file = carried.path().join("activation-request.json");
    std::fs::write(&request_file, &request).unwrap();
    let license_file = carried.path().join("offline.lic");
    let key = lab.vendor_key_file();
    let issue = async |request: &Path| {
        let args = [
            "issue",
            "--key",
            key.to_str().unwrap(),
            "--request",
            request.to_str().unwrap(),
            "--product-spec",
            "9:0:Offline Tool:2:0",
            "--out",
            license_file.to_str().unwrap(),
        ];
        crate::binary::run_vendor(&args).await
    };
    let out = issue(&request_file).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = lab
        .install(&token, std::fs::read(&license_file).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["license"]["serverId"],
        lab.running().server_id.as_str()
    );
    assert_eq!(lab.cartridge("", 9, 0).await["runcount"], 2);

    let tampered = carried.path().join("tampered.json");
    std::fs::write(
        &tampered,
        request.replace("\"serial_number\": \"\"", "\"serial_number\": \"1\""),
    )
    .unwrap();
    assert_ne!(std::fs::read(&tampered).unwrap(), request.as_bytes());
    let out = issue(&tampered).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signature is not valid"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.stop().await;
}
