//! `bench --spawn-server --usage-days N`: how fast the usage report answers over a long history.
//!
//! The report reads the usage totals, not the ledger, so what its time depends on is how many
//! rows of totals the range holds. The benchmark writes the totals that N days of a busy build
//! farm leave (the ledger issue's size: 100 jobs a minute, about 200 million ledger entries a
//! year) straight into the spawned server's tables, as the fold would have written them: 200
//! hosts that each use 3 of 10 products, jobs run for 5 users per host and product out of 50,
//! every cartridge busy every hour, refusals in one hour of four. Folding that many entries would
//! take hours; the fold's own speed is what `--startup-entries` shows as the server catches up.
//! `--usage-hosts N` puts the jobs on N hosts a day instead, named anew each day (containers),
//! which is what a report's busiest-hosts list must survive.
//!
//! The same reports are first timed on the empty history (the baseline: login, HTTP, JSON), then
//! on the full one; each is the median of [`RUNS`] after one untimed run.

use std::{
    collections::HashMap,
    io::Write,
    time::{Duration, Instant},
};

use anyhow::Context;
use time::OffsetDateTime;

use super::spawned_server::SpawnedServer;
use crate::{
    cli::BenchArgs,
    store::{
        Store,
        usage::{Cartridge, DayTotals, Delta, HourTotals, Party, RefusalKey},
    },
};

/// Timed runs of each report.
const RUNS: usize = 5;
/// Build machines, the same every day.
const HOSTS: u32 = 200;
const USERS: u32 = 50;
const PRODUCTS: u32 = 10;
/// Jobs a day: 100 a minute.
const JOBS_PER_DAY: u64 = 144_000;
/// How long a job holds its license, on average.
const JOB_SECONDS: u64 = 600;
const DAY: i64 = 86_400;

pub async fn run(args: &BenchArgs, days: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut server = SpawnedServer::start(args.product_id, args.major_version, &[])?;
    let today = OffsetDateTime::now_utc().date();
    let first = today - time::Duration::days(i64::try_from(days)? - 1);
    let tomorrow = today.next_day().context("the calendar ends tomorrow")?;
    let span = format!("from={first}&to={tomorrow}");
    let reports = [
        (format!("{days} days by the day"), format!("?{span}")),
        (
            format!("{days} days, one product"),
            format!("?{span}&product_id=3"),
        ),
        (
            format!("{days} days, one host"),
            format!("?{span}&host={}", host_name(args.usage_hosts, 0, 7)),
        ),
        (
            format!("{days} days, one user"),
            format!("?{span}&realm=corp&principal=user-07"),
        ),
        (
            "30 days by the day".to_owned(),
            "?step=day&from=".to_owned(),
        ),
        ("7 days by the hour (the default)".to_owned(), String::new()),
    ];
    let month_ago = today - time::Duration::days(29);
    let reports: Vec<(String, String)> = reports
        .into_iter()
        // Over 30 days the first report is this one.
        .filter(|(_, query)| days != 30 || query != "?step=day&from=")
        .map(|(name, query)| {
            let query = if query.ends_with("from=") {
                format!("{query}{month_ago}")
            } else {
                query
            };
            (name, query)
        })
        .collect();
    let http = reqwest::Client::new();
    let token = login(&http, &server).await?;
    let mut baseline = Vec::new();
    for (_, query) in &reports {
        baseline.push(timed(&http, &server, &token, query).await?);
    }
    server.stop();
    let built = Instant::now();
    let rows = write_totals(&server, days, args.usage_hosts).await?;
    writeln!(
        out,
        "usage totals of {days} days written ({} hourly rows, {} host-day rows, {} user-day \
         rows, {} refusal rows) in {:.0} s",
        rows[0],
        rows[1],
        rows[2],
        rows[3],
        built.elapsed().as_secs_f64()
    )?;
    server.restart()?;
    let token = login(&http, &server).await?;
    for ((name, query), base) in reports.iter().zip(&baseline) {
        let took = timed(&http, &server, &token, query).await?;
        writeln!(
            out,
            "usage report, {name}: {:.0} ms (on an empty history: {:.0} ms; {:.1} ×)",
            took.as_secs_f64() * 1e3,
            base.as_secs_f64() * 1e3,
            took.as_secs_f64() / base.as_secs_f64().max(1e-9)
        )?;
    }
    server.stop();
    Ok(())
}

