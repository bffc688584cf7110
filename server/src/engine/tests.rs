//! The engine against a reference model: random sequences of opens, requests, releases,
//! heartbeats, closes and time passing, with the model predicting every answer and every
//! statistic, with snapshots taken in between. Then the ledger is replayed into a new engine
//! (from the newest snapshot), which must agree; and the state rebuilt from that snapshot must be
//! the state rebuilt from genesis.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use models::{
    License, LicenseType, OpenSession, ProductRule, RequestLicense, RequestType, Rules,
    SessionStatus,
};
use proptest::prelude::*;
use time::OffsetDateTime;

use super::{
    Clock, Engine, EngineConfig, EngineError,
    snapshot::{self, Body},
    state::{State, Stats},
};
use crate::{
    app::{App, AppConfig, AppState, LedgerTask, SERVER_KEY_FILE},
    ledger,
    licensing::{
        file as license_file,
        keys::{KeyPair, TrustedKeys},
    },
    sys::data_dir::DataDir,
};

const RUNCOUNT: u32 = 2;
const PREPAID: i64 = 5;
const TIMEOUT_S: i64 = 30;

#[derive(Debug, Clone)]
enum Op {
    Open,
    Request {
        session: usize,
        request: u8,
        product: u32,
    },
    Release {
        session: usize,
        nth: usize,
    },
    Heartbeat {
        session: usize,
    },
    Close {
        session: usize,
    },
    /// Someone without the session's token (none, or another session's) tries to heartbeat,
    /// release and close it; everything is refused and nothing changes.
    Intrude {
        session: usize,
        token_of: usize,
    },
    Advance {
        secs: u64,
    },
    /// A snapshot of the state, as the server takes them while serving.
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Open),
        6 => (0..6usize, 0..4u8, prop_oneof![Just(7u32), Just(9u32)])
            .prop_map(|(session, request, product)| Op::Request { session, request, product }),
        4 => (0..6usize, 0..4usize).prop_map(|(session, nth)| Op::Release { session, nth }),
        2 => (0..6usize).prop_map(|session| Op::Heartbeat { session }),
        1 => (0..6usize).prop_map(|session| Op::Close { session }),
        1 => (0..6usize, 0..6usize).prop_map(|(session, token_of)| Op::Intrude { session, token_of }),
        3 => prop_oneof![0..3u64, 10..40u64].prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Snapshot),
    ]
}

#[derive(Debug, Default)]
struct MSession {
    id: u64,
    token: String,
    running: bool,
    last_hb: i64,
    held: Vec<u64>,
    granted: Vec<u64>,
    requests: HashMap<u8, u64>,
}

#[derive(Debug)]
struct MGrant {
    product: u32,
    credits: bool,
    at: i64,
    released: Option<u64>,
}

#[derive(Debug, Default)]
struct Model {
    t: i64,
    sessions: Vec<MSession>,
    grants: HashMap<u64, MGrant>,
    stats: HashMap<u32, Stats>,
}

impl Model {
    fn charge(&mut self, license_id: u64, until: i64) -> u64 {
        let grant = self.grants.get_mut(&license_id).unwrap();
        if let Some(credits) = grant.released {
            return credits;
        }
        let credits = if grant.credits {
            u64::try_from((until - grant.at).max(1)).unwrap()
        } else {
            0
        };
        grant.released = Some(credits);
        let stats = self.stats.entry(grant.product).or_default();
        if grant.credits {
            stats.used_credits += i64::try_from(credits).unwrap();
        } else {
            stats.runcount_in_use -= 1;
        }
        for s in &mut self.sessions {
            s.held.retain(|id| *id != license_id);
        }
        credits
    }

    fn end(&mut self, index: usize, until: i64, dropped: bool) {
        let held = self.sessions[index].held.clone();
        let mut products = Vec::new();
        for id in held {
            let product = self.grants[&id].product;
            if !products.contains(&product) {
                products.push(product);
            }
            self.charge(id, until.max(self.grants[&id].at));
        }
        if dropped {
            for product in products {
                self.stats.entry(product).or_default().sessions_dropped += 1;
            }
        }
        self.sessions[index].running = false;
    }
}

