//! Installing and removing license files.
//!
//! Both are check-then-write under a lock file, so two installs at once (a CLI and the admin
//! API, say) cannot both decide a key is free. The write itself is atomic: a reader, including a
//! running server polling the directory, sees the old state or the new file, never part of it.
//!
//! One key is one license and one serial number is one license: a file with the key of an
//! installed license replaces it only if it is a newer issue (a vendor's top-up or renewal), and a
//! file with an installed serial number under another key is refused, so two files can never add
//! up the seats of one cartridge.

use std::fs::{self, File};

use anyhow::Context;
use thiserror::Error;
use time::OffsetDateTime;

use super::{
    dir::{EXTENSION, Installed, LicenseDir, Scan},
    file::{self as license_file, LicenseError, Verified},
    identity::{Binding, ServerId},
    keys::{KeyPair, TrustedKeys},
};
use crate::{
    ledger::Event,
    store::{Install, Store},
    sys::{
        atomic_file::{self, Mode},
        data_dir::{create_private_dir, open_lock_file},
    },
};

const INSTALL_LOCK: &str = ".install.lock";

#[derive(Debug, Error)]
pub enum InstallError {
    #[error(transparent)]
    License(#[from] LicenseError),
    /// Reading the directory, writing the file, or recording the install failed.
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

#[derive(Debug, Error)]
pub enum RemoveError {
    #[error("no license with the key {0} is installed")]
    NotInstalled(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installation {
    Installed(Installed),
    /// A newer issue of an installed license took its place.
    Replaced {
        installed: Installed,
        replaced: Box<Installed>,
    },
    /// The very same file was installed before; nothing changed.
    AlreadyInstalled(Installed),
}

impl Installation {
    /// The license installed now.
    pub fn installed(&self) -> &Installed {
        match self {
            Self::Installed(installed)
            | Self::Replaced { installed, .. }
            | Self::AlreadyInstalled(installed) => installed,
        }
    }
}

/// How a verified file relates to what is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit<'a> {
    /// Nothing with its key or its serial number is installed.
    New,
    /// This very file is installed.
    Same(&'a Installed),
    /// It is a newer issue of this installed license, and would take its place.
    Replaces(&'a Installed),
}

/// Whether `verified` may be installed next to what `scan` holds: one key is one license (only a
/// newer issue replaces it), one serial number is one license.
pub fn fit<'a>(scan: &'a Scan, verified: &Verified) -> Result<Fit<'a>, LicenseError> {
    let license = &verified.license;
    let fit = match scan.find(&license.key) {
        Some(existing) if existing.verified.sha256 == verified.sha256 => {
            return Ok(Fit::Same(existing));
        }
        // A newer issue of the same license (more seats, a later expiry) takes its place.
        Some(existing) if license.rules.issued > existing.verified.license.rules.issued => {
            Fit::Replaces(existing)
        }
        Some(_) => {
            return Err(LicenseError::KeyConflict {
                key: license.key.clone(),
            });
        }
        None => Fit::New,
    };
    let serial_number = license.rules.serial_number;
    if let Some(other) = scan
        .licenses
        .iter()
        .find(|l| l.serial_number() == serial_number && l.key() != license.key)
    {
        return Err(LicenseError::DuplicateSerial {
            serial_number,
            key: license.key.clone(),
            installed_key: other.key().to_owned(),
        });
    }
    Ok(fit)
}

/// How an install or a removal is recorded.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// In the ledger, as done `by` an administrator (`None`: the CLI's user).
    Ledger { by: Option<&'a str> },
    /// Not at all: a failover network's log replicated it, and its entry is in the ledger.
    Replicated,
}

impl LicenseDir {
    /// Verifies `bytes` completely and, if they pass, writes them as `<key>.lic` and records the
    /// install. Nothing is written when any check fails.
    /// `by`: the administrator installing it through the admin API (for the ledger).
    pub async fn install(
        &self,
        bytes: Vec<u8>,
        trusted: &TrustedKeys,
        binding: &Binding,
        store: &Store,
        now: OffsetDateTime,
        by: Option<&str>,
    ) -> Result<Installation, InstallError> {
        self.install_as(bytes, trusted, binding, store, now, Record::Ledger { by })
            .await
    }

    /// [`LicenseDir::install`], recorded as `record` says.
    pub async fn install_as(
        &self,
        bytes: Vec<u8>,
        trusted: &TrustedKeys,
        binding: &Binding,
        store: &Store,
        now: OffsetDateTime,
        record: Record<'_>,
    ) -> Result<Installation, InstallError> {
        // Whole seconds: install times are read by people; the store's sequence keeps the order.
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let installs = store
            .installs()
            .await
            .context("reading the install order")?;
        // A license the failover network installed elsewhere is written whatever id it is bound
        // to: the member that installed it checked it, and this member's id may not be the
        // network's yet (a member that joins catches up on installs before the change that made
        // it one). What counts is the scan's to say, as for every file in the directory.
        let id = match record {
            Record::Replicated => license_file::peek(&bytes)
                .and_then(|l| ServerId::parse(l.server_id).ok())
                .map_or_else(|| binding.clone(), Binding::fixed),
            Record::Ledger { .. } => binding.clone(),
        };
        let (dir, trusted_keys) = (self.clone(), trusted.clone());
        let file = String::from_utf8(bytes.clone()).ok();
        let outcome = tokio::task::spawn_blocking(move || {
            dir.write_file(&bytes, &trusted_keys, &id, &installs, now)
        })
        .await
        .context("the install task failed")??;
        let (installed, replaced) = match &outcome {
            Installation::Installed(installed) => (installed, None),
            Installation::Replaced {
                installed,
                replaced,
            } => (installed, Some(replaced.verified.sha256.clone())),
            Installation::AlreadyInstalled(_) => return Ok(outcome),
        };
        let ledger = match record {
            Record::Ledger { by } => Some(
                Event::LicenseInstalled {
                    key: installed.key().to_owned(),
                    sha256: installed.verified.sha256.clone(),
                    serial_number: installed.serial_number(),
                    by: by.map(str::to_owned),
                    replaced,
                    file,
                }
                .row(now),
            ),
            Record::Replicated => None,
        };
        store
            .record_install(installed.key(), &installed.verified.sha256, now, ledger)
            .await
            .context("recording the install")?;
        Ok(outcome)
    }

    /// Signs `license` with `key` and installs it, trusting that key: for tools that set up a data
    /// directory of their own (`bench --spawn-server`) and for tests.
    pub async fn install_signed(
        &self,
        license: &models::License,
        key: &KeyPair,
        store: &Store,
    ) -> Result<Installation, InstallError> {
        let text = license_file::sign(license, key)?;
        let server_id = ServerId::parse(license.server_id.clone())
            .map_err(|e| InstallError::Io(anyhow::anyhow!("{e}")))?;
        let binding = Binding::fixed(server_id);
        let mut trusted = TrustedKeys::default();
        trusted.add(key.public_key());
        let now = OffsetDateTime::now_utc();
        self.install(text.into_bytes(), &trusted, &binding, store, now, None)
            .await
    }

    pub(super) fn write_file(
        &self,
        bytes: &[u8],
        trusted: &TrustedKeys,
        binding: &Binding,
        installs: &[Install],
        now: OffsetDateTime,
    ) -> Result<Installation, InstallError> {
        // New installs are for this server's id only, never for the one it had before a move.
        let verified = super::dir::verify_new(bytes, trusted, binding, now)?;
        create_private_dir(self.path())
            .with_context(|| format!("cannot create {}", self.path().display()))?;
        let _lock = self.lock_installs()?;
        let scan = self
            .scan(trusted, binding, installs)
            .with_context(|| format!("cannot read {}", self.path().display()))?;
        let key = verified.license.key.clone();
        let replaced = match fit(&scan, &verified)? {
            Fit::Same(existing) => return Ok(Installation::AlreadyInstalled(existing.clone())),
            Fit::Replaces(existing) => Some(existing.clone()),
            Fit::New => None,
        };
        // The key passed `check_key`: plain characters, no path separators, no leading dot. A
        // replacement goes where the older issue is, so that one key stays one file.
        let file = replaced.as_ref().map_or_else(
            || self.path().join(format!("{key}.{EXTENSION}")),
            |old| old.file.clone(),
        );
        if let Some(bad) = scan.rejected.iter().find(|r| r.file == file) {
            tracing::warn!(file = %file.display(), reason = %bad.reason, "replacing an unusable license file");
        }
        atomic_file::replace(&file, bytes, Mode::Public)
            .with_context(|| format!("cannot write {}", file.display()))?;
        let installed = Installed {
            verified,
            file,
            installed: now,
            bound_until: None,
        };
        Ok(match replaced {
            Some(replaced) => Installation::Replaced {
                installed,
                replaced: Box::new(replaced),
            },
            None => Installation::Installed(installed),
        })
    }

    /// Removes the license `key` (`by`: who, for the ledger). The file is first moved aside
    /// (hidden, so no scan sees it), then the removal is recorded, then the file is deleted: if
    /// the record fails, the file is put back, and the license stays installed.
    pub async fn remove(
        &self,
        key: &str,
        trusted: &TrustedKeys,
        binding: &Binding,
        store: &Store,
        now: OffsetDateTime,
        by: &str,
    ) -> Result<Installed, RemoveError> {
        self.remove_as(
            key,
            None,
            trusted,
            binding,
            store,
            now,
            Record::Ledger { by: Some(by) },
        )
        .await
    }

    /// [`LicenseDir::remove`] of the license `key` (only if its content hash is `sha256`, when
    /// given), recorded as `record` says.
    #[allow(clippy::too_many_arguments)]
    pub async fn remove_as(
        &self,
        key: &str,
        sha256: Option<&str>,
        trusted: &TrustedKeys,
        binding: &Binding,
        store: &Store,
        now: OffsetDateTime,
        record: Record<'_>,
    ) -> Result<Installed, RemoveError> {
        let wanted_sha = sha256.map(str::to_owned);
        let installs = store
            .installs()
            .await
            .context("reading the install order")?;
        let (dir, trusted, id, wanted) = (
            self.clone(),
            trusted.clone(),
            binding.clone(),
            key.to_owned(),
        );
        let (lock, removed, aside) = tokio::task::spawn_blocking(move || {
            let lock = dir.lock_installs().map_err(|e| anyhow::anyhow!("{e}"))?;
            let scan = dir
                .scan(&trusted, &id, &installs)
                .with_context(|| format!("cannot read {}", dir.path().display()))?;
            let Some(removed) = scan
                .find(&wanted)
                .filter(|l| wanted_sha.as_ref().is_none_or(|s| *s == l.verified.sha256))
                .cloned()
            else {
                return Err(RemoveError::NotInstalled(wanted));
            };
            let aside = dir.path().join(format!(".{wanted}.removing"));
            fs::rename(&removed.file, &aside)
                .with_context(|| format!("cannot remove {}", removed.file.display()))?;
            Ok((lock, removed, aside))
        })
        .await
        .context("the remove task failed")??;
        let ledger = match record {
            Record::Ledger { by } => Some(
                Event::LicenseRemoved {
                    key: removed.key().to_owned(),
                    sha256: removed.verified.sha256.clone(),
                    serial_number: removed.serial_number(),
                    by: by.unwrap_or_default().to_owned(),
                }
                .row(now),
            ),
            Record::Replicated => None,
        };
        if let Err(e) = store.record_removal(removed.key(), ledger).await {
            let restored = fs::rename(&aside, &removed.file);
            drop(lock);
            restored.with_context(|| {
                format!(
                    "cannot put {} back after a failed removal; it is at {}",
                    removed.file.display(),
                    aside.display()
                )
            })?;
            return Err(anyhow::Error::from(e)
                .context("recording the removal")
                .into());
        }
        if let Err(e) = fs::remove_file(&aside) {
            // Hidden files are never read as licenses: a leftover is untidy, not a license.
            tracing::warn!(file = %aside.display(), error = %e, "cannot delete a removed license file");
        }
        drop(lock);
        Ok(removed)
    }

    /// Held while an install checks for conflicts and writes; released when dropped (or when the
    /// process dies).
    fn lock_installs(&self) -> Result<File, InstallError> {
        let path = self.path().join(INSTALL_LOCK);
        let file = open_lock_file(&path)
            .and_then(|file| file.lock().map(|()| file))
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::{super::dir::tests::fixture, *};

    fn refusal(result: Result<Installation, InstallError>) -> LicenseError {
        match result {
            Err(InstallError::License(e)) => e,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_newer_issue_of_a_key_replaces_it_in_its_file_and_an_older_one_is_refused() {
        let f = fixture();
        let first = f.issue("K", 7, 1, Duration::days(2));
        f.write(&first, &[]).unwrap();
        let newer = f.issue("K", 7, 5, Duration::days(1));
        let Installation::Replaced {
            installed,
            replaced,
        } = f.write(&newer, &[]).unwrap()
        else {
            panic!("not a replacement");
        };
        assert_eq!(installed.file, replaced.file, "one key, one file");
        let scan = f.scan(&[]);
        assert_eq!(scan.licenses.len(), 1);
        assert_eq!(
            scan.licenses[0].verified.license.rules.products[0].runcount,
            5
        );
        for stale in [first, f.issue("K", 7, 9, Duration::days(1))] {
            assert!(matches!(
                refusal(f.write(&stale, &[])),
                LicenseError::KeyConflict { .. }
            ));
        }
        assert_eq!(fs::read(&installed.file).unwrap(), newer, "nothing changed");
    }

    #[test]
    fn a_second_license_with_an_installed_serial_number_is_refused_and_never_counted() {
        let f = fixture();
        f.write(&f.issue("A", 5, 1, Duration::days(1)), &[])
            .unwrap();
        let twin = f.issue("B", 5, 1, Duration::days(1));
        let error = refusal(f.write(&twin, &[]));
        assert_eq!(error.code(), models::ErrorCode::DuplicateSerial);
        assert!(error.to_string().contains("serial number 5"), "{error}");
        assert_eq!(f.dir.files().unwrap().len(), 1, "nothing was written");

        // Copied in by hand, it is reported and skipped: the seats never add up.
        fs::write(f.dir.path().join("B.lic"), &twin).unwrap();
        let scan = f.scan(&[]);
        let keys: Vec<_> = scan.licenses.iter().map(Installed::key).collect();
        assert_eq!(keys, ["A"]);
        assert!(
            scan.rejected[0].reason.contains("serial number 5"),
            "{:?}",
            scan.rejected
        );
    }

    #[tokio::test]
    async fn a_removal_deletes_the_file_forgets_the_install_and_says_who_in_the_ledger() {
        let f = fixture();
        let store = Store::open(&f.dir.path().with_file_name("store.db"))
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let bytes = f.issue("K", 7, 1, Duration::days(1));
        f.dir
            .install(bytes, &f.trusted, &f.binding(), &store, now, None)
            .await
            .unwrap();
        let removed = f
            .dir
            .remove("K", &f.trusted, &f.binding(), &store, now, "alice")
            .await
            .unwrap();
        assert_eq!(removed.serial_number(), 7);
        assert!(!removed.file.exists());
        assert!(fs::read_dir(f.dir.path()).unwrap().all(|e| {
            !e.unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".removing")
        }));
        assert!(store.installs().await.unwrap().is_empty());
        let rows = store.ledger_rows(0, 10).await.unwrap();
        let last = rows.last().unwrap();
        assert_eq!(last.kind, "license_removed");
        assert!(last.body.contains("\"by\":\"alice\""), "{}", last.body);
        let again = f
            .dir
            .remove("K", &f.trusted, &f.binding(), &store, now, "alice")
            .await;
        assert!(matches!(again, Err(RemoveError::NotInstalled(_))));
    }
}
