//! The status document of a pool, as `data.json` answers it and the live stream pushes it: the
//! pool's cartridges with the engine's statistics, optionally its sessions, and the servers.

use models::StatusData;

use crate::{app::AppState, licensing::pool::Pool};

/// The cartridges and sessions of `pool`, and this server.
pub fn collect(state: &AppState, pool: &Pool, with_sessions: bool) -> StatusData {
    StatusData {
        cartridges: state.cartridges(pool.name()),
        sessions: if with_sessions {
            state.engine.sessions(pool.name())
        } else {
            Vec::new()
        },
        servers: match &state.network {
            Some(network) => network.servers(state.identity.record()),
            None => vec![state.identity.record()],
        },
    }
}
