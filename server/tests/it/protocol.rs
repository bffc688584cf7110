//! The license protocol over TCP, against a whole server started in-process: every rule of the
//! README's "License protocol".

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use models::{License, Rules};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::{
    EngineConfig, Event, KeyPair, LicenseDir, Running, ServeConfig, Store, cli::parse_product_spec,
};
use tempfile::TempDir;
use time::OffsetDateTime;

/// A server with licenses, and a client for its license port.
pub struct Lab {
    pub dir: TempDir,
    key_dir: TempDir,
    pub running: Option<Running>,
    pub http: reqwest::Client,
    config: EngineConfig,
    /// Idle timeout of admin tokens, from the next (re)start on.
    pub admin_idle: Duration,
    /// The vendor key that signed the licenses: tests sign more with it.
    pub key: KeyPair,
    /// `--vendor-url`, from the next (re)start on.
    pub vendor_url: Option<String>,
    /// `--vendor-ca`, from the next (re)start on.
    pub vendor_ca: Option<std::path::PathBuf>,
    /// What each port accepts, from the next (re)start on.
    pub connections: server::ConnectionLimits,
    /// How often the ledger's head is reported to the vendor, from the next (re)start on.
    pub ledger_report_every: Option<Duration>,
    /// The token of each session opened through [`Lab::send`], which sends it on that session's
    /// calls as a client does.
    tokens: std::sync::Mutex<std::collections::HashMap<u64, String>>,
}

/// One license: serial, pool (None = default), product specs `ID:MAJOR:NAME:RUNCOUNT:CREDITS[:postpay]`.
pub struct Lic<'a>(pub u64, pub Option<&'a str>, pub &'a [&'a str]);

