//! `license-server backup --to FILE`: one archive of a data directory, taken while the server
//! runs.
//!
//! What goes in, and in which order, so that the pieces agree with each other:
//!
//! 1. the signed ledger head and the list of reported entries, first: both name entries that
//!    are committed already, so the store copied after them holds those entries (a head copied
//!    after the store could name an entry the copy lacks, and the restored ledger would look cut
//!    short);
//! 2. the store, as of one instant, by SQLite's `VACUUM INTO`: the ledger, its snapshots, the
//!    administrators, the pools, the server's identity; the running server goes on writing;
//! 3. the ledger's archive segments that this copy of the store lists (a segment is written
//!    before the store lists it and never changes after), the license files, the server key and
//!    the members' list.
//!
//! Everything is staged in a temporary directory beside the archive, checksummed, then written
//! as a `tar.gz` whose first entry is `MANIFEST.json` (each file's size and SHA-256, the server
//! id, the ledger's last entry); the archive replaces FILE only once complete, mode 0600 (it
//! holds the server's private key). `restore` ([`super::restore`]) checks all of it.

use std::{
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    anchoring::reported::REPORTED_FILE,
    app::SERVER_KEY_FILE,
    failover::config::FILE as NETWORK_FILE,
    ledger::{head::HEAD_FILE, segment::ARCHIVE_DIR},
    licensing::dir::DIR_NAME as LICENSES_DIR,
    store::Store,
    sys::{
        VERSION,
        atomic_file::{Mode, Staged},
        data_dir::{DataDir, INITIAL_PASSWORD_FILE},
        timestamp,
    },
};

/// The manifest's name: the archive's first entry.
pub(super) const MANIFEST: &str = "MANIFEST.json";
/// What `format` says in a manifest of this kind.
pub(super) const FORMAT: &str = "license-server-backup";
/// The store's name in the archive (and in a data directory).
pub(super) const STORE_FILE: &str = "license-server.db";
/// Single files of a data directory that go into a backup when they exist: read before the
/// store (the head and the reported entries, see the module's docs) or whenever.
const FILES_BEFORE_STORE: [&str; 2] = [HEAD_FILE, REPORTED_FILE];
const FILES_AFTER_STORE: [&str; 3] = [SERVER_KEY_FILE, NETWORK_FILE, INITIAL_PASSWORD_FILE];

