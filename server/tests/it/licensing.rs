//! Vendor keys, license files and cartridges, the way a vendor and an administrator use them:
//! through the `license-server` binary, against a running server.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;
use tempfile::TempDir;

use crate::binary::{ServerProcess, run, run_vendor, start_server, stderr};

/// A vendor with a fresh keypair made by `license-vendor keygen`.
pub struct Vendor {
    dir: TempDir,
}

impl Vendor {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = run_vendor(&["keygen", "--out-dir", dir.path().to_str().unwrap()]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        Self { dir }
    }

    pub fn private_key(&self) -> PathBuf {
        self.dir.path().join("vendor.key")
    }

    pub fn public_key(&self) -> String {
        self.dir
            .path()
            .join("vendor.pub")
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// `license-vendor issue --out FILE` for `server_id` with `args`; returns the file.
    pub async fn issue(&self, name: &str, server_id: &str, args: &[&str]) -> PathBuf {
        let file = self.dir.path().join(name);
        let key = self.private_key();
        let base = [
            "issue",
            "--key",
            key.to_str().unwrap(),
            "--server-id",
            server_id,
            "--out",
            file.to_str().unwrap(),
        ];
        let out = run_vendor(&[&base[..], args].concat()).await;
        assert!(out.status.success(), "{}", stderr(&out));
        file
    }
}

/// A data directory, its server id, and the CLI calls that work on it.
pub struct Customer {
    dir: TempDir,
    pub server_id: String,
}

impl Customer {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = run(&["server-id", "--data-dir", dir.path().to_str().unwrap()]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        let server_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Self { dir, server_id }
    }

