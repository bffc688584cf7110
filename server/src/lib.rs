//! The license server: a license port where client machines ask for licenses, and an API port
//! with the status page, its data and the admin REST API.
//!
//! `serve::start` wires everything together; each port has its own router (`license_port`,
//! `api`) over one shared [`state::AppState`], so tests can call either router directly with
//! `oneshot` or start the whole server on port 0.

pub mod activation;
pub mod admin;
pub mod api;
pub mod assets;
pub mod atomic_file;
pub mod auth;
pub mod browse;
pub mod cartridges;
pub mod cli;
pub mod client;
pub mod commands;
pub mod data_dir;
pub mod error;
pub mod extract;
pub mod history;
pub mod identity;
pub mod inventory;
pub mod keys;
pub mod ledger;
pub mod license_file;
pub mod license_port;
pub mod licenses;
pub mod logging;
pub mod openapi;
pub mod pool;
pub mod remote;
pub mod serve;
pub mod sessions;
pub mod signals;
pub mod state;
pub mod status;
pub mod store;
pub mod vendor_service;
pub mod vendor_store;

/// The server software's version, as shown on the status page.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
