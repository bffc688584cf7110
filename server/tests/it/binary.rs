//! The `license-server` executable itself: messages, exit codes, signals.

use std::{
    net::TcpListener,
    path::Path,
    process::{Output, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const BIN: &str = env!("CARGO_BIN_EXE_license-server");
/// The vendor's tools, a program of their own.
const VENDOR_BIN: &str = env!("CARGO_BIN_EXE_license-vendor");

pub fn command(args: &[&str]) -> Command {
    command_of(BIN, args)
}

/// `license-vendor ARGS`.
pub fn vendor_command(args: &[&str]) -> Command {
    command_of(VENDOR_BIN, args)
}

pub fn command_of(binary: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("LICENSE_SERVER_DATA_DIR")
        .env_remove("LICENSE_SERVER_VENDOR_PUBLIC_KEY")
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// `GET url` with one header: the answer's JSON.
pub async fn get_json(url: &str, header: (&str, &str)) -> serde_json::Value {
    let text = get_text(url, header).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `GET url` with one header: the answer's body.
pub async fn get_text(url: &str, (name, value): (&str, &str)) -> String {
    reqwest::Client::new()
        .get(url)
        .header(name, value)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn run(args: &[&str]) -> Output {
    finish(command(args)).await
}

/// `license-vendor ARGS`, to completion.
pub async fn run_vendor(args: &[&str]) -> Output {
    finish(vendor_command(args)).await
}

pub async fn finish(mut command: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the program finishes")
        .unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A server process started with JSON logs, and the addresses its "ready" line announced.
pub struct ServerProcess {
    child: Child,
    pub api_addr: String,
    pub license_addr: String,
    /// The log events before the "ready" line.
    pub startup_log: Vec<serde_json::Value>,
    /// Every line the server wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

/// `license-server serve` on free ports of 127.0.0.1, with `extra` arguments.
pub async fn start_server(data_dir: &Path, extra: &[&str]) -> ServerProcess {
    start_server_logging(data_dir, extra, None).await
}

/// `license-server serve` with its license port on `port` of 127.0.0.1 (the API port free), with
/// `extra` arguments, `RUST_LOG` `filter` and more environment variables.
pub async fn start_server_on(
    data_dir: &Path,
    port: u16,
    extra: &[&str],
    filter: Option<&str>,
    env: &[(&str, &str)],
) -> ServerProcess {
    let port = port.to_string();
    let args = [&["--port", &port, "--api-port", "0"][..], extra].concat();
    let mut command = command_of(BIN, &[]);
    command.envs(env.iter().copied());
    start(command, data_dir, &args, filter).await
}

/// [`start_server`] with `RUST_LOG` set to `filter` (e.g. "trace").
pub async fn start_server_logging(
    data_dir: &Path,
    extra: &[&str],
    filter: Option<&str>,
) -> ServerProcess {
    start(command_of(BIN, &[]), data_dir, extra, filter).await
}

/// [`start_server`] with more environment variables, e.g. a development build's switches.
pub async fn start_server_with_env(
    data_dir: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> ServerProcess {
    let mut command = command_of(BIN, &[]);
    command.envs(env.iter().copied());
    start(command, data_dir, extra, None).await
}

/// `license-server serve` inside the network namespace `netns` (`ip netns exec`), with `extra`
/// arguments (`--bind` and `--port` among them).
pub async fn start_server_in_netns(netns: &str, data_dir: &Path, extra: &[&str]) -> ServerProcess {
    start(
        command_of("ip", &["netns", "exec", netns, BIN]),
        data_dir,
        extra,
        None,
    )
    .await
}

/// [`start_server`] of another build of the server, e.g. a sealed one.
pub async fn start_server_of(binary: &str, data_dir: &Path, extra: &[&str]) -> ServerProcess {
    start(command_of(binary, &[]), data_dir, extra, None).await
}

async fn start(
    mut command: Command,
    data_dir: &Path,
    extra: &[&str],
    filter: Option<&str>,
) -> ServerProcess {
    let base = [
        "--log-format",
        "json",
        "serve",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    command.args(base);
    if !extra.contains(&"--bind") {
        command.args(["--bind", "127.0.0.1"]);
    }
    if !extra.contains(&"--port") {
        command.args(["--port", "0"]);
    }
    command.args(extra);
    if let Some(filter) = filter {
        command.env("RUST_LOG", filter);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut startup_log = Vec::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.lock().unwrap().push(line.clone());
            let event: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            if event["api_addr"].is_string() {
                return event;
            }
            startup_log.push(event);
        }
        panic!("the server exited before it was ready: {startup_log:?}");
    })
    .await
    .expect("the server announces that it is ready");
    // Keep draining stderr so the server never blocks on a full pipe.
    let kept = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().unwrap().push(line);
        }
    });
    ServerProcess {
        child,
        api_addr: ready["api_addr"].as_str().unwrap().to_owned(),
        license_addr: ready["license_addr"].as_str().unwrap().to_owned(),
        startup_log,
        log,
    }
}

impl ServerProcess {
    /// A handle on the log lines, which stays readable after the process is stopped (the last
    /// lines arrive once its stderr closes).
    pub fn log(&self) -> Arc<Mutex<Vec<String>>> {
        Arc::clone(&self.log)
    }

    /// `GET /status/data.json` of the default pool.
    pub async fn data(&self) -> serde_json::Value {
        reqwest::get(format!("http://{}/status/data.json", self.api_addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn server_id(&self) -> String {
        let data = self.data().await;
        data["servers"][0]["server_id"].as_str().unwrap().to_owned()
    }

    /// `POST /v1/sessions` with `body`, as a client would: the session id and its token.
    pub async fn open_session(&self, body: &serde_json::Value) -> (u64, String) {
        let opened: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{}/v1/sessions", self.license_addr))
            .json(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            opened["session_id"].as_u64().unwrap(),
            opened["session_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Logs `principal` in on the admin API; the token.
    pub async fn admin_token(&self, principal: &str, secret: &str) -> String {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{}/server/auth", self.api_addr))
            .json(&serde_json::json!({"principal": principal, "secret": secret}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["token"]
            .as_str()
            .unwrap_or_else(|| panic!("not logged in: {answer}"))
            .to_owned()
    }

    /// `GET path` on the admin API with the login `token`: the answer's JSON.
    pub async fn admin_get(&self, token: &str, path: &str) -> serde_json::Value {
        get_json(
            &format!("http://{}{path}", self.api_addr),
            ("X-Ak-Session-Id", token),
        )
        .await
    }

    /// The first log event whose message is `message`, waiting up to 10 s for it to be logged.
    pub async fn logged(&self, message: &str) -> Option<serde_json::Value> {
        for _ in 0..100 {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|e| e["message"] == message);
            if found.is_some() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Polls `/ready` on the API port until it answers 503, up to 10 s: that answer's body (empty
    /// if it stayed ready).
    pub async fn unready(&self) -> String {
        let ready = format!("http://{}/ready", self.api_addr);
        for _ in 0..100 {
            let answer = reqwest::get(&ready).await.unwrap();
            if answer.status() == 503 {
                return answer.text().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        String::new()
    }

    /// The server's highest resident memory so far (`VmHWM`), in bytes; Linux only.
    pub fn peak_memory(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id().unwrap())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// SIGKILL: a crash, as far as the server can tell.
    pub async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM, as a service manager stops it; returns whether it exited successfully.
    pub async fn terminate(mut self) -> bool {
        let pid = self.child.id().unwrap().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server stops after SIGTERM")
            .unwrap();
        status.success()
    }
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_the_id_survives_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_server(dir.path(), &[]).await;
    let id = first.server_id().await;
    assert!(first.terminate().await, "exit status 0 after SIGTERM");

    let printed = run(&["server-id", "--data-dir", dir.path().to_str().unwrap()]).await;
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap(),
        format!("{id}\n")
    );

    let second = start_server(dir.path(), &[]).await;
    assert_eq!(second.server_id().await, id);
    assert!(second.terminate().await);
}

#[tokio::test]
async fn server_id_reads_the_data_dir_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let by_flag = run(&["server-id", "--data-dir", dir.path().to_str().unwrap()]).await;
    let by_env = command(&["server-id"])
        .env("LICENSE_SERVER_DATA_DIR", dir.path())
        .output()
        .await
        .unwrap();
    assert!(by_env.status.success(), "{}", stderr(&by_env));
    assert_eq!(by_env.stdout, by_flag.stdout);
    assert!(by_flag.stdout.len() > 32);
}

/// A port on 127.0.0.1 that stays taken while the listener lives.
fn occupied_port() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    (listener, port)
}

/// Runs `license-server serve --bind 127.0.0.1 ARGS`, which must fail; returns what it said.
async fn serve_fails(args: &[&str]) -> String {
    let output = run(&[&["serve", "--bind", "127.0.0.1"], args].concat()).await;
    assert!(!output.status.success(), "started with {args:?}");
    stderr(&output)
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let (_taken, port) = occupied_port();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();

    let message = serve_fails(&["--port", &port, "--api-port", "0", "--data-dir", data_dir]).await;
    let expected = format!("cannot listen on 127.0.0.1:{port} for the license port");
    assert!(message.contains(&expected), "{message}");
    assert!(
        message.contains("already in use") && message.contains("--port"),
        "{message}"
    );

    let message = serve_fails(&["--port", "0", "--api-port", &port, "--data-dir", data_dir]).await;
    assert!(
        message.contains("for the API port") && message.contains("--api-port"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unusable_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "a file, not a directory").unwrap();
    let message = serve_fails(&["--port", "0", "--data-dir", file.to_str().unwrap()]).await;
    assert!(message.contains("is not a directory"), "{message}");
    assert!(message.contains(file.to_str().unwrap()), "{message}");
}

#[tokio::test]
async fn with_json_logs_a_failure_is_a_json_log_line_too() {
    let (_taken, port) = occupied_port();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let text = serve_fails(&[
        "--log-format",
        "json",
        "--port",
        &port,
        "--data-dir",
        data_dir,
    ])
    .await;
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let failure = events.last().unwrap();
    assert_eq!(failure["level"], "ERROR", "{text}");
    assert!(
        failure["error"]
            .as_str()
            .unwrap()
            .contains("already in use"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_arguments_are_refused_with_usage() {
    let output = run(&["serve", "--port", "99999"]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--port"), "{}", stderr(&output));
}

#[tokio::test]
async fn a_config_file_sets_serve_options_under_the_environment_and_an_unknown_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("license-server.toml");
    std::fs::write(
        &config,
        "# as /etc/license-server/license-server.toml\nserial-number = \"from-file\"\n\
         session_timeout = 60\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let config_arg = config.to_str().unwrap();
    let server = start_server(&data, &["--config", config_arg]).await;
    assert_eq!(
        server.data().await["servers"][0]["serial_number"],
        "from-file"
    );
    assert!(server.terminate().await);
    let server = start_server_with_env(
        &data,
        &["--config", config_arg],
        &[("LICENSE_SERVER_SERIAL_NUMBER", "from-env")],
    )
    .await;
    assert_eq!(
        server.data().await["servers"][0]["serial_number"],
        "from-env"
    );
    assert!(server.terminate().await);

    std::fs::write(&config, "sesion-timeout = 60\n").unwrap();
    let output = run(&["serve", "--config", config_arg]).await;
    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    assert!(
        said.contains(config_arg) && said.contains("unknown key `sesion-timeout`"),
        "{said}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_open_files_limit_is_raised_to_the_hard_limit_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    // A soft limit of 256, as a careless service manager might leave it.
    let mut low = Command::new("sh");
    low.args(["-c", "ulimit -Sn 256 && exec \"$@\"", "sh", BIN])
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = start(low, dir.path(), &[], None).await;
    let hard = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let logged = server
        .startup_log
        .iter()
        .find(|e| e["message"] == "open-files limit")
        .unwrap_or_else(|| panic!("{:?}", server.startup_log));
    assert_eq!(logged["open_files"], hard.trim(), "raised from 256");
    assert!(server.terminate().await);
}
