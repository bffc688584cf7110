//! The fold of ledger entries into usage totals: a pure function of the entries, so that the
//! totals are the same whether they were built entry by entry as the server ran or all at once
//! from an old ledger (a test checks both on random histories).
//!
//! What it keeps in memory is what is *open* at the last entry folded in: the sessions (for the
//! host and user a grant is counted for) and the licenses held (whose time is counted when they
//! are released, split over the hours and days they were held), and per cartridge how many
//! licenses are held, for the peak of each hour. Everything else goes into a [`Delta`]: totals to
//! add to the store's rows, and the changes to the open sessions and licenses, which the store
//! writes in the same transaction as the new cursor.

use std::collections::HashMap;

use models::User;

use crate::{
    ledger::{Entry, Event},
    store::{
        license_history::LicenseChange,
        usage::{Cartridge, Cursor, DayTotals, Delta, Held, HourTotals, Party, RefusalKey},
    },
};

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;
/// The most hours one change fills with the level held before it (a license held for years is
/// counted in full, but its level is drawn for the last year only).
const MOST_HOURS_FILLED: i64 = 366 * 24;

/// How many licenses of a cartridge are held, and the hour up to which that level is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    held: u32,
    hour: i64,
}

/// The open sessions and licenses as of [`Fold::cursor`], and the totals not yet taken.
#[derive(Debug, Default)]
pub struct Fold {
    sessions: HashMap<u64, Party>,
    held: HashMap<u64, Held>,
    levels: HashMap<Cartridge, Level>,
    /// Product names, as the grants named them.
    names: HashMap<(u32, u32), String>,
    cursor: Option<Cursor>,
    delta: Delta,
}

pub fn hour_of(t: i64) -> i64 {
    t - t.rem_euclid(HOUR)
}

pub fn day_of(t: i64) -> i64 {
    t - t.rem_euclid(DAY)
}

/// The seconds of `[since, until)` in each bucket of `size` seconds: `(bucket start, seconds)`.
pub fn split(since: i64, until: i64, size: i64) -> impl Iterator<Item = (i64, u64)> {
    let mut at = since;
    std::iter::from_fn(move || {
        if at >= until {
            return None;
        }
        let bucket = at - at.rem_euclid(size);
        let end = (bucket + size).min(until);
        let seconds = u64::try_from(end - at).unwrap_or(0);
        at = end;
        Some((bucket, seconds))
    })
}

/// Who a session opened on `host` for `user` runs for.
fn party(host: &str, user: Option<&User>) -> Party {
    Party {
        host: host.to_owned(),
        realm: user.map(|u| u.realm.clone()).unwrap_or_default(),
        principal: user.map(|u| u.principal.clone()).unwrap_or_default(),
    }
}

/// Records that `id` was closed: a row the store has is deleted, one that opened since the last
/// [`Fold::take`] is never written.
fn forget<T>(changes: &mut HashMap<u64, Option<T>>, id: u64) {
    if let Some(Some(_)) = changes.remove(&id) {
        return;
    }
    changes.insert(id, None);
}

impl Fold {
    /// The fold as the store left it: the open sessions and licenses at `cursor`.
    pub fn resume(
        cursor: Option<Cursor>,
        sessions: HashMap<u64, Party>,
        held: HashMap<u64, Held>,
    ) -> Self {
        let hour = cursor.as_ref().map_or(0, |c| hour_of(c.at));
        let mut levels: HashMap<Cartridge, Level> = HashMap::new();
        for license in held.values() {
            levels
                .entry(license.cartridge.clone())
                .or_insert(Level { held: 0, hour })
                .held += 1;
        }
        Self {
            sessions,
            held,
            levels,
            names: HashMap::new(),
            cursor,
            delta: Delta::default(),
        }
    }

    pub fn cursor(&self) -> Option<&Cursor> {
        self.cursor.as_ref()
    }

    /// The licenses held now.
    pub fn held(&self) -> impl Iterator<Item = &Held> {
        self.held.values()
    }

    /// How many licenses of `cartridge` are held now.
    pub fn level(&self, cartridge: &Cartridge) -> u32 {
        self.levels.get(cartridge).map_or(0, |l| l.held)
    }

    pub fn name(&self, product_id: u32, major_version: u32) -> Option<&str> {
        self.names
            .get(&(product_id, major_version))
            .map(String::as_str)
    }

