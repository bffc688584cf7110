//! What the vendor service's handlers share: the catalog, the signing key, its store and its
//! login gate.

use std::{sync::Arc, time::Duration};

use super::catalog::Catalog;
use crate::{auth::LoginGate, licensing::keys::KeyPair, store::VendorStore};

/// The realm of the vendor's accounts, as a login answer names it.
pub const REALM: &str = "vendor";

#[derive(Debug)]
pub struct Inner {
    pub(super) catalog: Catalog,
    pub(super) key: KeyPair,
    pub(super) store: VendorStore,
    pub(super) gate: LoginGate,
    pub(super) token_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct VendorState(pub(super) Arc<Inner>);
