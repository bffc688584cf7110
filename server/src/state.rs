//! State shared by the handlers of both ports.

use std::{ops::Deref, sync::Arc};

use crate::{identity::Identity, store::Store};

/// Cheap to clone: one `Arc` for every request.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub store: Store,
    pub identity: Identity,
}

impl AppState {
    pub fn new(store: Store, identity: Identity) -> Self {
        Self(Arc::new(Inner { store, identity }))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
