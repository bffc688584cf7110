//! The logging options both binaries share.

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, Args)]
pub struct LogArgs {
    /// Log format on stderr. The level comes from RUST_LOG (default `info`).
    #[arg(
        long,
        global = true,
        env = "LICENSE_SERVER_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    pub log_format: LogFormat,
}

impl LogArgs {
    pub fn json(self) -> bool {
        self.log_format == LogFormat::Json
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}