impl Lab {
    pub async fn start(licenses: &[Lic<'_>], config: EngineConfig) -> Self {
        Self::start_full(licenses, config, None).await
    }

    /// With a licensed-user limit on every license.
    pub async fn start_full(
        licenses: &[Lic<'_>],
        config: EngineConfig,
        max_users: Option<u32>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        key.write_pair(key_dir.path()).unwrap();

        let store = Store::open(&dir.path().join("license-server.db"))
            .await
            .unwrap();
        let server_id = server::ServerId::of(&store).await.unwrap();
        for Lic(serial, pool, specs) in licenses {
            let license = License {
                key: format!("KEY-{serial}"),
                server_id: server_id.to_string(),
                rules: Rules {
                    serial_number: *serial,
                    issued: OffsetDateTime::now_utc() - time::Duration::hours(1),
                    expires: None,
                    max_users,
                    products: specs
                        .iter()
                        .map(|s| parse_product_spec(s).unwrap())
                        .collect(),
                },
            };
            LicenseDir::new(dir.path())
                .install_signed(&license, &key, &store)
                .await
                .unwrap();
            if let Some(pool) = pool {
                let event = Event::CartridgeAssigned {
                    serial_number: *serial,
                    pool: Some((*pool).to_owned()),
                };
                store
                    .assign_pool(*serial, Some(pool), event.row(OffsetDateTime::now_utc()))
                    .await
                    .unwrap();
            }
        }
        store.close().await;
        let mut lab = Self {
            dir,
            key_dir,
            running: None,
            http: reqwest::Client::new(),
            config,
            admin_idle: Duration::from_secs(1800),
            key,
            vendor_url: None,
            vendor_ca: None,
            connections: server::ConnectionLimits::default(),
            ledger_report_every: None,
            tokens: Default::default(),
        };
        lab.restart().await;
        lab
    }

    /// Stops the server, keeping the data directory for a [`Lab::restart`].
    pub async fn halt(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
    }

    /// Starts (again) on the same data directory.
    ///
    /// The data directory's lock is an `flock`, which a child process that another test of this
    /// binary forks at that moment holds too until it `exec`s: under load that can outlast the
    /// stop by a little, so a start that finds the directory "in use" is tried again for up to
    /// 2 s. A server that really still ran would still be found after that.
    pub async fn restart(&mut self) {
        self.halt().await;
        let config = ServeConfig {
            vendor_public_keys: vec![self.key_dir.path().join("vendor.pub")],
            engine: self.config.clone(),
            admin_idle_timeout: self.admin_idle,
            vendor_url: self.vendor_url.clone(),
            connections: self.connections,
            ledger_report_every: self.ledger_report_every,
            vendor_ca: self.vendor_ca.clone(),
            ..ServeConfig::local(self.dir.path().to_owned())
        };
        let mut tries = 0;
        let running = loop {
            match server::start(config.clone()).await {
                Ok(running) => break running,
                Err(e) if tries < 20 && format!("{e:#}").contains("in use by another") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("the server did not start: {e:#}"),
            }
        };
        self.running = Some(running);
    }

    /// The vendor's private key file (`license-vendor keygen` output).
    pub fn vendor_key_file(&self) -> std::path::PathBuf {
        self.key_dir.path().join("vendor.key")
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().license_addr)
    }

    /// A call as the session's own client makes it: with the token that opening the session
    /// (through this function) answered.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let session = path
            .strip_prefix("/v1/sessions/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|id| id.parse::<u64>().ok());
        let token = session.and_then(|id| self.token(id));
        let (status, answer) = self.send_as(method, path, body, token.as_deref()).await;
        if path == "/v1/sessions" && status == StatusCode::CREATED {
            let id = answer["session_id"].as_u64().unwrap();
            let token = answer["session_token"].as_str().unwrap().to_owned();
            self.tokens.lock().unwrap().insert(id, token);
        }
        (status, answer)
    }

    /// The session token of a session opened through [`Lab::send`].
    pub fn token(&self, session: u64) -> Option<String> {
        self.tokens.lock().unwrap().get(&session).cloned()
    }

    /// A call with this bearer `token`, or none.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    pub async fn open(&self, pool: Option<&str>) -> u64 {
        let mut body = json!({"host": "worker-1", "message": "job"});
        if let Some(pool) = pool {
            body["pool"] = pool.into();
        }
        let (status, answer) = self
            .send(reqwest::Method::POST, "/v1/sessions", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["session_id"].as_u64().unwrap()
    }

    /// Asks for a license; `wait_s` 0 answers at once.
    pub async fn request(
        &self,
        session: u64,
        request_id: &str,
        product: u32,
        major: u32,
        kind: &str,
        wait_s: u64,
    ) -> (StatusCode, Value) {
        let body = json!({"request_id": request_id, "product_id": product, "major_version": major, "type": kind, "wait_s": wait_s});
        self.send(
            reqwest::Method::POST,
            &format!("/v1/sessions/{session}/licenses"),
            Some(body),
        )
        .await
    }

    /// A license that must be granted; returns (license_id, major_version, type).
    pub async fn grant(
        &self,
        session: u64,
        request_id: &str,
        product: u32,
        major: u32,
        kind: &str,
    ) -> (u64, u64, String) {
        let (status, answer) = self
            .request(session, request_id, product, major, kind, 0)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        (
            answer["license_id"].as_u64().unwrap(),
            answer["major_version"].as_u64().unwrap(),
            answer["type"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn release(&self, session: u64, license: u64) -> u64 {
        let (status, answer) = self
            .send(
                reqwest::Method::DELETE,
                &format!("/v1/sessions/{session}/licenses/{license}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["credits_used"].as_u64().unwrap()
    }

    pub async fn heartbeat(&self, session: u64) -> StatusCode {
        self.send(
            reqwest::Method::POST,
            &format!("/v1/sessions/{session}/heartbeat"),
            None,
        )
        .await
        .0
    }

    pub async fn close(&self, session: u64) -> Value {
        let (status, answer) = self
            .send(
                reqwest::Method::DELETE,
                &format!("/v1/sessions/{session}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    pub async fn data(&self, pool: &str) -> Value {
        let url = format!("http://{}/status/data.json", self.running().api_addr);
        crate::binary::get_json(&url, ("X-Pool-ID", pool)).await
    }

    pub async fn cartridge(&self, pool: &str, product: u64, major: u64) -> Value {
        let data = self.data(pool).await;
        data["cartridges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["product_id"] == product && c["major_version"] == major)
            .cloned()
            .unwrap_or_else(|| panic!("no cartridge {product} v{major}: {data}"))
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
    }
}

pub fn quick() -> EngineConfig {
    EngineConfig {
        heartbeat_interval: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        ..EngineConfig::default()
    }
}

#[tokio::test]
async fn the_search_goes_runcount_first_then_newer_majors_then_any_version() {
    let lab = Lab::start(
        &[Lic(
            1,
            None,
            &[
                "1000:10:P:1:0",
                "1000:11:P:1:0",
                "1000:0:P:1:0",
                "1000:12:P:0:100",
            ],
        )],
        quick(),
    )
    .await;
    let s = lab.open(None).await;
    let order = [
        lab.grant(s, "a", 1000, 10, "all").await,
        lab.grant(s, "b", 1000, 10, "all").await,
        lab.grant(s, "c", 1000, 10, "all").await,
        lab.grant(s, "d", 1000, 10, "all").await,
    ];
    let got: Vec<_> = order
        .iter()
        .map(|(_, major, kind)| (*major, kind.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (10, "runcount"),
            (11, "runcount"),
            (0, "runcount"),
            (12, "credits")
        ]
    );
    // Version 13 is newer than every license: only "any version" could answer, and it is taken.
    let (status, answer) = lab.request(s, "e", 1000, 13, "runcount", 0).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "NO_LICENSE_AVAILABLE");
    // type=credits skips the runcount cartridges.
    let (_, major, kind) = lab.grant(s, "f", 1000, 9, "credits").await;
    assert_eq!((major, kind.as_str()), (12, "credits"));
    lab.stop().await;
}

#[tokio::test]
async fn pools_see_only_their_own_cartridges() {
    let lab = Lab::start(
        &[
            Lic(1, None, &["7:0:T:1:0"]),
            Lic(2, Some("farm"), &["7:0:T:5:0"]),
        ],
        quick(),
    )
    .await;
    let default = lab.open(None).await;
    let farm = lab.open(Some("farm")).await;
    lab.grant(default, "a", 7, 0, "all").await;
    let (status, _) = lab.request(default, "b", 7, 0, "all", 0).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the default pool has one seat"
    );
    for i in 0..5 {
        lab.grant(farm, &format!("f{i}"), 7, 0, "all").await;
    }
    assert_eq!(
        lab.cartridge("farm", 7, 0).await["statistic"]["runcount_in_use"],
        5
    );
    assert_eq!(
        lab.cartridge("", 7, 0).await["statistic"]["runcount_in_use"],
        1
    );
    let sessions = lab.data("farm").await["sessions"].clone();
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(sessions[0]["session_id"], farm);
    assert_eq!(sessions[0]["licenses"].as_array().unwrap().len(), 5);
    lab.stop().await;
}

#[tokio::test]
async fn a_retried_request_gets_the_same_grant_and_releasing_twice_is_harmless() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:3:0", "8:0:C:0:1000"])], quick()).await;
    let s = lab.open(None).await;
    let first = lab.grant(s, "job-1", 7, 0, "all").await;
    let again = lab.grant(s, "job-1", 7, 0, "all").await;
    assert_eq!(first, again);
    let cartridge = lab.cartridge("", 7, 0).await;
    assert_eq!(cartridge["statistic"]["runcount_in_use"], 1);
    assert_eq!(cartridge["statistic"]["licenses"]["runcount"], 1);
    assert_eq!(lab.release(s, first.0).await, 0);
    assert_eq!(lab.release(s, first.0).await, 0);
    assert_eq!(
        lab.cartridge("", 7, 0).await["statistic"]["runcount_in_use"],
        0
    );

    let (credit, _, _) = lab.grant(s, "job-2", 8, 0, "all").await;
    let charged = lab.release(s, credit).await;
    assert_eq!(charged, 1, "at least one credit");
    assert_eq!(lab.release(s, credit).await, charged);
    let c = lab.cartridge("", 8, 0).await;
    assert_eq!(
        (
            c["statistic"]["used_credits"].as_i64(),
            c["statistic"]["remaining_credits"].as_i64()
        ),
        (Some(1), Some(999))
    );
    lab.stop().await;
}

#[tokio::test]
async fn prepaid_credits_stop_at_zero_and_postpay_keeps_granting() {
    let lab = Lab::start(
        &[Lic(
            1,
            None,
            &["8:0:Prepaid:0:1", "9:0:Postpay:0:0:postpay"],
        )],
        quick(),
    )
    .await;
    let s = lab.open(None).await;
    let (license, _, _) = lab.grant(s, "a", 8, 0, "credits").await;
    // A job running on the last credit is charged in full: 2 s held = 2 credits.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(lab.release(s, license).await, 2);
    let c = lab.cartridge("", 8, 0).await;
    assert_eq!(c["statistic"]["remaining_credits"], -1);
    let (status, answer) = lab.request(s, "b", 8, 0, "credits", 0).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        lab.cartridge("", 8, 0).await["statistic"]["licenses"]["failed"],
        1
    );

    for i in 0..3 {
        let (license, _, _) = lab.grant(s, &format!("p{i}"), 9, 0, "all").await;
        lab.release(s, license).await;
    }
    let c = lab.cartridge("", 9, 0).await;
    assert_eq!(
        (
            c["statistic"]["used_credits"].as_i64(),
            c["statistic"]["remaining_credits"].as_i64()
        ),
        (Some(3), Some(-3))
    );
    lab.stop().await;
}

#[tokio::test]
async fn a_waiting_request_gets_the_seat_as_soon_as_it_frees_up_and_gives_up_after_wait_s() {
    let lab = Arc::new(Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], quick()).await);
    let holder = lab.open(None).await;
    let (license, _, _) = lab.grant(holder, "h", 7, 0, "all").await;

    let waiter = lab.open(None).await;
    let lab2 = lab.clone();
    let waiting = tokio::spawn(async move { lab2.request(waiter, "w", 7, 0, "all", 30).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing is free: the request waits");
    lab.release(holder, license).await;
    let (status, answer) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Nothing frees up within wait_s: 409 after about a second, counted as a failure.
    let started = std::time::Instant::now();
    let (status, answer) = lab.request(holder, "late", 7, 0, "all", 1).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        lab.cartridge("", 7, 0).await["statistic"]["licenses"]["failed"],
        1
    );
    Arc::try_unwrap(lab).ok().unwrap().stop().await;
}

#[tokio::test]
async fn two_hundred_clients_racing_for_eight_seats_never_hold_more_than_eight() {
    let lab = Arc::new(Lab::start(&[Lic(1, None, &["7:0:T:8:0"])], EngineConfig::default()).await);
    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..200 {
        let (lab, holding, most) = (lab.clone(), holding.clone(), most.clone());
        clients.push(tokio::spawn(async move {
            let s = lab.open(None).await;
            let (status, answer) = lab.request(s, &format!("r{i}"), 7, 0, "runcount", 60).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            // Counted between the grant's arrival and the release's departure: never more than
            // the server itself counts.
            let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            holding.fetch_sub(1, Ordering::SeqCst);
            lab.release(s, answer["license_id"].as_u64().unwrap()).await;
            lab.close(s).await;
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    assert!(
        most.load(Ordering::SeqCst) <= 8,
        "{} held at once",
        most.load(Ordering::SeqCst)
    );
    assert!(most.load(Ordering::SeqCst) >= 2, "the seats were shared");
    let c = lab.cartridge("", 7, 0).await;
    assert_eq!(c["statistic"]["licenses"]["runcount"], 200);
    assert_eq!(c["statistic"]["runcount_in_use"], 0);
    assert_eq!(c["statistic"]["licenses"]["failed"], 0);
    Arc::try_unwrap(lab).ok().unwrap().stop().await;
}

#[tokio::test]
async fn waiters_are_served_in_the_order_they_came() {
    let lab = Arc::new(Lab::start(&[Lic(1, None, &["7:0:T:8:0"])], EngineConfig::default()).await);
    let holder = lab.open(None).await;
    let mut held = Vec::new();
    for i in 0..8 {
        held.push(lab.grant(holder, &format!("h{i}"), 7, 0, "all").await.0);
    }
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..6 {
        let (lab, order) = (lab.clone(), order.clone());
        let s = lab.open(None).await;
        waiters.push(tokio::spawn(async move {
            let (status, _) = lab.request(s, "w", 7, 0, "all", 60).await;
            assert_eq!(status, StatusCode::OK);
            order.lock().unwrap().push(i);
        }));
        // Each is in the queue before the next comes.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for license in held.iter().take(6) {
        lab.release(holder, *license).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
    Arc::try_unwrap(lab).ok().unwrap().stop().await;
}

#[tokio::test]
async fn a_session_without_heartbeats_is_dropped_and_its_licenses_return() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0", "8:0:C:0:100"])], quick()).await;
    let alive = lab.open(None).await;
    let silent = lab.open(None).await;
    lab.grant(silent, "r", 7, 0, "all").await;
    lab.grant(silent, "c", 8, 0, "all").await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(lab.heartbeat(alive).await, StatusCode::NO_CONTENT);
    }
    assert_eq!(lab.heartbeat(silent).await, StatusCode::GONE);
    let data = lab.data("").await;
    let status_of = |id: u64| {
        data["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["session_id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status_of(silent), "dropped");
    assert_eq!(status_of(alive), "running");
    let c = lab.cartridge("", 7, 0).await;
    assert_eq!(
        (
            c["statistic"]["runcount_in_use"].as_u64(),
            c["statistic"]["sessions_dropped"].as_u64()
        ),
        (Some(0), Some(1))
    );
    // Charged up to the last sign of life (the grant), not to the drop: the minimum, 1 credit.
    assert_eq!(
        lab.cartridge("", 8, 0).await["statistic"]["used_credits"],
        1
    );
    lab.grant(alive, "now-free", 7, 0, "all").await;
    let (status, answer) = lab.request(silent, "x", 7, 0, "all", 0).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::GONE, Some("SESSION_ENDED"))
    );
    lab.stop().await;
}

#[tokio::test]
async fn closing_a_session_releases_everything_and_it_shows_as_finished() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:2:0"])], quick()).await;
    let s = lab.open(None).await;
    lab.grant(s, "a", 7, 0, "all").await;
    lab.grant(s, "b", 7, 0, "all").await;
    let closed = lab.close(s).await;
    assert_eq!(closed["status"], "finished");
    assert_eq!(
        lab.close(s).await["status"],
        "finished",
        "closing twice is harmless"
    );
    let data = lab.data("").await;
    assert_eq!(data["sessions"][0]["status"], "finished");
    assert_eq!(data["sessions"][0]["licenses"], json!([]));
    assert_eq!(data["sessions"][0]["ip_address"], "127.0.0.1");
    assert_eq!(
        lab.cartridge("", 7, 0).await["statistic"]["runcount_in_use"],
        0
    );
    lab.stop().await;
}

#[tokio::test]
async fn bad_requests_get_precise_errors() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], quick()).await;
    let s = lab.open(None).await;
    let cases: Vec<(reqwest::Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            Some(json!({"message": "no host"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_JSON",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            Some(json!({"host": " "})),
            StatusCode::BAD_REQUEST,
            "INVALID_HOST",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            Some(json!({"host": "h", "pool": "a\u{7}"})),
            StatusCode::BAD_REQUEST,
            "INVALID_POOL_ID",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            Some(json!({"host": "build-1\nforged log line"})),
            StatusCode::BAD_REQUEST,
            "INVALID_HOST",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            Some(json!({"host": "h", "user": {"realm": "", "principal": "ana"}})),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            Some(json!({"host": "h", "user": {"realm": "ldap", "principal": "x".repeat(100_000)}})),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            Some(json!({"host": "h", "user": {"realm": "ldap", "principal": "ana\u{1b}[2J"}})),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            reqwest::Method::POST,
            format!("/v1/sessions/{s}/licenses"),
            Some(json!({"request_id": "r", "product_id": -1, "major_version": 0})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_JSON",
        ),
        (
            reqwest::Method::POST,
            format!("/v1/sessions/{s}/licenses"),
            Some(json!({"request_id": "", "product_id": 7, "major_version": 0})),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_ID",
        ),
        (
            reqwest::Method::POST,
            format!("/v1/sessions/{s}/licenses"),
            Some(json!({"request_id": "r", "product_id": 99, "major_version": 0})),
            StatusCode::NOT_FOUND,
            "UNKNOWN_PRODUCT",
        ),
        (
            reqwest::Method::POST,
            format!("/v1/sessions/{s}/licenses"),
            Some(json!({"request_id": "r", "product_id": 7, "major_version": 0, "type": "seats"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_JSON",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions/999/licenses".into(),
            Some(json!({"request_id": "r", "product_id": 7, "major_version": 0})),
            StatusCode::UNAUTHORIZED,
            "SESSION_TOKEN_REQUIRED",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions/abc/heartbeat".into(),
            None,
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions/999/heartbeat".into(),
            None,
            StatusCode::UNAUTHORIZED,
            "SESSION_TOKEN_REQUIRED",
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/sessions/{s}/licenses/12345"),
            None,
            StatusCode::NOT_FOUND,
            "UNKNOWN_LICENSE",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, answer) = lab.send(method.clone(), &path, body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path} {body:?}: {answer}"
        );
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    let raw = lab
        .http
        .post(lab.url("/v1/sessions"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    // Refused users were never counted: nothing unbounded got into the store.
    let admin = lab.admin_token().await;
    let (_, users, _) = lab
        .admin(
            reqwest::Method::GET,
            "/server/manage/license/users",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(users["license"]["numAuthenticatedUsers"], 0, "{users}");
    lab.stop().await;
}

#[tokio::test]
async fn grants_statistics_and_running_sessions_survive_a_restart() {
    let mut lab = Lab::start(
        &[Lic(1, None, &["7:0:T:4:0", "8:0:C:0:100"])],
        EngineConfig::default(),
    )
    .await;
    let s = lab.open(None).await;
    let (kept, _, _) = lab.grant(s, "kept", 7, 0, "all").await;
    let (gone, _, _) = lab.grant(s, "gone", 7, 0, "all").await;
    lab.release(s, gone).await;
    let (credit, _, _) = lab.grant(s, "c", 8, 0, "all").await;
    lab.release(s, credit).await;
    let before = lab.data("").await["cartridges"].clone();

    lab.restart().await;
    assert_eq!(lab.data("").await["cartridges"], before);
    assert_eq!(
        lab.heartbeat(s).await,
        StatusCode::NO_CONTENT,
        "the session lives on"
    );
    assert_eq!(
        lab.grant(s, "kept", 7, 0, "all").await.0,
        kept,
        "and remembers its requests"
    );
    let next = lab.open(None).await;
    assert!(next > s, "ids keep increasing");
    let (license, _, _) = lab.grant(next, "n", 7, 0, "all").await;
    assert!(license > credit);
    lab.stop().await;
}

#[tokio::test]
async fn a_session_answers_only_to_its_own_token_and_keeps_it_across_a_restart() {
    let mut lab = Lab::start(&[Lic(1, None, &["7:0:T:2:0"])], EngineConfig::default()).await;
    let victim = lab.open(None).await;
    let (license, _, _) = lab.grant(victim, "r", 7, 0, "all").await;
    let intruder = lab.open(None).await;
    let (own, theirs) = (lab.token(victim).unwrap(), lab.token(intruder).unwrap());
    assert_eq!(own.len(), 64, "256 bits in hex");
    assert_ne!(own, theirs);

    use reqwest::Method as M;
    let heartbeat = format!("/v1/sessions/{victim}/heartbeat");
    let release = format!("/v1/sessions/{victim}/licenses/{license}");
    let close = format!("/v1/sessions/{victim}");
    let request = format!("/v1/sessions/{victim}/licenses");
    let body = json!({"request_id": "x", "product_id": 7, "major_version": 0, "wait_s": 0});
    let attacks: [(M, &str, Option<Value>); 4] = [
        (M::POST, &heartbeat, None),
        (M::DELETE, &release, None),
        (M::DELETE, &close, None),
        (M::POST, &request, Some(body)),
    ];
    let code = |answer: &Value| answer["error"]["code"].as_str().unwrap_or("").to_owned();
    for (method, path, body) in &attacks {
        let (status, answer) = lab.send_as(method.clone(), path, body.clone(), None).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::UNAUTHORIZED, "SESSION_TOKEN_REQUIRED".into()),
            "{method} {path} without a token"
        );
        for wrong in [theirs.as_str(), "0123", &"f".repeat(64)] {
            let (status, answer) = lab
                .send_as(method.clone(), path, body.clone(), Some(wrong))
                .await;
            assert_eq!(
                (status, code(&answer)),
                (StatusCode::FORBIDDEN, "SESSION_TOKEN_WRONG".into()),
                "{method} {path} with {wrong}"
            );
            assert!(!answer.to_string().contains(&own), "no token in errors");
        }
    }
    // Another scheme is no token.
    let basic = lab
        .http
        .post(lab.url(&heartbeat))
        .basic_auth("victim", Some(&own))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    // An unknown session with a token is unknown; the ids are public anyway.
    let (status, answer) = lab
        .send_as(M::POST, "/v1/sessions/999/heartbeat", None, Some(&own))
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::NOT_FOUND, "UNKNOWN_SESSION".into())
    );

    // Nothing the intruder sent changed anything.
    let data = lab.data("").await;
    assert_eq!(data["sessions"][0]["status"], "running", "{data}");
    assert_eq!(data["cartridges"][0]["statistic"]["runcount_in_use"], 1);
    let page = data.to_string();
    assert!(
        !page.contains(&own) && !page.contains(&theirs),
        "no token in data.json"
    );

    // The session keeps its token across a restart: the hash is in the ledger.
    lab.restart().await;
    assert_eq!(lab.heartbeat(victim).await, StatusCode::NO_CONTENT);
    let (status, _) = lab.send_as(M::POST, &heartbeat, None, Some(&theirs)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(lab.release(victim, license).await, 0);
    assert_eq!(lab.close(victim).await["status"], "finished");
    lab.running.take().unwrap().stop().await.unwrap();
    // Only the hashes are stored: no file of the data directory holds a token.
    for entry in std::fs::read_dir(lab.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            for token in [&own, &theirs] {
                assert!(
                    !bytes.windows(64).any(|w| w == token.as_bytes()),
                    "{} holds a session token",
                    path.display()
                );
            }
        }
    }
}
