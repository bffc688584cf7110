//! The member's storage against openraft's own storage test suite: the log (append, truncate,
//! purge, vote, committed), the state machine (apply, membership) and snapshot transfer.

use openraft::{StorageError, testing::StoreBuilder};
use tempfile::TempDir;

use super::{log_store::LogStore, state_machine::StateMachine, types::TypeConfig};
use crate::store::Store;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(|e| super::types::write_error(&e))?;
        let store = Store::open(&dir.path().join("license-server.db"))
            .await
            .map_err(|e| super::types::write_error(&e))?;
        Ok((dir, LogStore::new(store.clone()), StateMachine::new(store)))
    }
}

#[test]
fn the_members_store_passes_openrafts_storage_suite() {
    openraft::testing::Suite::test_all(Builder).unwrap();
}

/// An in-process network between members: each call goes straight to the target's `Raft`, and a
/// member taken off the router is unreachable, as a crashed server is.
mod router {
    use std::{
        collections::HashMap,
        sync::{Arc, Mutex},
    };

    use openraft::{
        RaftNetwork, RaftNetworkFactory,
        error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable},
        network::RPCOption,
        raft::{
            AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
            InstallSnapshotResponse, VoteRequest, VoteResponse,
        },
    };

    use super::super::types::{Member, NodeId, TypeConfig};

    pub type Raft = openraft::Raft<TypeConfig>;

    #[derive(Clone, Default)]
    pub struct Router {
        pub members: Arc<Mutex<HashMap<NodeId, Raft>>>,
    }

    pub struct Connection {
        router: Router,
        target: NodeId,
    }

    impl Connection {
        fn raft<E: std::error::Error>(&self) -> Result<Raft, RPCError<NodeId, Member, E>> {
            self.router
                .members
                .lock()
                .unwrap()
                .get(&self.target)
                .cloned()
                .ok_or_else(|| {
                    RPCError::Unreachable(Unreachable::new(&std::io::Error::other("down")))
                })
        }
    }

    impl RaftNetworkFactory<TypeConfig> for Router {
        type Network = Connection;

        async fn new_client(&mut self, target: NodeId, _node: &Member) -> Connection {
            Connection {
                router: self.clone(),
                target,
            }
        }
    }

    fn remote<E: std::error::Error>(
        target: NodeId,
        e: RaftError<NodeId, E>,
    ) -> RPCError<NodeId, Member, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new(target, e))
    }

    impl RaftNetwork<TypeConfig> for Connection {
        async fn append_entries(
            &mut self,
            rpc: AppendEntriesRequest<TypeConfig>,
            _option: RPCOption,
        ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>>
        {
            let raft = self.raft()?;
            raft.append_entries(rpc)
                .await
                .map_err(|e| remote(self.target, e))
        }

        async fn install_snapshot(
            &mut self,
            rpc: InstallSnapshotRequest<TypeConfig>,
            _option: RPCOption,
        ) -> Result<
            InstallSnapshotResponse<NodeId>,
            RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
        > {
            let raft = self.raft()?;
            raft.install_snapshot(rpc)
                .await
                .map_err(|e| remote(self.target, e))
        }

        async fn vote(
            &mut self,
            rpc: VoteRequest<NodeId>,
            _option: RPCOption,
        ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
            let raft = self.raft()?;
            raft.vote(rpc).await.map_err(|e| remote(self.target, e))
        }
    }
}

mod network {
    use std::{collections::BTreeMap, sync::Arc, time::Duration};

    use super::{
        super::{
            testing::{chain, replicate, sessions},
            types::{Member, NodeId},
        },
        router::{Raft, Router},
    };
    use time::OffsetDateTime;

    use crate::{
        failover::{log_store::LogStore, proposer, state_machine::StateMachine},
        ledger::{LedgerError, Writer},
        store::Store,
    };

    const WAIT: Option<Duration> = Some(Duration::from_secs(10));

