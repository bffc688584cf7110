//! Command line of the `license-server` binary. Every option also reads an environment variable
//! (`LICENSE_SERVER_*`), so a container or a systemd unit needs no wrapper script.

use std::{net::IpAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "license-server", version, about = "Network license server")]
pub struct Cli {
    /// Log format on stderr. The level comes from RUST_LOG (default `info`).
    #[arg(
        long,
        global = true,
        env = "LICENSE_SERVER_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the license server: license port and API port (status page, admin API).
    Serve(ServeArgs),
    /// Print this server's id, creating the data directory and the id if they do not exist yet
    /// (a license is bound to this id).
    ServerId(DataDirArg),
    /// The vendor's tools: create a signing key, issue license files.
    #[command(subcommand)]
    Vendor(VendorCommand),
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
    /// Measure a license server: full license cycles per second and latency, next to a baseline
    /// of the cheapest request, in the same run.
    Bench(BenchArgs),
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

#[derive(Debug, Clone, Args)]
pub struct ClientRunArgs {
    /// A license server's license port; repeat for the members of a failover network, tried in
    /// this order. The environment variable takes a comma-separated list.
    #[arg(
        long = "server",
        value_name = "HOST:PORT",
        env = "LICENSE_SERVER_SERVERS",
        value_delimiter = ',',
        required = true
    )]
    pub servers: Vec<String>,
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
    /// The program to run, and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["server", "spawn_server"])))]
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
        /// Where to write (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
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
pub enum VendorCommand {
    /// Create a vendor keypair: DIR/vendor.key (private, mode 0600) and DIR/vendor.pub (give this
    /// one to license servers). Never overwrites.
    Keygen {
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
    /// Issue a signed license file bound to one license server.
    Issue(Box<IssueArgs>),
    /// Run the vendor licensing service: customer accounts log in, list their licenses and
    /// activate them for their license servers.
    Serve(VendorServeArgs),
    /// Hash an account secret for the catalog (read from standard input, or prompted for).
    HashSecret,
}

#[derive(Debug, Clone, Args)]
pub struct VendorServeArgs {
    /// The vendor's private key, which signs the issued license files.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The accounts and their licenses (TOML; see examples/catalog.toml).
    #[arg(long, value_name = "FILE")]
    pub catalog: PathBuf,
    #[arg(long, env = "LICENSE_VENDOR_PORT", default_value_t = 1500)]
    pub port: u16,
    #[arg(long, env = "LICENSE_VENDOR_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Where the service keeps its activations and tokens.
    #[arg(long, env = "LICENSE_VENDOR_DATA_DIR", default_value = "./vendor-data")]
    pub data_dir: PathBuf,
    /// Seconds a licensing token lives without use.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub token_timeout: u64,
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Products: either --product-id/--major-version/--product with --runcount, --credits, --postpay for
one product, or --product-spec once per product (both may be combined):