/// A data directory with one license (product 7: runcount and prepaid credits; product 9:
/// postpay), and the app built on it the way `serve` builds it.
struct Rig {
    dir: tempfile::TempDir,
    config: AppConfig,
}

async fn rig(clock: Clock) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let mut trusted = TrustedKeys::default();
    trusted.add(key.public_key());
    let config = AppConfig {
        trusted,
        engine: EngineConfig {
            timeout: Duration::from_secs(TIMEOUT_S as u64),
            clock: clock.clone(),
            ..EngineConfig::default()
        },
        serial_number: String::new(),
        bind: IpAddr::from([127, 0, 0, 1]),
        license_port: 0,
        admin_idle_timeout: Duration::from_secs(60),
        vendor_url: None,
        vendor_ca: None,
    };
    let rig = Rig { dir, config };
    let (app, _) = rig.open().await;
    let product = |product_id, runcount, credits, postpay| ProductRule {
        product_id,
        major_version: 0,
        product: format!("P{product_id}"),
        runcount,
        credits,
        postpay,
    };
    let license = License {
        key: "K".into(),
        server_id: app.identity.server_id.to_string(),
        rules: Rules {
            serial_number: 1,
            issued: clock.now() - time::Duration::hours(1),
            expires: None,
            max_users: None,
            products: vec![
                product(7, RUNCOUNT, PREPAID as u64, false),
                product(9, 0, 0, true),
            ],
        },
    };
    let file = license_file::sign(&license, &key).unwrap();
    app.inventory
        .install(file.into_bytes(), None)
        .await
        .unwrap();
    rig
}

impl Rig {
    async fn open(&self) -> (AppState, LedgerTask) {
        let data_dir = DataDir::open(self.dir.path()).unwrap();
        App::open(&data_dir, self.config.clone()).await.unwrap()
    }

    /// A new engine on the data directory: the ledger replayed.
    async fn engine(&self) -> Arc<Engine> {
        self.open().await.0.engine.clone()
    }
}