    /// Folds in `entry`.
    pub fn apply(&mut self, entry: &Entry) {
        let at = entry.at.unix_timestamp();
        match &entry.event {
            Event::SessionOpened {
                session_id,
                host,
                user,
                ..
            } => {
                let party = party(host, user.as_ref());
                self.sessions.insert(*session_id, party.clone());
                self.delta.sessions.insert(*session_id, Some(party));
            }
            Event::LicenseGranted {
                session_id,
                license_id,
                product_id,
                major_version,
                product,
                pool,
                ..
            } => {
                let cartridge = Cartridge {
                    pool: pool.clone().unwrap_or_default(),
                    product_id: *product_id,
                    major_version: *major_version,
                };
                let party = self.sessions.get(session_id).cloned().unwrap_or_default();
                self.names
                    .entry((*product_id, *major_version))
                    .or_insert_with(|| product.clone());
                self.change_level(&cartridge, at, 1);
                self.hour(&cartridge, at).grants += 1;
                self.day(&cartridge, &party, at).grants += 1;
                let held = Held {
                    cartridge,
                    party,
                    since: at,
                };
                self.held.insert(*license_id, held.clone());
                self.delta.held.insert(*license_id, Some(held));
            }
            Event::LicenseRefused {
                product_id,
                major_version,
                pool,
                reason,
                ..
            } => self.refused(
                at,
                pool.as_deref(),
                Some((*product_id, *major_version)),
                reason.map_or("", |r| r.as_str()),
            ),
            Event::SessionRefused { pool, reason, .. } => {
                self.refused(at, pool.as_deref(), None, reason.as_str());
            }
            Event::LicenseReleased {
                license_id,
                credits_used,
            } => self.release(*license_id, *credits_used, at),
            Event::SessionClosed {
                session_id,
                released,
                ..
            } => {
                for license in released {
                    self.release(license.license_id, license.credits_used, at);
                }
                self.sessions.remove(session_id);
                forget(&mut self.delta.sessions, *session_id);
            }
            Event::LicenseInstalled {
                key,
                sha256,
                serial_number,
                by,
                replaced,
                file,
            } => self.delta.licenses.push(LicenseChange::Installed {
                sha256: sha256.clone(),
                key: key.clone(),
                serial_number: *serial_number,
                at,
                by: by.clone().unwrap_or_default(),
                replaced: replaced.clone(),
                file: file.clone(),
            }),
            Event::LicenseRemoved { sha256, by, .. } => {
                self.delta.licenses.push(LicenseChange::Removed {
                    sha256: sha256.clone(),
                    at,
                    by: by.clone(),
                });
            }
            _ => {}
        }
        // The hash is set by `take`: only the last entry's is ever stored.
        self.cursor = Some(Cursor {
            seq: entry.seq,
            hash: String::new(),
            at,
        });
    }

    /// What was folded in since the last call, the last entry's hash being `hash`, with each
    /// held level recorded up to that entry's hour.
    pub fn take(&mut self, hash: &str) -> Delta {
        if let Some(cursor) = &mut self.cursor {
            hash.clone_into(&mut cursor.hash);
        }
        if let Some(at) = self.cursor.as_ref().map(|c| c.at) {
            let cartridges: Vec<Cartridge> = self.levels.keys().cloned().collect();
            for cartridge in cartridges {
                self.change_level(&cartridge, at, 0);
            }
        }
        let mut delta = std::mem::take(&mut self.delta);
        delta.cursor.clone_from(&self.cursor);
        delta
    }

    fn refused(&mut self, at: i64, pool: Option<&str>, product: Option<(u32, u32)>, why: &str) {
        let key = RefusalKey {
            hour: hour_of(at),
            pool: pool.unwrap_or_default().to_owned(),
            product,
            reason: why.to_owned(),
        };
        *self.delta.refusals.entry(key).or_default() += 1;
    }

    fn release(&mut self, license_id: u64, credits: u64, at: i64) {
        let Some(held) = self.held.remove(&license_id) else {
            return;
        };
        forget(&mut self.delta.held, license_id);
        self.change_level(&held.cartridge, at, -1);
        for (hour, seconds) in split(held.since, at, HOUR) {
            self.hour(&held.cartridge, hour).held_seconds += seconds;
        }
        for (day, seconds) in split(held.since, at, DAY) {
            self.day(&held.cartridge, &held.party, day).held_seconds += seconds;
        }
        self.hour(&held.cartridge, at).credits += credits;
        self.day(&held.cartridge, &held.party, at).credits += credits;
    }

