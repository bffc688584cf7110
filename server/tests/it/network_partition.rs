//! A real network partition: three members, each in a network namespace of its own (`ip netns`),
//! joined by veth pairs to a bridge, the way three machines on one switch are. The coordinator's
//! link is cut and restored. Needs root (it says so and passes without it).

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;
use server::LicenseClient;

use crate::{
    faults::{Acknowledged, assert_acknowledged},
    network::{Cluster, SERVE, cycle},
    network_faults::{PRODUCTS, SEATS, cycles},
};

/// Three namespaces on a bridge, removed when dropped.
struct Switch {
    tag: String,
    subnet: String,
    members: usize,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

impl Switch {
    /// `members` namespaces `lsNNNN-i` at `10.77.K.i`, the test's own side at `10.77.K.254`;
    /// `None` where namespaces cannot be made (not root, no iproute2).
    fn build(members: usize) -> Option<Self> {
        let pid = std::process::id();
        let switch = Self {
            tag: format!("ls{}", pid % 10_000),
            subnet: format!("10.77.{}", pid % 250),
            members,
        };
        let bridge = format!("{}-br", switch.tag);
        if !ip(&["link", "add", &bridge, "type", "bridge"]) {
            return None;
        }
        let mut ok = ip(&[
            "addr",
            "add",
            &format!("{}.254/24", switch.subnet),
            "dev",
            &bridge,
        ]) && ip(&["link", "set", &bridge, "up"]);
        for i in 1..=members {
            let (ns, veth) = (switch.netns(i), switch.veth(i));
            ok = ok
                && ip(&["netns", "add", &ns])
                && ip(&[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ])
                && ip(&["link", "set", &veth, "master", &bridge])
                && ip(&["link", "set", &veth, "up"])
                && ip(&[
                    "netns",
                    "exec",
                    &ns,
                    "ip",
                    "addr",
                    "add",
                    &format!("{}/24", switch.host(i)),
                    "dev",
                    "eth0",
                ])
                && ip(&["netns", "exec", &ns, "ip", "link", "set", "eth0", "up"])
                && ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        ok.then_some(switch)
    }

    fn netns(&self, i: usize) -> String {
        format!("{}-{i}", self.tag)
    }

    fn veth(&self, i: usize) -> String {
        format!("{}-v{i}", self.tag)
    }

    fn host(&self, i: usize) -> String {
        format!("{}.{i}", self.subnet)
    }

    /// Cuts (`up` false) or restores member `i`'s link to the switch (its index from 0).
    fn link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        assert!(ip(&["link", "set", &self.veth(i + 1), state]));
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        for i in 1..=self.members {
            ip(&["netns", "del", &self.netns(i)]);
        }
        ip(&["link", "del", &format!("{}-br", self.tag)]);
    }
}

/// `curl` from inside member `i`'s namespace: the status and the body.
fn curl_inside(switch: &Switch, i: usize, args: &[&str]) -> (u16, String) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &switch.netns(i + 1),
            "curl",
            "-s",
            "-m",
            "10",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test]
async fn a_partitioned_coordinator_grants_nothing_and_the_majority_serves() {
    let Some(switch) = Switch::build(3) else {
        eprintln!("skipped: network namespaces need root and iproute2 (ip netns add failed)");
        return;
    };
    let hosts: Vec<String> = (1..=3).map(|i| switch.host(i)).collect();
    let netns: Vec<String> = (1..=3).map(|i| switch.netns(i)).collect();
    let vendor = crate::licensing::Vendor::new().await;
    let cluster = Cluster::form(
        vendor,
        hosts,
        vec![1400; 3],
        Some(netns),
        &PRODUCTS,
        &SERVE,
        &[],
    )
    .await;
    let old = cluster.coordinator().await;
    let majority: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let servers = cluster.servers();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|w| tokio::spawn(cycles(servers.clone(), w, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The coordinator's link cut: the majority elects another and serves.
    switch.link(old, false);
    let cut = Instant::now();
    let majority_servers: Vec<String> = majority.iter().map(|i| servers[*i].clone()).collect();
    let mut client = LicenseClient::new(majority_servers).unwrap();
    while cycle(&mut client, 9).await.is_err() {
        assert!(
            cut.elapsed() < Duration::from_secs(30),
            "the majority did not serve"
        );
    }
    let waited = cut.elapsed();
    // The old coordinator, asked from its side of the cut, grants nothing and says why.
    let (status, body) = curl_inside(
        &switch,
        old,
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"host": "cut-off"}"#,
            &format!("http://{}/v1/sessions", servers[old]),
        ],
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("NO_QUORUM"), "{body}");
    let ready = curl_inside(
        &switch,
        old,
        &[&format!("http://{}/ready", cluster.member(old).api_addr)],
    );
    assert_eq!(ready.0, 503, "{}", ready.1);
    let data: Value = serde_json::from_str(
        &curl_inside(
            &switch,
            old,
            &[&format!(
                "http://{}/status/data.json",
                cluster.member(old).api_addr
            )],
        )
        .1,
    )
    .unwrap();
    assert_eq!(
        data["servers"].as_array().unwrap().len(),
        3,
        "it still serves its page: {data}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The link restored: the old coordinator follows the new one, and all hold one ledger.
    switch.link(old, true);
    let new = cluster.coordinator().await;
    assert_ne!(new, old);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let mut seen = Acknowledged::default();
    for worker in workers {
        seen.extend(worker.await.unwrap());
    }
    let most = seen.most_held_at_once();
    assert!(most <= SEATS, "{most} seats held at once, of {SEATS}");
    let ledger = cluster.same_ledger(&[0, 1, 2]).await;
    assert_acknowledged(&ledger, &seen);
    eprintln!(
        "partition: the majority served {waited:?} after the coordinator's link was cut; {} grants, \
         at most {most} of {SEATS} seats",
        seen.grants.len()
    );
}
