//! The `license-server` command: its subcommands and their options, and the checks of the
//! options that need more than one of them (`serve`'s ports and timings).

use std::{net::IpAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::{
    client::{BenchArgs, ClientRunArgs},
    log::LogArgs,
};

/// The customer's program: the server, its administration and the license client. It has no
/// vendor tools (`license-vendor` has them), so it cannot sign anything.
#[derive(Debug, Parser)]
#[command(name = "license-server", version = crate::licensing::sealed::version_line(), about = "Network license server")]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the license server: license port and API port (status page, admin API).
    Serve(ServeArgs),
    /// Print this server's id, creating the data directory and the id if they do not exist yet
    /// (a license is bound to this id).
    ServerId(DataDirArg),
    /// Install, list and check license files of this server.
    #[command(subcommand)]
    License(LicenseCommand),
    /// Put cartridges into pools.
    #[command(subcommand)]
    Cartridge(CartridgeCommand),
    /// Check or export the ledger: the hash-chained record of every session, grant and debit.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Administrators of the admin API (realm `local`).
    #[command(subcommand)]
    User(UserCommand),
    /// Licensed users of the product: the users that sessions name, counted against a license's
    /// user limit (administrators are not counted).
    #[command(subcommand)]
    Users(UsersCommand),
    /// The license client: run a program under a license.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Form a failover network: several servers that share one license and its seats, and go on
    /// granting while a majority of them runs.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Measure a license server: full license cycles per second and latency, next to a baseline
    /// of the cheapest request, in the same run.
    Bench(BenchArgs),
    /// Write the man pages and shell completions (bash, zsh, fish) into a directory: what the
    /// Debian package installs (`make deb`).
    #[command(hide = true)]
    GenerateManual {
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
    /// Write a backup of a data directory (also while its server runs): the store as of one
    /// instant, the ledger's archive, the license files and the server key, in one .tar.gz with a
    /// manifest of checksums. Mode 0600: it holds the server's private key.
    Backup {
        /// The archive to write (replaced only once complete).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// Restore a backup into a new (or empty) data directory: every file is checked against the
    /// manifest and the ledger verified before anything is put in place.
    Restore {
        /// The archive `backup` wrote.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The data directory to create; it must not exist or be empty.
        #[arg(long, env = "LICENSE_SERVER_DATA_DIR")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an administrator. The password is read from standard input (prompted for, twice and
    /// without echo, on a terminal); never from the command line, where `ps` would show it.
    Add {
        #[arg(long)]
        principal: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Limit the permissions to this scope (default: every scope, `server.*`).
        #[arg(long)]
        scope: Option<String>,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// Set a new password (read like `add` does); the user's logged-in tokens end.
    Passwd {
        #[arg(long)]
        principal: String,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// Remove an administrator; their logged-in tokens end.
    Remove {
        #[arg(long)]
        principal: String,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// List the administrators with their role and permissions.
    List(DataDirArg),
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Print this member's token (its server id and key), for `network init` on every member.
    /// Creates the data directory, the id and the key if they do not exist yet.
    Identity(DataDirArg),
    /// Make this data directory a member of the failover network of the given members (this one
    /// among them): writes the members' list (network.toml). Run it with the same members on every
    /// member, before its first `serve`.
    Init(MembersArgs),
    /// Make this data directory a new member of a failover network that runs already, with the
    /// list the network is to have (the members it keeps, and this one). Start it, then have the
    /// network take it in (`PUT /server/manage/network/members` on any member, with the same
    /// list).
    Join(MembersArgs),
}

/// A failover network's members' list, for `network init` and `network join`.
#[derive(Debug, Clone, Args)]
pub struct MembersArgs {
    /// A member: its license port as the others reach it, and its token from `network
    /// identity`. Repeat for every member, this one included (1 to 7; 3 or 5 survive the loss of
    /// 1 or 2).
    #[arg(long = "member", value_name = "HOST:PORT=TOKEN", required = true)]
    pub members: Vec<String>,
    /// Replace a members' list that differs (for a network that has not run yet).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List the licensed users, most recent first.
    List(DataDirArg),
    /// Clear every licensed user, or one with --realm and --principal, freeing their places
    /// under the user limit. Recorded in the ledger.
    Clear {
        #[arg(long, requires = "principal")]
        realm: Option<String>,
        #[arg(long, requires = "realm")]
        principal: Option<String>,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// server.VIEW_LICENSE and server.EDIT_LICENSE
    Admin,
    /// server.VIEW_LICENSE
    Viewer,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Open a session, get a license, run COMMAND while sending heartbeats, then release and
    /// close. Exits with COMMAND's exit status, or 75 when no license could be had.
    Run(ClientRunArgs),
}

/// How long ledger entries stay in the store: `None` is for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub Option<std::time::Duration>);

/// `90`, `90d`, `12h`, `30m`, `10s`, `off` or `0`.
fn parse_retention(text: &str) -> Result<Retention, String> {
    if text == "off" || text == "0" {
        return Ok(Retention(None));
    }
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "d"),
    };
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => {
            return Err(format!(
                "{text:?}: give days (90), a number with d, h, m or s (90d, 12h), or off"
            ));
        }
    };
    let n: u64 = number.parse().map_err(|_| {
        format!("{text:?}: give days (90), a number with d, h, m or s (90d, 12h), or off")
    })?;
    if n == 0 || n.saturating_mul(seconds) > 100 * 365 * 86_400 {
        return Err(format!("{text:?}: between 1 s and 100 years, or off"));
    }
    Ok(Retention(Some(std::time::Duration::from_secs(n * seconds))))
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Check every entry's hash and link, as the server does at start. Exit status 1 names the
    /// first bad entry. Works while the server runs.
    Verify(DataDirArg),
    /// Write the ledger's entries, after checking them, e.g. for billing postpay usage.
    Export {
        #[arg(long, value_enum, default_value_t)]
        format: ExportFormat,
        /// Where to write (default: standard output); replaced only once the export is complete.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Only entries at or after this time: RFC 3339, or a day (midnight UTC).
        #[arg(long, value_name = "TIME", value_parser = crate::ledger::export::parse_time)]
        since: Option<time::OffsetDateTime>,
        /// Only entries before this time: RFC 3339, or a day (midnight UTC).
        #[arg(long, value_name = "TIME", value_parser = crate::ledger::export::parse_time)]
        until: Option<time::OffsetDateTime>,
        /// Only these kinds (comma-separated or repeated); for CSV the row's kind, so
        /// `license_released` includes what session_closed entries released.
        #[arg(long, value_name = "KIND", value_parser = crate::ledger::export::parse_kinds)]
        kind: Vec<Vec<String>>,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One row per entry, and one per license a session_closed entry released.
    #[default]
    Csv,
    /// One JSON object per line: seq, at, hash and the event as stored.
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Verify a license file and install it into the data directory. Works whether or not the
    /// server runs; a running server picks the license up within a second.
    Install(LicenseFileArgs),
    /// List the installed licenses: which is active, which expired, which files are unusable.
    List {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// Check a license file without installing it: print what it grants, or why this server
    /// would refuse it. Exit status 1 when it would be refused.
    Verify(LicenseFileArgs),
    /// Remove an installed license: its cartridges stop granting (on a running server within a
    /// second); licenses held from it stay with their jobs until released. Recorded in the
    /// ledger with who did it.
    Remove {
        /// The license key, as `license list` shows it.
        key: String,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// Give a license back for a transfer without a connection to the vendor: remove it like
    /// `remove`, and write a deactivation receipt signed with this server's key, for the vendor
    /// to free the activation.
    Deactivate {
        key: String,
        /// Where to write the receipt (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

#[derive(Debug, Clone, Args)]
pub struct LicenseFileArgs {
    /// The license file; `-` reads standard input.
    pub file: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Subcommand)]
pub enum CartridgeCommand {
    /// Put the cartridge with this serial number into a pool (clients and status requests then
    /// see it only with `X-Pool-ID: POOL`); an empty POOL ("") puts it back into the default pool.
    /// Takes effect on a running server within a second.
    Assign {
        serial: u64,
        pool: String,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

/// Which vendor keys license files must be signed with.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// A vendor public key (PEM, from `license-vendor keygen`) that license files may be signed with.
    /// Repeat it to trust several keys while a vendor rotates keys. The environment variable takes
    /// a comma-separated list.
    #[arg(
        long = "vendor-public-key",
        value_name = "FILE",
        env = "LICENSE_SERVER_VENDOR_PUBLIC_KEY",
        value_delimiter = ','
    )]
    pub vendor_public_keys: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DataDirArg {
    /// Directory of the store, the licenses and the lock of a running server.
    #[arg(long, env = "LICENSE_SERVER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file with options of `serve`: each key an option's name without the dashes
    /// (`api-port = 1401`). Options on the command line and in the environment win over it; an
    /// unknown key is an error.
    #[arg(long, env = "LICENSE_SERVER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// License port: where clients open sessions and ask for licenses. 0 picks a free port.
    #[arg(long, env = "LICENSE_SERVER_PORT", default_value_t = 1400)]
    pub port: u16,

    /// API port: status page, status data and admin API. Default: the license port + 1
    /// (0 with `--port 0`).
    #[arg(long, env = "LICENSE_SERVER_API_PORT")]
    pub api_port: Option<u16>,

    /// Address to listen on, for both ports.
    #[arg(long, env = "LICENSE_SERVER_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    #[command(flatten)]
    pub data_dir: DataDirArg,

    /// This server's license serial number, shown on the status page; the members of a failover
    /// network share it.
    #[arg(long, env = "LICENSE_SERVER_SERIAL_NUMBER", default_value = "")]
    pub serial_number: String,

    #[command(flatten)]
    pub trust: TrustArgs,

    /// The vendor licensing service (`license-vendor serve`) that the admin API's `remote/...` endpoints
    /// call, e.g. http://licensing.example.com:1500.
    #[arg(long, env = "LICENSE_SERVER_VENDOR_URL")]
    pub vendor_url: Option<String>,

    /// A private CA's certificate(s) (PEM) that an https `--vendor-url`'s certificate may be
    /// signed by, besides the public roots built in.
    #[arg(long, env = "LICENSE_SERVER_VENDOR_CA", value_name = "FILE")]
    pub vendor_ca: Option<PathBuf>,

    /// HTTPS on the API port: the certificate chain (PEM, the server's certificate first).
    /// Reloaded on SIGHUP and when the file changes.
    #[arg(
        long,
        env = "LICENSE_SERVER_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of `--tls-cert` (PEM: PKCS#8, RSA or EC).
    #[arg(
        long,
        env = "LICENSE_SERVER_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// With `--tls-cert`: the license port speaks TLS too (clients then use `--server
    /// https://HOST:PORT`). Not on a member of a failover network.
    #[arg(long, env = "LICENSE_SERVER_TLS_LICENSE_PORT")]
    pub tls_license_port: bool,

    /// Seconds without a heartbeat after which a session is dropped and its licenses return.
    #[arg(long, env = "LICENSE_SERVER_SESSION_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub session_timeout: u64,

    /// Seconds an admin session token stays valid without use (each use refreshes it; tokens
    /// end 12 hours after login regardless).
    #[arg(long, env = "LICENSE_SERVER_SESSION_IDLE_TIMEOUT", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=43_200))]
    pub session_idle_timeout: u64,

    /// Seconds between heartbeats that clients are told to keep; must be below the timeout.
    #[arg(long, env = "LICENSE_SERVER_HEARTBEAT_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub heartbeat_interval: u64,

    /// Finished and dropped sessions kept for the status page (the oldest go first); the ledger
    /// keeps every one regardless.
    #[arg(long, env = "LICENSE_SERVER_KEEP_ENDED_SESSIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub keep_ended_sessions: u64,

    /// New ledger entries after which the server writes a snapshot of its state, so that a start
    /// replays only the entries after the newest snapshot.
    #[arg(long, env = "LICENSE_SERVER_SNAPSHOT_EVERY", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub snapshot_every: u64,

    /// Age after which ledger entries move from the store into compressed archive segments in
    /// the data directory (`ledger-archive/`): days (`90`), or with a unit (`90d`, `12h`, `30m`,
    /// `10s`); `off` (or 0) keeps every entry in the store.
    #[arg(long, env = "LICENSE_SERVER_LEDGER_ARCHIVE_AFTER", default_value = "90d", value_parser = parse_retention)]
    pub ledger_archive_after: Retention,

    /// How often the server reports its ledger's head and usage to the vendor service
    /// (`--vendor-url`), which keeps the heads so a rewritten history shows there: days (`1`),
    /// or with a unit (`1d`, `12h`, `30m`, `10s`); `off` (or 0) reports only with activations.
    /// The first report goes at start.
    #[arg(long, env = "LICENSE_SERVER_LEDGER_REPORT_EVERY", default_value = "1d", value_parser = parse_retention)]
    pub ledger_report_every: Retention,

    /// Seconds after which the server writes a snapshot anyway, if there was any new entry.
    #[arg(long, env = "LICENSE_SERVER_SNAPSHOT_INTERVAL", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub snapshot_interval: u64,

    /// Connections each port holds at once; one more is answered 503 TOO_MANY_CONNECTIONS and
    /// closed. Cut at start to what the open-files limit allows (the log says so).
    #[arg(long, env = "LICENSE_SERVER_MAX_CONNECTIONS", default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Connections one client address holds at once on a port (429 beyond). A NAT gateway in
    /// front of a build farm is one address: allow for all its machines.
    #[arg(long, env = "LICENSE_SERVER_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections_per_address: u64,

    /// Seconds a connection may take to send a complete request header, and may stay idle
    /// between two requests, before it is closed (a request being answered, such as a license
    /// request waiting for a seat, is never cut).
    #[arg(long, env = "LICENSE_SERVER_CONNECTION_IDLE_TIMEOUT", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub connection_idle_timeout: u64,
}

impl ServeArgs {
    /// The engine's timing, checked for sense.
    pub fn engine(&self) -> Result<crate::engine::EngineConfig, String> {
        if self.heartbeat_interval >= self.session_timeout {
            return Err(format!(
                "--heartbeat-interval ({} s) must be shorter than --session-timeout ({} s), or \
                 every session would be dropped between two heartbeats",
                self.heartbeat_interval, self.session_timeout
            ));
        }
        Ok(crate::engine::EngineConfig {
            heartbeat_interval: std::time::Duration::from_secs(self.heartbeat_interval),
            timeout: std::time::Duration::from_secs(self.session_timeout),
            keep_ended: self.keep_ended_sessions as usize,
            snapshots: crate::engine::SnapshotPolicy {
                every_entries: self.snapshot_every,
                interval: std::time::Duration::from_secs(self.snapshot_interval),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    /// The API port: as given, or the license port + 1 (both "any free port" when the license port
    /// is 0, so tests and scripts can ask for two free ports with `--port 0`).
    pub fn api_port(&self) -> Result<u16, String> {
        let api_port = match (self.api_port, self.port) {
            (Some(api_port), _) => api_port,
            (None, 0) => 0,
            (None, port) => port.checked_add(1).ok_or_else(|| {
                format!(
                    "--port {port} leaves no room for the API port (--port + 1); set --api-port"
                )
            })?,
        };
        if api_port != 0 && api_port == self.port {
            return Err(format!(
                "the license port and the API port must differ (both are {api_port})"
            ));
        }
        Ok(api_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["license-server", "serve"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Serve(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn api_port_defaults_to_license_port_plus_one() {
        let args = serve(&[]);
        assert_eq!((args.port, args.api_port()), (1400, Ok(1401)));
        assert_eq!(serve(&["--port", "2000"]).api_port(), Ok(2001));
        assert_eq!(
            serve(&["--port", "2000", "--api-port", "8080"]).api_port(),
            Ok(8080)
        );
        assert_eq!(serve(&["--port", "0"]).api_port(), Ok(0));
    }

    #[test]
    fn impossible_api_ports_are_refused_with_a_reason() {
        let err = serve(&["--port", "65535"]).api_port().unwrap_err();
        assert!(err.contains("--api-port"), "{err}");
        let err = serve(&["--port", "2000", "--api-port", "2000"])
            .api_port()
            .unwrap_err();
        assert!(err.contains("must differ"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        for args in [
            &["--port", "70000"][..],
            &["--bind", "not-an-ip"],
            &["--port", "-1"],
        ] {
            let all = ["license-server", "serve"]
                .into_iter()
                .chain(args.iter().copied());
            assert!(Cli::try_parse_from(all).is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn the_ledger_retention_takes_days_or_a_unit_or_off() {
        let after = |args: &[&str]| serve(args).ledger_archive_after.0.map(|d| d.as_secs());
        assert_eq!(after(&[]), Some(90 * 86_400));
        assert_eq!(after(&["--ledger-archive-after", "30"]), Some(30 * 86_400));
        assert_eq!(after(&["--ledger-archive-after", "12h"]), Some(12 * 3_600));
        assert_eq!(after(&["--ledger-archive-after", "10s"]), Some(10));
        assert_eq!(after(&["--ledger-archive-after", "off"]), None);
        assert_eq!(after(&["--ledger-archive-after", "0"]), None);
        for bad in ["3w", "-1d", "d", "0s", "999999999999d"] {
            let all = ["license-server", "serve", "--ledger-archive-after", bad];
            assert!(Cli::try_parse_from(all).is_err(), "{bad} accepted");
        }
    }
}