    /// Records the level held so far in every hour up to `at`'s, then changes it by `by`.
    fn change_level(&mut self, cartridge: &Cartridge, at: i64, by: i32) {
        let now = hour_of(at);
        let level = *self
            .levels
            .entry(cartridge.clone())
            .or_insert(Level { held: 0, hour: now });
        if level.held > 0 {
            let first = (level.hour + HOUR).max(now - MOST_HOURS_FILLED * HOUR);
            let mut hour = first;
            while hour <= now {
                let totals = self.hour(cartridge, hour);
                totals.peak = totals.peak.max(level.held);
                hour += HOUR;
            }
        }
        let held = level.held.saturating_add_signed(by);
        if held > 0 && by > 0 {
            let totals = self.hour(cartridge, at);
            totals.peak = totals.peak.max(held);
        }
        if held == 0 {
            self.levels.remove(cartridge);
        } else {
            self.levels.insert(
                cartridge.clone(),
                Level {
                    held,
                    hour: now.max(level.hour),
                },
            );
        }
    }

    fn hour(&mut self, cartridge: &Cartridge, at: i64) -> &mut HourTotals {
        self.delta
            .hours
            .entry((cartridge.clone(), hour_of(at)))
            .or_default()
    }

    fn day(&mut self, cartridge: &Cartridge, party: &Party, at: i64) -> &mut DayTotals {
        self.delta
            .days
            .entry((cartridge.clone(), party.clone(), day_of(at)))
            .or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use models::SessionStatus;
    use time::OffsetDateTime;

    use super::*;
    use crate::ledger::ReleasedLicense;

    /// What the store keeps, merged as `Store::write_usage` merges it.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Tables {
        hours: HashMap<(Cartridge, i64), HourTotals>,
        days: HashMap<(Cartridge, Party, i64), DayTotals>,
        refusals: HashMap<RefusalKey, u64>,
        sessions: HashMap<u64, Party>,
        held: HashMap<u64, Held>,
        cursor: Option<Cursor>,
    }

    impl Tables {
        fn add(&mut self, delta: Delta) {
            for (key, t) in delta.hours {
                let row = self.hours.entry(key).or_default();
                row.grants += t.grants;
                row.held_seconds += t.held_seconds;
                row.peak = row.peak.max(t.peak);
                row.credits += t.credits;
            }
            for (key, t) in delta.days {
                self.days.entry(key).or_default().add(&t);
            }
            for (key, n) in delta.refusals {
                *self.refusals.entry(key).or_default() += n;
            }
            for (id, party) in delta.sessions {
                match party {
                    Some(p) => self.sessions.insert(id, p),
                    None => self.sessions.remove(&id),
                };
            }
            for (id, held) in delta.held {
                match held {
                    Some(h) => self.held.insert(id, h),
                    None => self.held.remove(&id),
                };
            }
            self.cursor = delta.cursor;
        }
    }

    const T0: i64 = 1_796_000_400 - 1_796_000_400 % DAY; // a midnight

    fn entry(seq: u64, at: i64, event: Event) -> Entry {
        Entry {
            seq,
            at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
            event,
        }
    }

    fn opened(session_id: u64, host: &str) -> Event {
        Event::SessionOpened {
            session_id,
            host: host.to_owned(),
            ip_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            message: String::new(),
            pool: None,
            user: Some(User {
                realm: "corp".to_owned(),
                principal: format!("user-{}", session_id % 3),
            }),
            token_sha256: None,
            server_id: None,
        }
    }

    fn granted(session_id: u64, license_id: u64, product_id: u32) -> Event {
        Event::LicenseGranted {
            session_id,
            license_id,
            request_id: license_id.to_string(),
            product_id,
            major_version: 0,
            product: format!("P{product_id}"),
            license_type: models::LicenseType::Runcount,
            pool: None,
        }
    }

    fn seat() -> Cartridge {
        Cartridge {
            pool: String::new(),
            product_id: 7,
            major_version: 0,
        }
    }

