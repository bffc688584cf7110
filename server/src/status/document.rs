//! The status document of a pool, as `data.json` answers it and the live stream pushes it: the
//! pool's cartridges with the engine's statistics, optionally its sessions, and the servers.

use models::{Cartridge, StatusData};
use time::OffsetDateTime;

use crate::{app::AppState, licensing::pool::Pool};

/// The cartridges and sessions of `pool`, and this server.
pub fn collect(state: &AppState, pool: &Pool, with_sessions: bool) -> StatusData {
    StatusData {
        cartridges: cartridges(state, pool.name()),
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

/// The cartridges of `pool` (`None`: the default pool) now, with the engine's statistics.
pub fn cartridges(state: &AppState, pool: Option<&str>) -> Vec<Cartridge> {
    let snapshot = state.inventory.snapshot();
    let mut cartridges = Vec::clone(&snapshot.cartridges(pool, OffsetDateTime::now_utc()));
    state.engine.fill_statistics(&mut cartridges, pool);
    cartridges
}