/// Logs in as the first administrator, with the password the first start wrote.
pub(super) async fn login(
    http: &reqwest::Client,
    server: &SpawnedServer,
) -> anyhow::Result<String> {
    let password = std::fs::read_to_string(server.data_dir.join("initial-admin-password"))?;
    let answer: serde_json::Value = http
        .post(format!("http://{}/server/auth", server.api_addr))
        .json(&serde_json::json!({"principal": "admin", "secret": password.trim()}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .context("the login answered no token")
}

/// The median time of [`RUNS`] reports for `query`, after one that is not timed.
async fn timed(
    http: &reqwest::Client,
    server: &SpawnedServer,
    token: &str,
    query: &str,
) -> anyhow::Result<Duration> {
    let url = format!("http://{}/server/manage/usage{query}", server.api_addr);
    let mut times = Vec::with_capacity(RUNS);
    for run in 0..=RUNS {
        let started = Instant::now();
        let answer = http
            .get(&url)
            .header(models::headers::SESSION_TOKEN, token)
            .send()
            .await?;
        let status = answer.status();
        let body = answer.bytes().await?;
        anyhow::ensure!(
            status.is_success(),
            "the report {query} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        if run > 0 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    Ok(times[RUNS / 2])
}

/// Writes the totals of `days` days ending today into the stopped server's store, a day per
/// transaction; the rows written per table. With `fresh_hosts`, that many hosts a day, each
/// day's named anew, instead of the [`HOSTS`] build machines.
async fn write_totals(
    server: &SpawnedServer,
    days: u64,
    fresh_hosts: Option<u32>,
) -> anyhow::Result<[u64; 4]> {
    let hosts = fresh_hosts.unwrap_or(HOSTS);
    let store = Store::open(&server.data_dir.join("license-server.db")).await?;
    let today = OffsetDateTime::now_utc().unix_timestamp();
    let today = today - today.rem_euclid(DAY);
    let mut rows = [0; 4];
    let cartridge = |product_id| Cartridge {
        pool: String::new(),
        product_id,
        major_version: 0,
    };
    // Each (host, product, user) of a day: the jobs are spread evenly over them.
    let combos = u64::from(hosts) * 3 * 5;
    let jobs = (JOBS_PER_DAY / combos).max(1);
    let per_combo = DayTotals {
        grants: jobs,
        held_seconds: jobs * JOB_SECONDS,
        credits: jobs,
    };
    let per_hour = JOBS_PER_DAY / 24 / u64::from(PRODUCTS);
    for d in (0..i64::try_from(days)?).rev() {
        let day = today - d * DAY;
        let mut delta = Delta::default();
        for hour in 0..24 {
            let at = day + hour * 3600;
            for product in 1..=PRODUCTS {
                let busy = u32::try_from((at / 3600 + i64::from(product)) % 40)?;
                let totals = HourTotals {
                    grants: per_hour,
                    held_seconds: per_hour * JOB_SECONDS,
                    peak: 10 + busy,
                    credits: per_hour,
                };
                delta.hours.insert((cartridge(product), at), totals);
                if (at / 3600 + i64::from(product)) % 4 == 0 {
                    let key = RefusalKey {
                        hour: at,
                        pool: String::new(),
                        product: Some((product, 0)),
                        reason: "no_seat_free".to_owned(),
                    };
                    delta.refusals.insert(key, u64::from(busy / 10));
                }
            }
        }
        let mut users: HashMap<(u32, u32), ()> = HashMap::new();
        for host in 0..hosts {
            for k in 0..3 {
                let product = (host + k * 3) % PRODUCTS + 1;
                for j in 0..5 {
                    let user = (host * 7 + product + j) % USERS;
                    users.insert((user, product), ());
                    let party = Party {
                        host: host_name(fresh_hosts, d, host),
                        realm: "corp".to_owned(),
                        principal: format!("user-{user:02}"),
                    };
                    delta
                        .days
                        .insert((cartridge(product), party, day), per_combo);
                }
            }
        }
        rows[0] += delta.hours.len() as u64;
        rows[1] += u64::from(hosts) * 3;
        rows[2] += users.len() as u64;
        rows[3] += delta.refusals.len() as u64;
        store.write_usage(&delta).await?;
    }
    store.close().await;
    Ok(rows)
}

/// Host `n`'s name `days_ago` days back: a build machine's, or with `fresh_hosts` a container's,
/// named anew each day.
fn host_name(fresh_hosts: Option<u32>, days_ago: i64, n: u32) -> String {
    match fresh_hosts {
        Some(_) => format!("ci-{days_ago}-{n:06}"),
        None => format!("build-{n:03}"),
    }
}