/// What a backup holds, as its first entry says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The version of the server that wrote it.
    pub server_version: String,
    pub created: String,
    pub server_id: String,
    /// The last ledger entry in the store's copy: (sequence number, hash); `None` for an empty
    /// ledger.
    pub ledger_tail: Option<(u64, String)>,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ManifestFile {
    /// Relative, with `/`: `license-server.db`, `licenses/KEY.lic`, ...
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Whether `path` is one a backup may hold: one of the data directory's own files, or a plain
/// file name in the licenses or archive folder. What `restore` writes nothing else than.
pub(super) fn allowed_path(path: &str) -> bool {
    let plain = |name: &str| {
        !name.is_empty()
            && name.len() <= 255
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match path.split_once('/') {
        None => {
            path == STORE_FILE
                || FILES_BEFORE_STORE.contains(&path)
                || FILES_AFTER_STORE.contains(&path)
        }
        Some((dir, name)) => (dir == LICENSES_DIR || dir == ARCHIVE_DIR) && plain(name),
    }
}

/// Writes a backup of `data_dir` to `to`.
pub async fn backup(data_dir: &Path, to: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = DataDir::open(data_dir)?;
    if !dir.store_path().exists() {
        bail!(
            "{} has no store ({STORE_FILE}): not a license server's data directory",
            data_dir.display()
        );
    }
    let staging = staging_beside(to, ".license-server-backup-")?;
    let stage = staging.path();
    let mut staged: Vec<String> = Vec::new();
    for name in FILES_BEFORE_STORE {
        if copy_if_exists(&dir.path().join(name), &stage.join(name))? {
            staged.push(name.to_owned());
        }
    }
    let store = Store::open(&dir.store_path()).await?;
    let copy = stage.join(STORE_FILE);
    let copied = match copy.to_str() {
        Some(path) => store.copy_into(path).await.map_err(anyhow::Error::from),
        None => Err(anyhow::anyhow!(
            "{} is not UTF-8: choose another place for the backup",
            copy.display()
        )),
    };
    store.close().await;
    copied.context("cannot copy the store")?;
    staged.push(STORE_FILE.to_owned());
    let copy = Store::open(&copy).await?;
    // Read, never bound: the copy is not a server starting on this machine.
    let server_id = copy
        .identity()
        .await
        .context("the store has no server id: has a server ever run on this data directory?")?
        .server_id;
    let ledger_tail = copy.ledger_tail().await?;
    let segments = copy.ledger_segments().await?;
    copy.close().await;
    if !segments.is_empty() {
        fs::create_dir(stage.join(ARCHIVE_DIR))?;
    }
    for segment in &segments {
        let name = format!("{ARCHIVE_DIR}/{}", segment.file);
        if !copy_if_exists(&dir.path().join(&name), &stage.join(&name))? {
            bail!(
                "the ledger's archive segment {name} is missing from {}: the ledger is not whole \
                 (`ledger verify` says more)",
                data_dir.display()
            );
        }
        staged.push(name);
    }
    for name in FILES_AFTER_STORE {
        if copy_if_exists(&dir.path().join(name), &stage.join(name))? {
            staged.push(name.to_owned());
        }
    }
    let licenses = dir.path().join(LICENSES_DIR);
    if licenses.is_dir() {
        fs::create_dir(stage.join(LICENSES_DIR))?;
        let mut names: Vec<String> = fs::read_dir(&licenses)?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .map(|name| format!("{LICENSES_DIR}/{name}"))
            .filter(|path| allowed_path(path))
            .collect();
        names.sort();
        for name in names {
            if copy_if_exists(&dir.path().join(&name), &stage.join(&name))? {
                staged.push(name);
            }
        }
    }
    let mut files = Vec::with_capacity(staged.len());
    for path in &staged {
        let (bytes, sha256) = checksum(&stage.join(path))?;
        files.push(ManifestFile {
            path: path.clone(),
            bytes,
            sha256,
        });
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: 1,
        server_version: VERSION.to_owned(),
        created: timestamp::rfc3339(time::OffsetDateTime::now_utc()),
        server_id,
        ledger_tail,
        files,
    };
    write_archive(&manifest, stage, to)
        .with_context(|| format!("cannot write the backup {}", to.display()))?;
    let total: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    writeln!(
        out,
        "backup written: {} ({} files, {} bytes before compression); server {}; ledger up to \
         entry {}",
        to.display(),
        manifest.files.len(),
        total,
        manifest.server_id,
        manifest.ledger_tail.as_ref().map_or(0, |(seq, _)| *seq)
    )?;
    Ok(())
}

/// A temporary directory (removed when dropped) in the directory of `path`, which is created if
/// missing: staged files are renamed into place on the same file system.
pub(super) fn staging_beside(path: &Path, prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in {}",
                parent.display()
            )
        })
}

/// Copies `from` to `to` if it exists; whether it did.
fn copy_if_exists(from: &Path, to: &Path) -> anyhow::Result<bool> {
    match fs::copy(from, to) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", from.display())),
    }
}

/// The size and SHA-256 (lower-case hex) of the file at `path`.
fn checksum(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(copy_hashed(&mut file, &mut std::io::sink(), u64::MAX)?)
}

/// Copies at most `limit` bytes of `reader` into `writer`: how many it copied, and their SHA-256
/// (lower-case hex). What the backup lists in its manifest and the restore checks.
pub(super) fn copy_hashed(
    reader: &mut impl Read,
    writer: &mut impl std::io::Write,
    limit: u64,
) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut copied = 0u64;
    while copied < limit {
        let want =
            usize::try_from((limit - copied).min(buffer.len() as u64)).unwrap_or(buffer.len());
        let n = reader.read(&mut buffer[..want])?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        writer.write_all(&buffer[..n])?;
        copied += n as u64;
    }
    Ok((copied, crate::sys::hex::lower(&hasher.finalize())))
}

fn write_archive(manifest: &Manifest, stage: &Path, to: &Path) -> anyhow::Result<()> {
    let file = Staged::create(to, Mode::Private)?;
    let gzip = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gzip);
    let json = serde_json::to_vec_pretty(manifest)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, MANIFEST, json.as_slice())?;
    for entry in &manifest.files {
        let mut file = fs::File::open(stage.join(&entry.path))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(entry.bytes);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &entry.path, &mut file)?;
    }
    let file = tar.into_inner()?.finish()?;
    file.commit()?;
    Ok(())
}
