//! `GET /metrics` on the API port: the server's figures in Prometheus's text format, for a
//! Prometheus server to scrape (what FlexNet and RLM users get from `lmstat` and a third-party
//! exporter, built in).
//!
//! Almost everything is read at scrape time from what the server keeps anyway: the cartridges of
//! every pool with the engine's counters (as `data.json` shows them), the sessions and waiting
//! requests, the snapshot's lag, the failover network's Raft metrics. What is recorded as it
//! happens (request latencies, group commits) lives in histograms of a fixed size. The number of
//! series is bounded by the cartridges, routes and members, never by what clients send.
//!
//! Public, like `data.json`: it shows what the status page shows, in numbers.

use std::sync::Arc;

use axum::{
    Extension,
    extract::State,
    http::{HeaderValue, header},
    response::IntoResponse,
};
use openraft::ServerState;
use time::OffsetDateTime;

use super::live::Hub;
use crate::{
    app::AppState,
    sys::{
        VERSION,
        prometheus::{Exposition, Kind},
    },
};

/// Every metric's name starts with this.
const PREFIX: &str = "license_server";

/// The content type of the text format Prometheus scrapes.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The server's metrics in Prometheus's text format.
#[utoipa::path(
    get, path = "/metrics", tag = "status",
    responses((status = 200, description = "Prometheus text format 0.0.4: cartridges (seats, credits, grants, refusals by reason, drops, waiting requests), sessions, HTTP requests by route, group commits, snapshot lag, and on a member of a failover network its role, term and members reachable", content_type = "text/plain"))
)]
pub async fn metrics(
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        render(&state, &hub),
    )
}

/// The exposition of one scrape.
pub fn render(state: &AppState, hub: &Hub) -> String {
    let mut out = Exposition::new();
    server(state, &mut out);
    cartridges(state, &mut out);
    sessions(state, &mut out);
    gauge(
        &mut out,
        "status_event_streams",
        "Status pages (and other clients) listening to GET /status/events.",
        hub.listeners() as f64,
    );
    ledger(state, &mut out);
    network(state, &mut out);
    state.requests.write(&mut out, PREFIX);
    out.finish()
}

fn name(suffix: &str) -> String {
    format!("{PREFIX}_{suffix}")
}

fn gauge(out: &mut Exposition, suffix: &str, help: &str, value: f64) {
    let name = name(suffix);
    out.family(&name, Kind::Gauge, help);
    out.sample(&name, &[], value);
}

#[allow(clippy::cast_precision_loss)]
fn server(state: &AppState, out: &mut Exposition) {
    let info = name("info");
    out.family(
        &info,
        Kind::Gauge,
        "Always 1; the labels say which server and version this is.",
    );
    out.sample(
        &info,
        &[
            ("version", VERSION),
            ("server_id", state.identity.server_id.as_str()),
        ],
        1.0,
    );
    gauge(
        out,
        "uptime_seconds",
        "Seconds since the server started.",
        state.started.elapsed().as_secs_f64(),
    );
    gauge(
        out,
        "ready",
        "1 while the server takes changes (GET /ready answers 200), else 0.",
        if state.engine.unavailable().is_none() {
            1.0
        } else {
            0.0
        },
    );
}

