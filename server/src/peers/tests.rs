//! Three members over real HTTP on 127.0.0.1: they elect a coordinator and replicate through the
//! signed endpoints, and a stranger's call, or a member's call with an edited body, is refused.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use ed25519_dalek::SigningKey;
use time::OffsetDateTime;
use tokio::net::TcpListener;

use super::raft::{PeerState, routes};
use crate::{
    failover::{
        calls::{PeerNetwork, Peers, VOTE},
        envelope::{self, Keys, MEMBER, SIGNATURE, TIME, Trust},
        log_store::LogStore,
        state_machine::StateMachine,
        testing::{Raft, chain, replicate, sessions},
        types::{Member, NodeId},
    },
    store::Store,
};

fn key(id: NodeId) -> SigningKey {
    SigningKey::from_bytes(&[u8::try_from(id).unwrap(); 32])
}

#[tokio::test]
async fn members_replicate_over_signed_calls_and_strangers_are_refused() {
    let keys = Keys((1..=3).map(|id| (id, key(id).verifying_key())).collect());
    let mut listeners = BTreeMap::new();
    let mut members = BTreeMap::new();
    for id in 1..=3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        members.insert(
            id,
            Member {
                addr: listener.local_addr().unwrap().to_string(),
                ..Member::default()
            },
        );
        listeners.insert(id, listener);
    }
    let config = Arc::new(
        openraft::Config {
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    );
    let mut dirs = Vec::new();
    let mut stores = BTreeMap::new();
    let mut rafts: BTreeMap<NodeId, Raft> = BTreeMap::new();
    for (id, listener) in listeners {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("license-server.db"))
            .await
            .unwrap();
        let peers = Arc::new(Peers::new(id, key(id), &keys, reqwest::Client::new()));
        let raft = Raft::new(
            id,
            Arc::clone(&config),
            PeerNetwork(Arc::clone(&peers)),
            LogStore::new(store.clone()),
            StateMachine::new(store.clone()),
        )
        .await
        .unwrap();
        let app = routes(PeerState {
            raft: raft.clone(),
            peers,
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        rafts.insert(id, raft);
        stores.insert(id, store);
        dirs.push(dir);
    }
    rafts[&1].initialize(members.clone()).await.unwrap();
    let leader = rafts[&1]
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.current_leader.is_some(), "a coordinator")
        .await
        .unwrap()
        .current_leader
        .unwrap();
    replicate(
        &rafts[&leader],
        rafts.values(),
        (0..5).map(|r| sessions(r * 4, 4)),
    )
    .await;
    let mut chains = Vec::new();
    for store in stores.values() {
        chains.push(chain(store).await);
    }
    assert_eq!(chains[0].len(), 20);
    assert!(chains.iter().all(|c| *c == chains[0]));

    // A stranger's vote, and a member's vote with its body changed after signing.
    let http = reqwest::Client::new();
    let url = format!("http://{}{VOTE}", members[&1].addr);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let body =
        br#"{"vote":{"leader_id":{"term":99,"node_id":9},"committed":false},"last_log_id":null}"#;
    let send = |signed: envelope::Signed, body: &'static [u8]| {
        http.post(&url)
            .header(MEMBER, signed.member.to_string())
            .header(TIME, signed.time.to_string())
            .header(SIGNATURE, signed.signature)
            .body(body)
            .send()
    };
    // The stranger pins member 1's key as its own list says; member 1 pins no key for it.
    let stranger_trust = Trust::new(9, &key(9), &keys);
    let stranger = send(stranger_trust.sign_call(1, VOTE, now, body).unwrap(), body)
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    let text = stranger.text().await.unwrap();
    assert!(
        text.contains("MEMBER_REFUSED") && text.contains("member 9 is not in this network"),
        "{text}"
    );
    let member_two = Trust::new(2, &key(2), &keys);
    let edited = send(member_two.sign_call(1, VOTE, now, b"{}").unwrap(), body)
        .await
        .unwrap();
    assert_eq!(edited.status(), 401);
    assert!(
        edited
            .text()
            .await
            .unwrap()
            .contains("not valid for member 2"),
    );
    // Neither changed the coordinator's term.
    let term = rafts[&1].metrics().borrow().current_term;
    assert!(term < 99, "term {term}");
    for raft in rafts.values() {
        raft.shutdown().await.unwrap();
    }
}
