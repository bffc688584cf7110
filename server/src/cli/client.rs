//! The options of `client run` and `bench`, the two clients of the license port.

use clap::{Args, ValueEnum};

/// Which kind of cartridge may answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    /// Runcount first, then credits.
    #[default]
    All,
    Runcount,
    Credits,
}

impl From<TypeArg> for models::RequestType {
    fn from(value: TypeArg) -> Self {
        match value {
            TypeArg::All => Self::All,
            TypeArg::Runcount => Self::Runcount,
            TypeArg::Credits => Self::Credits,
        }
    }
}

/// What `client run` does when its license is gone for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LossPolicy {
    /// Stop the command (SIGTERM, then SIGKILL after --kill-after) and exit 75.
    #[default]
    Stop,
    /// Print a warning and let the command run on without a license (still trying to get one).
    Warn,
}

#[derive(Debug, Clone, Args)]
pub struct ClientRunArgs {
    /// A license server's license port (`https://HOST:PORT` when it speaks TLS); repeat for the
    /// members of a failover network, tried in this order. The environment variable takes a
    /// comma-separated list.
    #[arg(
        long = "server",
        value_name = "HOST:PORT",
        env = "LICENSE_SERVER_SERVERS",
        value_delimiter = ',',
        required = true
    )]
    pub servers: Vec<String>,
    /// A private CA's certificate(s) (PEM) that a server's certificate may be signed by, for
    /// `--server https://HOST:PORT` (a server with `--tls-license-port`).
    #[arg(long, env = "LICENSE_SERVER_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    #[arg(long, value_name = "N")]
    pub product_id: u32,
    #[arg(long, value_name = "N")]
    pub major_version: u32,
    #[arg(long = "type", value_enum, default_value_t)]
    pub license_type: TypeArg,
    /// Cartridge pool to draw from (default: the default pool).
    #[arg(long, env = "LICENSE_SERVER_POOL")]
    pub pool: Option<String>,
    /// Shown on the status page with the session (default: the command line).
    #[arg(long)]
    pub message: Option<String>,
    /// Seconds to wait for a license when all are in use; 0 = give up at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub wait: u64,
    /// What to do when the license is lost (the session was released by an administrator or
    /// dropped, or its server stopped answering) and no license comes back within the grace
    /// period: `stop` the command and exit 75, or `warn` and let it run on unlicensed.
    #[arg(
        long,
        value_enum,
        env = "LICENSE_SERVER_ON_LICENSE_LOSS",
        default_value_t
    )]
    pub on_license_loss: LossPolicy,
    /// Seconds to try to get a license again after losing it (every `--server`, the others
    /// first), before the loss policy applies [default: the session timeout the server announces].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub grace: Option<u64>,
    /// Seconds between SIGTERM and SIGKILL when the command has to be stopped.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub kill_after: u64,
    /// The program to run, and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["server", "spawn_server", "spawn_network"])))]
pub struct BenchArgs {
    /// The license port to measure.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// Start a release server of this binary on a temporary data directory with a large license
    /// (runcount 1,000,000 for product 1), measure it, and stop it.
    #[arg(long)]
    pub spawn_server: bool,
    /// Concurrent clients; a comma-separated list runs one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub concurrency: Vec<usize>,
    /// Seconds per measurement (the baseline and the license cycles each take this long).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[arg(long, default_value_t = 1)]
    pub product_id: u32,
    #[arg(long, default_value_t = 0)]
    pub major_version: u32,
    #[arg(long = "type", value_enum, default_value_t)]
    pub license_type: TypeArg,
    /// Instead: open N sessions that each hold a license, make them all fall silent at once
    /// (the spawned server restarts with a short session timeout), and compare the grant latency
    /// while they are dropped with the latency just before (the first --concurrency).
    #[arg(long, value_name = "N", requires = "spawn_server", value_parser = clap::value_parser!(u64).range(1..=500_000))]
    pub mass_drop: Option<u64>,
    /// Instead: time a start of the spawned server after a history of N ledger entries (written
    /// into its data directory, with the snapshot the server would have taken), next to a start
    /// on an empty ledger.
    #[arg(long, value_name = "N", requires = "spawn_server", conflicts_with = "mass_drop", value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub startup_entries: Option<u64>,
    /// Instead: start N members of a failover network of this binary on 127.0.0.1 (with a license
    /// for the network), and measure license cycles on them (clients spread over the members)
    /// next to a single server, in the same run.
    #[arg(long, value_name = "N", conflicts_with_all = ["mass_drop", "startup_entries"], value_parser = clap::value_parser!(u64).range(1..=7))]
    pub spawn_network: Option<u64>,
    /// With --spawn-network: then kill the coordinator (kill -9) K times under load, and report
    /// how long until the next license cycle succeeded (p50, p99).
    #[arg(long, value_name = "K", requires = "spawn_network", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub failover_kills: Option<u64>,
    /// Also measure the license cycles while N clients listen to the status stream
    /// (`/status/events`, as N open status pages do), next to the cycles without them, with the
    /// server's CPU time per cycle in both.
    #[arg(long, value_name = "N", requires = "spawn_server", conflicts_with_all = ["mass_drop", "startup_entries"], value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub listeners: Option<u64>,
    /// Instead: time the usage report (`GET /server/manage/usage`) over N days of a busy build
    /// farm's usage totals (100 jobs a minute on 200 hosts for 50 users and 10 products),
    /// written into the spawned server's data directory, next to the same reports on an empty
    /// history.
    #[arg(long, value_name = "N", requires = "spawn_server", conflicts_with_all = ["mass_drop", "startup_entries", "listeners"], value_parser = clap::value_parser!(u64).range(1..=400))]
    pub usage_days: Option<u64>,
    /// With --usage-days: N hosts a day instead of 200, named anew every day (as containers are),
    /// which the report must rank and count without loading them all.
    #[arg(long, value_name = "N", requires = "usage_days", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub usage_hosts: Option<u32>,
    /// Sessions still running at the end of that history, each holding a license.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "startup_entries", value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub startup_live: u64,
}
