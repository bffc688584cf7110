//! Replacing a member of a failover network while it serves: a member lost for good, a new one
//! formed with `network join`, the list changed through the admin API of another member. The
//! network goes on granting throughout, the new member catches up, and the license bound to the
//! network's previous id counts through the grace until one for the new id is installed.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};

use crate::{
    binary::{run, start_server_on, stderr},
    faults::{Acknowledged, assert_acknowledged},
    network::{Cluster, SERVE},
    network_faults::{PRODUCTS, SEATS, cycles},
};

async fn admin_of(cluster: &Cluster, i: usize) -> String {
    let password =
        std::fs::read_to_string(Path::new(cluster.data_dir(i)).join("initial-admin-password"))
            .unwrap();
    cluster
        .member(i)
        .admin_token("admin", password.trim())
        .await
}

#[tokio::test]
async fn a_lost_member_is_replaced_while_the_network_serves() {
    // Snapshots every 20 entries: the log the newcomer missed is gone by the time it joins.
    let env = [("LICENSE_SERVER_DEV_RAFT_SNAPSHOT_EVERY", "20")];
    let mut cluster = Cluster::start(3, &PRODUCTS, &SERVE, &env).await;
    let first_id = cluster.network_id.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(cycles(cluster.servers(), w, stop.clone())))
        .collect();
    // The third member is lost for good (the other two elect a coordinator if it was theirs).
    cluster.kill(2).await;
    cluster.coordinator().await;
    let newcomer = tempfile::tempdir().unwrap();
    let dir = newcomer.path().to_str().unwrap();
    let token = run(&["network", "identity", "--data-dir", dir]).await;
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let list = vec![
        format!("127.0.0.1:{}={}", cluster.ports[0], cluster.tokens[0]),
        format!("127.0.0.1:{}={}", cluster.ports[1], cluster.tokens[1]),
        format!("127.0.0.1:{port}={token}"),
    ];
    let mut join = vec!["network", "join", "--data-dir", dir];
    for member in &list {
        join.extend(["--member", member]);
    }
    let joined = run(&join).await;
    assert!(joined.status.success(), "{}", stderr(&joined));
    let key = cluster.vendor.public_key();
    let mut serve = vec!["--vendor-public-key", key.as_str()];
    serve.extend(SERVE);
    let new_member = start_server_on(newcomer.path(), port, &serve, None, &env).await;

    // Enough history that the coordinator's log before its last snapshot is gone.
    let mut client = server::LicenseClient::new(cluster.servers()[..2].to_vec()).unwrap();
    for _ in 0..15 {
        crate::network::cycle(&mut client, 9).await.unwrap();
    }
    // An administrator of a member that may not coordinate changes the list.
    let admin = admin_of(&cluster, 1).await;
    let http = reqwest::Client::new();
    let changed = http
        .put(format!(
            "http://{}/server/manage/network/members",
            cluster.member(1).api_addr
        ))
        .header("X-Ak-Session-Id", &admin)
        .json(&json!({ "members": list }))
        .send()
        .await
        .unwrap();
    let status = changed.status();
    let view: Value = changed.json().await.unwrap();
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["members"].as_array().unwrap().len(), 3);
    let new_id = view["network_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, first_id, "another member, another network id");

    // The newcomer shows what the others show: three running members, the network's license
    // (bound to the id before, within its grace).
    let mut data = Value::Null;
    for _ in 0..200 {
        data = reqwest::get(format!("http://{}/status/data.json", new_member.api_addr))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let running = data["servers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "running")
            .count();
        if running == 3 && data["cartridges"].as_array().is_some_and(|c| c.len() == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        data["cartridges"].as_array().map(Vec::len),
        Some(3),
        "{data}"
    );
    assert_eq!(
        data["cartridges"][0]["locations"][0]["server_id"],
        first_id.as_str()
    );
    assert!(
        new_member
            .logged("caught up from the coordinator's snapshot of the ledger")
            .await
            .is_some(),
        "the newcomer did not join from a snapshot: {:?}",
        new_member.log().lock().unwrap()
    );
    // The list is rewritten on the members that stay.
    let written =
        std::fs::read_to_string(Path::new(cluster.data_dir(0)).join("network.toml")).unwrap();
    assert!(written.contains(&token) || written.contains(&format!("127.0.0.1:{port}")));

    // The network goes on without its first coordinator too: two of the three members left.
    let coordinator = cluster.coordinator().await;
    cluster.kill(coordinator).await;
    let other = 1 - coordinator;
    let mut client = server::LicenseClient::new(vec![
        cluster.servers()[other].clone(),
        format!("127.0.0.1:{port}"),
    ])
    .unwrap();
    let started = std::time::Instant::now();
    while crate::network::cycle(&mut client, 9).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no coordinator after the change"
        );
    }
    stop.store(true, Ordering::SeqCst);
    let mut seen = Acknowledged::default();
    for worker in workers {
        seen.extend(worker.await.unwrap());
    }
    assert!(seen.most_held_at_once() <= SEATS);
    // One chain: the newcomer and the other first member hold the same ledger.
    let ledger = crate::network::same_ledger(&[dir, cluster.data_dir(other)]).await;
    assert_acknowledged(&ledger, &seen);
    let changes: Vec<&Value> = ledger
        .iter()
        .filter(|e| e["event"]["kind"] == "network_changed")
        .collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0]["event"]["previous_network_id"],
        first_id.as_str()
    );
    assert_eq!(changes[0]["event"]["network_id"], new_id.as_str());
}
