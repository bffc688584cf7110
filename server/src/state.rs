//! State shared by the handlers of both ports.

use std::{ops::Deref, sync::Arc};

use crate::{
    auth::Auth, identity::Identity, inventory::Inventory, keys::KeyPair, sessions::Engine,
    store::Store,
};

/// Cheap to clone: one `Arc` for every request.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub store: Store,
    pub identity: Identity,
    /// Licenses and pools; refreshed by its own task, read by every status request and grant.
    pub inventory: Arc<Inventory>,
    /// Sessions and grants.
    pub engine: Arc<Engine>,
    /// Administrators and their tokens.
    pub auth: Auth,
    /// This server's own key: it signs the offline activation requests it creates.
    pub server_key: KeyPair,
    /// The vendor licensing service, when configured (`--vendor-url`).
    pub vendor_url: Option<String>,
}

impl AppState {
    pub fn new(
        store: Store,
        identity: Identity,
        inventory: Arc<Inventory>,
        engine: Arc<Engine>,
        auth: Auth,
        server_key: KeyPair,
        vendor_url: Option<String>,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            identity,
            inventory,
            engine,
            auth,
            server_key,
            vendor_url,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
