//! The licenses directory, `DATA_DIR/licenses`: one file per license, exactly as the vendor
//! signed it, named `<key>.lic`.
//!
//! The files are the truth. A license server can be backed up, restored or moved by copying the
//! directory; the store only remembers in which order licenses were installed (the active license
//! is the one installed last). Every file is verified whenever it is read, here and by a running
//! server: a file that fails is reported by name and skipped, never half-trusted.
//!
//! Installing and removing are in [`super::install`].

use std::{
    collections::HashMap,
    fs, io,
    path::{Path, PathBuf},
    time::SystemTime,
};

use time::OffsetDateTime;

use super::{
    file::{self as license_file, LicenseError, Verified},
    identity::Binding,
    keys::TrustedKeys,
};
use crate::store::Install;

pub const DIR_NAME: &str = "licenses";
pub const EXTENSION: &str = "lic";

/// A verified license file in the directory. It may have expired since: see
/// [`Scan::counting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub verified: Verified,
    pub file: PathBuf,
    /// When it was installed: as recorded in the store, or the file's modification time for a
    /// file that was copied in by hand.
    pub installed: OffsetDateTime,
    /// Set for a license bound to this data directory's previous server id (it moved to this
    /// machine): it counts until then, like an expiry.
    pub bound_until: Option<OffsetDateTime>,
}

impl Installed {
    pub fn key(&self) -> &str {
        &self.verified.license.key
    }

    pub fn serial_number(&self) -> u64 {
        self.verified.license.rules.serial_number
    }

    /// No longer counting at `now`: expired, or bound to the previous server id past the grace.
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        self.verified.license.rules.expired_at(now) || self.bound_until.is_some_and(|u| now >= u)
    }

    /// The first instant from which it no longer counts, if there is one.
    pub fn counts_until(&self) -> Option<OffsetDateTime> {
        let expires = self.verified.license.rules.expires;
        match (expires, self.bound_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A file in the directory that is not a usable license, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub file: PathBuf,
    pub reason: String,
}

/// What the directory holds, as of one reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Oldest install first.
    pub licenses: Vec<Installed>,
    pub rejected: Vec<Rejected>,
}

impl Scan {
    /// The licenses that count at `now`: verified and not expired.
    pub fn counting(&self, now: OffsetDateTime) -> impl Iterator<Item = &Installed> {
        self.licenses.iter().filter(move |l| !l.expired_at(now))
    }

    /// The active license: the one installed most recently among those that count.
    pub fn active(&self, now: OffsetDateTime) -> Option<&Installed> {
        self.counting(now).last()
    }

    pub fn find(&self, key: &str) -> Option<&Installed> {
        self.licenses.iter().find(|l| l.key() == key)
    }
}

/// Changes to the directory that a poller can notice cheaply: names, sizes, modification times.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

#[derive(Debug, Clone)]
pub struct LicenseDir {
    path: PathBuf,
}