/// Per cartridge of every pool: what it has, what is used, what was granted and refused.
#[allow(clippy::cast_precision_loss)]
fn cartridges(state: &AppState, out: &mut Exposition) {
    let snapshot = state.inventory.snapshot();
    let mut rows = Vec::new();
    for pool in snapshot.pools() {
        rows.extend(
            state
                .cartridges(pool.as_deref())
                .into_iter()
                .map(|c| (pool.clone().unwrap_or_default(), c)),
        );
    }
    let labels = |pool: &str, c: &models::Cartridge| -> [(String, String); 4] {
        [
            ("pool".to_owned(), pool.to_owned()),
            ("product_id".to_owned(), c.product_id.to_string()),
            ("major_version".to_owned(), c.major_version.to_string()),
            ("product".to_owned(), c.product.clone()),
        ]
    };
    type Pick = fn(&models::Cartridge) -> f64;
    let families: [(&str, Kind, &str, Pick); 7] = [
        (
            "seats",
            Kind::Gauge,
            "Concurrent runs (runcount) the cartridge allows.",
            |c| f64::from(c.runcount),
        ),
        (
            "seats_in_use",
            Kind::Gauge,
            "Runs holding a seat of the cartridge now.",
            |c| f64::from(c.statistic.runcount_in_use),
        ),
        (
            "credits",
            Kind::Gauge,
            "Credits loaded on the cartridge (one credit: one second of processing).",
            |c| c.credits as f64,
        ),
        (
            "credits_used",
            Kind::Gauge,
            "Credits used since the cartridge was installed.",
            |c| c.statistic.used_credits as f64,
        ),
        (
            "credits_remaining",
            Kind::Gauge,
            "Credits loaded minus used (below zero on a postpay cartridge).",
            |c| c.statistic.remaining_credits as f64,
        ),
        (
            "refusals_total",
            Kind::Counter,
            "License requests for the cartridge that were refused, whatever the reason.",
            |c| c.statistic.licenses.failed as f64,
        ),
        (
            "sessions_dropped_total",
            Kind::Counter,
            "Sessions holding the cartridge's licenses that were dropped (heartbeats stopped, or released by an administrator).",
            |c| c.statistic.sessions_dropped as f64,
        ),
    ];
    for (suffix, kind, help, pick) in families {
        let name = name(&format!("cartridge_{suffix}"));
        out.family(&name, kind, help);
        for (pool, cartridge) in &rows {
            let labels = labels(pool, cartridge);
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            out.sample(&name, &labels, pick(cartridge));
        }
    }
    type Split = fn(&models::Cartridge) -> [(&'static str, u64); 3];
    let split: [(&str, &str, &str, Split); 2] = [
        (
            "cartridge_grants_total",
            "kind",
            "Licenses granted from the cartridge, by kind: runcount (a seat) or credits.",
            |c| {
                let l = &c.statistic.licenses;
                [("runcount", l.runcount), ("credits", l.credits), ("", 0)]
            },
        ),
        (
            "cartridge_refusals_by_reason_total",
            "reason",
            "License requests for the cartridge refused, by reason: no_seat_free, waited_out, credits_exhausted (refusals older than reasons in the ledger count in refusals_total only).",
            |c| {
                let by = &c.statistic.licenses.failed_by_reason;
                [
                    ("no_seat_free", by.no_seat_free),
                    ("waited_out", by.waited_out),
                    ("credits_exhausted", by.credits_exhausted),
                ]
            },
        ),
    ];
    for (suffix, label, help, pick) in split {
        let name = name(suffix);
        out.family(&name, Kind::Counter, help);
        for (pool, cartridge) in &rows {
            let labels = labels(pool, cartridge);
            for (value, count) in pick(cartridge) {
                if value.is_empty() {
                    continue;
                }
                let mut labels: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                labels.push((label, value));
                out.sample(&name, &labels, count as f64);
            }
        }
    }
    let expiry = name("license_expiry_timestamp_seconds");
    out.family(
        &expiry,
        Kind::Gauge,
        "When an installed license stops counting (Unix time), for licenses that expire; alert on it minus time().",
    );
    let mut expiring: Vec<_> = snapshot
        .scan
        .licenses
        .iter()
        .filter(|l| !l.expired_at(OffsetDateTime::now_utc()))
        .filter_map(|l| l.counts_until().map(|until| (l, until)))
        .collect();
    expiring.sort_by(|a, b| a.0.key().cmp(b.0.key()));
    for (license, until) in expiring {
        let serial = license.serial_number().to_string();
        out.sample(
            &expiry,
            &[("key", license.key()), ("serial_number", &serial)],
            until.unix_timestamp() as f64,
        );
    }
}

#[allow(clippy::cast_precision_loss)]
fn sessions(state: &AppState, out: &mut Exposition) {
    let gauges = state.engine.gauges();
    let sessions = name("sessions");
    out.family(
        &sessions,
        Kind::Gauge,
        "Sessions the server keeps, by status (ended ones are kept for a while, for the status page).",
    );
    for (status, count) in [
        ("running", gauges.running),
        ("finished", gauges.finished),
        ("dropped", gauges.dropped),
    ] {
        out.sample(&sessions, &[("status", status)], count as f64);
    }
    let waiting = name("waiting_requests");
    out.family(
        &waiting,
        Kind::Gauge,
        "License requests waiting for a seat, by the pool, product and major version they ask for.",
    );
    for ((pool, product_id, major_version), count) in &gauges.waiting {
        out.sample(
            &waiting,
            &[
                ("pool", pool.as_deref().unwrap_or_default()),
                ("product_id", &product_id.to_string()),
                ("major_version", &major_version.to_string()),
            ],
            *count as f64,
        );
    }
    gauge(
        out,
        "snapshot_age_seconds",
        "Seconds since the newest snapshot of the state was written (or loaded at start).",
        gauges.snapshot_age_seconds,
    );
    gauge(
        out,
        "snapshot_entries_behind",
        "Ledger entries committed since the newest snapshot: what a start would replay.",
        gauges.entries_since_snapshot as f64,
    );
    gauge(
        out,
        "ledger_entries",
        "The sequence number of the last ledger entry committed.",
        gauges.committed as f64,
    );
}

#[allow(clippy::cast_precision_loss)]
fn ledger(state: &AppState, out: &mut Exposition) {
    let commits = state.engine.commit_metrics();
    let entries = name("ledger_commit_entries");
    out.family(
        &entries,
        Kind::Histogram,
        "Ledger entries per group commit.",
    );
    out.histogram(&entries, &[], &commits.entries);
    let seconds = name("ledger_commit_seconds");
    out.family(
        &seconds,
        Kind::Histogram,
        "Time from a group commit's start until it is durable: the SQLite commit and its fsync; on a member, until a majority holds it.",
    );
    out.histogram(&seconds, &[], &commits.seconds);
    let failed = name("ledger_commit_failures_total");
    out.family(
        &failed,
        Kind::Counter,
        "Group commits that failed (or were refused after a failed write).",
    );
    out.sample(
        &failed,
        &[],
        commits.failed.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
}

/// On a member of a failover network: its role and term, and the members it reaches.
#[allow(clippy::cast_precision_loss)]
fn network(state: &AppState, out: &mut Exposition) {
    let Some(network) = &state.network else {
        return;
    };
    let (role, term) = {
        let metrics = network.raft.metrics();
        let metrics = metrics.borrow();
        let role = match metrics.state {
            ServerState::Leader => "coordinator",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "stopped",
        };
        (role, metrics.current_term)
    };
    let roles = name("network_role");
    out.family(
        &roles,
        Kind::Gauge,
        "1 for this member's role in the failover network, 0 for the others.",
    );
    for candidate in ["coordinator", "follower", "candidate", "learner", "stopped"] {
        out.sample(
            &roles,
            &[("role", candidate)],
            if candidate == role { 1.0 } else { 0.0 },
        );
    }
    gauge(
        out,
        "network_term",
        "The failover network's Raft term as this member knows it (it rises with every election).",
        term as f64,
    );
    let servers = network.servers(state.identity.record());
    let reachable = servers
        .iter()
        .filter(|s| s.status == models::ServerStatus::Running)
        .count();
    gauge(
        out,
        "network_members",
        "Members of the failover network.",
        servers.len() as f64,
    );
    gauge(
        out,
        "network_members_reachable",
        "Members this member reaches (itself included); fewer than a majority: no license is granted.",
        reachable as f64,
    );
}
