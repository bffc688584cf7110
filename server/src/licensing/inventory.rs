//! What a running server has to grant: its verified licenses and the cartridge pool assignments,
//! as one immutable snapshot that handlers read without locking anything for long.
//!
//! The licenses directory and the store can change under a running server: `license install` and
//! `cartridge assign` work from another process. A poller ([`Inventory::watch`]) notices within
//! [`POLL_INTERVAL`] and publishes a new snapshot. Polling instead of inotify because it also
//! works on network file systems and container volumes, and a directory listing twice a second
//! costs nothing. Signatures are checked again only when the directory actually changed.
//!
//! Expiry needs no poller: a license that expires stops counting at the instant it expires,
//! because every reader asks the snapshot "what counts *now*".

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context;
use arc_swap::ArcSwap;
use models::Cartridge;
use parking_lot::Mutex;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::{
    cartridges,
    dir::{Fingerprint, Installed, LicenseDir, Scan},
    identity::Binding,
    install::{InstallError, Installation, RemoveError},
    keys::TrustedKeys,
};
use crate::{
    store::{Install, Store},
    sys::changes::Changes,
};

pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// One consistent view of licenses and pools.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub scan: Scan,
    /// Serial number → pool; serials not listed are in the default pool.
    pub pools: HashMap<u64, String>,
    /// Keys of the licenses that counted when this snapshot was made; only for noticing expiries
    /// (readers ask [`Scan::counting`] with their own "now").
    counting: Vec<String>,
    /// Cartridges per pool, computed once and reused until the next license expiry: every
    /// license request looks them up.
    cache: Mutex<HashMap<Option<String>, CachedCartridges>>,
}

#[derive(Debug)]
struct CachedCartridges {
    computed: OffsetDateTime,
    /// The first expiry after `computed`: from then on the sums change.
    valid_until: Option<OffsetDateTime>,
    cartridges: Arc<Vec<Cartridge>>,
}

impl Snapshot {
    pub fn new(scan: Scan, pools: HashMap<u64, String>, now: OffsetDateTime) -> Self {
        let counting = scan.counting(now).map(|l| l.key().to_owned()).collect();
        Self {
            scan,
            pools,
            counting,
            cache: Mutex::default(),
        }
    }

    /// Every pool a cartridge is assigned to, sorted, after the default pool (`None`).
    pub fn pools(&self) -> Vec<Option<String>> {
        let mut pools: Vec<Option<String>> = self.pools.values().cloned().map(Some).collect();
        pools.sort();
        pools.dedup();
        pools.insert(0, None);
        pools
    }

    /// The pools (the default one as `None`) that have a cartridge of `product_id` at `now`.
    pub fn pools_with(&self, product_id: u32, now: OffsetDateTime) -> Vec<Option<String>> {
        self.pools()
            .into_iter()
            .filter(|pool| {
                self.cartridges(pool.as_deref(), now)
                    .iter()
                    .any(|c| c.product_id == product_id)
            })
            .collect()
    }

    /// The cartridges of `pool` at `now` (statistics zero), as [`cartridges::of_pool`] computes
    /// them.
    pub fn cartridges(&self, pool: Option<&str>, now: OffsetDateTime) -> Arc<Vec<Cartridge>> {
        let mut cache = self.cache.lock();
        let key = pool.map(str::to_owned);
        if let Some(cached) = cache.get(&key)
            && cached.computed <= now
            && cached.valid_until.is_none_or(|until| now < until)
        {
            return cached.cartridges.clone();
        }
        let cartridges = Arc::new(cartridges::of_pool(&self.scan, &self.pools, pool, now));
        let valid_until = self
            .scan
            .licenses
            .iter()
            .filter_map(Installed::counts_until)
            .filter(|until| *until > now)
            .min();
        cache.insert(
            key,
            CachedCartridges {
                computed: now,
                valid_until,
                cartridges: cartridges.clone(),
            },
        );
        cartridges
    }
}

#[derive(Debug)]
pub struct Inventory {
    dir: LicenseDir,
    trusted: TrustedKeys,
    /// Replaced when a failover network's members change ([`Inventory::rebind`]).
    binding: parking_lot::RwLock<Binding>,
    store: Store,
    current: ArcSwap<Snapshot>,
    /// What the last scan was made from; a rescan happens only when this changes.
    seen: tokio::sync::Mutex<Option<(Fingerprint, Vec<Install>)>>,
    /// Bumped when a refresh found the licenses or the pools changed.
    changes: Changes,
}

impl Inventory {
    /// Reads everything once, logging each license file that is skipped.
    pub async fn load(
        dir: LicenseDir,
        trusted: TrustedKeys,
        binding: Binding,
        store: Store,
    ) -> anyhow::Result<Self> {
        let inventory = Self {
            dir,
            trusted,
            binding: parking_lot::RwLock::new(binding),
            store,
            current: ArcSwap::default(),
            seen: tokio::sync::Mutex::new(None),
            changes: Changes::default(),
        };
        inventory.refresh().await?;
        Ok(inventory)
    }

    pub fn trusted(&self) -> &TrustedKeys {
        &self.trusted
    }

    pub fn dir(&self) -> &LicenseDir {
        &self.dir
    }

    pub fn binding(&self) -> Binding {
        self.binding.read().clone()
    }