    #[test]
    fn time_is_split_over_the_hours_held_and_each_hour_keeps_its_peak() {
        let h = |n: i64| T0 + 10 * HOUR + n * 60; // minutes after 10:00
        let entries = [
            entry(1, h(0), opened(1, "ci-1")),
            entry(2, h(30), granted(1, 10, 7)),
            entry(3, h(45), granted(1, 11, 7)),
            entry(
                4,
                h(135),
                Event::LicenseReleased {
                    license_id: 10,
                    credits_used: 5,
                },
            ),
        ];
        let mut fold = Fold::default();
        entries.iter().for_each(|e| fold.apply(e));
        let delta = fold.take("hash-4");
        let hour = |n: i64| delta.hours[&(seat(), T0 + n * HOUR)];
        assert_eq!(hour(10).grants, 2);
        assert_eq!(hour(10).peak, 2);
        assert_eq!(hour(11).peak, 2, "held through 11:00");
        assert_eq!(hour(12).peak, 2, "released at 12:15, after both were held");
        assert_eq!(
            (
                hour(10).held_seconds,
                hour(11).held_seconds,
                hour(12).held_seconds
            ),
            (1800, 3600, 900),
            "license 10's time; license 11 is still held and not counted yet"
        );
        assert_eq!(hour(12).credits, 5);
        assert_eq!(fold.level(&seat()), 1);
        assert_eq!(
            delta.held.len(),
            1,
            "license 10 came and went within the delta"
        );
        assert_eq!(delta.cursor.unwrap().hash, "hash-4");
    }

    /// Random sessions, grants, releases, refusals and closes over three days.
    fn history(seed: u64) -> Vec<Entry> {
        let mut state = seed;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % n
        };
        let (mut at, mut entries) = (T0, Vec::new());
        let (mut sessions, mut held): (Vec<u64>, Vec<(u64, u64)>) = (Vec::new(), Vec::new());
        for seq in 1..=400 {
            at += i64::try_from(next(4 * HOUR as u64 / 10)).unwrap();
            let event = match next(6) {
                0 | 1 if !sessions.is_empty() => {
                    let session = sessions[usize::try_from(next(sessions.len() as u64)).unwrap()];
                    held.push((session, seq));
                    granted(session, seq, 7 + u32::try_from(next(2)).unwrap())
                }
                2 if !held.is_empty() => {
                    let (_, license_id) =
                        held.remove(usize::try_from(next(held.len() as u64)).unwrap());
                    Event::LicenseReleased {
                        license_id,
                        credits_used: next(3),
                    }
                }
                3 if !sessions.is_empty() => {
                    let session =
                        sessions.remove(usize::try_from(next(sessions.len() as u64)).unwrap());
                    let released = held
                        .iter()
                        .filter(|(s, _)| *s == session)
                        .map(|(_, license_id)| ReleasedLicense {
                            license_id: *license_id,
                            credits_used: 1,
                        })
                        .collect();
                    held.retain(|(s, _)| *s != session);
                    Event::SessionClosed {
                        session_id: session,
                        status: SessionStatus::Finished,
                        released,
                        by: None,
                    }
                }
                4 => Event::LicenseRefused {
                    session_id: 0,
                    product_id: 7,
                    major_version: 0,
                    pool: None,
                    reason: Some(models::RefusalReason::NoSeatFree),
                },
                _ => {
                    sessions.push(seq);
                    opened(seq, &format!("ci-{}", next(4)))
                }
            };
            entries.push(entry(seq, at, event));
        }
        entries
    }

    #[test]
    fn folding_in_pieces_with_restarts_between_them_gives_the_totals_of_one_fold() {
        for seed in 1..=20 {
            let entries = history(seed);
            let mut whole = Tables::default();
            let mut fold = Fold::default();
            entries.iter().for_each(|e| fold.apply(e));
            whole.add(fold.take("last"));

            let mut pieces = Tables::default();
            let mut fold = Fold::default();
            for (i, entry) in entries.iter().enumerate() {
                fold.apply(entry);
                if i % (3 + seed as usize) == 0 || i + 1 == entries.len() {
                    let hash = if i + 1 == entries.len() {
                        "last"
                    } else {
                        "mid"
                    };
                    pieces.add(fold.take(hash));
                    if i % 2 == 0 {
                        // A restart: the fold starts again from what the tables hold.
                        fold = Fold::resume(
                            pieces.cursor.clone(),
                            pieces.sessions.clone(),
                            pieces.held.clone(),
                        );
                    }
                }
            }
            assert_eq!(pieces, whole, "seed {seed}");
            assert!(
                whole.hours.values().any(|h| h.peak > 1),
                "seed {seed}: a dull history"
            );
        }
    }
}