  --product-spec \"ID:MAJOR:NAME:RUNCOUNT:CREDITS[:postpay]\"
  e.g. --product-spec \"1000:10:callas pdfToolbox CLI:8:0\" --product-spec \"1000:0:callas pdfToolbox CLI:0:100000:postpay\"

MAJOR 0 means any version. NAME may itself contain ':'.")]
pub struct IssueArgs {
    /// The vendor's private key (from `vendor keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The server the license is for, as `license-server server-id` prints it.
    #[arg(long, required_unless_present = "request", conflicts_with = "request")]
    pub server_id: Option<String>,
    /// An offline activation request from the server (`GET /server/manage/license/create`):
    /// its signature is checked and the license is bound to the server it names.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    #[arg(long, value_name = "N", requires = "product")]
    pub product_id: Option<u32>,
    /// Major version the license covers; 0 = any.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "product_id")]
    pub major_version: u32,
    /// Product name, as the status page shows it.
    #[arg(long, value_name = "NAME", requires = "product_id")]
    pub product: Option<String>,
    /// Processes that may run at once.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "product_id")]
    pub runcount: u32,
    /// Prepaid credits (one credit = one second of processing).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "product_id")]
    pub credits: u64,
    /// Credits may be used beyond those loaded and are billed afterwards.
    #[arg(long, requires = "product_id")]
    pub postpay: bool,
    /// Another product, as ID:MAJOR:NAME:RUNCOUNT:CREDITS[:postpay]; repeatable.
    #[arg(long = "product-spec", value_name = "SPEC", value_parser = parse_product_spec)]
    pub product_specs: Vec<models::ProductRule>,
    /// How many distinct licensed users there may be (default: no limit).
    #[arg(long, value_name = "N")]
    pub max_users: Option<u32>,
    /// When the license stops counting, RFC 3339 (e.g. 2027-12-31T23:59:59Z). Default: never.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub expires: Option<time::OffsetDateTime>,
    /// The cartridge's serial number (default: a random 9-digit number).
    #[arg(long, value_name = "N")]
    pub serial: Option<u64>,
    /// The license key (default: a random key like 7KQ2-M9XD-4HTA-PW3C).
    #[arg(long, value_name = "KEY")]
    pub license_key: Option<String>,
    /// Where to write the license file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `ID:MAJOR:NAME:RUNCOUNT:CREDITS[:postpay]`. Numbers are read from both ends, so the name in the
/// middle may contain colons.
pub fn parse_product_spec(spec: &str) -> Result<models::ProductRule, String> {
    let usage = "expected ID:MAJOR:NAME:RUNCOUNT:CREDITS or ID:MAJOR:NAME:RUNCOUNT:CREDITS:postpay";
    let mut fields: Vec<&str> = spec.split(':').collect();
    let postpay = fields.last() == Some(&"postpay");
    if postpay {
        fields.pop();
    }
    if fields.len() < 5 {
        return Err(format!("{spec:?}: {usage}"));
    }
    let number = |what: &str, text: &str| {
        text.trim().parse::<u64>().map_err(|_| {
            format!("{spec:?}: {what} {text:?} is not a non-negative integer ({usage})")
        })
    };
    let small = |what: &str, text: &str| {
        number(what, text)
            .and_then(|n| u32::try_from(n).map_err(|_| format!("{spec:?}: {what} is too large")))
    };
    let credits = number("CREDITS", fields[fields.len() - 1])?;
    let runcount = small("RUNCOUNT", fields[fields.len() - 2])?;
    Ok(models::ProductRule {
        product_id: small("ID", fields[0])?,
        major_version: small("MAJOR", fields[1])?,
        product: fields[2..fields.len() - 2].join(":"),
        runcount,
        credits,
        postpay,
    })
}

fn parse_rfc3339(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time such as 2027-12-31T23:59:59Z ({e})"))
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
    /// A vendor public key (PEM, from `vendor keygen`) that license files may be signed with.
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

    /// The vendor licensing service (`vendor serve`) that the admin API's `remote/...` endpoints
    /// call, e.g. http://licensing.example.com:1500.
    #[arg(long, env = "LICENSE_SERVER_VENDOR_URL")]
    pub vendor_url: Option<String>,

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
    fn product_specs_read_numbers_from_both_ends() {
        let rule = parse_product_spec("1000:10:callas: pdfToolbox CLI:8:250:postpay").unwrap();
        assert_eq!(
            (rule.product_id, rule.major_version, rule.product.as_str()),
            (1000, 10, "callas: pdfToolbox CLI")
        );
        assert_eq!((rule.runcount, rule.credits, rule.postpay), (8, 250, true));
        let rule = parse_product_spec("7:0:Tool:0:100").unwrap();
        assert_eq!((rule.runcount, rule.credits, rule.postpay), (0, 100, false));
        for bad in [
            "7:0:Tool:0",
            "x:0:Tool:0:1",
            "7:0:Tool:-1:1",
            "7:0:Tool:1:1:prepaid",
        ] {
            let err = parse_product_spec(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
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
}
