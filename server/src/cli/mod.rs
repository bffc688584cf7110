//! Command line of the `license-server` binary. Every option also reads an environment variable
//! (`LICENSE_SERVER_*`), so a container or a systemd unit needs no wrapper script; `serve` also
//! takes its options from a TOML file (`--config`, [`config_file`]).

mod args;
mod client;
pub mod config_file;
mod log;
mod vendor;

pub use args::*;
pub use client::{BenchArgs, ClientRunArgs, LossPolicy, TypeArg};
pub use config_file::parse;
pub use log::{LogArgs, LogFormat};
pub use vendor::{IssueArgs, VendorCli, VendorCommand, VendorServeArgs, parse_product_spec};
