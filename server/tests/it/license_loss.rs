//! `client run` when its license goes away: a force-release, a server that is gone. The command
//! must not run on unlicensed (unless asked to, with a warning), and a license that comes back
//! lets it carry on.

use std::{process::Output, time::Duration};

use serde_json::{Value, json};
use tokio::process::Child;

use crate::{
    binary::{ServerProcess, command, stderr},
    licensing::{Customer, Vendor, licensed},
};

/// Short timings, so that a loss shows within seconds: heartbeats every second, dropped after 2.
const QUICK: [&str; 4] = ["--session-timeout", "2", "--heartbeat-interval", "1"];

async fn one_seat() -> (Vendor, Customer, ServerProcess) {
    let (vendor, customer) = licensed(&["7:0:Tool:1:0"]).await;
    let server = customer.start_with(&vendor, &QUICK).await;
    (vendor, customer, server)
}

/// `client run` for product 7 with the `options` before `--`.
fn job(server: &ServerProcess, options: &[&str], run: &[&str]) -> Child {
    let base = [
        "client",
        "run",
        "--server",
        &server.license_addr,
        "--product-id",
        "7",
        "--major-version",
        "0",
        "--wait",
        "0",
    ];
    command(&[&base[..], options, &["--"], run].concat())
        .spawn()
        .unwrap()
}

/// The running session that holds a license, once there is one.
async fn licensed_session(server: &ServerProcess) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let data = server.data().await;
        if data["cartridges"][0]["statistic"]["runcount_in_use"] == 1
            && let Some(running) = data["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["status"] == "running")
        {
            return running["session_id"].as_u64().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no session got the license: {data}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status_of(data: &Value, session_id: u64) -> String {
    data["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == session_id)
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// An administrator releases `session_id` on the admin API.
async fn force_release(server: &ServerProcess, customer: &Customer, session_id: u64) {
    let token = server
        .admin_token("admin", &customer.initial_password())
        .await;
    let released = reqwest::Client::new()
        .delete(format!(
            "http://{}/server/manage/sessions/{session_id}",
            server.api_addr
        ))
        .header("X-Ak-Session-Id", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), 200);
}

/// Another job that queues for the seat (up to 60 s), so the released one goes to it.
async fn queue_for_the_seat(server: &ServerProcess) -> tokio::task::JoinHandle<u16> {
    let http = reqwest::Client::new();
    let base = format!("http://{}/v1/sessions", server.license_addr);
    let (id, token) = server.open_session(&json!({"host": "next-job"})).await;
    let request = http
        .post(format!("{base}/{id}/licenses"))
        .bearer_auth(&token)
        .json(&json!({"request_id": "r", "product_id": 7, "major_version": 0, "wait_s": 60}));
    let waiting = tokio::spawn(async move { request.send().await.unwrap().status().as_u16() });
    // Keep the waiting job alive while the test runs.
    let heartbeat = format!("{base}/{id}/heartbeat");
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = http.post(&heartbeat).bearer_auth(&token).send().await;
        }
    });
    waiting
}

async fn finished(child: Child, within: Duration) -> Output {
    tokio::time::timeout(within, child.wait_with_output())
        .await
        .expect("client run ends")
        .unwrap()
}

#[tokio::test]
async fn a_force_released_job_is_stopped_when_no_license_comes_back() {
    let (_vendor, customer, server) = one_seat().await;
    let client = job(
        &server,
        &["--grace", "2", "--kill-after", "1"],
        &["sleep", "600"],
    );
    let victim = licensed_session(&server).await;
    let next = queue_for_the_seat(&server).await;
    force_release(&server, &customer, victim).await;
    assert_eq!(next.await.unwrap(), 200, "the seat went to the next job");

    // One heartbeat to notice, the grace, SIGTERM: well within a minute, far from 600 s.
    let out = finished(client, Duration::from_secs(60)).await;
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(75), "{message}");
    assert!(
        message.contains("the license is lost")
            && message.contains("SESSION_ENDED")
            && message.contains("no license came back within 2 s")
            && message.contains("stopped because it has no license"),
        "{message}"
    );
    let data = server.data().await;
    assert_eq!(
        status_of(&data, victim),
        "dropped",
        "a released job never shows as finished"
    );
    assert_eq!(data["cartridges"][0]["statistic"]["runcount_in_use"], 1);
    assert!(server.terminate().await);
}

#[tokio::test]
async fn a_released_job_that_gets_a_license_again_carries_on() {
    let (_vendor, customer, server) = one_seat().await;
    let client = job(&server, &[], &["sh", "-c", "sleep 4; exit 3"]);
    let first = licensed_session(&server).await;
    force_release(&server, &customer, first).await;
    let out = finished(client, Duration::from_secs(60)).await;
    let message = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the command's own status: {message}"
    );
    assert!(message.contains("licensed again by"), "{message}");
    let data = server.data().await;
    assert_eq!(status_of(&data, first), "dropped");
    assert_eq!(
        status_of(&data, first + 1),
        "finished",
        "the second license was released at the end: {data}"
    );
    assert_eq!(data["cartridges"][0]["statistic"]["runcount_in_use"], 0);
    assert_eq!(
        data["cartridges"][0]["statistic"]["licenses"]["runcount"], 2,
        "two grants"
    );
    assert!(server.terminate().await);
}

#[tokio::test]
async fn when_the_server_is_gone_a_command_that_ignores_sigterm_is_killed() {
    let (_vendor, _customer, server) = one_seat().await;
    let stubborn = "trap '' TERM; while :; do sleep 0.2; done";
    let client = job(
        &server,
        &["--grace", "1", "--kill-after", "1"],
        &["sh", "-c", stubborn],
    );
    licensed_session(&server).await;
    server.kill9().await;
    // The session timeout (2 s), the grace (1 s), SIGTERM ignored, SIGKILL after 1 s.
    let out = finished(client, Duration::from_secs(60)).await;
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(75), "{message}");
    assert!(
        message.contains("has not answered a heartbeat for 2 s")
            && message.contains("no license came back within 1 s"),
        "{message}"
    );
}

#[tokio::test]
async fn on_license_loss_warn_lets_the_command_run_on_with_a_warning() {
    let (_vendor, customer, server) = one_seat().await;
    let client = job(
        &server,
        &["--on-license-loss", "warn", "--grace", "1"],
        &["sh", "-c", "sleep 5; exit 4"],
    );
    let victim = licensed_session(&server).await;
    let next = queue_for_the_seat(&server).await;
    force_release(&server, &customer, victim).await;
    assert_eq!(next.await.unwrap(), 200);
    let out = finished(client, Duration::from_secs(60)).await;
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{message}");
    assert!(
        message.contains("WARNING: the command runs on WITHOUT A LICENSE"),
        "{message}"
    );
    assert!(server.terminate().await);
}
