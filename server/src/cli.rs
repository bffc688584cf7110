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
}

impl ServeArgs {
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
}