    /// Checks licenses against `binding` from now on (a failover network's members changed, so
    /// its id did), at once.
    pub async fn rebind(&self, binding: Binding) -> anyhow::Result<()> {
        *self.binding.write() = binding;
        *self.seen.lock().await = None;
        self.refresh().await
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The licensed-user limit of the active license, if it sets one.
    pub fn user_limit(&self) -> Option<u32> {
        self.active_license().and_then(|l| l.rules.max_users)
    }

    /// The active license now: the valid one installed most recently.
    pub fn active_license(&self) -> Option<models::License> {
        self.snapshot()
            .scan
            .active(OffsetDateTime::now_utc())
            .map(|l| l.verified.license.clone())
    }

    /// The current snapshot. Cheap: an `Arc` clone, no lock (every grant reads it).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Verifies a license file completely and installs it (`by`: the administrator, for the
    /// ledger), then refreshes the snapshot so its cartridges count at once, not at the next poll.
    /// Installing the very same file again changes nothing and answers the same. Nothing is
    /// written when a check fails.
    pub async fn install(
        &self,
        bytes: Vec<u8>,
        by: Option<&str>,
    ) -> Result<Installation, InstallError> {
        let outcome = self
            .dir
            .install(
                bytes,
                &self.trusted,
                &self.binding(),
                &self.store,
                OffsetDateTime::now_utc(),
                by,
            )
            .await?;
        self.refresh().await?;
        Ok(outcome)
    }

    /// Removes the license `key` (`by`: who, for the ledger) and refreshes the snapshot, so its
    /// cartridges stop granting at once. Licenses held from it stay until they are released.
    pub async fn remove(&self, key: &str, by: &str) -> Result<Installed, RemoveError> {
        let removed = self
            .dir
            .remove(
                key,
                &self.trusted,
                &self.binding(),
                &self.store,
                OffsetDateTime::now_utc(),
                by,
            )
            .await?;
        self.refresh().await?;
        Ok(removed)
    }

    /// Brings the snapshot up to date with the directory and the store.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let mut seen = self.seen.lock().await;
        let pools = self
            .store
            .pools()
            .await
            .context("reading pool assignments")?;
        let installs = self
            .store
            .installs()
            .await
            .context("reading the install order")?;
        let dir = self.dir.clone();
        let fingerprint = tokio::task::spawn_blocking(move || dir.fingerprint())
            .await?
            .with_context(|| format!("cannot read {}", self.dir.path().display()))?;
        let unchanged = seen
            .as_ref()
            .is_some_and(|(f, i)| *f == fingerprint && *i == installs);
        let scan = if unchanged {
            self.snapshot().scan.clone()
        } else {
            let (dir, trusted, id, rows) = (
                self.dir.clone(),
                self.trusted.clone(),
                self.binding(),
                installs.clone(),
            );
            let scan = tokio::task::spawn_blocking(move || dir.scan(&trusted, &id, &rows))
                .await?
                .with_context(|| format!("cannot read {}", self.dir.path().display()))?;
            self.log_changes(&scan);
            *seen = Some((fingerprint, installs));
            scan
        };
        let changed = !unchanged || self.snapshot().pools != pools;
        let now = OffsetDateTime::now_utc();
        let snapshot = Arc::new(Snapshot::new(scan, pools, now));
        for key in &self.snapshot().counting {
            match snapshot.scan.find(key) {
                Some(l) if l.bound_until.is_some_and(|until| now >= until) => tracing::warn!(
                    key = %key,
                    server_id = %l.verified.license.server_id,
                    "a license bound to this server's previous id stopped counting: the grace after \
                     the data directory moved to this machine (or the failover network's members \
                     changed) is over. Transfer it: deactivate it at the vendor and activate it \
                     for this server (or network)"
                ),
                Some(l) if l.expired_at(now) => {
                    tracing::warn!(key = %key, "license expired; its cartridges no longer count");
                }
                _ => {}
            }
        }
        self.current.store(snapshot);
        if changed {
            self.changes.bump();
        }
        Ok(())
    }

    /// The count of changes to the licenses and pools, and a wake-up at each next one.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.watch()
    }

    fn log_changes(&self, scan: &Scan) {
        let before = self.snapshot();
        for license in &scan.licenses {
            if before.scan.find(license.key()) != Some(license) {
                let rules = &license.verified.license.rules;
                tracing::info!(
                    key = license.key(),
                    serial_number = rules.serial_number,
                    products = rules.products.len(),
                    file = %license.file.display(),
                    "license loaded"
                );
            }
        }
        for license in &before.scan.licenses {
            if scan.find(license.key()).is_none() {
                tracing::info!(key = license.key(), "license removed");
            }
        }
        // Reported once, not again at every change of the directory.
        for rejected in scan
            .rejected
            .iter()
            .filter(|r| !before.scan.rejected.contains(r))
        {
            tracing::warn!(
                file = %rejected.file.display(),
                reason = %rejected.reason,
                "skipping an unusable license file"
            );
        }
    }

    /// Refreshes every [`POLL_INTERVAL`] until `shutdown`. A failed refresh keeps the last good
    /// snapshot and is logged (once per distinct error, not twice a second).
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_error = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            match self.refresh().await {
                Ok(()) => last_error = None,
                Err(e) => {
                    let text = format!("{e:#}");
                    if last_error.as_ref() != Some(&text) {
                        tracing::error!(error = %text, "cannot refresh the licenses");
                        last_error = Some(text);
                    }
                }
            }
        }
    }
}
