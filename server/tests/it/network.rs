//! The failover network with real processes on 127.0.0.1: three members formed with `network
//! identity` and `network init`, one license for the network installed on one member, clients on
//! every member. The faults (kills, a paused coordinator, a partition) are in `network_faults`.

use std::{net::TcpListener, path::Path, time::Duration};

use models::{OpenSession, RequestLicense, RequestType};
use serde_json::{Value, json};
use server::LicenseClient;
use tempfile::TempDir;

use crate::{
    binary::{ServerProcess, run, start_server_in_netns, start_server_on, stderr},
    ledger::exported_events,
    licensing::Vendor,
};

/// What the network tests start members with: short session timeouts, so sessions a killed
/// client left behind go quickly.
pub const SERVE: [&str; 4] = ["--session-timeout", "6", "--heartbeat-interval", "1"];

/// A failover network of members on 127.0.0.1, each on its own data directory and license port.
pub struct Cluster {
    pub vendor: Vendor,
    dirs: Vec<TempDir>,
    /// Each member's address and license port.
    pub hosts: Vec<String>,
    pub ports: Vec<u16>,
    /// Each member's network namespace, if the members have their own.
    netns: Option<Vec<String>>,
    /// The members' server ids, in member order.
    pub server_ids: Vec<String>,
    /// The members' tokens (`SERVER_ID:KEY`), in member order.
    pub tokens: Vec<String>,
    pub members: Vec<Option<ServerProcess>>,
    pub network_id: String,
    serve: Vec<String>,
    env: Vec<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// `n` members, formed and started with `serve` options (and `env`), with one license for the
    /// network of `--product-spec`s `specs`, installed on the first member only. Returns once
    /// every member shows the license.
    pub async fn start(n: usize, specs: &[&str], serve: &[&str], env: &[(&str, &str)]) -> Self {
        let hosts = vec!["127.0.0.1".to_owned(); n];
        let ports = (0..n).map(|_| free_port()).collect();
        Self::form(Vendor::new().await, hosts, ports, None, specs, serve, env).await
    }