fn check(engine: &Engine, model: &Model) -> Result<(), TestCaseError> {
    for product in [7, 9] {
        let got = engine.stats(None, product, 0);
        let want = model.stats.get(&product).cloned().unwrap_or_default();
        prop_assert_eq!(&got, &want, "product {}", product);
    }
    prop_assert!(engine.stats(None, 7, 0).runcount_in_use <= RUNCOUNT);
    Ok(())
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let clock = Clock::manual(start);
    let rig = rig(clock.clone()).await;
    let engine = rig.engine().await;
    let mut model = Model::default();
    let mut snapshots = 0;
    for op in ops {
        match op {
            Op::Snapshot => {
                if engine.take_snapshot().await.unwrap().is_some() {
                    snapshots += 1;
                }
            }
            Op::Open => {
                let opened = engine
                    .open_session(
                        OpenSession {
                            host: "h".into(),
                            message: String::new(),
                            pool: None,
                            user: None,
                        },
                        IpAddr::from([127, 0, 0, 1]),
                        None,
                    )
                    .await
                    .unwrap();
                model.sessions.push(MSession {
                    id: opened.session_id,
                    token: opened.session_token,
                    running: true,
                    last_hb: model.t,
                    ..MSession::default()
                });
            }
            Op::Request {
                session,
                request,
                product,
            } => {
                let Some(index) = (session < model.sessions.len()).then_some(session) else {
                    continue;
                };
                let (id, token) = (
                    model.sessions[index].id,
                    model.sessions[index].token.clone(),
                );
                let answer = engine
                    .request_license(
                        id,
                        Some(&token),
                        RequestLicense {
                            request_id: format!("r{request}"),
                            product_id: product,
                            major_version: 0,
                            request_type: RequestType::All,
                            wait_s: Some(0),
                        },
                    )
                    .await;
                let t = model.t;
                let s = &mut model.sessions[index];
                if !s.running {
                    prop_assert!(answer.is_err());
                    continue;
                }
                s.last_hb = t;
                if let Some(license_id) = s.requests.get(&request) {
                    prop_assert_eq!(
                        answer.unwrap().license_id,
                        *license_id,
                        "a retry gets the same grant"
                    );
                    continue;
                }
                let stats = model.stats.entry(product).or_default();
                let kind = if product == 7 && stats.runcount_in_use < RUNCOUNT {
                    Some(false)
                } else if product == 9 || PREPAID - stats.used_credits > 0 {
                    Some(true)
                } else {
                    None
                };
                match kind {
                    None => {
                        stats.failed += 1;
                        // Seats exist (all taken) besides the used-up credits.
                        stats.failed_by_reason.no_seat_free += 1;
                        prop_assert!(answer.is_err(), "granted beyond the license: {:?}", answer);
                    }
                    Some(credits) => {
                        let granted = answer.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                        let want = if credits {
                            LicenseType::Credits
                        } else {
                            LicenseType::Runcount
                        };
                        prop_assert_eq!(granted.license_type, want);
                        if credits {
                            stats.credit_grants += 1
                        } else {
                            stats.runcount_grants += 1;
                            stats.runcount_in_use += 1
                        }
                        let s = &mut model.sessions[index];
                        s.held.push(granted.license_id);
                        s.granted.push(granted.license_id);
                        s.requests.insert(request, granted.license_id);
                        model.grants.insert(
                            granted.license_id,
                            MGrant {
                                product,
                                credits,
                                at: t,
                                released: None,
                            },
                        );
                    }
                }
            }
            Op::Release { session, nth } => {
                let Some(s) = model.sessions.get(session) else {
                    continue;
                };
                let Some(&license_id) = s.granted.get(nth) else {
                    continue;
                };
                let (id, running) = (s.id, s.running);
                let credits = engine
                    .release(id, Some(&s.token), license_id)
                    .await
                    .unwrap();
                if running {
                    model.sessions[session].last_hb = model.t;
                }
                let t = model.t;
                prop_assert_eq!(credits, model.charge(license_id, t));
            }
            Op::Heartbeat { session } => {
                let Some(s) = model.sessions.get_mut(session) else {
                    continue;
                };
                let answer = engine.heartbeat(s.id, Some(&s.token));
                prop_assert_eq!(answer.is_ok(), s.running);
                if s.running {
                    s.last_hb = model.t;
                }
            }
            Op::Close { session } => {
                let Some(s) = model.sessions.get(session) else {
                    continue;
                };
                let closed = engine.close(s.id, Some(&s.token)).await.unwrap();
                if s.running {
                    prop_assert_eq!(closed.status, SessionStatus::Finished);
                    let t = model.t;
                    model.end(session, t, false);
                }
            }
            Op::Intrude { session, token_of } => {
                let Some(s) = model.sessions.get(session) else {
                    continue;
                };
                let (token, want) = match model.sessions.get(token_of) {
                    Some(other) if token_of != session => {
                        (Some(other.token.as_str()), EngineError::SessionTokenWrong)
                    }
                    _ => (None, EngineError::SessionTokenMissing),
                };
                prop_assert_eq!(engine.heartbeat(s.id, token), Err(want.clone()));
                prop_assert_eq!(engine.close(s.id, token).await.map(drop), Err(want.clone()));
                for &license_id in &s.granted {
                    prop_assert_eq!(
                        engine.release(s.id, token, license_id).await,
                        Err(want.clone())
                    );
                }
                let request = RequestLicense {
                    request_id: "intruder".into(),
                    product_id: 7,
                    major_version: 0,
                    request_type: RequestType::All,
                    wait_s: Some(0),
                };
                prop_assert_eq!(
                    engine.request_license(s.id, token, request).await.map(drop),
                    Err(want)
                );
                // The check below compares the statistics with the model, which did not change.
            }
            Op::Advance { secs } => {
                clock.advance(Duration::from_secs(secs));
                model.t += i64::try_from(secs).unwrap();
                for commit in engine.tick() {
                    commit.durable().await.unwrap();
                }
                for index in 0..model.sessions.len() {
                    let s = &model.sessions[index];
                    if s.running && model.t - s.last_hb > TIMEOUT_S {
                        let last = s.last_hb;
                        model.end(index, last, true);
                    }
                }
            }
        }
        check(&engine, &model)?;
    }
    // What the ledger says is what was in memory.
    engine.writer.barrier().durable().await.unwrap();
    let replayed = rig.engine().await;
    check(&replayed, &model)?;
    // The state rebuilt from the newest snapshot and the entries after it is, field for field,
    // the state rebuilt from genesis.
    let store = rig.open().await.0.store.clone();
    let key = KeyPair::load(&rig.dir.path().join(SERVER_KEY_FILE)).unwrap();
    let keep = EngineConfig::default().keep_ended;
    let restored = snapshot::restore(&store, &key.public_key(), rig.dir.path(), keep)
        .await
        .unwrap();
    let mut genesis = State::default();
    ledger::verify(&store, |e| genesis.apply(e.at, &e.event, keep))
        .await
        .unwrap();
    prop_assert_eq!(restored.snapshot.is_some(), snapshots > 0);
    prop_assert_eq!(Body::of(&restored.state), Body::of(&genesis));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_agrees_with_the_model_and_with_its_own_ledger(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}

#[tokio::test]
async fn a_mass_drop_in_chunks_drops_every_silent_session_and_hands_the_freed_seat_to_a_waiter() {
    let clock = Clock::manual(OffsetDateTime::now_utc().replace_nanosecond(0).unwrap());
    let rig = rig(clock.clone()).await;
    let engine = rig.engine().await;
    let open = |engine: Arc<Engine>| async move {
        let request = OpenSession {
            host: "h".into(),
            message: String::new(),
            pool: None,
            user: None,
        };
        engine
            .open_session(request, IpAddr::from([127, 0, 0, 1]), None)
            .await
            .unwrap()
    };
    let ask = |wait_s| RequestLicense {
        request_id: "r".into(),
        product_id: 7,
        major_version: 0,
        request_type: RequestType::Runcount,
        wait_s: Some(wait_s),
    };
    let silent = 2 * super::sessions::DROP_CHUNK + 100;
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..silent {
        opening.spawn(open(engine.clone()));
    }
    let sessions = opening.join_all().await;
    for s in &sessions[..2] {
        engine
            .request_license(s.session_id, Some(&s.session_token), ask(0))
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(TIMEOUT_S as u64 + 1));
    // A live session waits for one of the two seats the silent ones hold.
    let waiter = open(engine.clone()).await;
    let waiting = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .request_license(waiter.session_id, Some(&waiter.session_token), ask(60))
                .await
        }
    });
    while engine.lock().waiters.is_empty() {
        tokio::task::yield_now().await;
    }

    let commits = engine.tick();
    assert_eq!(commits.len(), silent, "one entry per silent session");
    for commit in commits {
        commit.durable().await.unwrap();
    }
    let granted = waiting.await.unwrap().unwrap();
    assert_eq!(granted.product_id, 7);
    {
        let state = engine.lock();
        let dropped = sessions
            .iter()
            .filter(|s| state.sessions[&s.session_id].status == SessionStatus::Dropped)
            .count();
        assert_eq!(dropped, silent);
        assert_eq!(
            state.sessions[&waiter.session_id].status,
            SessionStatus::Running
        );
    }
    let stats = engine.stats(None, 7, 0);
    assert_eq!((stats.runcount_in_use, stats.sessions_dropped), (1, 2));
    engine.writer.barrier().durable().await.unwrap();
    assert_eq!(rig.engine().await.stats(None, 7, 0), stats);
}
