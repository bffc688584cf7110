//! State shared by the handlers of both ports.

use std::{ops::Deref, sync::Arc};

use crate::{identity::Identity, inventory::Inventory, store::Store};

/// Cheap to clone: one `Arc` for every request.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub store: Store,
    pub identity: Identity,
    /// Licenses and pools; refreshed by its own task, read by every status request and grant.
    pub inventory: Arc<Inventory>,
}

impl AppState {
    pub fn new(store: Store, identity: Identity, inventory: Arc<Inventory>) -> Self {
        Self(Arc::new(Inner {
            store,
            identity,
            inventory,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