    /// [`Cluster::start`] of members at `hosts` and `ports`, each in its own network namespace of
    /// `netns` (named in member order) if given, with a license of `vendor` (none if `specs` is
    /// empty).
    pub async fn form(
        vendor: Vendor,
        hosts: Vec<String>,
        ports: Vec<u16>,
        netns: Option<Vec<String>>,
        specs: &[&str],
        serve: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let n = hosts.len();
        let mut dirs = Vec::new();
        let mut tokens = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let out = run(&["network", "identity", "--data-dir", path(dir.path())]).await;
            assert!(out.status.success(), "{}", stderr(&out));
            tokens.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
            dirs.push(dir);
        }
        let mut network_id = String::new();
        for dir in &dirs {
            let mut args = vec!["network".to_owned(), "init".to_owned()];
            for ((host, port), token) in hosts.iter().zip(&ports).zip(&tokens) {
                args.push("--member".to_owned());
                args.push(format!("{host}:{port}={token}"));
            }
            args.extend(["--data-dir".to_owned(), path(dir.path()).to_owned()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(&args).await;
            assert!(out.status.success(), "{}", stderr(&out));
            let said = String::from_utf8(out.stdout).unwrap();
            network_id = said
                .lines()
                .find_map(|l| l.strip_prefix("network id: "))
                .unwrap()
                .to_owned();
        }
        if !specs.is_empty() {
            let args: Vec<&str> = specs.iter().flat_map(|s| ["--product-spec", s]).collect();
            let file = vendor.issue("network.lic", &network_id, &args).await;
            let key = vendor.public_key();
            let out = run(&[
                "license",
                "install",
                file.to_str().unwrap(),
                "--data-dir",
                path(dirs[0].path()),
                "--vendor-public-key",
                &key,
            ])
            .await;
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let mut cluster = Self {
            vendor,
            server_ids: tokens
                .iter()
                .map(|t| t.split(':').next().unwrap().to_owned())
                .collect(),
            tokens,
            dirs,
            hosts,
            ports,
            netns,
            members: (0..n).map(|_| None).collect(),
            network_id,
            serve: serve.iter().map(|s| (*s).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        for i in 0..n {
            cluster.start_member(i).await;
        }
        cluster.coordinator().await;
        for i in (0..n).filter(|_| !specs.is_empty()) {
            cluster
                .until(i, "the network's license", |data| {
                    data["cartridges"].as_array().is_some_and(|c| !c.is_empty())
                })
                .await;
        }
        cluster
    }

    pub fn data_dir(&self, i: usize) -> &str {
        path(self.dirs[i].path())
    }

    /// Starts member `i` (again).
    pub async fn start_member(&mut self, i: usize) {
        let key = self.vendor.public_key();
        let mut args: Vec<&str> = vec!["--vendor-public-key", &key];
        args.extend(self.serve.iter().map(String::as_str));
        let filter = self
            .env
            .iter()
            .find(|(k, _)| k == "RUST_LOG")
            .map(|(_, v)| v.as_str());
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .filter(|(k, _)| k != "RUST_LOG")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let server = match &self.netns {
            Some(netns) => {
                let port = self.ports[i].to_string();
                let api_port = (self.ports[i] + 1).to_string();
                let at = [
                    "--bind",
                    &self.hosts[i],
                    "--port",
                    &port,
                    "--api-port",
                    &api_port,
                ];
                let args = [&at[..], &args].concat();
                start_server_in_netns(&netns[i], self.dirs[i].path(), &args).await
            }
            None => start_server_on(self.dirs[i].path(), self.ports[i], &args, filter, &env).await,
        };
        self.members[i] = Some(server);
    }

    pub fn member(&self, i: usize) -> &ServerProcess {
        self.members[i].as_ref().unwrap()
    }

    /// `kill -9` of member `i`.
    pub async fn kill(&mut self, i: usize) {
        if let Some(server) = self.members[i].take() {
            server.kill9().await;
        }
    }

    /// Every member's license port, for a client.
    pub fn servers(&self) -> Vec<String> {
        self.hosts
            .iter()
            .zip(&self.ports)
            .map(|(h, p)| format!("{h}:{p}"))
            .collect()
    }

    /// Member `i`'s `data.json`.
    pub async fn data(&self, i: usize) -> Value {
        self.member(i).data().await
    }

    /// Polls member `i`'s `data.json` until `done` holds, up to 20 s.
    pub async fn until(&self, i: usize, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let data = self.data(i).await;
            if done(&data) {
                return data;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("member {i}: no {what} within 20 s: {}", self.data(i).await);
    }

    /// The member that coordinates, once every running member agrees on one (up to 20 s).
    pub async fn coordinator(&self) -> usize {
        for _ in 0..200 {
            let mut seen = Vec::new();
            for i in (0..self.members.len()).filter(|i| self.members[*i].is_some()) {
                let data = self.data(i).await;
                let own = data["servers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["server_id"] == self.server_ids[i].as_str())
                    .cloned()
                    .unwrap_or_default();
                seen.push(own["coordinator"].as_str().map(str::to_owned));
            }
            if let Some(Some(first)) = seen.first()
                && seen.iter().all(|s| s.as_deref() == Some(first.as_str()))
                && let Some(index) = self.server_ids.iter().position(|id| id == first)
                && self.members[index].is_some()
            {
                return index;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let logs: Vec<String> = self
            .members
            .iter()
            .flatten()
            .map(|m| {
                let log = m.log();
                let lines = log.lock().unwrap();
                lines[lines.len().saturating_sub(8)..].join("\n")
            })
            .collect();
        panic!(
            "the members do not agree on a coordinator within 20 s; their last log lines:\n{}",
            logs.join("\n---\n")
        );
    }

    /// Waits (up to 30 s) until member `i`'s ledger reaches member `of`'s as of now: a member
    /// started again is back in full.
    pub async fn caught_up(&self, i: usize, of: usize) {
        let target = ledger_tail(self.data_dir(of)).await;
        let mut reached = 0;
        for _ in 0..600 {
            reached = ledger_tail(self.data_dir(i)).await;
            if reached >= target {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let now = ledger_tail(self.data_dir(of)).await;
        let tail = |i: usize| {
            let log = self.member(i).log();
            let log = log.lock().unwrap();
            log[log.len().saturating_sub(40)..].join("\n")
        };
        panic!(
            "member {i} did not reach entry {target} of the ledger within 30 s (at {reached}; \
             member {of} at {now}); its log ends:\n{}\nmember {of}'s log ends:\n{}",
            tail(i),
            tail(of)
        );
    }

    /// Waits (up to 20 s) until members `of` hold the same ledger, and returns it.
    pub async fn same_ledger(&self, of: &[usize]) -> Vec<Value> {
        let dirs: Vec<&str> = of.iter().map(|i| self.data_dir(*i)).collect();
        same_ledger(&dirs).await
    }
}

/// The number of the last entry of the ledger in the data directory `dir` (0 when empty).
async fn ledger_tail(dir: &str) -> i64 {
    let db = Path::new(dir).join("license-server.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let (tail,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM ledger")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    tail.unwrap_or(0)
}

/// Waits (up to 20 s) until the data directories `dirs` hold the same ledger, and returns it.
pub async fn same_ledger(dirs: &[&str]) -> Vec<Value> {
    for _ in 0..100 {
        let first = exported_events(dirs[0]).await;
        let mut same = true;
        for dir in &dirs[1..] {
            same &= exported_events(dir).await == first;
        }
        if same {
            return first;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{dirs:?} do not hold the same ledger within 20 s");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A session opened on the member at `addr`: its id and token.
pub async fn open(addr: &str, host: &str) -> (u64, String, Value) {
    let answer: Value = reqwest::Client::new()
        .post(format!("http://{addr}/v1/sessions"))
        .json(&json!({"host": host, "message": "job"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        answer["session_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{answer}")),
        answer["session_token"].as_str().unwrap().to_owned(),
        answer,
    )
}

/// A license request on the member at `addr` (no waiting): the status and the answer.
pub async fn request(addr: &str, session: u64, token: &str, product: u32) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/v1/sessions/{session}/licenses"))
        .bearer_auth(token)
        .json(&json!({"request_id": "r1", "product_id": product, "major_version": 0, "type": "all", "wait_s": 0}))
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

/// One full license cycle through `client` (open, license, release, close) of product `product`.
pub async fn cycle(client: &mut LicenseClient, product: u32) -> Result<u64, server::ClientError> {
    let session = client
        .open_session(&OpenSession {
            host: "probe".into(),
            message: String::new(),
            pool: None,
            user: None,
        })
        .await?;
    let granted = client
        .request_license(
            &session,
            &RequestLicense {
                request_id: "probe".into(),
                product_id: product,
                major_version: 0,
                request_type: RequestType::All,
                wait_s: Some(5),
            },
        )
        .await;
    let granted = match granted {
        Ok(granted) => granted,
        Err(e) => {
            let _ = client.close(&session).await;
            return Err(e);
        }
    };
    client.release(&session, granted.license_id).await?;
    client.close(&session).await?;
    Ok(granted.license_id)
}

#[tokio::test]
async fn three_members_share_the_networks_seats_and_show_the_same_status() {
    let cluster = Cluster::start(3, &["7:0:Runner:2:0"], &SERVE, &[]).await;
    let coordinator = cluster.coordinator().await;
    // The license was installed on the first member only: every member counts it.
    for i in 0..3 {
        let data = cluster.data(i).await;
        assert_eq!(data["cartridges"][0]["runcount"], 2, "member {i}: {data}");
        assert_eq!(
            data["cartridges"][0]["locations"][0]["server_id"],
            cluster.network_id.as_str()
        );
    }
    // A session on every member; two seats in all, not two each.
    let mut answers = Vec::new();
    for (i, addr) in cluster.servers().iter().enumerate() {
        let (session, token, opened) = open(addr, &format!("h{i}")).await;
        assert_eq!(opened["server_id"], cluster.server_ids[i].as_str());
        answers.push(request(addr, session, &token, 7).await);
    }
    assert_eq!(answers[0].0, 200, "{:?}", answers[0]);
    assert_eq!(answers[1].0, 200, "{:?}", answers[1]);
    assert_eq!(answers[2].0, 409, "{:?}", answers[2]);
    assert_eq!(answers[2].1["error"]["code"], "NO_LICENSE_AVAILABLE");
    // Every member shows the same cartridges and sessions, each session with the member it was
    // opened on, and three servers with the same coordinator.
    let mut views = Vec::new();
    for i in 0..3 {
        let data = cluster
            .until(i, "both seats in use, and every member running", |d| {
                d["cartridges"][0]["statistic"]["runcount_in_use"] == 2
                    && d["sessions"].as_array().is_some_and(|s| s.len() == 3)
                    && d["servers"]
                        .as_array()
                        .is_some_and(|s| s.iter().all(|s| s["status"] == "running"))
            })
            .await;
        let servers = data["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 3, "{data}");
        for (port, server) in cluster.ports.iter().zip(cluster.server_ids.iter()) {
            let record = servers.iter().find(|s| s["port"] == *port).unwrap();
            assert_eq!(record["server_id"], server.as_str());
            assert_eq!(record["status"], "running");
        }
        let own = servers
            .iter()
            .find(|s| s["port"] == cluster.ports[i])
            .unwrap();
        assert_eq!(own["coordinator"], cluster.server_ids[coordinator].as_str());
        assert_eq!(
            servers
                .iter()
                .filter(|s| s.get("coordinator").is_some())
                .count(),
            1,
            "only the answering member names the coordinator"
        );
        for session in data["sessions"].as_array().unwrap() {
            let host = session["host"].as_str().unwrap();
            let opened_on: usize = host[1..].parse().unwrap();
            assert_eq!(session["server_id"], cluster.server_ids[opened_on].as_str());
        }
        views.push((data["cartridges"].clone(), data["sessions"].clone()));
    }
    // The same, once the last entries (the refusal's count) reached every member.
    for _ in 0..100 {
        if views.iter().all(|v| *v == views[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        views.clear();
        for i in 0..3 {
            let data = cluster.data(i).await;
            views.push((data["cartridges"].clone(), data["sessions"].clone()));
        }
    }
    assert!(views.iter().all(|v| *v == views[0]), "{views:#?}");
    // Each member's metrics: one coordinator, the same term, three members reachable.
    let mut terms = Vec::new();
    let mut coordinators = Vec::new();
    for i in 0..3 {
        let text = reqwest::get(format!("http://{}/metrics", cluster.member(i).api_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let sample = |series: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("member {i}: no {series}: {text}"))
        };
        assert_eq!(sample("license_server_network_members_reachable"), 3.0);
        assert_eq!(sample("license_server_network_members"), 3.0);
        terms.push(sample("license_server_network_term"));
        if sample(r#"license_server_network_role{role="coordinator"}"#) == 1.0 {
            coordinators.push(i);
        }
    }
    assert_eq!(
        coordinators,
        vec![coordinator],
        "one coordinator: {terms:?}"
    );
    assert!(
        terms.iter().all(|t| *t == terms[0] && *t >= 1.0),
        "{terms:?}"
    );
    // One chain on every member: the installs, the administrators, the sessions, the grants and
    // the refusal.
    let ledger = cluster.same_ledger(&[0, 1, 2]).await;
    let kinds: Vec<&str> = ledger
        .iter()
        .map(|e| e["event"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "license_granted").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "license_refused").count(), 1);
    assert_eq!(
        kinds.iter().filter(|k| **k == "license_installed").count(),
        1
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "admin_user_changed").count(),
        3
    );
    for i in 0..3 {
        let verify = run(&["ledger", "verify", "--data-dir", cluster.data_dir(i)]).await;
        assert!(verify.status.success(), "{}", stderr(&verify));
    }
    // A stranger cannot speak for a member.
    let stranger = reqwest::Client::new()
        .post(format!("http://{}/members/v1/hello", cluster.servers()[0]))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    assert!(stranger.text().await.unwrap().contains("MEMBER_REFUSED"));
}

#[tokio::test]
async fn a_member_that_joins_with_a_history_or_a_wrong_list_is_refused_with_the_reason() {
    let cluster = Cluster::start(1, &["7:0:Runner:2:0"], &SERVE, &[]).await;
    // A data directory that served on its own has a ledger of its own.
    let used = tempfile::tempdir().unwrap();
    let single = crate::binary::start_server(used.path(), &[]).await;
    assert!(single.terminate().await);
    let token = run(&["network", "identity", "--data-dir", path(used.path())]).await;
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let member = format!("127.0.0.1:{}={token}", free_port());
    let out = run(&[
        "network",
        "init",
        "--member",
        &member,
        "--data-dir",
        path(used.path()),
    ])
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("ledger entries of its own"),
        "{}",
        stderr(&out)
    );
    // A list without this member, and a token that is not one.
    let fresh = tempfile::tempdir().unwrap();
    let other = run(&["network", "identity", "--data-dir", path(fresh.path())]).await;
    assert!(other.status.success());
    let out = run(&[
        "network",
        "init",
        "--member",
        &member,
        "--data-dir",
        path(fresh.path()),
    ])
    .await;
    assert!(
        stderr(&out).contains("does not name this data directory's member"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "network",
        "init",
        "--member",
        "127.0.0.1:1400",
        "--data-dir",
        path(fresh.path()),
    ])
    .await;
    assert!(stderr(&out).contains("HOST:PORT=TOKEN"), "{}", stderr(&out));
    // A license bound to a member's own server id does not count on a member.
    let own = cluster
        .vendor
        .issue(
            "own.lic",
            &cluster.server_ids[0],
            &["--product-spec", "9:0:Other:5:0"],
        )
        .await;
    let out = run(&[
        "license",
        "install",
        own.to_str().unwrap(),
        "--data-dir",
        cluster.data_dir(0),
        "--vendor-public-key",
        &cluster.vendor.public_key(),
    ])
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&cluster.network_id),
        "{}",
        stderr(&out)
    );
}

/// The vendor licensing service for `vendor`'s key, with the account `acme` (secret `acme-secret`)
/// owning NET-1 (product 7, 2 seats) for networks of up to 3 members and SOLO-1 for single
/// servers only.
async fn vendor_service(vendor: &Vendor, dir: &Path) -> server::RunningVendor {
    let catalog = format!(
        r#"
[[account]]
principal = "acme"
secret_hash = "{hash}"

[[account.entitlement]]
key = "NET-1"
serial_number = 400000001
network_members = 3

[[account.entitlement.product]]
product_id = 7
major_version = 0
product = "Runner"
runcount = 2
credits = 0
postpay = false

[[account.entitlement]]
key = "SOLO-1"
serial_number = 400000002
network_members = 1

[[account.entitlement.product]]
product_id = 8
major_version = 0
product = "Solo"
runcount = 1
credits = 0
postpay = false
"#,
        hash = server::hash_password("acme-secret").unwrap()
    );
    std::fs::write(dir.join("catalog.toml"), catalog).unwrap();
    server::start_vendor(server::VendorConfig {
        bind: [127, 0, 0, 1].into(),
        port: 0,
        key: vendor.private_key(),
        catalog: dir.join("catalog.toml"),
        data_dir: dir.join("vendor-data"),
        token_timeout: Duration::from_secs(600),
        tls: None,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_license_activated_at_the_vendor_on_one_member_counts_on_every_member() {
    let vendor = Vendor::new().await;
    let dir = tempfile::tempdir().unwrap();
    let service = vendor_service(&vendor, dir.path()).await;
    let url = format!("http://{}", service.addr);
    let hosts = vec!["127.0.0.1".to_owned(); 3];
    let ports = (0..3).map(|_| free_port()).collect();
    let serve = [&SERVE[..], &["--vendor-url", &url]].concat();
    let cluster = Cluster::form(vendor, hosts, ports, None, &[], &serve, &[]).await;
    // The administrator of the second member activates the network's license.
    let member = cluster.member(1);
    let password =
        std::fs::read_to_string(Path::new(cluster.data_dir(1)).join("initial-admin-password"))
            .unwrap();
    let admin = member.admin_token("admin", password.trim()).await;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("http://{}{path}", member.api_addr);
    let login: Value = http
        .post(api("/server/manage/license/remote/auth"))
        .header("X-Ak-Session-Id", &admin)
        .json(&json!({"principal": "acme", "secret": "acme-secret"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let licensing = login["token"].as_str().unwrap_or_else(|| panic!("{login}"));
    let activate = |key: &str| {
        http.put(api(&format!(
            "/server/manage/license/remote/licenses/{key}"
        )))
        .header("X-Ak-Session-Id", &admin)
        .header("X-Lic-Session-Id", licensing)
        .send()
    };
    // The activation carries the member's ledger head, which the vendor keeps; a member that has
    // not yet applied the network's first entry has none to send (seen on a busy CI machine).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let export = crate::binary::get_text(
            &api("/server/manage/ledger/export?format=jsonl"),
            ("X-Ak-Session-Id", &admin),
        )
        .await;
        if !export.trim().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the member's ledger stayed empty"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let activated = activate("NET-1").await.unwrap();
    assert_eq!(
        activated.status(),
        200,
        "{}",
        activated.text().await.unwrap()
    );
    let answer: Value = activated.json().await.unwrap();
    assert_eq!(answer["license"]["serverId"], cluster.network_id.as_str());
    // The vendor keeps the activating member's ledger head under the member's own id: each
    // member reports its own copy of the network's ledger.
    let heads = crate::binary::run_vendor(&[
        "ledger-heads",
        "--data-dir",
        dir.path().join("vendor-data").to_str().unwrap(),
    ])
    .await;
    assert!(
        String::from_utf8_lossy(&heads.stdout).contains(&cluster.server_ids[1]),
        "{}",
        String::from_utf8_lossy(&heads.stdout)
    );
    // A license for single servers only is refused for a network, and says why.
    let refused = activate("SOLO-1").await.unwrap();
    assert_eq!(refused.status(), 409);
    assert!(refused.text().await.unwrap().contains("at most 1 members"));
    // Installed on every member through the network.
    for i in 0..3 {
        let data = cluster
            .until(i, "the activated license", |d| {
                d["cartridges"].as_array().is_some_and(|c| c.len() == 1)
            })
            .await;
        assert_eq!(data["cartridges"][0]["runcount"], 2);
    }
    // The offline request names the network and every member, and the vendor's tool takes it.
    let request = crate::binary::get_text(
        &api("/server/manage/license/create"),
        ("X-Ak-Session-Id", &admin),
    )
    .await;
    let parsed: Value = serde_json::from_str(&request).unwrap();
    assert_eq!(parsed["request"]["serverId"], cluster.network_id.as_str());
    let members = parsed["request"]["network"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for id in &cluster.server_ids {
        assert!(
            members.iter().any(|m| m["server_id"] == id.as_str()),
            "{request}"
        );
    }
    let file = dir.path().join("request.json");
    std::fs::write(&file, &request).unwrap();
    let issued = crate::binary::run_vendor(&[
        "issue",
        "--key",
        cluster.vendor.private_key().to_str().unwrap(),
        "--request",
        file.to_str().unwrap(),
        "--product-spec",
        "9:0:Probe:1:0",
    ])
    .await;
    assert!(issued.status.success(), "{}", stderr(&issued));
    assert!(String::from_utf8_lossy(&issued.stdout).contains(&cluster.network_id));
    // An edited member list is refused.
    let edited = request.replacen(&cluster.server_ids[2], &cluster.server_ids[0], 1);
    std::fs::write(&file, &edited).unwrap();
    let refused = crate::binary::run_vendor(&[
        "issue",
        "--key",
        cluster.vendor.private_key().to_str().unwrap(),
        "--request",
        file.to_str().unwrap(),
        "--product-spec",
        "9:0:Probe:1:0",
    ])
    .await;
    assert!(!refused.status.success());
    service.stop().await.unwrap();
}
