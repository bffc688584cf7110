//! The server's integration tests: one binary (link once, run everything).
//!
//! - `admin`: the licensing admin API over TCP;
//! - `anchoring`: ledger heads reported to the vendor, and a rewritten history found there;
//! - `api`: the API router called with `oneshot`, no network;
//! - `backup`: `backup` under load, `restore`, and damaged archives;
//! - `archive`: old ledger entries moved into segment files, read back, a missing segment, and
//!   `kill -9` while archiving;
//! - `browse`: the status page's paged sessions and cartridge history;
//! - `serve`: the whole server started in-process on port 0;
//! - `connections`: slow, idle and too many connections;
//! - `events`: the status document pushed over `GET /status/events`, per pool, and the streams'
//!   end at shutdown;
//! - `binary`: the real `license-server` executable, for what only a process shows (exit codes,
//!   messages, signals);
//! - `client`: `license-server client run` against a real server;
//! - `license_loss`: `client run` when its license is released or its server is gone;
//! - `host_binding`: a data directory copied to another (simulated) machine;
//! - `layout`: the house rules of `server/src` (rooms, imports, file sizes), read from the source;
//! - `ledger`: `ledger verify | export`, and the tamper test;
//! - `snapshots`: starts from snapshots, a damaged one, and a ledger cut short, rewritten or
//!   appended to;
//! - `faults`: `kill -9` under load (once, and the soak), and a full disk;
//! - `sealed`: sealed and development builds, and the customer binary without vendor tools;
//! - `protocol`: the license protocol over TCP, every rule;
//! - `recovery`: a failed ledger write, and taking changes again without a restart;
//! - `refusals`: why a license was refused, in the export and the statistics;
//! - `tls`: https on both ports and the vendor service with a test CA, certificates reloaded;
//! - `transfer`: deactivating a license at the vendor and activating it for another server;
//! - `vendor`: the vendor licensing service and online activation through `remote/...`;
//! - `license_removal`: removing licenses, duplicate serials, newer issues;
//! - `log_secrets`: no password or token in any log line, at trace;
//! - `metrics`: `GET /metrics` of a busy server against the status page and `promtool`, and
//!   compressed answers;
//! - `licensing`: vendor keys, license files and cartridges, through the real CLI and server;
//! - `network`: a failover network of three member processes: shared seats, one status, one
//!   ledger; `network_faults`: its members killed, paused, down for a while; `network_partition`:
//!   the coordinator cut off by a real partition between network namespaces (as root);
//!   `network_members`: a lost member replaced while the network serves.

#![allow(clippy::unwrap_used)]

mod admin;
mod anchoring;
mod api;
mod archive;
mod backup;
mod binary;
mod browse;
mod client;
mod connections;
mod events;
mod faults;
mod host_binding;
mod layout;
mod ledger;
mod license_loss;
mod license_removal;
mod licensing;
mod log_secrets;
mod metrics;
mod network;
mod network_faults;
mod network_members;
mod network_partition;
mod protocol;
mod recovery;
mod refusals;
mod sealed;
mod serve;
mod snapshots;
mod support;
mod tls;
mod transfer;
mod usage;
mod vendor;
