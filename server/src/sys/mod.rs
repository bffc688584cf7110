//! The machine under the server: the data directory and its lock, files written atomically,
//! process limits, change counters that tasks wait on, signals, the service manager, logging, the Prometheus text format, and the
//! small encodings every room uses (hex, RFC 3339). It knows nothing of licenses, HTTP or the
//! store: every other room may use it, it uses none of them.

pub mod atomic_file;
pub mod changes;
pub mod data_dir;
pub mod hex;
pub mod limits;
pub mod logging;
pub mod prometheus;
pub mod service;
pub mod signals;
pub mod timestamp;

/// The server software's version, as shown on the status page.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