    pub fn data_dir(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn licenses_dir(&self) -> PathBuf {
        self.dir.path().join("licenses")
    }

    /// Runs `license-server ARGS --data-dir DIR --vendor-public-key KEY`.
    pub async fn cli(&self, vendor: &Vendor, args: &[&str]) -> std::process::Output {
        let tail = [
            "--data-dir",
            self.data_dir(),
            "--vendor-public-key",
            &vendor.public_key(),
        ];
        run(&[args, &tail[..]].concat()).await
    }

    pub async fn install(&self, vendor: &Vendor, file: &Path) -> String {
        let out = self
            .cli(vendor, &["license", "install", file.to_str().unwrap()])
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// `license install` that must be refused; returns the message.
    async fn install_refused(&self, vendor: &Vendor, file: &Path) -> String {
        let out = self
            .cli(vendor, &["license", "install", file.to_str().unwrap()])
            .await;
        assert!(!out.status.success(), "installed {}", file.display());
        stderr(&out)
    }

    async fn assign(&self, serial: &str, pool: &str) {
        let out = run(&[
            "cartridge",
            "assign",
            serial,
            pool,
            "--data-dir",
            self.data_dir(),
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
    }

    pub async fn start(&self, vendor: &Vendor) -> ServerProcess {
        self.start_with(vendor, &[]).await
    }

    /// [`Customer::start`] with more options of `serve`.
    pub async fn start_with(&self, vendor: &Vendor, extra: &[&str]) -> ServerProcess {
        let key = vendor.public_key();
        let trust = ["--vendor-public-key", key.as_str()];
        start_server(self.dir.path(), &[&trust[..], extra].concat()).await
    }

    /// The first administrator's password, from the file the first start wrote.
    pub fn initial_password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("initial-admin-password"))
            .unwrap()
            .trim()
            .to_owned()
    }
}

/// A vendor, and a customer data directory with one license of these `--product-spec`s installed.
pub async fn licensed(specs: &[&str]) -> (Vendor, Customer) {
    let vendor = Vendor::new().await;
    let customer = Customer::new().await;
    let args: Vec<&str> = specs
        .iter()
        .flat_map(|spec| ["--product-spec", spec])
        .collect();
    let file = vendor
        .issue("licensed.lic", &customer.server_id, &args)
        .await;
    customer.install(&vendor, &file).await;
    (vendor, customer)
}

async fn data_json(server: &ServerProcess, pool: &str) -> Value {
    let url = format!("http://{}/status/data.json", server.api_addr);
    crate::binary::get_json(&url, ("X-Pool-ID", pool)).await
}

/// Polls `data.json` of `pool` until `done` holds for its cartridges. A running server notices
/// changes within a second; the deadline is only there to fail rather than hang.
async fn cartridges_until(
    server: &ServerProcess,
    pool: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let data = data_json(server, pool).await;
        let cartridges = data["cartridges"].as_array().unwrap().clone();
        if done(&cartridges) {
            return cartridges;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pool {pool:?} never got there: {cartridges:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn find(cartridges: &[Value], product_id: u64, major: u64) -> &Value {
    cartridges
        .iter()
        .find(|c| c["product_id"] == product_id && c["major_version"] == major)
        .unwrap_or_else(|| panic!("no cartridge {product_id} v{major} in {cartridges:#?}"))
}

fn serials(cartridge: &Value) -> Vec<u64> {
    cartridge["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["serial_number"].as_u64().unwrap())
        .collect()
}

const PDF_TOOLBOX: &str = "callas pdfToolbox CLI";

#[tokio::test]
async fn licenses_installed_while_the_server_runs_add_up_to_cartridges_and_pools_filter_them() {
    let vendor = Vendor::new().await;
    let customer = Customer::new().await;
    let server = customer.start(&vendor).await;
    assert_eq!(
        data_json(&server, "").await["cartridges"],
        serde_json::json!([])
    );

    let runcount = vendor
        .issue(
            "runcount.lic",
            &customer.server_id,
            &[
                "--product-id",
                "1000",
                "--major-version",
                "10",
                "--product",
                PDF_TOOLBOX,
                "--runcount",
                "8",
                "--serial",
                "200000512",
            ],
        )
        .await;
    let printed = customer.install(&vendor, &runcount).await;
    assert!(printed.contains("serial 200000512"), "{printed}");
    let mixed = vendor
        .issue(
            "mixed.lic",
            &customer.server_id,
            &[
                "--product-spec",
                "1000:10:callas pdfToolbox CLI:2:0",
                "--product-spec",
                "1000:0:callas pdfToolbox CLI:0:100000:postpay",
                "--serial",
                "200000556",
                "--max-users",
                "5",
            ],
        )
        .await;
    customer.install(&vendor, &mixed).await;

    let cartridges = cartridges_until(&server, "", |c| c.len() == 2).await;
    let v10 = find(&cartridges, 1000, 10);
    assert_eq!(v10["product"], PDF_TOOLBOX);
    assert_eq!(v10["runcount"], 10, "8 + 2 from two licenses");
    assert_eq!(v10["credits"], 0);
    assert_eq!(v10["postpay"], false);
    assert_eq!(serials(v10), [200000512, 200000556]);
    let locations = v10["locations"].as_array().unwrap();
    assert_eq!(locations[0]["runcount"], 8);
    assert_eq!(locations[1]["runcount"], 2);
    assert!(
        locations
            .iter()
            .all(|l| l["server_id"] == customer.server_id.as_str())
    );
    let any = find(&cartridges, 1000, 0);
    assert_eq!(
        (&any["credits"], &any["postpay"]),
        (&100000.into(), &true.into())
    );
    let statistic = &any["statistic"];
    assert_eq!(statistic["remaining_credits"], 100000);
    assert_eq!(statistic["used_credits"], 0);
    assert_eq!(statistic["runcount_in_use"], 0);
    assert_eq!(statistic["licenses"]["failed"], 0);

    // The second license goes into a pool: the default pool keeps only the first.
    customer.assign("200000556", "farm").await;
    let default = cartridges_until(&server, "", |c| c.len() == 1).await;
    assert_eq!(default[0]["runcount"], 8);
    assert_eq!(serials(&default[0]), [200000512]);
    let farm = cartridges_until(&server, "farm", |c| c.len() == 2).await;
    assert_eq!(find(&farm, 1000, 10)["runcount"], 2);
    assert_eq!(serials(find(&farm, 1000, 0)), [200000556]);
    assert_eq!(
        data_json(&server, "other").await["cartridges"],
        serde_json::json!([])
    );

    customer.assign("200000556", "").await;
    cartridges_until(&server, "", |c| c.len() == 2).await;
    cartridges_until(&server, "farm", <[Value]>::is_empty).await;
    assert!(server.terminate().await);
}

#[tokio::test]
async fn a_license_stops_counting_when_it_expires_without_a_restart() {
    let vendor = Vendor::new().await;
    let customer = Customer::new().await;
    let server = customer.start(&vendor).await;
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let file = vendor
        .issue(
            "short.lic",
            &customer.server_id,
            &["--product-spec", "7:1:Short:1:0", "--expires", &expires],
        )
        .await;
    customer.install(&vendor, &file).await;
    cartridges_until(&server, "", |c| c.len() == 1).await;
    cartridges_until(&server, "", <[Value]>::is_empty).await;

    let list = customer.cli(&vendor, &["license", "list", "--json"]).await;
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["licenses"][0]["status"], "expired", "{list}");
    assert!(server.terminate().await);
}

#[tokio::test]
async fn an_unusable_file_in_the_licenses_dir_is_skipped_with_a_log_line_naming_it() {
    let vendor = Vendor::new().await;
    let customer = Customer::new().await;
    let file = vendor
        .issue(
            "good.lic",
            &customer.server_id,
            &["--product-spec", "7:0:Tool:3:0"],
        )
        .await;
    customer.install(&vendor, &file).await;
    let corrupt = customer.licenses_dir().join("corrupt.lic");
    std::fs::write(
        &corrupt,
        b"{\"format\": \"license-server-license-v1\", \"key_id\"",
    )
    .unwrap();

    let server = customer.start(&vendor).await;
    let warning = server
        .startup_log
        .iter()
        .find(|event| {
            event["level"] == "WARN"
                && event["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("corrupt.lic"))
        })
        .unwrap_or_else(|| panic!("no warning names corrupt.lic: {:#?}", server.startup_log));
    assert!(
        warning["reason"].as_str().unwrap().contains("malformed"),
        "{warning}"
    );
    let cartridges = cartridges_until(&server, "", |c| c.len() == 1).await;
    assert_eq!(cartridges[0]["runcount"], 3);
    assert!(server.terminate().await);

    let list = customer.cli(&vendor, &["license", "list"]).await;
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(text.contains("active"), "{text}");
    assert!(
        text.contains("unusable:") && text.contains("corrupt.lic"),
        "{text}"
    );
}

#[tokio::test]
async fn refused_files_leave_the_licenses_dir_untouched_and_say_why() {
    let vendor = Vendor::new().await;
    let stranger = Vendor::new().await;
    let customer = Customer::new().await;
    let other = Customer::new().await;
    let spec = ["--product-spec", "7:0:Tool:3:0", "--license-key", "KEY-1"];

    // Another issue of the same key, issued before (or in the same second as) the genuine one:
    // only a newer issue replaces an installed license.
    let reissued = vendor
        .issue(
            "reissued.lic",
            &customer.server_id,
            &["--product-spec", "7:0:Tool:4:0", "--license-key", "KEY-1"],
        )
        .await;
    let genuine = vendor
        .issue("genuine.lic", &customer.server_id, &spec)
        .await;
    let text = std::fs::read_to_string(&genuine).unwrap();
    let tampered = vendor.dir.path().join("tampered.lic");
    std::fs::write(
        &tampered,
        text.replace("\"runcount\": 3", "\"runcount\": 30"),
    )
    .unwrap();
    let untrusted = stranger
        .issue("untrusted.lic", &customer.server_id, &spec)
        .await;
    let elsewhere = vendor.issue("elsewhere.lic", &other.server_id, &spec).await;
    let not_a_license = vendor.dir.path().join("notes.lic");
    std::fs::write(&not_a_license, "hello").unwrap();

    for (file, code) in [
        (&tampered, "LICENSE_BAD_SIGNATURE"),
        (&untrusted, "LICENSE_UNTRUSTED_KEY"),
        (&elsewhere, "LICENSE_WRONG_SERVER"),
        (&not_a_license, "LICENSE_MALFORMED"),
    ] {
        let message = customer.install_refused(&vendor, file).await;
        assert!(message.contains(code), "{file:?}: {message}");
        assert!(!customer.licenses_dir().join("KEY-1.lic").exists());
    }

    customer.install(&vendor, &genuine).await;
    let again = customer.install(&vendor, &genuine).await;
    assert!(again.contains("already installed"), "{again}");
    // Same key, different content, not newer: refused, and the installed file stays as it was.
    let message = customer.install_refused(&vendor, &reissued).await;
    assert!(message.contains("LICENSE_KEY_CONFLICT"), "{message}");
    assert_eq!(
        std::fs::read(customer.licenses_dir().join("KEY-1.lic")).unwrap(),
        std::fs::read(&genuine).unwrap()
    );
}

#[tokio::test]
async fn verify_prints_what_a_file_grants_or_why_it_is_refused() {
    let vendor = Vendor::new().await;
    let customer = Customer::new().await;
    let file = vendor
        .issue(
            "v.lic",
            &customer.server_id,
            &[
                "--product-spec",
                "1000:10:callas pdfToolbox CLI:8:0",
                "--max-users",
                "25",
            ],
        )
        .await;
    let out = customer
        .cli(&vendor, &["license", "verify", file.to_str().unwrap()])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("valid:"), "{text}");
    assert!(
        text.contains("callas pdfToolbox CLI (version 10): runcount 8"),
        "{text}"
    );
    assert!(text.contains("licensed users: 25"), "{text}");
    assert!(!customer.licenses_dir().exists(), "verify installs nothing");

    // Without the vendor's public key nothing verifies, and the message says what to pass.
    let out = run(&[
        "license",
        "verify",
        file.to_str().unwrap(),
        "--data-dir",
        customer.data_dir(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("LICENSE_UNTRUSTED_KEY") && message.contains("--vendor-public-key"),
        "{message}"
    );
}

#[tokio::test]
async fn the_vendor_tool_refuses_what_no_server_would_accept() {
    let vendor = Vendor::new().await;
    let customer = Customer::new().await;
    let key = vendor.private_key();
    let key = key.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--server-id", &customer.server_id], "no product"),
        (
            &["--server-id", "not-an-id", "--product-spec", "7:0:T:1:0"],
            "--server-id",
        ),
        (
            &[
                "--server-id",
                &customer.server_id,
                "--product-spec",
                "7:0:T:1:0",
                "--expires",
                "2020-01-01T00:00:00Z",
            ],
            "in the past",
        ),
        (
            &[
                "--server-id",
                &customer.server_id,
                "--product-spec",
                "7:0:T:1:0",
                "--license-key",
                "a/b",
            ],
            "license key",
        ),
    ];
    for (args, expected) in cases {
        let out = run_vendor(&[&["issue", "--key", key][..], args].concat()).await;
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "no half license on stdout");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let again = run_vendor(&["keygen", "--out-dir", vendor.dir.path().to_str().unwrap()]).await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("refusing to overwrite"),
        "{}",
        stderr(&again)
    );
}

#[tokio::test]
async fn clients_that_fill_the_user_limit_never_lock_out_the_administrator() {
    let vendor = Vendor::new().await;
    let customer = Customer::new().await;
    let file = vendor
        .issue(
            "users.lic",
            &customer.server_id,
            &["--product-spec", "7:0:Tool:5:0", "--max-users", "3"],
        )
        .await;
    customer.install(&vendor, &file).await;
    let server = customer.start(&vendor).await;
    let http = reqwest::Client::new();
    let open_as = async |principal: &str| {
        http.post(format!("http://{}/v1/sessions", server.license_addr))
            .json(
                &serde_json::json!({"host": "h", "user": {"realm": "AD", "principal": principal}}),
            )
            .send()
            .await
            .unwrap()
            .status()
    };
    // Three made-up users from an anonymous client fill the license.
    for principal in ["x1", "x2", "x3"] {
        assert_eq!(open_as(principal).await, 201);
    }
    assert_eq!(open_as("x4").await, 403);
    let password = customer.initial_password();
    let login = http
        .post(format!("http://{}/server/auth", server.api_addr))
        .json(&serde_json::json!({"principal": "admin", "secret": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the administrator logs in regardless");

    let users = |args: &'static [&'static str]| {
        let data_dir = customer.data_dir().to_owned();
        async move {
            let all = [&["users"], args, &["--data-dir", &data_dir][..]].concat();
            run(&all).await
        }
    };
    let out = users(&["list"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("AD  x2") && text.contains("3 licensed users") && !text.contains("admin"),
        "{text}"
    );
    let out = users(&["clear", "--realm", "AD", "--principal", "x2"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 licensed users remain"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(open_as("x4").await, 201, "a place is free again");
    let out = users(&["clear", "--realm", "AD", "--principal", "nobody"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a licensed user"),
        "{}",
        stderr(&out)
    );
    let out = users(&["clear", "--realm", "AD"]).await;
    assert_eq!(out.status.code(), Some(2), "--realm needs --principal");
    let out = users(&["clear"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cleared 3 licensed users"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = users(&["list"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("no licensed users"));
    // Both clears are in the ledger, with who did them.
    let out = run(&[
        "ledger",
        "export",
        "--format",
        "jsonl",
        "--data-dir",
        customer.data_dir(),
    ])
    .await;
    let export = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        export.matches("licensed_users_cleared").count(),
        2,
        "{export}"
    );
    assert!(export.contains("\"by\":\"cli:"), "{export}");
    assert!(server.terminate().await);
}
