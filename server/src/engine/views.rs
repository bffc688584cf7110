//! What the engine shows: statistics per cartridge, the sessions (all of them, one page of them,
//! one), and the sampled history. Read under the lock, copied out.

use models::{Cartridge, HeldLicense, LicenseType, SessionPage, SessionQuery, SessionStatus};

use super::{
    browse,
    machine::Engine,
    state::{CartridgeKey, GrantState, SessionState, State, Stats},
};

impl Engine {
    /// Adds the statistics to `cartridges` of `pool`.
    pub fn fill_statistics(&self, cartridges: &mut [Cartridge], pool: Option<&str>) {
        let state = self.lock();
        for cartridge in cartridges {
            let key = (
                pool.map(str::to_owned),
                cartridge.product_id,
                cartridge.major_version,
            );
            if let Some(stats) = state.stats.get(&key) {
                let s = &mut cartridge.statistic;
                s.licenses.runcount = stats.runcount_grants;
                s.licenses.credits = stats.credit_grants;
                s.licenses.failed = stats.failed;
                s.licenses.failed_by_reason = stats.failed_by_reason.clone();
                s.used_credits = stats.used_credits;
                s.remaining_credits = cartridge.credits.saturating_sub(stats.used_credits);
                s.runcount_in_use = stats.runcount_in_use;
                s.sessions_dropped = stats.sessions_dropped;
            }
        }
    }

    /// Sessions of `pool`, newest first.
    pub fn sessions(&self, pool: Option<&str>) -> Vec<models::Session> {
        let state = self.lock();
        state
            .sessions
            .iter()
            .rev()
            .filter(|(_, s)| s.pool.as_deref() == pool)
            .map(|(id, s)| self.session_model(&state, *id, s))
            .collect()
    }

    /// One page of the sessions of `pool`, filtered and sorted as `query` asks. The filtering
    /// borrows from the state under the lock; only the page's sessions are copied out.
    pub fn session_page(&self, pool: Option<&str>, query: &SessionQuery) -> SessionPage {
        let state = self.lock();
        let rows: Vec<browse::Row<'_>> = state
            .sessions
            .iter()
            .filter(|(_, s)| s.pool.as_deref() == pool)
            .map(|(id, s)| browse::Row {
                session_id: *id,
                status: s.status,
                host: &s.host,
                user: s.user.as_ref(),
                started: s.started,
                message: &s.message,
                products: if s.status == SessionStatus::Running {
                    s.held
                        .iter()
                        .filter_map(|id| state.grants.get(id))
                        .map(|g| (g.key.1, g.product.as_str()))
                        .collect()
                } else {
                    granted(&state, s)
                        .map(|g| (g.key.1, g.product.as_str()))
                        .collect()
                },
            })
            .collect();
        let total = rows.len() as u64;
        let (matched, ids) = browse::select(rows, query);
        let sessions = ids
            .into_iter()
            .filter_map(|id| state.sessions.get(&id).map(|s| (id, s)))
            .map(|(id, s)| self.session_model(&state, id, s))
            .collect();
        SessionPage {
            total,
            matched,
            offset: query.offset,
            sessions,
        }
    }

    fn session_model(&self, state: &State, id: u64, s: &SessionState) -> models::Session {
        models::Session {
            server_id: s
                .server_id
                .clone()
                .unwrap_or_else(|| self.server_id.clone()),
            session_id: id,
            status: s.status,
            host: s.host.clone(),
            ip_address: s.ip_address,
            started: s.started.replace_nanosecond(0).unwrap_or(s.started),
            message: s.message.clone(),
            licenses: s
                .held
                .iter()
                .filter_map(|id| state.grants.get(id))
                .map(held_license)
                .collect(),
            granted: granted(state, s).map(held_license).collect(),
            user: s.user.clone(),
            ended: s.ended.map(|t| t.replace_nanosecond(0).unwrap_or(t)),
        }
    }

    /// The state of one session, if the server still keeps it.
    pub fn session_status(&self, session_id: u64) -> Option<SessionStatus> {
        self.lock().sessions.get(&session_id).map(|s| s.status)
    }

    /// The sampled history of the cartridges of `pool`, up to now.
    pub fn history(&self, pool: Option<&str>) -> models::History {
        self.history.chart(pool, self.now(), &self.all_stats())
    }

    /// The live counters of every cartridge of every pool, for the sampled history.
    pub fn all_stats(&self) -> Vec<(CartridgeKey, Stats)> {
        self.lock()
            .stats
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// Statistics of one cartridge (for tests and tools).
    pub fn stats(&self, pool: Option<&str>, product_id: u32, major_version: u32) -> Stats {
        let key = (pool.map(str::to_owned), product_id, major_version);
        self.lock().stats.get(&key).cloned().unwrap_or_default()
    }
}

fn held_license(g: &GrantState) -> HeldLicense {
    HeldLicense {
        product_id: g.key.1,
        major_version: g.key.2,
        product: g.product.clone(),
        license_type: g.license_type,
    }
}

/// Every product `session` was granted, once each (by product, version and type), in the order
/// of its first grant.
pub(super) fn granted<'a>(
    state: &'a State,
    session: &'a SessionState,
) -> impl Iterator<Item = &'a GrantState> {
    let mut seen: Vec<(&CartridgeKey, LicenseType)> = Vec::new();
    session
        .granted
        .iter()
        .filter_map(|id| state.grants.get(id))
        .filter(move |g| {
            let key = (&g.key, g.license_type);
            let new = !seen.contains(&key);
            if new {
                seen.push(key);
            }
            new
        })
}
