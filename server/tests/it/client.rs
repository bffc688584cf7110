//! `license-server client run`: exit codes, no license, failover, and release on a signal.

use std::time::Duration;

use tokio::process::Command;

use crate::{
    binary::{ServerProcess, command, stderr},
    licensing::{Customer, Vendor, licensed},
};

async fn licensed_server(spec: &str) -> (Vendor, Customer, ServerProcess) {
    let (vendor, customer) = licensed(&[spec]).await;
    let server = customer.start(&vendor).await;
    (vendor, customer, server)
}

fn client(servers: &[&str], product: &str, run: &[&str]) -> Command {
    let mut args = vec!["client", "run"];
    for server in servers {
        args.extend(["--server", server]);
    }
    args.extend([
        "--product-id",
        product,
        "--major-version",
        "0",
        "--wait",
        "0",
        "--",
    ]);
    args.extend(run);
    command(&args)
}

#[tokio::test]
async fn the_command_runs_licensed_and_its_exit_status_is_passed_on() {
    let (_vendor, _customer, server) = licensed_server("7:0:Tool:1:0").await;
    let out = client(
        &[&server.license_addr],
        "7",
        &["sh", "-c", "echo $LICENSE_SERVER_LICENSE_ID; exit 3"],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let license_id: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(license_id > 0, "the command sees its license");
    let data = server.data().await;
    assert_eq!(data["sessions"][0]["status"], "finished");
    assert_eq!(data["cartridges"][0]["statistic"]["runcount_in_use"], 0);
    assert_eq!(
        data["cartridges"][0]["statistic"]["licenses"]["runcount"],
        1
    );
    assert!(server.terminate().await);
}

#[tokio::test]
async fn without_a_license_it_says_why_and_exits_75_without_running_the_command() {
    let (_vendor, customer, server) = licensed_server("7:0:Tool:1:0").await;
    let marker = std::path::Path::new(customer.data_dir()).join("ran");
    let touch = format!("touch {}", marker.display());
    let out = client(&[&server.license_addr], "99", &["sh", "-c", &touch])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    let message = stderr(&out);
    assert!(
        message.contains("no license") && message.contains("UNKNOWN_PRODUCT"),
        "{message}"
    );
    assert!(!marker.exists(), "the command did not run");

    let nobody = "127.0.0.1:1";
    let out = client(&[nobody], "7", &["true"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(75));
    assert!(
        stderr(&out).contains("no license server answered"),
        "{}",
        stderr(&out)
    );
    assert!(server.terminate().await);
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_skipped_for_the_next() {
    let (_vendor, _customer, server) = licensed_server("7:0:Tool:1:0").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = closed.local_addr().unwrap().to_string();
    drop(closed);
    let out = client(&[&down, &server.license_addr], "7", &["true"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        server.data().await["cartridges"][0]["statistic"]["licenses"]["runcount"],
        1
    );
    assert!(server.terminate().await);
}

#[tokio::test]
async fn sigterm_stops_the_command_and_releases_the_license() {
    let (_vendor, _customer, server) = licensed_server("7:0:Tool:1:0").await;
    let mut child = client(&[&server.license_addr], "7", &["sleep", "30"])
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.data().await["cartridges"][0]["statistic"]["runcount_in_use"] != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client never got its license"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(143));
    let data = server.data().await;
    assert_eq!(
        data["cartridges"][0]["statistic"]["runcount_in_use"], 0,
        "released at once"
    );
    assert_eq!(data["sessions"][0]["status"], "finished");
    assert!(server.terminate().await);
}
