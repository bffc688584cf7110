//! Licenses: what a vendor signs and a server grants from.
//!
//! - [`keys`]: Ed25519 keys, the vendor's and the server's own, and the keys a server trusts;
//!   [`sealed`]: whether this build trusts compiled-in vendor keys only, or run-time ones;
//! - [`file`]: the license file format, signed and checked byte for byte;
//! - [`dir`]: the licenses directory of a data dir, and [`install`]: installing into it and
//!   removing from it;
//! - [`inventory`]: what a running server has to grant right now, as one immutable snapshot,
//!   with [`cartridges`] summed per pool and [`pool`] names;
//! - [`identity`]: who this server is (its id, bound to its machine by [`host`]), and the
//!   documents it signs for its vendor ([`server_document`]): the [`activation`] request to be
//!   licensed, the deactivation [`receipt`] when it gives a license back, and the
//!   [`ledger_report`] that anchors its ledger's head at the vendor, where [`anchors`] judges it.
//!
//! Nothing here knows of HTTP or of sessions: the engine reads the inventory, the admin API and
//! the CLI install through it.

pub mod activation;
pub mod anchors;
pub mod cartridges;
pub mod dir;
pub mod file;
pub mod host;
pub mod identity;
pub mod install;
pub mod inventory;
pub mod keys;
pub mod ledger_report;
pub mod pool;
pub mod receipt;
pub mod replicated;
pub mod sealed;
pub mod server_document;
