//! The subcommands other than `serve`: what an administrator or a vendor types. Each writes its
//! result to the `out` it is given (standard output in the binary, a buffer in tests) and returns
//! an error with a sentence a person can act on.

pub mod backup;
pub mod bench;
pub mod cartridge;
pub mod client;
mod inputs;
pub mod ledger;
pub mod license;
mod license_keeper;
pub mod licensed_users;
pub mod manual;
mod mass_drop;
pub mod network;
mod network_bench;
pub mod restore;
pub mod server_id;
mod spawned_server;
mod startup_bench;
mod stream_bench;
mod usage_bench;
pub mod user;
pub mod vendor;
pub mod vendor_heads;