    fn config() -> Arc<openraft::Config> {
        Arc::new(
            openraft::Config {
                heartbeat_interval: 50,
                election_timeout_min: 200,
                election_timeout_max: 400,
                // A member that comes back after 20 entries catches up from a snapshot.
                snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(20),
                max_in_snapshot_log_to_keep: 0,
                purge_batch_size: 1,
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
    }

    async fn start(router: &Router, id: NodeId, store: &Store) -> Raft {
        let raft = Raft::new(
            id,
            config(),
            router.clone(),
            LogStore::new(store.clone()),
            StateMachine::new(store.clone()),
        )
        .await
        .unwrap();
        router.members.lock().unwrap().insert(id, raft.clone());
        raft
    }

    async fn leader(rafts: &BTreeMap<NodeId, Raft>) -> NodeId {
        for _ in 0..200 {
            for raft in rafts.values() {
                if let Some(leader) = raft.metrics().borrow().current_leader
                    && rafts.contains_key(&leader)
                {
                    return leader;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader was elected");
    }

    #[tokio::test]
    async fn three_members_hold_one_chain_through_the_loss_and_return_of_the_coordinator() {
        let router = Router::default();
        let (_dirs, stores, mut rafts) = three(&router).await;

        // Ten proposals of five events: 50 ledger entries on every member, the same chain.
        let first = leader(&rafts).await;
        replicate(
            &rafts[&first],
            rafts.values(),
            (0..10).map(|r| sessions(r * 5, 5)),
        )
        .await;
        let index = rafts[&first].metrics().borrow().last_applied.unwrap().index;
        let left_at = index;
        let reference = chain(&stores[&first]).await;
        assert_eq!(reference.len(), 50);
        assert_eq!(reference.last().unwrap().0, 50);
        for store in stores.values() {
            assert_eq!(chain(store).await, reference);
        }

        // The coordinator goes down: the two others elect one and go on.
        let gone = rafts.remove(&first).unwrap();
        router.members.lock().unwrap().remove(&first);
        gone.shutdown().await.unwrap();
        let second = leader(&rafts).await;
        assert_ne!(second, first);
        replicate(
            &rafts[&second],
            rafts.values(),
            (10..40).map(|r| sessions(r * 5, 5)),
        )
        .await;
        let index = rafts[&second]
            .metrics()
            .borrow()
            .last_applied
            .unwrap()
            .index;
        let reference = chain(&stores[&second]).await;
        assert_eq!(reference.len(), 200);
        for id in rafts.keys() {
            assert_eq!(chain(&stores[id]).await, reference);
        }

        // The coordinator snapshotted and purged its log past where the first one left, so that
        // one comes back (on its own store) to a log that no longer has what it lacks: it
        // catches up from the snapshot, to the same chain.
        rafts[&second]
            .wait(WAIT)
            .metrics(
                |m| m.purged.is_some_and(|p| p.index > left_at),
                "log purged past the member that left",
            )
            .await
            .unwrap();
        rafts.insert(first, start(&router, first, &stores[&first]).await);
        rafts[&first]
            .wait(WAIT)
            .applied_index_at_least(Some(index), "caught up")
            .await
            .unwrap();
        assert_eq!(chain(&stores[&first]).await, reference);
        for raft in rafts.values() {
            raft.shutdown().await.unwrap();
        }
    }

    /// Three members on the router, initialised; their stores (kept alive) and Rafts.
    async fn three(
        router: &Router,
    ) -> (
        Vec<tempfile::TempDir>,
        BTreeMap<NodeId, Store>,
        BTreeMap<NodeId, Raft>,
    ) {
        let (mut dirs, mut stores, mut rafts) = (Vec::new(), BTreeMap::new(), BTreeMap::new());
        for id in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("license-server.db"))
                .await
                .unwrap();
            rafts.insert(id, start(router, id, &store).await);
            stores.insert(id, store);
            dirs.push(dir);
        }
        let members: BTreeMap<NodeId, Member> = (1..=3)
            .map(|id| {
                (
                    id,
                    Member {
                        addr: format!("member-{id}"),
                        ..Member::default()
                    },
                )
            })
            .collect();
        rafts[&1].initialize(members).await.unwrap();
        (dirs, stores, rafts)
    }

    #[tokio::test]
    async fn the_proposer_batches_concurrent_events_into_few_entries_each_with_its_own_seq() {
        let router = Router::default();
        let (_dirs, stores, rafts) = three(&router).await;
        let coordinator = leader(&rafts).await;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let trouble = std::sync::Arc::new(tokio::sync::Notify::new());
        let (writer, queue) = Writer::channel(stores[&coordinator].clone());
        let task = tokio::spawn(proposer::run(
            rafts[&coordinator].clone(),
            queue,
            coordinator,
            trouble.clone(),
            shutdown.clone(),
        ));
        let before = rafts[&coordinator]
            .metrics()
            .borrow()
            .last_applied
            .unwrap()
            .index;
        const TASKS: u64 = 64;
        const EACH: u64 = 20;
        let jobs: Vec<_> = (0..TASKS)
            .map(|t| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let commits: Vec<_> = (0..EACH)
                        .map(|i| {
                            writer.append(
                                OffsetDateTime::now_utc(),
                                sessions(t * EACH + i, 1).events.remove(0).event,
                            )
                        })
                        .collect();
                    let mut seqs = Vec::new();
                    for commit in commits {
                        seqs.push(commit.durable().await.unwrap());
                    }
                    seqs
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for job in jobs {
            seqs.extend(job.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=TASKS * EACH).collect::<Vec<_>>());
        let entries = rafts[&coordinator]
            .metrics()
            .borrow()
            .last_applied
            .unwrap()
            .index
            - before;
        assert!(
            entries < TASKS * EACH / 4,
            "{} events took {entries} Raft entries",
            TASKS * EACH
        );
        replicate(&rafts[&coordinator], rafts.values(), []).await;
        let reference = chain(&stores[&coordinator]).await;
        assert_eq!(reference.len() as u64, TASKS * EACH);
        for store in stores.values() {
            assert_eq!(chain(store).await, reference);
        }

        // A member that is not the coordinator refuses, naming the coordinator, and takes no
        // change until its engine rebuilt (a new generation).
        let follower = *rafts.keys().find(|id| **id != coordinator).unwrap();
        let (elsewhere, queue) = Writer::channel(stores[&follower].clone());
        let other_task = tokio::spawn(proposer::run(
            rafts[&follower].clone(),
            queue,
            follower,
            trouble.clone(),
            shutdown.clone(),
        ));
        let refused = elsewhere
            .append(
                OffsetDateTime::now_utc(),
                sessions(0, 1).events.remove(0).event,
            )
            .durable()
            .await;
        assert!(
            matches!(&refused, Err(LedgerError::NoQuorum(why)) if why.contains(&format!("member {coordinator} is"))),
            "{refused:?}"
        );
        assert!(elsewhere.has_failed());
        elsewhere.accept();
        assert!(elsewhere.has_failed(), "taken again before a rebuild");
        elsewhere.new_generation();
        elsewhere.accept();
        assert!(!elsewhere.has_failed());
        shutdown.cancel();
        task.await.unwrap();
        other_task.await.unwrap();
        for raft in rafts.values() {
            raft.shutdown().await.unwrap();
        }
    }
}
