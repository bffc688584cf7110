//! The license server: a license port where client machines ask for licenses, and an API port
//! with the status page, its data and the admin REST API; and the vendor's licensing service.
//!
//! # Layout
//!
//! The code is grouped in rooms, one folder each, by what it does:
//!
//! | room | what it does |
//! | --- | --- |
//! | `serve`, `ports`, `openapi` | start and stop the server; put each port's router together from the rooms' routes; the OpenAPI documents |
//! | `app` | the composition root: [`App::open`] builds store, ledger replay, inventory, engine and logins into the [`AppState`] that `serve` and the tests use alike |
//! | `protocol` | the license port's routes: sessions, license requests, heartbeats, releases |
//! | `status` | `data.json`, `sessions.json`, `history.json`, the live push of `/status/events`, `/metrics`, `/health`, `/ready`: what the status page and monitoring read |
//! | `admin` | the admin API: logins, licenses, licensed users, force-release, and the calls to the vendor service (`remote`) |
//! | `anchoring` | the ledger's head and usage reported to the vendor service, so a rewritten history shows there |
//! | `peers` | the failover network's member-to-member Raft endpoints, signed calls and answers |
//! | `vendor` | the vendor licensing service (`license-vendor serve`): catalog, logins, activations |
//! | `engine` | sessions, grants, waiters, heartbeats and statistics: a fold of the ledger, decided under one lock; its snapshots, and the background audit of the history before them |
//! | `licensing` | keys and which of them this build trusts (sealed or development), license files, the licenses directory (install, remove), the inventory of cartridges and pools, this server's identity, activation requests |
//! | `auth` | administrators: passwords, tokens, the login gate, permissions, licensed users |
//! | `failover` | the failover network's replicated ledger: Raft (openraft) log and state machine in the member's store |
//! | `usage` | the ledger folded into hourly and daily totals per cartridge, host and user, and the usage reports made from them; the license history; the status page's last 24 hours |
//! | `ledger` | the hash-chained events: the chain, the group-commit writer, verification, the signed head, the archive of old entries, export |
//! | `store` | SQLite, one module per group of tables; the only place with SQL |
//! | `http` | what the HTTP rooms share: the one error type and its mapping from the domain's errors, extractors, common layers, the embedded web UI |
//! | `sys` | the machine: the data directory and its lock, atomic files, signals, logging, hex and time text |
//! | `cli`, `commands`, `client` | the command line, the subcommands other than `serve`, and the license protocol's client |
//! | `fuzzing` | the parsers a stranger's bytes reach, as the fuzz targets in `fuzz/` call them |
//!
//! # The dependency rule
//!
//! Data flows one way, and so do imports:
//!
//! ```text
//! serve → ports → protocol, status, admin, vendor, peers → anchoring → app → engine, licensing, auth, failover, usage → ledger → store
//! ```
//!
//! `engine` reads `licensing` (the inventory it grants from); neither imports anything above it.
//! The domain (`engine`, `licensing`, `auth`) knows nothing of HTTP: it returns its own error
//! enums, which `http::error` maps to a status and an `ErrorCode` in one place. `http` is used by
//! the HTTP rooms only, and its only knowledge of the domain is those error enums. `sys` and the
//! wire types of the `models` crate are leaves: every room may use them, they use no room. The
//! vendor service's own tables are in `store::vendor`, since the store is the only room with SQL.
//! Inside a room, a module's siblings are imported by path (`super::state::State`); a folder's
//! `mod.rs` only declares and re-exports, so no module imports its parent.
//!
//! The rooms are private (but `fuzzing`, for the fuzz crate). What the two binaries (`main.rs`: `license-server`, what customers
//! install; `main_vendor.rs`: `license-vendor`, the vendor's tools) and the integration tests
//! (`tests/it`) use is re-exported below.

mod admin;
mod anchoring;
mod app;
mod auth;
pub mod cli;
mod client;
pub mod commands;
mod engine;
mod failover;
pub mod fuzzing;
mod http;
mod ledger;
mod licensing;
mod openapi;
mod peers;
mod ports;
mod protocol;
mod serve;
mod status;
mod store;
mod sys;
mod usage;
mod vendor;

pub use crate::{
    app::{App, AppConfig, AppState, LedgerTask},
    auth::passwords::hash_password,
    client::{ClientError, LicenseClient},
    engine::{Clock, EngineConfig},
    http::{accept::ConnectionLimits, tls::TlsFiles},
    ledger::{Event, export::Filter as LedgerFilter, verify as verify_ledger},
    licensing::{
        activation,
        dir::LicenseDir,
        file as license_file,
        identity::{Binding, Identity, ServerId, hostname},
        keys::{KeyPair, TrustedKeys},
        ledger_report, receipt, server_document,
    },
    openapi::{api_port_doc, combined_doc, license_port_doc},
    ports::{api_port, license_port},
    serve::{Running, ServeConfig, start},
    store::{AdminUserRow, Store, TokenRow},
    sys::{
        VERSION,
        data_dir::{DataDir, INITIAL_PASSWORD_FILE},
        logging, service, signals,
    },
    vendor::{RunningVendor, VendorConfig, start as start_vendor},
};