impl LicenseDir {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(DIR_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The license files (`*.lic`), sorted by name. A directory that does not exist yet holds
    /// none.
    pub fn files(&self) -> io::Result<Vec<PathBuf>> {
        let entries = match fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden && path.extension().is_some_and(|e| e == EXTENSION) {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    pub fn fingerprint(&self) -> io::Result<Fingerprint> {
        self.files()?
            .into_iter()
            .map(|file| {
                let meta = fs::metadata(&file)?;
                Ok((file, meta.len(), meta.modified().ok()))
            })
            .collect()
    }

    /// Reads and verifies every file. `installs` (from the store) orders them. Expired licenses
    /// are kept: they are still installed, they just no longer count.
    pub fn scan(
        &self,
        trusted: &TrustedKeys,
        binding: &Binding,
        installs: &[Install],
    ) -> io::Result<Scan> {
        let mut scan = Scan::default();
        let mut order = HashMap::new();
        for file in self.files()? {
            let rejected = |reason: String| Rejected {
                file: file.clone(),
                reason,
            };
            let bytes = match fs::read(&file) {
                Ok(bytes) => bytes,
                Err(e) => {
                    scan.rejected.push(rejected(format!("cannot read it: {e}")));
                    continue;
                }
            };
            let (verified, bound_until) = match verify_bound(&bytes, trusted, binding) {
                Ok(verified) => verified,
                Err(e) => {
                    scan.rejected.push(rejected(e.to_string()));
                    continue;
                }
            };
            let key = verified.license.key.clone();
            let is_recorded = |sha256: &str| {
                installs
                    .iter()
                    .any(|install| install.key == key && install.sha256 == sha256)
            };
            if let Some(index) = scan.licenses.iter().position(|l| l.key() == key) {
                let first = &scan.licenses[index];
                if first.verified.sha256 == verified.sha256 {
                    // An identical copy under another name adds nothing.
                    continue;
                }
                // Two files, one key: the one that was installed (per the store) wins, otherwise
                // the first by name; the other is reported.
                let (kept, refused) =
                    if is_recorded(&verified.sha256) && !is_recorded(&first.verified.sha256) {
                        let first = scan.licenses.remove(index);
                        (file.clone(), first.file)
                    } else {
                        (first.file.clone(), file.clone())
                    };
                let conflict = LicenseError::KeyConflict { key: key.clone() };
                scan.rejected.push(Rejected {
                    file: refused.clone(),
                    reason: format!("{conflict} (the one installed is {})", kept.display()),
                });
                if refused == file {
                    continue;
                }
            }
            let recorded = installs.iter().enumerate().find(|(_, install)| {
                install.key == verified.license.key && install.sha256 == verified.sha256
            });
            let modified = fs::metadata(&file)
                .and_then(|m| m.modified())
                .map(OffsetDateTime::from)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let installed = recorded
                .and_then(|(_, install)| install.installed)
                .unwrap_or(modified);
            order.insert(
                verified.license.key.clone(),
                (installed, recorded.map_or(usize::MAX, |(i, _)| i)),
            );
            scan.licenses.push(Installed {
                verified,
                file,
                installed,
                bound_until,
            });
        }
        scan.licenses.sort_by_key(|l| order.get(l.key()).copied());
        // One serial number, one license: of two keys with one serial (a file copied in by hand;
        // an install refuses it), the one installed first counts, so two files never add up.
        let mut serials: HashMap<u64, String> = HashMap::new();
        let mut counted = Vec::with_capacity(scan.licenses.len());
        for license in std::mem::take(&mut scan.licenses) {
            let serial_number = license.serial_number();
            match serials.get(&serial_number) {
                Some(first) => scan.rejected.push(Rejected {
                    reason: LicenseError::DuplicateSerial {
                        serial_number,
                        key: license.key().to_owned(),
                        installed_key: first.clone(),
                    }
                    .to_string(),
                    file: license.file,
                }),
                None => {
                    serials.insert(serial_number, license.key().to_owned());
                    counted.push(license);
                }
            }
        }
        scan.licenses = counted;
        Ok(scan)
    }
}

/// Verifies a license file to install: bound to this server (or to its failover network), not
/// expired. New installs are never for the id a server had before a move.
pub fn verify_new(
    bytes: &[u8],
    trusted: &TrustedKeys,
    binding: &Binding,
    now: OffsetDateTime,
) -> Result<license_file::Verified, LicenseError> {
    license_file::verify(bytes, trusted, binding.license_id(), now)
}

/// Verifies a file bound to this server (or its failover network), or, within the grace after a
/// move, to its previous id (then with the end of the grace).
fn verify_bound(
    bytes: &[u8],
    trusted: &TrustedKeys,
    binding: &Binding,
) -> Result<(Verified, Option<OffsetDateTime>), LicenseError> {
    let result = license_file::verify_signed(bytes, trusted, binding.license_id());
    if let Err(LicenseError::WrongServer { license_server, .. }) = &result
        && let Some(moved) = binding.moved_from(license_server)
    {
        let verified = license_file::verify_signed(bytes, trusted, &moved.previous)?;
        return Ok((verified, Some(moved.until)));
    }
    result.map(|verified| (verified, None))
}

#[cfg(test)]
pub(super) mod tests {
    use models::{License, ProductRule, Rules};
    use time::Duration;

    use super::{
        super::{
            identity::ServerId,
            install::{InstallError, Installation},
            keys::KeyPair,
        },
        *,
    };
    use crate::sys::data_dir::create_private_dir;

    pub struct Fixture {
        _tmp: tempfile::TempDir,
        pub dir: LicenseDir,
        key: KeyPair,
        pub trusted: TrustedKeys,
        pub server_id: ServerId,
    }

    pub fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut trusted = TrustedKeys::default();
        trusted.add(key.public_key());
        Fixture {
            dir: LicenseDir::new(tmp.path()),
            _tmp: tmp,
            key,
            trusted,
            server_id: ServerId::generate().unwrap(),
        }
    }

    impl Fixture {
        pub fn binding(&self) -> Binding {
            Binding::fixed(self.server_id.clone())
        }

        /// A license of `key` with a serial of its own (from the key's bytes), issued yesterday.
        pub fn file(&self, key: &str, runcount: u32) -> Vec<u8> {
            let serial = key.bytes().fold(1u64, |n, b| n * 31 + u64::from(b));
            self.issue(key, serial, runcount, Duration::days(1))
        }

        /// A license of `key` with serial number `serial`, issued `ago` before a fixed instant
        /// (not "now": two files made a moment apart must be the same issue).
        pub fn issue(&self, key: &str, serial: u64, runcount: u32, ago: Duration) -> Vec<u8> {
            let license = License {
                key: key.into(),
                server_id: self.server_id.to_string(),
                rules: Rules {
                    serial_number: serial,
                    issued: time::macros::datetime!(2026-01-01 00:00 UTC) - ago,
                    expires: None,
                    max_users: None,
                    products: vec![ProductRule {
                        product_id: 1,
                        major_version: 0,
                        product: "Tool".into(),
                        runcount,
                        credits: 0,
                        postpay: false,
                    }],
                },
            };
            license_file::sign(&license, &self.key)
                .unwrap()
                .into_bytes()
        }

        pub fn write(
            &self,
            bytes: &[u8],
            installs: &[Install],
        ) -> Result<Installation, InstallError> {
            self.dir.write_file(
                bytes,
                &self.trusted,
                &self.binding(),
                installs,
                OffsetDateTime::now_utc(),
            )
        }

        pub fn scan(&self, installs: &[Install]) -> Scan {
            self.dir
                .scan(&self.trusted, &self.binding(), installs)
                .unwrap()
        }
    }

    #[test]
    fn the_active_license_is_the_one_installed_last_not_the_first_by_name() {
        let f = fixture();
        let (b, a) = (f.file("B", 1), f.file("A", 2));
        f.write(&b, &[]).unwrap();
        f.write(&a, &[]).unwrap();
        let sha = |bytes: &[u8]| {
            license_file::verify_signed(bytes, &f.trusted, &f.server_id)
                .unwrap()
                .sha256
        };
        let t = OffsetDateTime::now_utc();
        // Same second: the store's order decides.
        let installs = [
            Install {
                key: "B".into(),
                sha256: sha(&b),
                installed: Some(t),
            },
            Install {
                key: "A".into(),
                sha256: sha(&a),
                installed: Some(t),
            },
        ];
        let scan = f.scan(&installs);
        let keys: Vec<_> = scan.licenses.iter().map(Installed::key).collect();
        assert_eq!(keys, ["B", "A"]);
        assert_eq!(scan.active(t).unwrap().key(), "A");
        let reversed = [installs[1].clone(), installs[0].clone()];
        assert_eq!(f.scan(&reversed).active(t).unwrap().key(), "B");
    }

    #[test]
    fn two_files_with_one_key_keep_the_first_and_report_the_other() {
        let f = fixture();
        let file = f.file("K", 1);
        f.write(&file, &[]).unwrap();
        fs::write(f.dir.path().join("copy.lic"), &file).unwrap();
        fs::write(f.dir.path().join("other.lic"), f.file("K", 9)).unwrap();
        let scan = f.scan(&[]);
        assert_eq!(scan.licenses.len(), 1);
        assert!(scan.licenses[0].file.ends_with("K.lic"));
        assert_eq!(scan.rejected.len(), 1, "{:?}", scan.rejected);
        assert!(scan.rejected[0].file.ends_with("other.lic"));
        assert!(
            scan.rejected[0].reason.contains("already installed"),
            "{:?}",
            scan.rejected
        );

        // The store knows which one was installed: that one wins, whatever the names.
        let other = fs::read(f.dir.path().join("other.lic")).unwrap();
        let sha256 = license_file::verify_signed(&other, &f.trusted, &f.server_id)
            .unwrap()
            .sha256;
        let installs = [Install {
            key: "K".into(),
            sha256,
            installed: None,
        }];
        let scan = f.scan(&installs);
        assert_eq!(scan.licenses.len(), 1);
        assert!(scan.licenses[0].file.ends_with("other.lic"));
        assert!(
            scan.rejected[0].file.ends_with("K.lic"),
            "{:?}",
            scan.rejected
        );
    }

    #[test]
    fn concurrent_installs_of_one_key_with_different_content_let_exactly_one_in() {
        let f = fixture();
        let files: Vec<_> = (1..=8).map(|runcount| f.file("SAME", runcount)).collect();
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = files
                .iter()
                .map(|file| s.spawn(|| f.write(file, &[])))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let installed = results
            .iter()
            .filter(|r| matches!(r, Ok(Installation::Installed(_))))
            .count();
        assert_eq!(installed, 1, "{results:?}");
        for result in &results {
            if let Err(e) = result {
                assert!(
                    matches!(e, InstallError::License(LicenseError::KeyConflict { .. })),
                    "{e}"
                );
            }
        }
        assert_eq!(f.scan(&[]).licenses.len(), 1);
    }

    #[test]
    fn an_unusable_file_under_the_key_s_name_is_replaced_by_a_valid_install() {
        let f = fixture();
        create_private_dir(f.dir.path()).unwrap();
        fs::write(f.dir.path().join("K.lic"), "truncated").unwrap();
        let good = f.file("K", 1);
        assert!(matches!(
            f.write(&good, &[]),
            Ok(Installation::Installed(_))
        ));
        assert_eq!(fs::read(f.dir.path().join("K.lic")).unwrap(), good);
    }

    #[test]
    fn after_a_move_licenses_of_the_previous_id_count_until_the_grace_ends_and_no_other_does() {
        let f = fixture();
        let old = f.file("OLD", 1);
        f.write(&old, &[]).unwrap();
        let now = OffsetDateTime::now_utc();
        let moved = Binding {
            server_id: ServerId::generate().unwrap(),
            moved: Some(super::super::identity::Moved {
                previous: f.server_id.clone(),
                at: now,
                until: now + Duration::minutes(30),
            }),
            network: None,
        };
        let scan = f.dir.scan(&f.trusted, &moved, &[]).unwrap();
        let license = &scan.licenses[0];
        assert_eq!(license.bound_until, Some(now + Duration::minutes(30)));
        assert_eq!(scan.counting(now).count(), 1);
        assert_eq!(scan.counting(now + Duration::minutes(30)).count(), 0);

        // A third server's license is not this one's, moved or not.
        let elsewhere = Binding {
            server_id: ServerId::generate().unwrap(),
            moved: Some(super::super::identity::Moved {
                previous: ServerId::generate().unwrap(),
                at: now,
                until: now + Duration::minutes(30),
            }),
            network: None,
        };
        let scan = f.dir.scan(&f.trusted, &elsewhere, &[]).unwrap();
        assert!(scan.licenses.is_empty());
        assert!(scan.rejected[0].reason.contains("not to this server"));
    }

    #[test]
    fn files_that_are_not_licenses_by_name_are_ignored() {
        let f = fixture();
        f.write(&f.file("K", 1), &[]).unwrap();
        fs::write(f.dir.path().join("README.txt"), "notes").unwrap();
        fs::write(f.dir.path().join(".K.lic.tmp-1"), "partial").unwrap();
        let scan = f.scan(&[]);
        assert_eq!((scan.licenses.len(), scan.rejected.len()), (1, 0));
    }
}
